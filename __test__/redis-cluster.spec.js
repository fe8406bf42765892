// The Redis engine on a Redis Cluster of three masters that this suite starts
// (fixtures/redis-cluster.js): the conformance suite with keys spread over the nodes, slots
// that move while the store is in use (MOVED after a resharding, ASK during one), and an
// ioredis Cluster client as the target. Without redis-server and redis-cli these tests are
// skipped loudly, or fail under RESHUFFLE_DATASTORE_REQUIRE_REDIS=1 (as in CI).
'use strict'
const { RedisStoreAdapter } = require('..')
const { runConformance, expectCode } = require('./conformance')
const cluster = require('./fixtures/redis-cluster')
const { requiredOrSkipped } = require('./lib/servers')
const { redisCaps } = require('./lib/redis-env')

let Redis = null
try {
  Redis = require('ioredis')
} catch {
  Redis = null
}

const tools = cluster.status()
const status = tools.ok && !Redis ? { ok: false, why: "the 'ioredis' package is not installed" } : tools
requiredOrSkipped('Redis Cluster tests', status, 'RESHUFFLE_DATASTORE_REQUIRE_REDIS')

// The hash slot of a Redis key, as the cluster computes it (CRC16/XMODEM of the hash tag).
function slotOf(name) {
  const open = name.indexOf('{')
  if (open >= 0) {
    const close = name.indexOf('}', open + 1)
    if (close > open + 1) name = name.slice(open + 1, close)
  }
  let crc = 0
  for (const byte of Buffer.from(name)) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}

;(status.ok ? describe : describe.skip)('RedisStoreAdapter on a Redis Cluster', () => {
  let nodes
  let count = 0
  const prefixOf = new WeakMap()
  const url = () => `redis://127.0.0.1:${nodes.ports[0]}`
  const open = (prefix = `c${count++}:`, options = {}) => {
    const store = new RedisStoreAdapter(url(), { prefix, cluster: true, ...options })
    prefixOf.set(store, prefix)
    return store
  }
  beforeAll(async () => {
    nodes = await cluster.start()
  }, 60000)
  afterAll(async () => {
    if (nodes) await nodes.stop()
  })

  test('the hash slots computed here are the cluster’s', () => {
    for (const name of ['foo', '{c1:k}', '{c1:k}:lease', 'a{b}c']) {
      expect(slotOf(name)).toBe(Number(cluster.cli(nodes.ports[0], 'CLUSTER', 'KEYSLOT', name)))
    }
  })

  runConformance(
    'RedisStoreAdapter (Cluster)',
    async () => open(),
    redisCaps({ url, open, prefixOf, options: { cluster: true } }),
  )

  test('keys spread over every node; list, getMany and setMany span them', async () => {
    const store = open()
    const prefix = prefixOf.get(store)
    const keys = Array.from({ length: 60 }, (_, i) => `k${String(i).padStart(2, '0')}`)
    await store.setMany(keys.map((k, i) => [k, i]))
    const ports = new Set(keys.map((k) => cluster.nodeOf(nodes.ports, slotOf(`{${prefix}${k}}`))))
    expect(ports.size).toBe(3)
    expect(await store.list()).toEqual(keys)
    expect(await store.getMany(keys)).toEqual(keys.map((_, i) => i))
    await store.removeMany(keys.slice(0, 30))
    expect(await store.keys()).toEqual(keys.slice(30))
    await store.close()
  })

  test('a slot that moves while the store is in use: ASK during the move, MOVED after it', async () => {
    const store = open()
    const prefix = prefixOf.get(store)
    await store.set('moving', 1)
    await store.set('staying', 1) // the store has learnt the slots
    const slot = slotOf(`{${prefix}moving}`)
    const from = cluster.nodeOf(nodes.ports, slot)
    const to = nodes.ports.find((p) => p !== from)
    const move = cluster.migrateSlot(nodes.ports, slot, from, to, [`{${prefix}moving}`])
    let update
    try {
      // Mid-move: the key is on the importing node; its old node answers ASK.
      expect(await store.get('moving')).toBe(1)
      // An update touches the key and its lease, which is not there yet: TRYAGAIN until the
      // move ends; the update waits for it.
      update = store.update('moving', (n) => n + 1)
      await new Promise((resolve) => setTimeout(resolve, 100))
    } finally {
      move.finish()
    }
    expect(await update).toEqual([1, 2])
    // Moved: the old node answers MOVED, which the store follows and remembers.
    expect(await store.get('moving')).toBe(2)
    expect(await store.update('moving', (n) => n + 1)).toEqual([2, 3])
    await store.set('moving', 10)
    expect(await store.list()).toEqual(['moving', 'staying'])
    expect(cluster.cli(to, 'GET', `{${prefix}moving}`)).toBe('10')
    await store.close()
    // A new store learns the new layout from the cluster.
    const again = open(prefix)
    expect(await again.getMany(['moving', 'staying'])).toEqual([10, 1])
    await again.close()
  })

  test('an ioredis Cluster client is a target: its nodes and settings are used, and quit() closes the store', async () => {
    const client = new Redis.Cluster([{ host: '127.0.0.1', port: nodes.ports[1] }])
    const prefix = `io${count++}:`
    const store = new RedisStoreAdapter(client, { prefix })
    await store.set('a', { x: 1 })
    expect(await client.get(`{${prefix}a}`)).toBe('{"x":1}')
    expect(await store.get('a')).toEqual({ x: 1 })
    await client.quit()
    await expectCode(store.get('a'), 'ERR_DATASTORE_CLOSED')
  })

  test('options beside an ioredis Cluster client that cannot be read are a coded error', async () => {
    const client = new Redis.Cluster([{ host: '127.0.0.1', port: nodes.ports[1] }], { lazyConnect: true })
    const throwing = {
      get prefix() {
        throw new Error('no prefix today')
      },
    }
    let thrown
    try {
      new RedisStoreAdapter(client, throwing)
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(Error)
    expect(thrown.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
    expect(thrown.message).toMatch(/reading the options of RedisStoreAdapter.* threw: no prefix today/)
    client.disconnect()
  })

  test('what a cluster cannot hold is refused with a clear error, and changes nothing', async () => {
    expect(() => new RedisStoreAdapter(`${url()}/2`, { cluster: true })).toThrow(/database 0/)
    expect(() => new RedisStoreAdapter(url(), { cluster: true, prefix: '}p' })).toThrow(/prefix/)
    expect(() => new RedisStoreAdapter(url(), { cluster: 'yes' })).toThrow(/cluster must be true or false/)
    // With no prefix, a key starting with '}' would hash apart from its lease.
    const bare = new RedisStoreAdapter(url(), { cluster: true })
    const e = await expectCode(bare.set('}x', 1), 'ERR_DATASTORE_INVALID_KEY')
    expect(e.message).toMatch(/Redis Cluster/)
    await expectCode(
      bare.update('}x', () => 1),
      'ERR_DATASTORE_INVALID_KEY',
    )
    await expectCode(bare.get('}x'), 'ERR_DATASTORE_INVALID_KEY')
    await bare.close()
    // Under a prefix it is a key like any other.
    const store = open()
    await store.set('}x', 1)
    expect(await store.update('}x', (n) => n + 1)).toEqual([1, 2])
    await store.close()
  })
})
