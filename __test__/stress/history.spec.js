// Linearizability (long version): rounds of random concurrent get / set / update / remove on a
// few fresh keys, from async callers (memory) or from 3 processes of 2 callers each (file,
// SQLite, PostgreSQL); every round's history per key is checked against a sequential register.
'use strict'
const { makeSpec } = require('../lib/stores')
const { runHistories } = require('./lib/history-run')
const { nonAtomicViolations } = require('./lib/broken')
const { persistentKinds, names, figures } = require('./lib/suite')

const ROUNDS = Number(process.env.STRESS_HISTORY_ROUNDS || 2000)
const report = figures(`linearizability (${ROUNDS} rounds per backend)`)

test('the checker catches a non-atomic update', async () => {
  const violations = await nonAtomicViolations(50)
  expect(violations).toBeGreaterThan(0)
  report(`non-atomic update (control): ${violations} violating histories found in 50 rounds`)
})

describe.each(['memory', ...persistentKinds()])('%s', (kind) => {
  test('every history is linearizable', async () => {
    const { spec, cleanup } = makeSpec(kind, 'hist')
    const multi = kind !== 'memory'
    try {
      const started = Date.now()
      const f = await runHistories(spec, {
        processes: multi ? 3 : 0,
        callers: multi ? 2 : 6,
        ops: 4,
        keys: 3,
        rounds: ROUNDS,
        seed: 7,
      })
      expect(f.violations).toEqual([])
      expect(f.histories).toBe(ROUNDS * 3)
      report(
        `${names[kind]}, 3 keys: ${f.histories} histories (${f.calls} calls, up to ${f.maxCallsPerKey} per key) ` +
          `linearizable, ${multi ? '3 processes x 2 callers' : '6 async callers'}, ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s`,
      )
    } finally {
      await cleanup()
    }
  })
})

describe.each(['memory', ...persistentKinds()])('%s, one hot key', (kind) => {
  const rounds = Math.ceil(ROUNDS / 4)
  test('every history of one contended key is linearizable', async () => {
    const { spec, cleanup } = makeSpec(kind, 'hot')
    const multi = kind !== 'memory'
    try {
      const started = Date.now()
      const f = await runHistories(spec, {
        processes: multi ? 3 : 0,
        callers: multi ? 2 : 6,
        ops: 3,
        keys: 1,
        rounds,
        seed: 13,
      })
      expect(f.violations).toEqual([])
      expect(f.histories).toBe(rounds)
      report(
        `${names[kind]}, 1 hot key: ${f.histories} histories (${f.calls} calls, ${f.maxCallsPerKey} per key) ` +
          `linearizable, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      )
    } finally {
      await cleanup()
    }
  })
})
