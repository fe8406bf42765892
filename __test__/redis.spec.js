// The Redis engine against the machine's server (REDIS_URL, default redis://127.0.0.1:6379).
// Every store works under a prefix of its own, whose keys are deleted at the end. An
// unreachable server skips these tests loudly, or fails them when
// RESHUFFLE_DATASTORE_REQUIRE_REDIS=1.
'use strict'
const { RedisStoreAdapter } = require('..')
const { runConformance, expectCode, sleep, updateHeldOpen, bulkWaitsInKeyOrder } = require('./conformance')
const { redisUrl, redisReachable, redisCaps } = require('./lib/redis-env')
const { startChild, runNode, fixture, startWorker } = require('./lib/children')
const { tcpProxy } = require('./fixtures/tcp-proxy')
const redisTls = require('./fixtures/redis-tls')
const { requiredOrSkipped } = require('./lib/servers')

let Redis = null
try {
  Redis = require('ioredis')
} catch {
  Redis = null
}
// node-redis, as @keyv/redis brings it.
let nodeRedis = null
try {
  nodeRedis = require('@redis/client')
} catch {
  nodeRedis = null
}

const server = redisReachable()
requiredOrSkipped(`Redis tests at ${redisUrl()}`, server, 'RESHUFFLE_DATASTORE_REQUIRE_REDIS')
requiredOrSkipped(
  "Redis tests that need the 'ioredis' package",
  { ok: Redis !== null, why: 'it is not installed' },
  'RESHUFFLE_DATASTORE_REQUIRE_REDIS',
)
const describeRedis = server.ok && Redis ? describe : describe.skip
const tlsTools = redisTls.status()
requiredOrSkipped('Redis TLS tests (openssl, redis-server)', tlsTools, 'RESHUFFLE_DATASTORE_REQUIRE_REDIS')
const describeTls = tlsTools.ok ? describe : describe.skip

const run = `rds-test-${process.pid.toString(36)}-${Date.now().toString(36)}`
let count = 0
const newPrefix = () => `${run}-${count++}:`

// The one place stores are made.
function makeStore(prefix = newPrefix(), options = {}) {
  const store = new RedisStoreAdapter(redisUrl(), { prefix, ...options })
  prefixOf.set(store, prefix)
  return store
}
const prefixOf = new WeakMap()

describeRedis('RedisStoreAdapter', () => {
  let admin
  beforeAll(() => {
    admin = new Redis(redisUrl())
  })
  afterAll(async () => {
    const names = await admin.keys(`{${run}*`)
    for (let i = 0; i < names.length; i += 500) await admin.del(...names.slice(i, i + 500))
    await admin.quit()
  })

  runConformance('RedisStoreAdapter', async () => makeStore(), {
    ...redisCaps({ url: redisUrl, open: makeStore, prefixOf }),
    foreign: {
      write: (store, key, text) => admin.set(`{${prefixOf.get(store)}${key}}`, text),
      // A hash where a value would be: listed, but GET and MGET have no text for it.
      noValue: (store, key) => admin.hset(`{${prefixOf.get(store)}${key}}`, 'f', 'v'),
    },
  })

  describe('key layout', () => {
    test('a value is JSON text at {prefix+key}, which other clients read', async () => {
      const store = makeStore()
      const prefix = prefixOf.get(store)
      await store.set('a/b', { x: 1 })
      expect(await admin.get(`{${prefix}a/b}`)).toBe('{"x":1}')
      await admin.set(`{${prefix}from-outside}`, '[1,2]')
      expect(await store.get('from-outside')).toEqual([1, 2])
      // Other programs' keys are not listed; a longer prefix is a namespace inside this one
      // (as with PersistentStore), another prefix is not seen.
      await admin.set(`${prefix}not-ours`, '1')
      const inner = makeStore(`${prefix}x`)
      const elsewhere = makeStore()
      await inner.set('k', 1)
      await elsewhere.set('k', 1)
      expect(await store.list()).toEqual(['a/b', 'from-outside', 'xk'])
      await admin.del(`${prefix}not-ours`)
      await Promise.all([store.close(), inner.close(), elsewhere.close()])
    })

    test('ttl is Redis’s own (PX)', async () => {
      const store = makeStore()
      await store.set('t', 1, { ttl: 60000 })
      const pttl = await admin.pttl(`{${prefixOf.get(store)}t}`)
      expect(pttl).toBeGreaterThan(50000)
      expect(pttl).toBeLessThanOrEqual(60000)
      await store.set('t', 2)
      expect(await admin.pttl(`{${prefixOf.get(store)}t}`)).toBe(-1)
      await store.close()
    })
  })

  describe('walks', () => {
    // Redis has no ordered index of string keys: a page of keys() is a SCAN of the database.
    // entries() lists the names once for the whole walk, then reads them a batch at a time.
    test('entries() scans the database once for the whole walk, not once a page', async () => {
      const url = new URL(redisUrl())
      const proxy = await tcpProxy(url.hostname || '127.0.0.1', Number(url.port || 6379), { watch: '\r\nSCAN\r\n' })
      const store = new RedisStoreAdapter(`redis://127.0.0.1:${proxy.port}`, { prefix: newPrefix() })
      try {
        const keys = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(3, '0')}`)
        await store.setMany(keys.map((k, i) => [k, { i }]))
        let before = proxy.watched()
        expect(await store.list()).toEqual(keys)
        const perListing = proxy.watched() - before
        expect(perListing).toBeGreaterThan(0)

        before = proxy.watched()
        const seen = []
        for await (const [key, value] of store.entries({ batch: 10 })) {
          // Removed after the listing, before its batch is read: left out.
          if (key === 'k000') await store.remove('k150')
          expect(value).toEqual({ i: Number(key.slice(1)) })
          seen.push(key)
        }
        expect(seen).toEqual(keys.filter((k) => k !== 'k150'))
        // 30 pages, each of which would be a SCAN of the whole database; other test files
        // may add keys to it meanwhile, hence the margin.
        expect(proxy.watched() - before).toBeLessThan(perListing * 10)

        // after and prefix as with any engine.
        const tail = []
        for await (const [key] of store.entries({ prefix: 'k2', after: 'k289', batch: 4 })) tail.push(key)
        expect(tail).toEqual(keys.slice(290))
      } finally {
        await store.close()
        await proxy.stop()
      }
    })
  })

  describe('leases', () => {
    test('a lease deleted from outside rejects the write with ERR_DATASTORE_LEASE_LOST; nothing is written', async () => {
      const store = makeStore()
      const prefix = prefixOf.get(store)
      await store.set('k', 'before')
      const { interrupted, release } = await updateHeldOpen(store, 'k', 'after')
      expect(await admin.exists(`{${prefix}k}:lease`)).toBe(1)
      await admin.del(`{${prefix}k}:lease`)
      release()
      const error = await expectCode(interrupted, 'ERR_DATASTORE_LEASE_LOST')
      expect(error.key).toBe('k')
      expect(await store.get('k')).toBe('before')
      // The store goes on working.
      expect(await store.update('k', (v) => v + '!')).toEqual(['before', 'before!'])
      await store.close()
    })

    test('a lease that expires while the updater blocks the thread (no renewal) is lost; nothing is written', async () => {
      const store = makeStore(undefined, { leaseMs: 50 })
      await store.set('k', 'before')
      const update = store.update('k', () => {
        const until = Date.now() + 200
        while (Date.now() < until) {
          // busy: the renewal cannot run
        }
        return 'after'
      })
      await expectCode(update, 'ERR_DATASTORE_LEASE_LOST')
      expect(await store.get('k')).toBe('before')
      await store.close()
    })

    test('a lease is renewed while a slow updater awaits', async () => {
      const store = makeStore(undefined, { leaseMs: 1000 })
      const other = makeStore(prefixOf.get(store), { leaseMs: 1000 })
      let running = false
      const slow = store.update('k', async () => {
        running = true
        await sleep(2500) // two and a half lease times
        return 'slow'
      })
      while (!running) await sleep(5)
      // Another store's set waits for the lease all along (it is renewed), then writes.
      const set = other.set('k', 'later')
      expect(await slow).toEqual([undefined, 'slow'])
      await set
      expect(await store.get('k')).toBe('later')
      await store.close()
      await other.close()
    })

    test('set and remove wait for another store’s lease, bounded by lockTimeout', async () => {
      const a = makeStore()
      const b = makeStore(prefixOf.get(a), { lockTimeout: 100 })
      const { interrupted, release } = await updateHeldOpen(a, 'k', 'from a')
      await expectCode(b.set('k', 'from b'), 'ERR_DATASTORE_LOCK_TIMEOUT')
      await expectCode(b.remove('k'), 'ERR_DATASTORE_LOCK_TIMEOUT')
      release()
      await interrupted
      expect(await b.get('k')).toBe('from a')
      await b.remove('k')
      expect(await a.get('k')).toBeUndefined()
      await a.close()
      await b.close()
    })

    test('setMany of 5,000 keys waits for the one another store holds, names it on timeout, and keeps order', async () => {
      // Leases are tried 100 at a time (docs/redis.md).
      const a = makeStore()
      const prefix = prefixOf.get(a)
      const b = makeStore(prefix, { lockTimeout: 300 })
      const c = makeStore(prefix, { lockTimeout: 5000 })
      await bulkWaitsInKeyOrder(a, b, c, async (key) => (await admin.exists(`{${prefix}${key}}:lease`)) === 1)
      await Promise.all([a.close(), b.close(), c.close()])
    })

    test('a process killed while holding a lease delays others by at most the lease time', async () => {
      const store = makeStore()
      const prefix = prefixOf.get(store)
      const spec = { kind: 'redis', url: redisUrl(), prefix, options: { leaseMs: 1000 } }
      let held
      const heldNow = new Promise((resolve) => (held = resolve))
      const { child, exited } = startChild(fixture('redis-hold.js'), [JSON.stringify(spec), 'k'], (m) => {
        if (m.held) held()
      })
      await heldNow
      child.kill('SIGKILL')
      await exited
      const started = Date.now()
      expect(await store.update('k', (v = 0) => v + 1)).toEqual([undefined, 1])
      // The lease's 1 s, plus room for a busy machine.
      expect(Date.now() - started).toBeLessThan(2000)
      await store.close()
    }, 20000)

    test.each(['terminated', 'throw', 'exit'])(
      'a worker thread that ends (%s) while its update holds a lease releases it as it ends',
      async (mode) => {
        // A lease of 60 s: a waiter that got the key within seconds got it by the release.
        const store = makeStore(undefined, { lockTimeout: 5000 })
        const prefix = prefixOf.get(store)
        await store.set('k', 1)
        const spec = { kind: 'redis', url: redisUrl(), prefix, options: { leaseMs: 60000 } }
        const { worker, held, exited } = startWorker(spec, 'k', mode === 'terminated' ? 'hold' : mode)
        await held
        if (mode === 'terminated') {
          expect(await admin.exists(`{${prefix}k}:lease`)).toBe(1)
          await worker.terminate()
        }
        await exited
        // The worker's update ('from-worker') wrote nothing; ours counts from 1.
        expect(await store.update('k', (n) => n + 1)).toEqual([1, 2])
        expect(await admin.exists(`{${prefix}k}:lease`)).toBe(0)
        await store.close()
      },
    )

    test('a worker thread terminated while its updater runs releases the key, though the release waits for a reply as the thread ends', async () => {
      // Terminating the thread interrupts the updater: the update ends and its release starts
      // (its first command, SCRIPT LOAD, waits for a reply). A script keeps the server busy for
      // 300 ms meanwhile, so that the reply comes only after the thread's environment is gone.
      // The release must still be sent, or the key stays held for the lease's 60 s. (Not
      // CLIENT PAUSE: a paused server drops what a client sent before it disconnected.)
      const store = makeStore(undefined, { lockTimeout: 5000 })
      const prefix = prefixOf.get(store)
      await store.set('k', 1)
      const spec = { kind: 'redis', url: redisUrl(), prefix, options: { leaseMs: 60000 } }
      const { worker, held, exited } = startWorker(spec, 'k', 'spin')
      await held
      expect(await admin.exists(`{${prefix}k}:lease`)).toBe(1)
      const busy = admin.eval(
        "local t = redis.call('TIME') local t0 = t[1] * 1e6 + t[2] repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - t0 > 300000",
        0,
      )
      await new Promise((resolve) => setTimeout(resolve, 30)) // the script has started
      await worker.terminate()
      await exited
      await busy
      expect(await store.update('k', (n) => n + 1)).toEqual([1, 2])
      expect(await admin.exists(`{${prefix}k}:lease`)).toBe(0)
      await store.close()
    })
  })

  describe('connections', () => {
    test('a connection lost mid-update writes nothing; operations reject while the server is away, then reconnect', async () => {
      const url = new URL(redisUrl())
      const proxy = await tcpProxy(url.hostname || '127.0.0.1', Number(url.port || 6379))
      const prefix = newPrefix()
      const store = new RedisStoreAdapter(`redis://127.0.0.1:${proxy.port}`, { prefix })
      try {
        await store.set('k', 'before')
        const { interrupted, release } = await updateHeldOpen(store, 'k', 'after')
        await proxy.stop()
        release()
        await expectCode(interrupted, 'ERR_DATASTORE_BACKEND')
        const down = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
        expect(down.message).toContain(`127.0.0.1:${proxy.port}`)
        await proxy.start()
        expect(await store.get('k')).toBe('before')
        // The interrupted update's lease was released on reconnecting: no wait for it.
        const started = Date.now()
        expect(await store.update('k', (v) => v + ' and after')).toEqual(['before', 'before and after'])
        expect(Date.now() - started).toBeLessThan(2000)
      } finally {
        await store.close()
        await proxy.stop()
      }
    })

    test('an ioredis client’s settings are used, and its quit() closes the store', async () => {
      const client = new Redis(redisUrl(), { lazyConnect: true })
      const store = new RedisStoreAdapter(client, { prefix: newPrefix() })
      await store.set('k', 1)
      expect(await store.get('k')).toBe(1)
      await client.quit()
      await expectCode(store.get('k'), 'ERR_DATASTORE_CLOSED')
    })

    const testNodeRedis = nodeRedis ? test : test.skip
    testNodeRedis('a node-redis client’s settings are used, and its close() closes the store', async () => {
      const url = new URL(redisUrl())
      const client = nodeRedis.createClient({
        socket: { host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) },
        database: 1,
      })
      await client.connect()
      const prefix = newPrefix()
      const store = new RedisStoreAdapter(client, { prefix })
      await store.set('k', 'in db 1')
      await client.select(1)
      expect(await client.get(`{${prefix}k}`)).toBe('"in db 1"')
      await client.del(`{${prefix}k}`)
      await client.close()
      await expectCode(store.get('k'), 'ERR_DATASTORE_CLOSED')
    })

    test('a wrong password or database is a backend error naming the server', async () => {
      const store = new RedisStoreAdapter('redis://:wrong@127.0.0.1:6379/0', { prefix: newPrefix() })
      const e = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
      expect(e.message).toContain('127.0.0.1:6379')
      await store.close()
      const db = new RedisStoreAdapter('redis://127.0.0.1:6379/100000', { prefix: newPrefix() })
      await expectCode(db.get('k'), 'ERR_DATASTORE_BACKEND')
      await db.close()
    })
  })

  describe('values and lifetime', () => {
    test('a 64 MiB value round-trips, and an updater receives it whole', async () => {
      const store = makeStore()
      const big = 'x'.repeat(64 * 1024 * 1024 - 2)
      await store.set('big', big)
      expect((await store.get('big')).length).toBe(big.length)
      const [old, next] = await store.update('big', (v) => v.slice(1) + 'y')
      expect(old.length).toBe(big.length)
      expect(next.endsWith('y')).toBe(true)
      expect(await store.getMany(['big'])).toEqual([next])
      await store.remove('big')
      await store.close()
    }, 60000)

    test('an idle store that is never closed does not keep Node from exiting', async () => {
      const script = `
        const { RedisStoreAdapter } = require(${JSON.stringify(require.resolve('..'))})
        const store = new RedisStoreAdapter(${JSON.stringify(redisUrl())}, { prefix: ${JSON.stringify(newPrefix())} })
        store.update('k', (v = 0) => v + 1).then(() => store.get('k')).then((v) => console.log(JSON.stringify({ v })))
      `
      const r = await runNode(['-e', script], { timeout: 15000 })
      expect(r.signal).toBe(null)
      expect(r.messages).toEqual([{ v: 1 }])
    }, 20000)
  })

  describe('arguments', () => {
    test.each([
      [42, undefined],
      ['http://x', undefined],
      [{ options: {}, isCluster: true }, undefined],
      [{ options: { rootNodes: [{ url: 'redis://127.0.0.1:7000' }] } }, undefined],
      ['redis://x', { cluster: 1 }],
      ['redis://x', { prefix: 1 }],
      ['redis://x', { leaseMs: 5 }],
      ['redis://x', { leaseMs: 1.5 }],
      ['redis://x', { unknown: 1 }],
    ])('%p %p throws ERR_DATASTORE_INVALID_ARGUMENT at once', (target, options) => {
      let error
      try {
        new RedisStoreAdapter(target, options)
      } catch (e) {
        error = e
      }
      expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
    })
  })

  describe('close() releases connections', () => {
    const fs = require('fs')

    // The server's clients (CLIENT LIST), each as its fields: { id, addr, ... }.
    async function clients() {
      const text = await admin.client('LIST')
      return text
        .split('\n')
        .filter((line) => line.trim())
        .map((line) =>
          Object.fromEntries(
            line
              .trim()
              .split(' ')
              .map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]),
          ),
        )
    }
    const idsNow = async () => new Set((await clients()).map((c) => c.id))

    // The local ports of this process's TCP sockets (from /proc), so that connections other
    // processes open meanwhile (tests running beside these) are never taken for the store's.
    function ownPorts() {
      const inodes = new Set()
      for (const fd of fs.readdirSync('/proc/self/fd')) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))
          if (m) inodes.add(m[1])
        } catch {
          // closed meanwhile
        }
      }
      const ports = new Set()
      for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
        let text = ''
        try {
          text = fs.readFileSync(table, 'utf8')
        } catch {
          continue
        }
        for (const line of text.split('\n').slice(1)) {
          const f = line.trim().split(/\s+/)
          if (f.length > 9 && inodes.has(f[9])) ports.add(parseInt(f[1].split(':').pop(), 16))
        }
      }
      return ports
    }

    // The ids of the connections this process opened to the server since `before` (ids).
    async function openedSince(before) {
      const ports = ownPorts()
      return (await clients())
        .filter((c) => !before.has(c.id) && ports.has(Number(c.addr.split(':').pop())))
        .map((c) => c.id)
    }

    // Which of `ids` the server still lists, after waiting up to `ms` for them to go.
    async function stillThere(ids, ms = 5000) {
      const until = Date.now() + ms
      for (;;) {
        const now = await idsNow()
        const left = ids.filter((id) => now.has(id))
        if (left.length === 0 || Date.now() > until) return left
        await sleep(20)
      }
    }

    // Sets, reads, bulk operations, and concurrent updates of one key and of several.
    async function work(store) {
      await store.set('a', { n: 1 })
      expect(await store.get('a')).toEqual({ n: 1 })
      await store.setMany([
        ['b', 1],
        ['c', 2],
      ])
      expect(await store.getMany(['a', 'b', 'missing'])).toEqual([{ n: 1 }, 1, undefined])
      const updates = []
      for (let i = 0; i < 50; i++) {
        updates.push(store.update('counter', async (n = 0) => (await sleep(1), n + 1)))
        updates.push(store.update(`k${i % 5}`, (n = 0) => n + 1))
      }
      await Promise.all(updates)
      expect(await store.get('counter')).toBe(50)
      expect(await store.getMany(['k0', 'k4'])).toEqual([10, 10])
      expect(await store.list('k')).toEqual(['k0', 'k1', 'k2', 'k3', 'k4'])
      await store.removeMany(['b', 'c'])
    }

    const linuxOnly = fs.existsSync('/proc/self/fd') ? test : test.skip

    linuxOnly('after operations, concurrent updates included, close() ends the store’s connections', async () => {
      const before = await idsNow()
      const store = makeStore()
      await work(store)
      const mine = await openedSince(before)
      expect(mine.length).toBeGreaterThan(0)
      await store.close()
      expect(await stillThere(mine)).toEqual([])
      // Later calls reject without connecting again.
      await expectCode(store.get('a'), 'ERR_DATASTORE_CLOSED')
      await expectCode(
        store.update('counter', (n) => n + 1),
        'ERR_DATASTORE_CLOSED',
      )
      expect(await openedSince(before)).toEqual([])
    })

    linuxOnly('close() called while updates are pending lets them finish, then ends the connections', async () => {
      const before = await idsNow()
      const store = makeStore()
      await store.set('warm', 1)
      const updates = []
      for (let i = 0; i < 20; i++) updates.push(store.update(`k${i % 2}`, async (n = 0) => (await sleep(5), n + 1)))
      await sleep(1)
      const mine = await openedSince(before)
      expect(mine.length).toBeGreaterThan(0)
      await store.close()
      const results = await Promise.all(updates)
      expect(results.slice(-2)).toEqual([
        [9, 10],
        [9, 10],
      ])
      expect(await stillThere(mine)).toEqual([])
      const reader = makeStore(prefixOf.get(store))
      expect(await reader.getMany(['k0', 'k1'])).toEqual([10, 10])
      await reader.close()
    })

    linuxOnly('a store made over an ioredis client: the client’s quit() ends the store’s connections too', async () => {
      const client = new Redis(redisUrl())
      const clientId = String(await client.client('ID'))
      const before = await idsNow()
      expect(before.has(clientId)).toBe(true)
      const store = new RedisStoreAdapter(client, { prefix: newPrefix() })
      await work(store)
      const mine = await openedSince(before)
      expect(mine.length).toBeGreaterThan(0)
      expect(mine).not.toContain(clientId) // the store's own, not the client's
      expect(await client.quit()).toBe('OK')
      expect(await stillThere([...mine, clientId])).toEqual([])
      await expectCode(store.get('a'), 'ERR_DATASTORE_CLOSED')
      expect(await openedSince(before)).toEqual([])
    })
  })
})

describeTls('RedisStoreAdapter over TLS', () => {
  let server
  beforeAll(async () => {
    server = await redisTls.start()
  }, 30000)
  afterAll(async () => {
    if (server) await server.stop()
  })

  test('rediss:// with the CA of the app’s client: the certificate is checked, and it works', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const client = { options: { host, port: server.port, tls: { ca: Buffer.from(server.ca) } }, quit: async () => {} }
      const store = new RedisStoreAdapter(client, { prefix: 'tls:' })
      await store.set('k', { secure: true })
      expect(await store.get('k')).toEqual({ secure: true })
      expect(await store.update('k', (v) => ({ ...v, n: 1 }))).toEqual([{ secure: true }, { secure: true, n: 1 }])
      await store.remove('k')
      await store.close()
    }
  })

  test('a certificate no trusted CA signed fails the operation with a backend error', async () => {
    const store = new RedisStoreAdapter(`rediss://localhost:${server.port}`, { prefix: 'tls:' })
    const e = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
    expect(e.message).toMatch(/TLS|certificate/)
    await store.close()
  })

  // Over TLS the release is sealed by the connection's TLS session and written straight to
  // the socket as the thread's environment ends, as over plain TCP: 'hold' is terminated while
  // its update holds the lease, 'spin' while its updater runs (the update ends and starts its
  // release just before the teardown).
  test.each(['hold', 'spin'])(
    'a worker thread terminated (%s) while its update holds a lease releases it as it ends',
    async (mode) => {
      const prefix = `tls-${mode}-${process.pid}:`
      const client = { host: 'localhost', port: server.port, tls: { ca: server.ca } }
      const target = { options: { ...client, tls: { ca: Buffer.from(server.ca) } }, quit: async () => {} }
      const store = new RedisStoreAdapter(target, { prefix, lockTimeout: 5000 })
      await store.set('k', 1)
      const spec = { kind: 'redis', client, prefix, options: { leaseMs: 60000 } }
      const { worker, held, exited } = startWorker(spec, 'k', mode)
      await held
      await worker.terminate()
      await exited
      // The worker's update ('from-worker') wrote nothing; ours counts from 1, without waiting
      // for the worker's 60 s lease.
      expect(await store.update('k', (n) => n + 1)).toEqual([1, 2])
      await store.remove('k')
      await store.close()
    },
  )

  test('TLS settings that would weaken the check are refused at once', () => {
    for (const t of [{ rejectUnauthorized: false }, { cert: 'x', key: 'y' }, { ca: 'not a certificate' }, { ca: 42 }]) {
      let error
      try {
        new RedisStoreAdapter({ options: { host: 'localhost', tls: t } })
      } catch (e) {
        error = e
      }
      expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
    }
  })
})
