'use strict'
// Workloads of SPEC §5, each a function (store) => figures. Small values: { n, s: 50 chars }.

const value = (n) => ({ n, s: 'x'.repeat(50) })
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms

// Operations per second of `count` sequential awaited calls of `op(i)`.
async function rate(count, op) {
  const start = now()
  for (let i = 0; i < count; i++) await op(i)
  return count / ((now() - start) / 1000)
}

const workloads = {
  async sequentialSet(store, { count }) {
    return rate(count, (i) => store.set(`k${i % 1000}`, value(i)))
  },
  async sequentialGet(store, { count }) {
    for (let i = 0; i < 1000; i++) await store.set(`k${i}`, value(i))
    return rate(count, (i) => store.get(`k${i % 1000}`))
  },
  async sequentialUpdate(store, { count }) {
    return rate(count, (i) => store.update(`k${i % 1000}`, (v) => value(v ? v.n + 1 : 0)))
  },
  // 100 concurrent updates on 100 keys whose async updaters wait 20 ms: total ms.
  async concurrentSlowUpdates(store) {
    const start = now()
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        store.update(`slow${i}`, async (v = 0) => {
          await sleep(20)
          return v + 1
        }),
      ),
    )
    return now() - start
  },
  // N updates queued at once on one new key: total ms, and the final count as a check.
  async queuedOnOneKey(store, { count }) {
    const key = `queue${Math.random()}`
    const start = now()
    await Promise.all(Array.from({ length: count }, () => store.update(key, async (v = 0) => v + 1)))
    const ms = now() - start
    const final = await store.get(key)
    return { ms, ok: final === count, final }
  },
}

module.exports = { workloads, value, now }
