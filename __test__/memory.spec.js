'use strict'
const { MemoryStoreAdapter } = require('..')
const { runConformance } = require('./conformance')

runConformance('MemoryStoreAdapter', async () => new MemoryStoreAdapter())

describe('MemoryStoreAdapter', () => {
  test('100,000 updates queued at once on one key all apply, in order', async () => {
    const store = new MemoryStoreAdapter()
    const all = []
    for (let i = 0; i < 100000; i++) all.push(store.update('q', async (v = 0) => v + 1))
    const results = await Promise.all(all)
    expect(await store.get('q')).toBe(100000)
    expect(results[99999]).toEqual([99999, 100000])
    await store.close()
  })

  test('a 64 MiB value works', async () => {
    const store = new MemoryStoreAdapter()
    const blob = 'x'.repeat(64 * 1024 * 1024 - 16)
    await store.set('big', blob)
    expect((await store.get('big')).length).toBe(blob.length)
    await store.close()
  })

  test('stores are independent', async () => {
    const a = new MemoryStoreAdapter()
    const b = new MemoryStoreAdapter()
    await a.set('k', 'a')
    expect(await b.get('k')).toBeUndefined()
    await Promise.all([a.close(), b.close()])
  })
})
