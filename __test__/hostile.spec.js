// No value passed from JavaScript can abort or crash the process (README, Errors): every
// constructor, option, target setting and method is called with a table of hostile values
// (huge, negative, NaN, Infinity, wrong types, Proxies, getters that throw, a 2^32-1 long
// array, …) in child processes, which must end normally, with every call either working or
// failing with a coded DatastoreError.
'use strict'
const { runChild, fixture } = require('./lib/children')
const { pgConfig, pgReachable } = require('./lib/stores')
const { redisUrl, redisReachable } = require('./lib/redis-env')
const { mysqlConfig, serverReachable: mysqlReachable } = require('./lib/mysql-env')

const pg = pgReachable().ok ? pgConfig() : null
if (!pg) console.warn('hostile.spec.js: PostgreSQL is not reachable; its stores are left out of the methods group')
const redis = redisReachable().ok ? redisUrl() : ''
if (!redis) console.warn('hostile.spec.js: Redis is not reachable; its stores are left out of the methods group')
const my = mysqlReachable().ok ? mysqlConfig() : null
if (!my) {
  console.warn(
    'hostile.spec.js: MySQL/MariaDB is not reachable; the mysql group only constructs stores (none is used, no method is called)',
  )
}

test.each(['memory', 'file', 'sqlite', 'postgres', 'redis', 'mysql', 'methods'])(
  '%s: every call ends with a result or a coded error, and the process ends normally',
  async (group) => {
    const { code, signal, messages } = await runChild(fixture('hostile-child.js'), [
      group,
      JSON.stringify(pg || {}),
      redis,
      my === null ? '' : JSON.stringify(my),
    ])
    expect(signal).toBe(null)
    expect(code).toBe(0)
    const done = messages.pop()
    expect(done.done).toBeGreaterThan(100)
    expect(messages).toHaveLength(done.done)
    const bad = messages.filter((m) => m.code !== 'ok' && !/^ERR_DATASTORE_[A-Z_]+$/.test(m.code))
    expect(bad).toEqual([])
    // Nothing is an internal error: every hostile value is handled as bad input.
    expect(messages.filter((m) => m.code === 'ERR_DATASTORE_INTERNAL')).toEqual([])
  },
)
