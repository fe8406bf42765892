// Crash loops (long version): 100 SIGKILLs at random moments per persistent backend, each
// followed by a check that the store opens, holds every acknowledged write and takes new ones.
'use strict'
const { makeSpec } = require('../lib/stores')
const { crashLoop } = require('./lib/crash')
const { persistentKinds, names, figures } = require('./lib/suite')

const ROUNDS = Number(process.env.STRESS_CRASH_ROUNDS || 100)
const report = figures(`crash loops (${ROUNDS} kills each)`)

describe.each(persistentKinds())('%s', (kind) => {
  test(`${ROUNDS} SIGKILLs at random moments lose no acknowledged write`, async () => {
    const { spec, cleanup } = makeSpec(kind, 'crash')
    try {
      const started = Date.now()
      const f = await crashLoop(spec, ROUNDS)
      expect(f.kills).toBe(ROUNDS)
      expect(f.acknowledgedWrites).toBeGreaterThan(ROUNDS)
      report(
        `${names[kind]}: ${f.kills} kills survived, ${f.acknowledgedWrites} acknowledged writes, ` +
          `${f.checks} checks, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      )
    } finally {
      await cleanup()
    }
  })
})
