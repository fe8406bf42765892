// Time to live as other processes and the storage itself see it (the conformance suite has
// the rules as one store sees them): every process agrees when a key has expired, expired
// keys leave the storage in the background, and that background timer never keeps a process
// alive.
'use strict'
const fs = require('fs')
const { makeSpec, openStore, pgReachable, sleep } = require('./lib/stores')
const { runChild, fixture } = require('./lib/children')
const { requiredOrSkipped } = require('./lib/servers')

const pg = pgReachable()
requiredOrSkipped('PostgreSQL expiry tests', pg, 'RESHUFFLE_DATASTORE_REQUIRE_PG')
const shared = ['file', 'sqlite', ...(pg.ok ? ['pg'] : [])]

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

describe.each(['memory', ...shared])('%s', (kind) => {
  test('a process holding keys that expire later still ends by itself', async () => {
    const { spec, cleanup } = makeSpec(kind, 'expiry')
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
    const { spec, cleanup } = makeSpec(kind, 'expiry')
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
    const { spec, cleanup } = makeSpec(kind, 'expiry')
    const store = openStore(spec)
    try {
      // Long enough to see the row stored before it expires, even on a loaded machine: the
      // timer may purge it as soon as it is due.
      await store.set('gone', 'x', { ttl: 2000 })
      await store.set('kept', 'y', { ttl: 600000 })
      expect(await stored(spec, 'gone')).toBe(true)
      let left = true
      for (let i = 0; i < 80 && left; i++) {
        await sleep(100)
        left = await stored(spec, 'gone')
      }
      expect(left).toBe(false)
      expect(await stored(spec, 'kept')).toBe(true)
      expect(await store.get('kept')).toBe('y')
    } finally {
      await store.close()
      await cleanup()
    }
  })

  test('keys that expired while no process had the store open are purged after its first write', async () => {
    const { spec, cleanup } = makeSpec(kind, 'expiry')
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
