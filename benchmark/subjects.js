'use strict'
// Every store a benchmark can open — this package's adapters and the peers — behind one
// interface: { available(), why(), open(ctx) -> store with get/set/update/list/close }.
// `ctx.dir` is a fresh folder, `ctx.name` a fresh table or file name. A peer whose package is
// missing, or whose server does not answer, reports why and is skipped.
//
// Peers without an atomic update (keyv, lmdb with async updaters) get the usual
// read-then-write; the correctness checks show what that costs.
const fs = require('fs')
const path = require('path')

function tryRequire(name) {
  try {
    return require(name)
  } catch {
    return null
  }
}

const ours = require(path.join(__dirname, '..'))
const reshuffle = tryRequire('reshuffle')
const pg = tryRequire('pg')
const BetterSqlite3 = tryRequire('better-sqlite3')
const lmdb = tryRequire('lmdb')
const keyvMod = tryRequire('keyv')
const keyvSqlite = tryRequire('@keyv/sqlite')
const keyvPostgres = tryRequire('@keyv/postgres')
const mysql2 = tryRequire('mysql2/promise')
const keyvMysql = tryRequire('@keyv/mysql')
const keyvRedis = tryRequire('@keyv/redis')
const IORedis = tryRequire('ioredis')

const redisUrl = () => process.env.REDIS_URL || 'redis://127.0.0.1:6379'

const pgEnv = () => ({
  host: process.env.PGHOST || '127.0.0.1',
  port: Number(process.env.PGPORT || 5432),
  user: process.env.PGUSER || 'root',
  database: process.env.PGDATABASE || 'test',
  password: process.env.PGPASSWORD,
})
const pgUrl = () => {
  const c = pgEnv()
  const auth = c.password
    ? `${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}`
    : encodeURIComponent(c.user)
  return `postgres://${auth}@${c.host}:${c.port}/${c.database}`
}

// Set once by checkPostgres(): whether the server answers.
let postgresUp = null
async function checkPostgres() {
  if (postgresUp !== null || !pg) return postgresUp
  const client = new pg.Client(pgEnv())
  try {
    await client.connect()
    await client.query('select 1')
    postgresUp = true
  } catch (e) {
    postgresUp = false
  } finally {
    await client.end().catch(() => {})
  }
  return postgresUp
}

// Set once by checkRedis(): whether the server answers.
let redisUp = null
async function checkRedis() {
  if (redisUp !== null || !IORedis) return redisUp
  const client = new IORedis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await client.connect()
    await client.ping()
    redisUp = true
  } catch {
    redisUp = false
  } finally {
    client.disconnect()
  }
  return redisUp
}

// Whether each server answers (PostgreSQL, MySQL, Redis), decided once.
async function checkServers() {
  await Promise.all([checkPostgres(), checkMysql(), checkRedis()])
}

// The runner's Redis stores delete their keys (all named with ctx.name) on close.
function redisCleanOnClose(store, ctx) {
  if (ctx.child) return store
  const close = store.close.bind(store)
  store.close = async () => {
    await close()
    const admin = new IORedis(redisUrl())
    let cursor = '0'
    do {
      const [next, names] = await admin.scan(cursor, 'MATCH', `*${ctx.name}*`, 'COUNT', 1000)
      if (names.length) await admin.del(...names)
      cursor = next
    } while (cursor !== '0')
    await admin.quit()
  }
  return store
}

// The floor of Redis from Node: ioredis with JSON text, GET and SET; update with WATCH/MULTI,
// retried on conflict. WATCH belongs to a connection, so each update in flight takes a
// connection of its own from a small pool (commands of one connection would mix their WATCHes).
function openRawIoredis(ctx) {
  const main = new IORedis(redisUrl())
  const idle = []
  const all = [main]
  const name = (key) => `${ctx.name}:${key}`
  const take = () => {
    if (idle.length) return idle.pop()
    const c = main.duplicate()
    all.push(c)
    return c
  }
  const parse = (text) => (text === null ? undefined : JSON.parse(text))
  return {
    get: async (key) => parse(await main.get(name(key))),
    set: async (key, value) => {
      await main.set(name(key), JSON.stringify(value))
      return value
    },
    update: async (key, updater) => {
      const c = take()
      try {
        for (;;) {
          await c.watch(name(key))
          const old = parse(await c.get(name(key)))
          const next = await updater(old)
          if (next === undefined) {
            await c.unwatch()
            return [old, undefined]
          }
          const done = await c.multi().set(name(key), JSON.stringify(next)).exec()
          if (done !== null) return [old, next]
        }
      } finally {
        idle.push(c)
      }
    },
    list: async () => {
      const keys = []
      let cursor = '0'
      do {
        const [next, names] = await main.scan(cursor, 'MATCH', `${ctx.name}:*`, 'COUNT', 1000)
        for (const n of names) keys.push(n.slice(ctx.name.length + 1))
        cursor = next
      } while (cursor !== '0')
      return keys.sort()
    },
    close: async () => {
      await Promise.all(all.map((c) => c.quit()))
    },
  }
}

async function dropPgTable(name) {
  const client = new pg.Client(pgEnv())
  await client.connect()
  await client.query(`DROP TABLE IF EXISTS "${name}"`)
  await client.end()
}

const mysqlEnv = () => ({
  host: process.env.MYSQL_HOST || '127.0.0.1',
  port: Number(process.env.MYSQL_PORT || 3306),
  user: process.env.MYSQL_USER || 'root',
  database: process.env.MYSQL_DATABASE || 'test',
  password: process.env.MYSQL_PASSWORD || undefined,
})
const mysqlUrl = () => {
  const c = mysqlEnv()
  const auth = c.password
    ? `${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}`
    : encodeURIComponent(c.user)
  return `mysql://${auth}@${c.host}:${c.port}/${c.database}`
}

// Set once by checkServers(): whether the MySQL/MariaDB server answers.
let mysqlUp = null
async function checkMysql() {
  if (mysqlUp !== null || !mysql2) return mysqlUp
  try {
    const c = await mysql2.createConnection(mysqlEnv())
    await c.query('select 1')
    await c.end()
    mysqlUp = true
  } catch {
    mysqlUp = false
  }
  return mysqlUp
}

async function dropMysqlTable(name) {
  const c = await mysql2.createConnection(mysqlEnv())
  await c.query(`DROP TABLE IF EXISTS \`${name}\``)
  await c.end()
}

function openBetterSqlite3(ctx) {
  const db = new BetterSqlite3(path.join(ctx.dir, `${ctx.name}.db`))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec('CREATE TABLE IF NOT EXISTS kv (id TEXT PRIMARY KEY, value TEXT)')
  return db
}

const openKeyvSqlite = (ctx) =>
  new keyvMod.Keyv(new keyvSqlite.KeyvSqlite(`sqlite://${path.join(ctx.dir, `${ctx.name}.sqlite`)}`))
const openKeyvMysql = (ctx) => new keyvMod.Keyv(new keyvMysql.KeyvMysql({ uri: mysqlUrl(), table: ctx.name }))
const openKeyvRedis = (ctx) =>
  new keyvMod.Keyv({ store: new keyvRedis.default(redisUrl()), namespace: ctx.name, useKeyPrefix: true })
const openKeyvPostgres = (ctx) => new keyvMod.Keyv(new keyvPostgres.KeyvPostgres({ uri: pgUrl(), table: ctx.name }))

// The runner's stores drop their table on close; the child processes' do not.
function dropOnClose(store, ctx, drop = dropPgTable) {
  if (ctx.child) return store
  const close = store.close.bind(store)
  store.close = async () => {
    await close()
    await drop(ctx.name)
  }
  return store
}

// Read-then-write update for stores without one.
function naiveUpdate(get, set) {
  return async (key, updater) => {
    const old = await get(key)
    const next = await updater(old)
    if (next !== undefined) await set(key, next)
    return [old, next]
  }
}

// The floor of a copying store on V8 (SPEC §5): a Map of JSON text, JSON.stringify per write
// and JSON.parse per read, `set` resolving to the value given. It keeps no locks and crosses
// into no native code, so no store that copies its values can be faster; the benchmark keeps
// it as the target for memory, and for large values on every engine.
function floorStore() {
  const map = new Map()
  const read = (key) => {
    const text = map.get(key)
    return text === undefined ? undefined : JSON.parse(text)
  }
  const write = (key, value) => map.set(key, JSON.stringify(value))
  return {
    get: async (key) => read(key),
    set: async (key, value) => {
      write(key, value)
      return value
    },
    update: naiveUpdate(
      async (key) => read(key),
      async (key, value) => write(key, value),
    ),
    getMany: async (keys) => keys.map(read),
    setMany: async (entries) => {
      for (const [key, value] of entries) write(key, value)
    },
    list: async () => [...map.keys()].sort(),
    entries: async function* () {
      for (const key of [...map.keys()].sort()) yield [key, read(key)]
    },
    close: async () => map.clear(),
  }
}

const subjects = {
  floor: {
    label: 'floor: a Map of JSON text',
    available: () => true,
    open: async () => floorStore(),
  },
  memory: {
    label: 'reshuffle-datastore MemoryStoreAdapter',
    available: () => true,
    open: async () => new ours.MemoryStoreAdapter(),
  },
  file: {
    label: 'reshuffle-datastore FileStoreAdapter',
    available: () => typeof ours.FileStoreAdapter === 'function',
    why: () => 'FileStoreAdapter is not built in this version',
    prefill: async (ctx, data) => fs.writeFileSync(path.join(ctx.dir, `${ctx.name}.json`), JSON.stringify(data)),
    open: async (ctx) => new ours.FileStoreAdapter(path.join(ctx.dir, `${ctx.name}.json`)),
    // A second handle on the same file (as another process would have).
    reopen: async (ctx) => new ours.FileStoreAdapter(path.join(ctx.dir, `${ctx.name}.json`)),
  },
  sqlite: {
    label: 'reshuffle-datastore SQLStoreAdapter (SQLite file)',
    available: () => typeof ours.SQLStoreAdapter === 'function',
    open: async (ctx) => new ours.SQLStoreAdapter(path.join(ctx.dir, `${ctx.name}.db`), 'reshuffledb'),
  },
  postgres: {
    label: 'reshuffle-datastore SQLStoreAdapter (PostgreSQL)',
    available: () => postgresUp === true,
    why: () => 'PostgreSQL does not answer (PGHOST…)',
    open: async (ctx) => {
      const store = new ours.SQLStoreAdapter(pgUrl(), ctx.name)
      return dropOnClose(store, ctx)
    },
  },
  mysql: {
    label: 'reshuffle-datastore MySQLStoreAdapter (MariaDB)',
    available: () => typeof ours.MySQLStoreAdapter === 'function' && mysqlUp === true,
    why: () => 'MySQL/MariaDB does not answer (MYSQL_HOST…) or mysql2 is not installed',
    open: async (ctx) => dropOnClose(new ours.MySQLStoreAdapter(mysqlUrl(), ctx.name), ctx, dropMysqlTable),
  },
  redis: {
    label: 'reshuffle-datastore RedisStoreAdapter',
    available: () => redisUp === true,
    why: () => 'Redis does not answer (REDIS_URL)',
    open: async (ctx) => redisCleanOnClose(new ours.RedisStoreAdapter(redisUrl(), { prefix: `${ctx.name}:` }), ctx),
  },
  'reshuffle-memory': {
    label: 'reshuffle 1.0.9 MemoryStoreAdapter',
    available: () => !!reshuffle,
    why: () => 'reshuffle is not installed',
    open: async () => {
      const s = new reshuffle.MemoryStoreAdapter()
      s.close = async () => {}
      return s
    },
  },
  'reshuffle-file': {
    label: 'reshuffle 1.0.9 FileStoreAdapter',
    available: () => !!reshuffle,
    why: () => 'reshuffle is not installed',
    prefill: async (ctx, data) => fs.writeFileSync(path.join(ctx.dir, `${ctx.name}.json`), JSON.stringify(data)),
    open: async (ctx) => {
      const s = new reshuffle.FileStoreAdapter(path.join(ctx.dir, `${ctx.name}.json`))
      s.close = async () => {}
      return s
    },
  },
  'reshuffle-sql': {
    label: 'reshuffle 1.0.9 SQLStoreAdapter (pg Pool)',
    available: () => !!reshuffle && !!pg && postgresUp === true,
    why: () => (!pg ? 'pg is not installed' : 'PostgreSQL does not answer (PGHOST…)'),
    open: async (ctx) => {
      const pool = new pg.Pool(pgEnv())
      const s = new reshuffle.SQLStoreAdapter(pool, ctx.name)
      s.close = async () => pool.end()
      return dropOnClose(s, ctx)
    },
  },
  'reshuffle-mysql': {
    label: 'reshuffle 1.0.9 MySQLStoreAdapter (mysql2 pool)',
    available: () => !!reshuffle && !!reshuffle.MySQLStoreAdapter && !!mysql2 && mysqlUp === true,
    why: () => (!mysql2 ? 'mysql2 is not installed' : 'MySQL/MariaDB does not answer (MYSQL_HOST…)'),
    open: async (ctx) => {
      const pool = mysql2.createPool(mysqlEnv())
      const s = new reshuffle.MySQLStoreAdapter(pool, ctx.name)
      // reshuffle's list() of an empty table resolves undefined.
      const list = s.list.bind(s)
      s.list = async () => (await list()) || []
      s.close = async () => pool.end()
      return dropOnClose(s, ctx, dropMysqlTable)
    },
  },
  'better-sqlite3': {
    label: 'better-sqlite3 12 (minimal key-value table, WAL)',
    available: () => !!BetterSqlite3,
    why: () => 'better-sqlite3 is not installed',
    prefill: async (ctx, data) => {
      const db = openBetterSqlite3(ctx)
      const put = db.prepare('INSERT INTO kv (id, value) VALUES (?, ?)')
      db.transaction(() => {
        for (const [k, v] of Object.entries(data)) put.run(k, JSON.stringify(v))
      })()
      db.close()
    },
    open: async (ctx) => {
      const db = openBetterSqlite3(ctx)
      const get = db.prepare('SELECT value FROM kv WHERE id = ?').pluck()
      const put = db.prepare(
        'INSERT INTO kv (id, value) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET value = excluded.value',
      )
      const list = db.prepare('SELECT id FROM kv ORDER BY id').pluck()
      const scan = db.prepare('SELECT id, value FROM kv ORDER BY id')
      const read = (key) => {
        const v = get.get(key)
        return v === undefined ? undefined : JSON.parse(v)
      }
      return {
        get: async (key) => read(key),
        set: async (key, value) => {
          put.run(key, JSON.stringify(value))
          return value
        },
        // Atomic for synchronous updaters (one transaction); an async updater cannot be held
        // inside a transaction, so it gets the usual read-then-write.
        update: async (key, updater) => {
          let pair
          let pending
          db.transaction(() => {
            const old = read(key)
            const next = updater(old)
            if (next && typeof next.then === 'function') {
              pending = { old, next }
              return
            }
            if (next !== undefined) put.run(key, JSON.stringify(next))
            pair = [old, next]
          }).immediate()
          if (!pending) return pair
          const next = await pending.next
          if (next !== undefined) put.run(key, JSON.stringify(next))
          return [pending.old, next]
        },
        list: async () => list.all(),
        getMany: async (keys) => db.transaction(() => keys.map(read))(),
        entries: async function* () {
          for (const row of scan.iterate()) yield [row.id, JSON.parse(row.value)]
        },
        close: async () => db.close(),
      }
    },
  },
  lmdb: {
    label: 'lmdb 3',
    available: () => !!lmdb,
    why: () => 'lmdb is not installed',
    prefill: async (ctx, data) => {
      const db = lmdb.open({ path: path.join(ctx.dir, `${ctx.name}.lmdb`) })
      db.transactionSync(() => {
        for (const [k, v] of Object.entries(data)) db.putSync(k, v)
      })
      await db.close()
    },
    open: async (ctx) => {
      const db = lmdb.open({ path: path.join(ctx.dir, `${ctx.name}.lmdb`) })
      return {
        get: async (key) => db.get(key),
        set: async (key, value) => {
          await db.put(key, value)
          return value
        },
        // Atomic for synchronous updaters (transactionSync); an async one gets read-then-write.
        update: async (key, updater) => {
          let pair
          let pending
          db.transactionSync(() => {
            const old = db.get(key)
            const next = updater(old)
            if (next && typeof next.then === 'function') {
              pending = { old, next }
              return
            }
            if (next !== undefined) db.putSync(key, next)
            pair = [old, next]
          })
          if (!pending) return pair
          const next = await pending.next
          if (next !== undefined) await db.put(key, next)
          return [pending.old, next]
        },
        list: async () => Array.from(db.getKeys()),
        getMany: async (keys) => db.getMany(keys),
        entries: async function* () {
          for (const { key, value } of db.getRange()) yield [key, value]
        },
        close: async () => db.close(),
      }
    },
  },
  'keyv-sqlite': {
    label: 'keyv 5 + @keyv/sqlite',
    available: () => !!keyvMod && !!keyvSqlite,
    why: () => 'keyv or @keyv/sqlite is not installed',
    prefill: async (ctx, data) => keyvPrefill(openKeyvSqlite(ctx), data),
    open: async (ctx) => keyvStore(openKeyvSqlite(ctx)),
  },
  'keyv-mysql': {
    label: 'keyv 5 + @keyv/mysql',
    available: () => !!keyvMod && !!keyvMysql && mysqlUp === true,
    why: () => 'keyv/@keyv/mysql missing or MySQL/MariaDB does not answer',
    prefill: async (ctx, data) => keyvPrefill(openKeyvMysql(ctx), data),
    open: async (ctx) => dropOnClose(keyvStore(openKeyvMysql(ctx)), ctx, dropMysqlTable),
  },
  'keyv-postgres': {
    label: 'keyv 5 + @keyv/postgres',
    available: () => !!keyvMod && !!keyvPostgres && postgresUp === true,
    why: () => 'keyv/@keyv/postgres missing or PostgreSQL does not answer',
    prefill: async (ctx, data) => keyvPrefill(openKeyvPostgres(ctx), data),
    open: async (ctx) => dropOnClose(keyvStore(openKeyvPostgres(ctx)), ctx),
  },
  'keyv-redis': {
    label: 'keyv 5 + @keyv/redis',
    available: () => !!keyvMod && !!keyvRedis && redisUp === true,
    why: () => 'keyv/@keyv/redis missing or Redis does not answer',
    open: async (ctx) => redisCleanOnClose(keyvStore(openKeyvRedis(ctx)), ctx),
  },
  ioredis: {
    label: 'ioredis (GET/SET, WATCH/MULTI update: the floor)',
    available: () => !!IORedis && redisUp === true,
    why: () => 'ioredis missing or Redis does not answer',
    open: async (ctx) => redisCleanOnClose(openRawIoredis(ctx), ctx),
  },
}

// keyv writes one key per round trip; setMany batches the prefill.
async function keyvPrefill(k, data) {
  const entries = Object.entries(data).map(([key, value]) => ({ key, value }))
  for (let i = 0; i < entries.length; i += 1000) await k.setMany(entries.slice(i, i + 1000))
  await k.disconnect()
}

function keyvStore(k) {
  const get = (key) => k.get(key)
  const set = async (key, value) => {
    await k.set(key, value)
    return value
  }
  return {
    get,
    set,
    update: naiveUpdate(get, set),
    list: async () => {
      const keys = []
      if (typeof k.iterator === 'function') for await (const [key] of k.iterator()) keys.push(key)
      return keys.sort()
    },
    getMany: (keys) => k.getMany(keys),
    // keyv's iterator walks the table in the store's own order, unsorted.
    entries: typeof k.iterator === 'function' ? () => k.iterator() : undefined,
    close: async () => k.disconnect(),
  }
}

function makeContext(dir) {
  let n = 0
  return () => ({ dir, name: `bench_${process.pid}_${Date.now().toString(36)}_${n++}` })
}

module.exports = { subjects, checkPostgres, checkServers, makeContext, pgEnv, mysqlEnv, fs }
