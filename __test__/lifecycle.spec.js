// The edges of a store's life (README, Semantics: lifecycle and waits), on every backend that other threads and
// processes share: many processes or threads opening a new store at the same instant; a
// worker thread that ends while its updater holds a key; lockTimeout bounding a wait behind
// another process; and, for PostgreSQL, the app's own Pool or Client being followed.
'use strict'
const fs = require('fs')
const { Worker } = require('worker_threads')
const { makeSpec, makeSpecs, openStore, pgReachable, pgConfig, sleep } = require('./lib/stores')
const { startChild, runChild, fixture, startWorker } = require('./lib/children')
const { requiredOrSkipped } = require('./lib/servers')
const { SQLStoreAdapter } = require('..')

const pg = pgReachable()
requiredOrSkipped('PostgreSQL lifecycle tests', pg, 'RESHUFFLE_DATASTORE_REQUIRE_PG')

const kinds = ['file', 'sqlite', ...(pg.ok ? ['pg'] : [])]

// Rejects with a clear failure if `promise` takes longer than `ms` (a hang would otherwise
// show only as jest's timeout).
function within(ms, promise, what) {
  let timer
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

// A child fixture that speaks JSON lines; `next(pred)` resolves with the first message
// matching `pred` (from the ones seen so far or later).
function child(name, args) {
  const seen = []
  const waiting = []
  const c = startChild(
    fixture(name),
    args,
    (m) => {
      seen.push(m)
      for (const w of [...waiting]) {
        if (w.pred(m)) {
          waiting.splice(waiting.indexOf(w), 1)
          w.resolve(m)
        }
      }
    },
    { stdin: true },
  )
  const next = (pred) =>
    new Promise((resolve) => {
      const found = seen.find(pred)
      if (found) resolve(found)
      else waiting.push({ pred, resolve })
    })
  return { ...c, seen, next }
}

const openFds = () => fs.readdirSync('/proc/self/fd').length

describe.each(kinds)('%s', (kind) => {
  describe('first use by many at once', () => {
    test.each([2, 4, 8])('%i processes open the same 50 new stores at the same instants: all succeed', async (n) => {
      const { specs, cleanup } = makeSpecs(kind, 50, `race${n}`)
      try {
        const startAt = Date.now() + 1500 // after every child has loaded
        const runs = await Promise.all(
          Array.from({ length: n }, () =>
            runChild(fixture('lifecycle-open.js'), [JSON.stringify(specs), String(startAt), '40']),
          ),
        )
        for (const r of runs) {
          expect(r.code).toBe(0)
          expect(r.messages.filter((m) => !m.ok)).toEqual([])
          expect(r.messages).toHaveLength(50)
        }
        // Every process's first update of every store counted.
        for (const spec of specs) {
          const store = openStore(spec)
          expect(await store.get('n')).toBe(n)
          await store.close()
        }
      } finally {
        await cleanup()
      }
    })

    test('4 worker threads open the same 50 new stores at the same instants: all succeed', async () => {
      const { specs, cleanup } = makeSpecs(kind, 50, 'racew')
      try {
        const startAt = Date.now() + 1000
        const results = await Promise.all(
          Array.from(
            { length: 4 },
            () =>
              new Promise((resolve, reject) => {
                const messages = []
                const w = new Worker(fixture('lifecycle-open.js'), { workerData: { specs, startAt, slot: 40 } })
                w.on('message', (m) => (m.done ? resolve(messages) : messages.push(m)))
                w.on('error', reject)
              }),
          ),
        )
        for (const messages of results) {
          expect(messages.filter((m) => !m.ok)).toEqual([])
          expect(messages).toHaveLength(50)
        }
        for (const spec of specs) {
          const store = openStore(spec)
          expect(await store.get('n')).toBe(4)
          await store.close()
        }
      } finally {
        await cleanup()
      }
    })
  })

  describe('a thread that ends lets go', () => {
    let made
    let store
    beforeEach(() => {
      made = makeSpec(kind, 'ends')
      store = openStore(made.spec)
    })
    afterEach(async () => {
      await store.close()
      await made.cleanup()
    })

    test('terminated while its updater holds a key: a waiter in this thread and one in another process get it; nothing is written', async () => {
      await store.set('k', 1)
      const { worker, held } = startWorker(made.spec, 'k', 'hold')
      await held
      // Both wait for the key the worker holds.
      let here = null
      const waitingHere = store.update('k', (n) => {
        here = n
        return n + 1
      })
      const other = child('lifecycle-wait.js', [JSON.stringify(made.spec), 'k', 'none'])
      await sleep(300)
      expect(here).toBe(null)
      expect(other.seen).toEqual([])
      await worker.terminate()
      await within(5000, waitingHere, 'the waiter in this thread')
      const theirs = await within(
        5000,
        other.next(() => true),
        'the waiter in another process',
      )
      expect(theirs.ok).toBe(true)
      // The worker's update ('from-worker') was never written: both waiters counted from 1.
      expect(here).toBe(1)
      expect(await store.get('k')).toBe(3)
      expect((await other.exited).code).toBe(0)
    })

    // 'spin': terminated while its updater's JavaScript runs, so the call into it is cut off
    // and the update ends (letting go of the key) as the thread's environment is torn down.
    test.each(['throw', 'exit', 'spin'])('a worker that %s while its updater holds a key lets go', async (mode) => {
      await store.set('k', 10)
      const { worker, held, exited } = startWorker(made.spec, 'k', mode)
      await held
      if (mode === 'spin') await worker.terminate()
      await exited
      const [old] = await within(
        5000,
        store.update('k', (n) => n + 1),
        'the waiter',
      )
      expect(old).toBe(10)
      expect(await store.get('k')).toBe(11)
    })

    test('workers created and terminated in a loop leave no descriptors, sessions or memory behind', async () => {
      // The workers' PostgreSQL sessions carry a name of their own, to be counted.
      const app = `rds_loop_${process.pid}`
      const workerSpec =
        kind === 'pg' ? { ...made.spec, config: { ...made.spec.config, application_name: app } } : made.spec
      const round = async (i) => {
        const { worker, held } = startWorker(workerSpec, `k${i % 3}`, 'hold')
        await held
        await worker.terminate()
      }
      for (let i = 0; i < 5; i++) await round(i) // warm up: the thread pool, caches, JIT
      await store.set('warm', true)
      if (global.gc) global.gc()
      const fdsBefore = openFds()
      const rssBefore = process.memoryUsage().rss
      for (let i = 0; i < 40; i++) await round(i)
      // Closing a worker's files and sessions happens as its env is torn down, just after
      // terminate() resolves: give the last ones a moment.
      await sleep(200)
      const grown = openFds() - fdsBefore
      expect(grown).toBeLessThanOrEqual(2)
      // A leaked isolate or store per worker would be tens of MiB over 40 rounds.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(48 * 1024 * 1024)
      // Every key is free again.
      for (let i = 0; i < 3; i++) {
        await within(
          5000,
          store.update(`k${i}`, () => 'mine'),
          `key k${i}`,
        )
      }
      if (kind === 'pg') {
        const { Client } = require('pg')
        const c = new Client(pgConfig())
        await c.connect()
        try {
          // No session of a terminated worker is left (the server notices closed connections
          // within moments).
          let n
          for (let i = 0; i < 50; i++) {
            const { rows } = await c.query(
              'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
              [app],
            )
            n = rows[0].n
            if (n === 0) break
            await sleep(20)
          }
          expect(n).toBe(0)
        } finally {
          await c.end()
        }
      }
    })
  })

  describe('lockTimeout bounds a wait behind another process', () => {
    test('the waiter rejects with ERR_DATASTORE_LOCK_TIMEOUT, holds nothing, and its process exits by itself', async () => {
      const { spec, cleanup } = makeSpec(kind, 'timeout')
      const holder = child('lifecycle-hold.js', [JSON.stringify(spec), 'k'])
      try {
        await within(
          15000,
          holder.next((m) => m.held),
          'the holder',
        )
        // The waiter's process ends by itself, with the holder still holding the key.
        const waiter = await within(
          15000,
          runChild(fixture('lifecycle-wait.js'), [JSON.stringify(spec), 'k', '400']),
          'the waiter process',
        )
        expect(waiter.code).toBe(0)
        expect(waiter.messages).toEqual([expect.objectContaining({ code: 'ERR_DATASTORE_LOCK_TIMEOUT' })])
        expect(waiter.messages[0].message).toMatch(/"k".*400 ms/)
        // The same in this process, which then gets the key as soon as the holder lets go.
        const store = openStore(spec, { lockTimeout: 300 })
        try {
          const err = await store.update('k', (n = 0) => n + 1).catch((e) => e)
          expect(err.code).toBe('ERR_DATASTORE_LOCK_TIMEOUT')
          holder.send({ release: 41 })
          await within(
            5000,
            holder.next((m) => m.done),
            'the holder ending',
          )
          const [old, now] = await within(
            5000,
            store.update('k', (n) => n + 1),
            'the key after release',
          )
          expect([old, now]).toEqual([41, 42])
        } finally {
          await store.close()
        }
      } finally {
        holder.child.stdin.end()
        await holder.exited
        await cleanup()
      }
    })

    test('setMany of 3,000 keys waits for the one another process holds, and times out naming it', async () => {
      // Bulk calls on the file and SQLite engines lock buckets of keys, not one range per key
      // (docs/file-format.md): a key held elsewhere must still be waited for, by name.
      const { spec, cleanup } = makeSpec(kind, 'bulk')
      // 3,000 keys: within the PostgreSQL defaults' limit for one bulk call (docs/postgres.md).
      const holder = child('lifecycle-hold.js', [JSON.stringify(spec), 'k1500'])
      const entries = Array.from({ length: 3000 }, (_, i) => [`k${i}`, i])
      const store = openStore(spec, { lockTimeout: 300 })
      try {
        await within(
          15000,
          holder.next((m) => m.held),
          'the holder',
        )
        const err = await store.setMany(entries).catch((e) => e)
        expect(err.code).toBe('ERR_DATASTORE_LOCK_TIMEOUT')
        expect(err.message).toMatch(/"k1500".*300 ms/)
        expect(await store.get('k1')).toBeUndefined() // all or nothing
        const bulk = store.setMany(entries)
        holder.send({ release: 'held' })
        await within(5000, bulk, 'the bulk write after release')
        expect(await store.getMany(['k0', 'k1500', 'k2999'])).toEqual([0, 1500, 2999])
      } finally {
        await store.close()
        holder.child.stdin.end()
        await holder.exited
        await cleanup()
      }
    })
  })
})

const describePg = pg.ok ? describe : describe.skip

describePg('PostgreSQL: the target you were handed is followed', () => {
  const { Pool, Client } = require('pg')
  const app = `rds_follow_${process.pid}`
  let cleanup
  let table
  beforeEach(() => {
    const made = makeSpec('pg', 'follow')
    table = made.spec.table
    cleanup = made.cleanup
  })
  afterEach(() => cleanup())

  // Sessions of ours on the server, counted from another connection (the server notices a
  // closed connection within moments: wait for it briefly).
  async function sessions(name, expected) {
    const c = new Client(pgConfig())
    await c.connect()
    try {
      let n
      for (let i = 0; i < 50; i++) {
        const { rows } = await c.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [
          name,
        ])
        n = rows[0].n
        if (n === expected) break
        await sleep(20)
      }
      return n
    } finally {
      await c.end()
    }
  }

  test.each([
    ['pool.end()', (pool) => pool.end()],
    ['pool.end(callback)', (pool) => new Promise((resolve) => pool.end(resolve))],
  ])('%s ends the store: its sessions close, later operations reject ERR_DATASTORE_CLOSED', async (_, end) => {
    const name = `${app}_pool`
    const pool = new Pool({ ...pgConfig(), application_name: name, idleTimeoutMillis: 0 })
    const store = new SQLStoreAdapter(pool, table)
    await Promise.all([1, 2, 3].map((i) => store.update(`k${i}`, async () => (await sleep(20), i))))
    await pool.query('SELECT 1')
    expect(await sessions(name, 2)).toBeGreaterThanOrEqual(2)
    await end(pool)
    expect(await sessions(name, 0)).toBe(0)
    await expect(store.get('k1')).rejects.toMatchObject({ code: 'ERR_DATASTORE_CLOSED' })
    // The Pool itself behaves as before: a second end() is its own error.
    await expect(pool.end()).rejects.toThrow('Called end on pool more than once')
  })

  test('client.end() ends the store made over a connected Client', async () => {
    const name = `${app}_client`
    const client = new Client({ ...pgConfig(), application_name: name })
    await client.connect()
    const store = new SQLStoreAdapter(client, table)
    await store.set('a', 1)
    expect(await sessions(name, 2)).toBe(2)
    await client.end()
    expect(await sessions(name, 0)).toBe(0)
    await expect(store.set('a', 2)).rejects.toMatchObject({ code: 'ERR_DATASTORE_CLOSED' })
  })

  test('a store closed before the pool ends is no longer followed, and the pool still ends', async () => {
    const pool = new Pool(pgConfig())
    const store = new SQLStoreAdapter(pool, table)
    await store.set('a', 1)
    await store.close()
    await pool.end()
    expect(pool.ended).toBe(true)
  })

  test.each([
    ['a sync function', () => () => pgConfig().password || ''],
    ['an async function', () => async () => pgConfig().password || ''],
  ])('a password given as %s is called for each new connection', async (_, make) => {
    let calls = 0
    const password = make()
    const pool = new Pool({
      ...pgConfig(),
      password: function () {
        calls++
        return password()
      },
      max: 3,
    })
    const store = new SQLStoreAdapter(pool, table)
    // Updates held at once need their own connections: the pool's max is honoured.
    await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        store.update(`k${i}`, async () => {
          await sleep(30)
          return i
        }),
      ),
    )
    expect(calls).toBeGreaterThanOrEqual(1)
    expect(calls).toBeLessThanOrEqual(3)
    expect(await store.get('k5')).toBe(5)
    await pool.end()
  })

  test('a password function that throws rejects the operation with a clear error', async () => {
    const store = new SQLStoreAdapter(
      {
        ...pgConfig(),
        password: () => {
          throw new Error('no token')
        },
      },
      table,
    )
    const err = await store.get('a').catch((e) => e)
    expect(err.code).toBe('ERR_DATASTORE_BACKEND')
    expect(err.message).toMatch(/password function failed: it threw: no token/)
    await store.close()
  })
})
