'use strict'
// Drop-in use inside a Reshuffle app (reshuffle 1.0.9).
const { Reshuffle, PersistentStore: ReshufflePersistentStore } = require('reshuffle')
const { MemoryStoreAdapter } = require('..')

describe('inside a Reshuffle app', () => {
  test('app.setPersistentStore(new MemoryStoreAdapter()) and app.getPersistentStore()', async () => {
    const app = new Reshuffle()
    const adapter = new MemoryStoreAdapter()
    app.setPersistentStore(adapter)
    const store = app.getPersistentStore()
    expect(store).toBe(adapter)
    await store.set('position', { offset: 10 })
    expect(await store.get('position')).toEqual({ offset: 10 })
    expect(await store.update('position', (p) => ({ offset: p.offset + 5 }))).toEqual([{ offset: 10 }, { offset: 15 }])
    await store.del('position')
    expect(await store.get('position')).toBeUndefined()
    await adapter.close()
  })

  test("reshuffle's own PersistentStore over our adapter keeps two prefixes apart", async () => {
    const adapter = new MemoryStoreAdapter()
    const a = new ReshufflePersistentStore(adapter, 'connector-a/')
    const b = new ReshufflePersistentStore(adapter, 'connector-b/')
    await a.set('cursor', 1)
    await b.set('cursor', 2)
    await a.update('cursor', (v) => v + 10)
    expect(await a.get('cursor')).toBe(11)
    expect(await b.get('cursor')).toBe(2)
    expect(await a.list()).toEqual(['connector-a/cursor'])
    expect(await b.list()).toEqual(['connector-b/cursor'])
    await a.del('cursor')
    expect(await adapter.list()).toEqual(['connector-b/cursor'])
    await adapter.close()
  })
})
