// Load (long version): 1,000,000 mixed calls over 10,000 keys from 4 processes per persistent
// backend, then an exact consistency check, the lock tables empty, RSS reported per worker.
'use strict'
const { makeSpec } = require('../lib/stores')
const { runLoad } = require('./lib/load')
const { persistentKinds, names, figures } = require('./lib/suite')

const OPS = Number(process.env.STRESS_LOAD_OPS || 1000000)
const report = figures(`load (${OPS} calls, 10,000 keys, 4 processes x 16 loops)`)

describe.each(persistentKinds())('%s', (kind) => {
  test(`${OPS} mixed calls end in exactly the acknowledged state`, async () => {
    const { spec, cleanup } = makeSpec(kind, 'load')
    try {
      const f = await runLoad(spec, { processes: 4, ops: OPS, keys: 10000, concurrency: 16, seed: 3 })
      expect(f.errors).toEqual([])
      expect(f.wrong).toEqual([])
      expect(f.held).toEqual([0, 0, 0, 0])
      expect(f.keysVerified).toBeGreaterThan(Math.min(9000, OPS / 4))
      // A loose bound, not a measurement: growth after warm-up stays far below the data size
      // that an unbounded leak of per-call state would reach.
      for (const r of f.rss) expect(r.end - r.warm).toBeLessThan(256)
      report(
        `${names[kind]}: ${f.ops} calls (${JSON.stringify(f.tally)}) in ${f.seconds.toFixed(1)} s ` +
          `(${f.opsPerSecond}/s), ${f.keysVerified} keys verified, lock tables ${f.held.join('/')}, ` +
          `RSS MiB start/warm/end ${f.rss.map((r) => `${r.start}/${r.warm}/${r.end}`).join(', ')}`,
      )
    } finally {
      await cleanup()
    }
  })
})
