'use strict'
const { MemoryStoreAdapter, PersistentStore } = require('..')
const { runConformance, expectCode } = require('./conformance')

// A namespace over a fresh adapter keeps every promise of the contract.
// (An empty prefix: with one, list() returns full keys, as reshuffle's does.)
runConformance('PersistentStore over MemoryStoreAdapter', async () => new PersistentStore(new MemoryStoreAdapter(), ''))

describe('PersistentStore', () => {
  let adapter
  beforeEach(() => {
    adapter = new MemoryStoreAdapter()
  })
  afterEach(() => adapter.close())

  test('namespaces stay apart; list returns only its own (full) keys', async () => {
    const a = new PersistentStore(adapter, 'a:')
    const b = new PersistentStore(adapter, 'b:')
    await a.set('k', 1)
    await b.set('k', 2)
    expect(await a.get('k')).toBe(1)
    expect(await b.get('k')).toBe(2)
    expect(await adapter.get('a:k')).toBe(1)
    expect(await a.list()).toEqual(['a:k'])
    expect(await b.list()).toEqual(['b:k'])
    expect(await adapter.list()).toEqual(['a:k', 'b:k'])
    await a.update('n', (v = 0) => v + 1)
    expect(await adapter.get('a:n')).toBe(1)
    await a.del('k')
    await b.remove('k')
    expect(await adapter.list()).toEqual(['a:n'])
  })

  test("wrapping a PersistentStore uses its adapter with the new prefix, as reshuffle's does", async () => {
    const outer = new PersistentStore(adapter, 'x:')
    const inner = new PersistentStore(outer, 'y:')
    expect(inner.adapter).toBe(adapter)
    expect(inner.prefix).toBe('y:')
    await inner.set('k', 1)
    expect(await adapter.list()).toEqual(['y:k'])
  })

  test('the default prefix is empty', async () => {
    const all = new PersistentStore(adapter)
    expect(all.prefix).toBe('')
    await all.set('k', 1)
    expect(await adapter.get('k')).toBe(1)
  })

  test('bad arguments are coded errors', async () => {
    expect(() => new PersistentStore(adapter, 5)).toThrow(
      expect.objectContaining({ code: 'ERR_DATASTORE_INVALID_ARGUMENT' }),
    )
    expect(() => new PersistentStore({}, 'p')).toThrow(
      expect.objectContaining({ code: 'ERR_DATASTORE_INVALID_ARGUMENT' }),
    )
    const ns = new PersistentStore(adapter, 'p:')
    await expectCode(ns.get(''), 'ERR_DATASTORE_INVALID_KEY')
    await expectCode(ns.set(7, 1), 'ERR_DATASTORE_INVALID_KEY')
  })

  test('works over any adapter that has del but not remove (like reshuffle 1.0.9)', async () => {
    const { MemoryStoreAdapter: ReshuffleMemory } = require('reshuffle')
    const theirs = new ReshuffleMemory()
    const ns = new PersistentStore(theirs, 'p:')
    await ns.set('b', 1)
    await ns.set('a', 2)
    await theirs.set('other', 3)
    expect(await ns.list()).toEqual(['p:a', 'p:b'])
    await ns.remove('a')
    expect(await ns.list()).toEqual(['p:b'])
    // The bulk and paged methods are made of theirs, and answer with full keys as list() does.
    await ns.setMany([
      ['c', 3],
      ['d', { n: 4 }],
    ])
    expect(await ns.getMany(['d', 'x', 'b'])).toEqual([{ n: 4 }, undefined, 1])
    expect(await ns.keys({ after: 'p:b', limit: 1 })).toEqual(['p:c'])
    const seen = []
    for await (const entry of ns.entries({ batch: 2 })) seen.push(entry)
    expect(seen).toEqual([
      ['p:b', 1],
      ['p:c', 3],
      ['p:d', { n: 4 }],
    ])
    await ns.removeMany(['b', 'c'])
    expect(await ns.list()).toEqual(['p:d'])
    // A ttl their adapter would ignore is refused, and nothing is written.
    await expectCode(ns.set('t', 1, { ttl: 10 }), 'ERR_DATASTORE_INVALID_ARGUMENT')
    await expectCode(ns.setMany([['t', 1]], { ttl: 10 }), 'ERR_DATASTORE_INVALID_ARGUMENT')
    await expectCode(
      ns.update('t', () => 1, { ttl: 10 }),
      'ERR_DATASTORE_INVALID_ARGUMENT',
    )
    expect(await ns.get('t')).toBeUndefined()
    await expect(ns.close()).resolves.toBeUndefined()
  })

  test("keys() checks its page bounds over reshuffle's adapter as over ours", async () => {
    const { MemoryStoreAdapter: ReshuffleMemory } = require('reshuffle')
    for (const adapter of [new ReshuffleMemory(), new MemoryStoreAdapter()]) {
      const ns = new PersistentStore(adapter, 'p:')
      await ns.setMany([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ])
      for (const bad of [{ limit: 0 }, { limit: -1 }, { limit: 1.5 }, { limit: '2' }, { after: 7 }]) {
        const e = await expectCode(ns.keys(bad), 'ERR_DATASTORE_INVALID_ARGUMENT')
        expect(e.message).toMatch(bad.after === undefined ? /limit must be a whole number/ : /after must be a string/)
      }
      expect(await ns.keys({ limit: Infinity })).toEqual(['p:a', 'p:b', 'p:c'])
      expect(await ns.keys({ limit: null, after: null })).toEqual(['p:a', 'p:b', 'p:c'])
      expect(await ns.keys({ after: 'p:a', limit: 1 })).toEqual(['p:b'])
      await ns.close()
    }
  })
})
