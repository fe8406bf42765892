'use strict'
// The workloads of the README's Benchmarks section. Each takes an open store (and options) and returns
// { value, unit, ok, note? }: `ok` is the correctness check (final counts, errors seen).
const { spawn } = require('child_process')
const path = require('path')

const value = (n) => ({ n, s: 'x'.repeat(50) })
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms

// Operations per second of up to `count` sequential awaited calls of `op(i)`, stopping after
// `MAX_MS` so that slow peers finish in reasonable time; `done` says how many ran.
const MAX_MS = Number(process.env.BENCH_MAX_MS || 3000)
async function rate(count, op) {
  const start = now()
  let done = 0
  while (done < count) {
    await op(done++)
    if ((done & 63) === 0 && now() - start > MAX_MS) break
  }
  return { ops: done / ((now() - start) / 1000), done }
}

const workloads = {
  async sequentialSet(store, { count }) {
    return { value: (await rate(count, (i) => store.set(`k${i % 1000}`, value(i)))).ops, unit: 'ops/s', ok: true }
  },

  async sequentialGet(store, { count }) {
    for (let i = 0; i < 1000; i++) await store.set(`k${i}`, value(i))
    let misses = 0
    const { ops } = await rate(count, async (i) => {
      if ((await store.get(`k${i % 1000}`)) === undefined) misses++
    })
    return { value: ops, unit: 'ops/s', ok: misses === 0 }
  },

  async sequentialUpdate(store, { count }) {
    const { ops, done } = await rate(count, (i) => store.update(`k${i % 100}`, (v) => value(v ? v.n + 1 : 1)))
    const sum = (await Promise.all(Array.from({ length: 100 }, (_, i) => store.get(`k${i}`)))).reduce(
      (a, v) => a + (v ? v.n : 0),
      0,
    )
    return { value: ops, unit: 'ops/s', ok: sum === done, note: `sum ${sum} of ${done}` }
  },

  // 100 concurrent updates on 100 keys whose async updaters wait 20 ms: total ms.
  async concurrentSlowUpdates(store) {
    const start = now()
    let errors = 0
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        store
          .update(`slow${i}`, async (v = 0) => {
            await sleep(20)
            return v + 1
          })
          .catch(() => errors++),
      ),
    )
    const ms = now() - start
    const values = await Promise.all(Array.from({ length: 100 }, (_, i) => store.get(`slow${i}`)))
    return { value: ms, unit: 'ms', ok: errors === 0 && values.every((v) => v === 1) }
  },

  // 200 concurrent +1 updates of one new key: total ms; the final value must be 200.
  async concurrentOneKey(store) {
    const start = now()
    let errors = 0
    await Promise.all(
      Array.from({ length: 200 }, () =>
        store
          .update('one', async (v = 0) => {
            await null
            return v + 1
          })
          .catch(() => errors++),
      ),
    )
    const ms = now() - start
    const final = await store.get('one')
    return { value: ms, unit: 'ms', ok: final === 200 && errors === 0, note: `final ${final}, ${errors} errors` }
  },

  // N updates queued at once on one new key: total ms.
  async queuedOnOneKey(store, { count }) {
    const start = now()
    await Promise.all(Array.from({ length: count }, () => store.update('queue', async (v = 0) => v + 1)))
    const ms = now() - start
    const final = await store.get('queue')
    return { value: ms, unit: 'ms', ok: final === count, note: `final ${final}` }
  },

  // Mean latency of a set when the store holds `keys` keys (prefilled by the runner).
  async setLatency(store, { count }) {
    const { ops } = await rate(count, (i) => store.set(`fill${(i * 7919) % 100}`, value(i)))
    return { value: 1000 / ops, unit: 'ms/op', ok: true }
  },

  // set + get of a 1 MB value: ms per round trip.
  async bigValue(store, { count }) {
    const big = { blob: 'x'.repeat(1024 * 1024) }
    let bad = 0
    const start = now()
    for (let i = 0; i < count; i++) {
      await store.set('big', big)
      const got = await store.get('big')
      if (!got || got.blob.length !== big.blob.length) bad++
    }
    return { value: (now() - start) / count, unit: 'ms/op', ok: bad === 0 }
  },

  // list() of a store holding 10,000 keys (prefilled by the runner): ms per call.
  async list10k(store, { count }) {
    let bad = 0
    const start = now()
    for (let i = 0; i < count; i++) {
      const keys = await store.list()
      if (keys.length !== 10000) bad++
    }
    return { value: (now() - start) / count, unit: 'ms/op', ok: bad === 0 }
  },

  // getMany of 100 keys of a store holding 10,000 (prefilled by the runner): ms per call. A
  // store without getMany gets the 100 keys with concurrent gets.
  async getMany100(store, { count }) {
    const batches = Array.from({ length: count }, (_, i) =>
      Array.from({ length: 100 }, (_, j) => `fill${(i * 100 + j * 97) % 10000}`),
    )
    let bad = 0
    const start = now()
    for (const keys of batches) {
      const values = store.getMany ? await store.getMany(keys) : await Promise.all(keys.map((k) => store.get(k)))
      if (values.length !== 100 || values.some((v) => v === undefined)) bad++
    }
    return { value: (now() - start) / count, unit: 'ms/op', ok: bad === 0, note: `${bad} bad batches` }
  },

  // A full entries() walk of a store holding 100,000 keys (prefilled by the runner): ms per walk.
  async scan100k(store, { count }) {
    if (!store.entries) return { value: NaN, unit: 'ms', ok: true, note: 'no streaming read' }
    let bad = 0
    const start = now()
    for (let i = 0; i < count; i++) {
      let n = 0
      for await (const [, v] of store.entries()) if (v && v.s) n++
      if (n !== 100000) bad++
    }
    return { value: (now() - start) / count, unit: 'ms', ok: bad === 0, note: `${bad} short walks` }
  },

  // The largest event-loop stall (ms) while a store holding 200,000 keys (prefilled, opened
  // cold by the runner) answers its first get, and — where the subject can compact and a
  // second handle is opened — its first get after the other handle compacted the file.
  async openStall(store, { subject, ctx }) {
    const stalls = []
    const watch = async (op) => {
      let last = now()
      let worst = 0
      const timer = setInterval(() => {
        const t = now()
        worst = Math.max(worst, t - last - 5)
        last = t
      }, 5)
      const value = await op()
      await sleep(10)
      clearInterval(timer)
      stalls.push(Math.max(0, worst))
      return value
    }
    const first = await watch(() => store.get('fill123456'))
    let ok = first !== undefined && first.n === 123456
    const { subjects } = require('./subjects')
    if (subjects[subject].reopen && typeof store.compact === 'function') {
      const other = await subjects[subject].reopen(ctx)
      await other.set('fill0', value(-1))
      await other.compact()
      const again = await watch(() => store.get('fill0'))
      ok = ok && again !== undefined && again.n === -1
      await other.close()
    }
    return {
      value: Math.max(...stalls),
      unit: 'ms',
      ok,
      note: `stalls ${stalls.map((x) => x.toFixed(1)).join(', ')} ms`,
    }
  },

  // 4 processes × 100 concurrent +1 updates of one counter (see child.js): total ms.
  async multiProcess(store, { subject, ctx }) {
    const start = now()
    const codes = await Promise.all(
      Array.from({ length: 4 }, () => {
        const child = spawn(process.execPath, [path.join(__dirname, 'child.js'), subject, ctx.dir, ctx.name, '100'], {
          stdio: ['ignore', 'ignore', 'pipe'],
        })
        let err = ''
        child.stderr.on('data', (d) => (err += d))
        return new Promise((resolve) => child.on('exit', (code) => resolve({ code, err })))
      }),
    )
    const ms = now() - start
    const final = await store.get('counter')
    const failed = codes.filter((c) => c.code !== 0).length
    return {
      value: ms,
      unit: 'ms',
      ok: final === 400 && failed === 0,
      note: `final ${final} of 400${failed ? `, ${failed} processes failed` : ''}`,
    }
  },
}

module.exports = { workloads, value, now }
