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

  test('large values read many times do not pile up outside the JS heap', async () => {
    // A large ASCII value crosses as an external string over a buffer of ours, which V8 must
    // count to collect it in time: uncounted, 1,500 gets of 1 MB held 1.5 GB between
    // collections.
    const store = new MemoryStoreAdapter()
    const blob = 'x'.repeat(1024 * 1024)
    await store.set('big', blob)
    const rssBefore = process.memoryUsage().rss
    let peak = 0
    for (let i = 0; i < 1500; i++) {
      const got = await store.get('big')
      if (got.length !== blob.length || got[i] !== 'x') throw new Error(`get ${i} read ${got.length} characters`)
      if (i % 100 === 0) peak = Math.max(peak, process.memoryUsage().rss - rssBefore)
    }
    expect(peak).toBeLessThan(512 * 1024 * 1024)
    await store.close()
  })

  test('large values read between collections each show their own text', async () => {
    // The buffer of a collected external string is filled again by the next large value:
    // a string still alive must keep its text, and a reused buffer must show only the new
    // text, whatever its size was before.
    require('v8').setFlagsFromString('--expose-gc')
    const gc = require('vm').runInNewContext('gc')
    const store = new MemoryStoreAdapter()
    const sizes = [1 << 20, (3 << 20) / 2, 600 * 1024, 1 << 20, 200 * 1024]
    const expected = (i) => String.fromCharCode(97 + (i % 26)).repeat(sizes[i % sizes.length])
    const kept = []
    for (let i = 0; i < 60; i++) {
      await store.set(`k${i % 7}`, expected(i))
      const got = await store.get(`k${i % 7}`)
      if (got !== expected(i)) throw new Error(`read ${i}: ${got.length} characters, first ${got[0]}`)
      if (i % 5 === 0) kept.push([i, got])
      if (i % 3 === 0) gc()
    }
    gc()
    for (const [i, got] of kept) expect(got === expected(i)).toBe(true)
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

describe('MemoryStoreAdapter: options', () => {
  const thrownBy = (f) => {
    try {
      f()
    } catch (e) {
      return e
    }
    return undefined
  }

  test.each([['colour'], ['lockTimout'], ['durability'], ['prefix']])(
    'an unknown option %j throws ERR_DATASTORE_INVALID_ARGUMENT naming it',
    (name) => {
      for (const options of [{ [name]: 1 }, { lockTimeout: 100, [name]: 'x' }]) {
        const error = thrownBy(() => new MemoryStoreAdapter(options))
        expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
        expect(error.message).toContain(`"${name}"`)
      }
    },
  )

  test('the known option is accepted', async () => {
    const store = new MemoryStoreAdapter({ lockTimeout: 100 })
    await store.set('k', 1)
    expect(await store.get('k')).toBe(1)
    await store.close()
  })
})
