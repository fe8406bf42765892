// Time to live as other processes and the storage itself see it (the conformance suite has
// the rules as one store sees them): every process agrees when a key has expired, expired
// keys leave the storage in the background, and that background timer never keeps a process
// alive.
'use strict'
const fs = require('fs')
const { makeSpec, openStore, pgReachable, sleep } = require('./lib/stores')
const { runChild, fixture } = require('./lib/children')
const { requiredOrSkipped } = require('./lib/servers')
const { mysqlConfig, dropTables: dropMysqlTables, mysqlTests } = require('./lib/mysql-env')

const pg = pgReachable()
requiredOrSkipped('PostgreSQL expiry tests', pg, 'RESHUFFLE_DATASTORE_REQUIRE_PG')
const { ok: mysqlOk, mysql2 } = mysqlTests('MySQL expiry tests')
const shared = ['file', 'sqlite', ...(pg.ok ? ['pg'] : []), ...(mysqlOk ? ['mysql'] : [])]

// A fresh spec of `kind` and its cleanup (lib/stores' makeSpec, and MySQL tables of this file).
let mysqlTables = 0
function specOf(kind) {
  if (kind !== 'mysql') return makeSpec(kind, 'expiry')
  const table = `rds_expiry_${process.pid}_${Date.now().toString(36)}_${mysqlTables++}`
  return { spec: { kind, table, config: mysqlConfig() }, cleanup: () => dropMysqlTables([table]) }
}

// Runs `text` on the MySQL server of `spec`, with a connection of its own; resolves its rows.
async function mysqlQuery(spec, text, params) {
  const c = await mysql2.createConnection(spec.config)
  try {
    return (await c.query(text, params))[0]
  } finally {
    await c.end()
  }
}

// What each kind of storage still holds of `key`, read around the store.
async function stored(spec, key) {
  if (spec.kind === 'sqlite') {
    const Database = require('better-sqlite3')
    const db = new Database(spec.path, { readonly: true })
    try {
      return db.prepare('SELECT count(*) AS n FROM reshuffledb WHERE id = ?').get(key).n > 0
    } finally {
      db.close()
    }
  }
  if (spec.kind === 'mysql') {
    return (await mysqlQuery(spec, `SELECT count(*) AS n FROM ${spec.table} WHERE id = ?`, [key]))[0].n > 0
  }
  if (spec.kind === 'pg') {
    const { Client } = require('pg')
    const client = new Client(spec.config)
    await client.connect()
    try {
      return (await client.query(`SELECT count(*)::int AS n FROM ${spec.table} WHERE id = $1`, [key])).rows[0].n > 0
    } finally {
      await client.end()
    }
  }
  // The file store: its last record about `key` is a set, not a delete.
  const last = fs
    .readFileSync(spec.path, 'utf8')
    .split('\n')
    .filter((line) => line.includes(JSON.stringify(key)))
    .pop()
  return last !== undefined && !last.includes(`["d",${JSON.stringify(key)}]`)
}

// Polls (bounded: 8 s) until the storage of `spec` no longer holds `key`; resolves whether it
// has gone.
async function purged(spec, key) {
  for (let i = 0; i < 80; i++) {
    if (!(await stored(spec, key))) return true
    await sleep(100)
  }
  return false
}

describe.each(['memory', ...shared])('%s', (kind) => {
  test('a process holding keys that expire later still ends by itself', async () => {
    const { spec, cleanup } = specOf(kind)
    try {
      const r = await runChild(fixture('expiry-child.js'), [JSON.stringify(spec), 'linger'], { timeout: 30000 })
      expect(r.messages).toEqual([{ done: true }])
      expect(r.signal).toBe(null)
      expect(r.code).toBe(0)
    } finally {
      await cleanup()
    }
  })
})

describe.each(shared)('%s', (kind) => {
  test('another process sees a key until it expires, and not after', async () => {
    const { spec, cleanup } = specOf(kind)
    const store = openStore(spec)
    try {
      await store.set('k', 'v', { ttl: 1500 })
      await store.set('plain', 1)
      const child = () => runChild(fixture('expiry-child.js'), [JSON.stringify(spec), 'get', 'k', 'plain'])
      expect((await child()).messages).toEqual([{ values: ['v', 1] }])
      await sleep(1600)
      expect((await child()).messages).toEqual([{ values: ['missing', 1] }])
    } finally {
      await store.close()
      await cleanup()
    }
  })

  test('expired keys leave the storage in the background, with no call made', async () => {
    const { spec, cleanup } = specOf(kind)
    const store = openStore(spec)
    try {
      // Long enough to see the row stored before it expires, even on a loaded machine: the
      // timer may purge it as soon as it is due.
      await store.set('gone', 'x', { ttl: 2000 })
      await store.set('kept', 'y', { ttl: 600000 })
      expect(await stored(spec, 'gone')).toBe(true)
      expect(await purged(spec, 'gone')).toBe(true)
      expect(await stored(spec, 'kept')).toBe(true)
      expect(await store.get('kept')).toBe('y')
    } finally {
      await store.close()
      await cleanup()
    }
  })

  test('a key that expires sooner than the one the purge waits for leaves the storage too', async () => {
    const { spec, cleanup } = specOf(kind)
    const store = openStore(spec)
    try {
      await store.set('kept', 'y', { ttl: 600000 })
      await sleep(300) // the purge has read its next expiry by now: 'kept', ten minutes away
      await store.set('gone', 'x', { ttl: 2000 })
      expect(await stored(spec, 'gone')).toBe(true)
      expect(await purged(spec, 'gone')).toBe(true)
      expect(await stored(spec, 'kept')).toBe(true)
    } finally {
      await store.close()
      await cleanup()
    }
  })

  test('keys that expired while no process had the store open are purged after its first write', async () => {
    const { spec, cleanup } = specOf(kind)
    let store = openStore(spec)
    try {
      await store.set('gone', 'x', { ttl: 20 })
      await store.close()
      await sleep(50)
      store = openStore(spec)
      await store.set('other', 1)
      let left = true
      for (let i = 0; i < 40 && left; i++) {
        await sleep(100)
        left = await stored(spec, 'gone')
      }
      expect(left).toBe(false)
    } finally {
      await store.close()
      await cleanup()
    }
  })
})

// MySQL keeps each expiry in its table's `expires_at` column (milliseconds since 1970 by the
// server's clock), read here from outside the store.
;(mysqlOk ? describe : describe.skip)('mysql: expiries in the table', () => {
  async function entriesOf(store) {
    const seen = []
    for await (const entry of store.entries()) seen.push(entry)
    return seen
  }

  test('a key set with ttl is gone for get, list and entries once it expires, and its row is purged', async () => {
    const { spec, cleanup } = specOf('mysql')
    const store = openStore(spec)
    try {
      await store.set('plain', 1)
      await store.set('kept', 'y', { ttl: 600000 })
      await store.set('gone', 'x', { ttl: 3000 })
      const [row] = await mysqlQuery(
        spec,
        `SELECT expires_at - ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000) AS ms FROM ${spec.table} WHERE id = 'gone'`,
      )
      const left = Number(row.ms)
      expect(left).toBeGreaterThan(0)
      expect(left).toBeLessThanOrEqual(3000)
      expect(await store.get('gone')).toBe('x')
      expect(await store.list()).toEqual(['gone', 'kept', 'plain'])
      expect(await entriesOf(store)).toEqual([
        ['gone', 'x'],
        ['kept', 'y'],
        ['plain', 1],
      ])
      await sleep(left + 100) // past its expiry by the server's clock
      expect(await store.get('gone')).toBeUndefined()
      expect(await store.getMany(['gone', 'plain'])).toEqual([undefined, 1])
      expect(await store.list()).toEqual(['kept', 'plain'])
      expect(await store.keys({ prefix: 'g' })).toEqual([])
      expect(await entriesOf(store)).toEqual([
        ['kept', 'y'],
        ['plain', 1],
      ])
      expect(await purged(spec, 'gone')).toBe(true)
      expect(await stored(spec, 'kept')).toBe(true)
      expect(await stored(spec, 'plain')).toBe(true)
    } finally {
      await store.close()
      await cleanup()
    }
  })

  test('a write without ttl clears an earlier expiry: its row keeps none and outlives it', async () => {
    const { spec, cleanup } = specOf('mysql')
    const store = openStore(spec)
    const expiresAt = async (key) => {
      const rows = await mysqlQuery(spec, `SELECT expires_at FROM ${spec.table} WHERE id = ?`, [key])
      return rows.length > 0 ? rows[0].expires_at : 'no row'
    }
    try {
      await store.set('k', 1, { ttl: 2000 })
      await store.set('u', 1, { ttl: 2000 })
      await store.setMany([['m', 1]], { ttl: 2000 })
      await store.set('e', 1, { ttl: 600000 })
      const before = await expiresAt('e')
      expect(typeof before).toBe('number')
      for (const key of ['k', 'u', 'm']) expect(typeof (await expiresAt(key))).toBe('number')
      await store.set('k', 2)
      await store.update('u', () => 2)
      await store.setMany([['m', 2]])
      expect(await store.update('e', () => undefined)).toEqual([1, undefined]) // writes nothing
      expect([await expiresAt('k'), await expiresAt('u'), await expiresAt('m')]).toEqual([null, null, null])
      expect(await expiresAt('e')).toBe(before)
      // `marker` expires after the old expiries of k, u and m: once the purge has deleted its
      // row, it has run past them.
      await store.set('marker', 0, { ttl: 2000 })
      expect(await purged(spec, 'marker')).toBe(true)
      expect(await store.getMany(['k', 'u', 'm'])).toEqual([2, 2, 2])
      expect(await store.list()).toEqual(['e', 'k', 'm', 'u'])
      for (const key of ['k', 'u', 'm']) expect(await expiresAt(key)).toBe(null)
    } finally {
      await store.close()
      await cleanup()
    }
  })
})
