// Where tests keep their stores. A store is described by a plain, serialisable spec
// ({ kind: 'memory' | 'file' | 'sqlite' | 'pg' | 'mysql' | 'redis', ... }) so that the parent test and its child
// processes open the same one. PostgreSQL settings come from the PG* variables (with this
// machine's defaults) and are passed explicitly: under jest, native code does not see
// process.env.
'use strict'
const fs = require('fs')
const os = require('os')
const path = require('path')
const { MemoryStoreAdapter, FileStoreAdapter, SQLStoreAdapter, MySQLStoreAdapter, RedisStoreAdapter } = require('../..')
const { applyDefaults, serverReachable } = require('./postgres-env')
const { redisUrl } = require('./redis-env')

function pgConfig() {
  const env = applyDefaults({ ...process.env })
  const { PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE } = env
  const config = { host: PGHOST, user: PGUSER, database: PGDATABASE }
  if (PGPORT) config.port = Number(PGPORT)
  if (PGPASSWORD) config.password = PGPASSWORD
  return config
}

let pgStatus = null
// Whether the local PostgreSQL server answers (decided once, in a child process).
function pgReachable() {
  if (pgStatus === null) pgStatus = serverReachable()
  return pgStatus
}

let counter = 0
// A fresh spec of `kind`, and a cleanup that removes what it made.
function makeSpec(kind, label = 'stress') {
  const unique = `${process.pid}_${Date.now().toString(36)}_${counter++}`
  if (kind === 'memory') return { spec: { kind }, cleanup: async () => {} }
  if (kind === 'file' || kind === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rds-${label}-`))
    const file = path.join(dir, kind === 'file' ? 'store.json' : 'store.db')
    return {
      spec: { kind, path: file },
      cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
    }
  }
  if (kind === 'redis') {
    const prefix = `rds-${label}-${unique}:`
    return { spec: { kind, url: redisUrl(), prefix }, cleanup: () => deleteRedisPrefix(prefix) }
  }
  if (kind === 'pg') {
    const table = `rds_${label}_${unique}`.toLowerCase()
    const config = pgConfig()
    return {
      spec: { kind, table, config },
      cleanup: () => dropTables(config, [table]),
    }
  }
  if (kind === 'mysql') {
    const mysqlEnv = require('./mysql-env')
    const table = `rds_${label}_${unique}`.toLowerCase()
    // poolSize 4: a store opens up to three pools of this many connections, and the loads run
    // 4 processes at once against a server whose max_connections is 151 by default, which
    // other test files share.
    return {
      spec: { kind, table, config: mysqlEnv.mysqlConfig(), options: { poolSize: 4 } },
      cleanup: () => mysqlEnv.dropTables([table]),
    }
  }
  throw new Error(`unknown store kind ${kind}`)
}

// `count` fresh specs of `kind` that do not exist yet, and one cleanup for them all.
function makeSpecs(kind, count, label = 'many') {
  const unique = `${process.pid}_${Date.now().toString(36)}_${counter++}`
  if (kind === 'file' || kind === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rds-${label}-`))
    const specs = Array.from({ length: count }, (_, i) => ({
      kind,
      path: path.join(dir, kind === 'file' ? `s${i}.json` : `s${i}.db`),
    }))
    return { specs, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) }
  }
  if (kind === 'pg') {
    const config = pgConfig()
    const specs = Array.from({ length: count }, (_, i) => ({
      kind,
      table: `rds_${label}_${unique}_${i}`.toLowerCase(),
      config,
    }))
    return {
      specs,
      cleanup: () =>
        dropTables(
          config,
          specs.map((s) => s.table),
        ),
    }
  }
  throw new Error(`no such store kind: ${kind}`)
}

// Deletes every Redis key of a store with `prefix` (its values and any lease left behind).
async function deleteRedisPrefix(prefix) {
  const Redis = require('ioredis')
  const admin = new Redis(redisUrl())
  try {
    let cursor = '0'
    do {
      const [next, names] = await admin.scan(cursor, 'MATCH', `{${prefix}*`, 'COUNT', 1000)
      if (names.length) await admin.del(...names)
      cursor = next
    } while (cursor !== '0')
  } finally {
    await admin.quit()
  }
}

async function dropTables(config, tables) {
  const { Client } = require('pg')
  const client = new Client(config)
  await client.connect()
  try {
    for (let i = 0; i < tables.length; i += 100) {
      await client.query(`DROP TABLE IF EXISTS ${tables.slice(i, i + 100).join(', ')}`)
    }
  } finally {
    await client.end()
  }
}

// Opens the store `spec` describes; `options` default to the spec's own (`spec.options`).
function openStore(spec, options = spec.options) {
  switch (spec.kind) {
    case 'memory':
      return new MemoryStoreAdapter(options)
    case 'file':
      return new FileStoreAdapter(spec.path, options)
    case 'sqlite':
      return new SQLStoreAdapter(spec.path, 'reshuffledb', options)
    case 'pg':
      return new SQLStoreAdapter(spec.config, spec.table, options)
    case 'mysql':
      return new MySQLStoreAdapter(spec.config, spec.table, options)
    case 'redis':
      // `spec.client`: an ioredis client's `options` (host, port, tls), given as that client.
      return new RedisStoreAdapter(spec.client ? { options: spec.client, quit: async () => {} } : spec.url, {
        prefix: spec.prefix,
        ...options,
      })
    default:
      throw new Error(`unknown store kind ${spec.kind}`)
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// A deterministic generator (mulberry32), so that a failing run can be replayed from its seed.
function random(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

module.exports = { makeSpec, makeSpecs, openStore, pgReachable, pgConfig, dropTables, sleep, random }
