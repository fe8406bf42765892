// The fast part of the stress suite (the long one: npm run test:stress, __test__/stress/):
// the linearizability checker itself, a PostgreSQL crash loop (file and SQLite have theirs in
// file.spec.js and sqlite.spec.js), checked histories on every backend, and a 20,000-call
// multi-process load with its consistency check.
'use strict'
const { makeSpec } = require('./lib/stores')
const { crashLoop } = require('./stress/lib/crash')
const { runHistories } = require('./stress/lib/history-run')
const { runLoad } = require('./stress/lib/load')
const { nonAtomicViolations } = require('./stress/lib/broken')
const { linearizable, MISSING } = require('./stress/lib/history')
const { persistentKinds, names, figures } = require('./stress/lib/suite')

const report = figures('stress (fast)')
const kinds = persistentKinds()

describe('the linearizability checker', () => {
  const get = (inv, res, read) => ({ kind: 'get', inv, res, read })
  const set = (inv, res, write) => ({ kind: 'set', inv, res, write })
  const update = (inv, res, read, write) => ({ kind: 'update', inv, res, read, write })
  const remove = (inv, res) => ({ kind: 'remove', inv, res, write: MISSING })

  test('accepts sequential and overlapping histories that a register explains', () => {
    expect(linearizable([set(0, 1, 'a'), get(2, 3, 'a'), remove(4, 5), get(6, 7, MISSING)])).toBe(true)
    // The get overlaps the set: it may see either value.
    expect(linearizable([set(0, 1, 'a'), set(2, 6, 'b'), get(3, 4, 'a')])).toBe(true)
    expect(linearizable([set(0, 1, 'a'), set(2, 6, 'b'), get(3, 4, 'b')])).toBe(true)
    expect(linearizable([update(0, 5, 'b', 'c'), set(1, 2, 'b'), get(6, 7, 'c')])).toBe(true)
    // An update whose updater returned undefined only reads.
    expect(linearizable([set(0, 1, 'a'), update(2, 3, 'a', null), get(4, 5, 'a')])).toBe(true)
  })

  test('rejects stale reads, lost updates and reads from nowhere', () => {
    expect(linearizable([set(0, 1, 'a'), set(2, 3, 'b'), get(4, 5, 'a')])).toBe(false)
    expect(linearizable([update(0, 5, MISSING, 'a'), update(1, 6, MISSING, 'b'), get(7, 8, 'b')])).toBe(false)
    expect(linearizable([get(0, 1, 'x')])).toBe(false)
    expect(linearizable([remove(0, 1), get(2, 3, 'a'), set(4, 5, 'a')])).toBe(false)
  })

  test('finds the violations of a store whose update is not atomic', async () => {
    const violations = await nonAtomicViolations(30)
    expect(violations).toBeGreaterThan(0)
  })
})

const pgDescribe = kinds.includes('pg') ? describe : describe.skip
pgDescribe('PostgreSQL crash loop', () => {
  test('20 SIGKILLs of a client at random moments lose no acknowledged write', async () => {
    const { spec, cleanup } = makeSpec('pg', 'crashfast')
    try {
      const f = await crashLoop(spec, 20)
      expect(f.kills).toBe(20)
      expect(f.acknowledgedWrites).toBeGreaterThan(20)
      report(`PostgreSQL: ${f.kills} kills survived, ${f.acknowledgedWrites} acknowledged writes, ${f.checks} checks`)
    } finally {
      await cleanup()
    }
  })
})

describe.each(['memory', ...kinds])('%s', (kind) => {
  test('histories of concurrent calls are linearizable', async () => {
    const { spec, cleanup } = makeSpec(kind, 'histfast')
    const multi = kind !== 'memory'
    try {
      const f = await runHistories(spec, {
        processes: multi ? 3 : 0,
        callers: multi ? 2 : 6,
        ops: 4,
        keys: 3,
        rounds: 20,
        seed: 11,
      })
      expect(f.violations).toEqual([])
      expect(f.histories).toBe(60)
      report(`${names[kind]}: ${f.histories} histories (${f.calls} calls) linearizable`)
    } finally {
      await cleanup()
    }
  })

  if (kind === 'memory') return
  test('20,000 mixed calls from 4 processes end in exactly the acknowledged state', async () => {
    const { spec, cleanup } = makeSpec(kind, 'loadfast')
    try {
      const f = await runLoad(spec, { processes: 4, ops: 20000, keys: 10000, concurrency: 16, seed: 5 })
      expect(f.errors).toEqual([])
      expect(f.wrong).toEqual([])
      expect(f.held).toEqual([0, 0, 0, 0])
      expect(f.keysVerified).toBeGreaterThan(5000)
      report(`${names[kind]}: ${f.ops} load calls, ${f.keysVerified} keys verified, ${f.opsPerSecond}/s`)
    } finally {
      await cleanup()
    }
  })
})
