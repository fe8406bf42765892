// What the fast suite (npm test) and the long one (npm run test:stress) share: which backends
// run, and the figures printed at the end.
'use strict'
const { pgReachable } = require('../../lib/stores')
const { redisReachable } = require('../../lib/redis-env')
const mysqlEnv = require('../../lib/mysql-env')

const requirePg = process.env.RESHUFFLE_DATASTORE_REQUIRE_PG === '1'
const requireRedis = process.env.RESHUFFLE_DATASTORE_REQUIRE_REDIS === '1'
const requireMysql = process.env.RESHUFFLE_DATASTORE_REQUIRE_MYSQL === '1'

// The persistent backends to attack: file and SQLite always, PostgreSQL, Redis and MySQL when
// their servers answer (else skipped loudly, or a failure with RESHUFFLE_DATASTORE_REQUIRE_PG=1,
// RESHUFFLE_DATASTORE_REQUIRE_REDIS=1 or RESHUFFLE_DATASTORE_REQUIRE_MYSQL=1).
function persistentKinds() {
  const kinds = ['file', 'sqlite']
  const pg = pgReachable()
  if (pg.ok) kinds.push('pg')
  else if (requirePg) throw new Error(`PostgreSQL is required but unreachable: ${pg.why}`)
  else console.warn(`PostgreSQL stress tests SKIPPED: ${pg.why.split('\n')[0]}`)
  const redis = redisReachable()
  if (redis.ok) kinds.push('redis')
  else if (requireRedis) throw new Error(`Redis is required but unreachable: ${redis.why}`)
  else console.warn(`Redis stress tests SKIPPED: ${redis.why}`)
  const mysql = mysqlEnv.serverReachable()
  if (mysql.ok) kinds.push('mysql')
  else if (requireMysql) throw new Error(`MySQL is required but unreachable: ${mysql.why}`)
  else console.warn(`MySQL stress tests SKIPPED: ${mysql.why.split('\n')[0]}`)
  return kinds
}

const names = {
  memory: 'memory',
  file: 'FileStoreAdapter',
  sqlite: 'SQLite',
  pg: 'PostgreSQL',
  redis: 'Redis',
  mysql: 'MySQL',
}

// Collects figures, printed as one block after the spec file.
function figures(title) {
  const rows = []
  afterAll(() => {
    if (rows.length) console.log(`${title}\n` + rows.map((r) => `  ${r}`).join('\n'))
  })
  return (row) => rows.push(row)
}

module.exports = { persistentKinds, names, figures }
