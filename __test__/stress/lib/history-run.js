// Runs rounds of random concurrent calls against a store and checks each round's history.
'use strict'
const stressFixture = (name) => require('path').join(__dirname, '..', 'fixtures', name)
const { openStore } = require('../../lib/stores')
const { startChild } = require('../../lib/children')
const { runCaller, checkRound, finalReads } = require('./history')

// `processes` worker processes (0: the callers run in this process, the only way for the
// memory store), each with `callers` async callers of `ops` calls per round on `keys` fresh
// keys. Returns figures; `violations` lists the keys whose history is not linearizable.
async function runHistories(spec, { processes, callers, ops, keys, rounds, seed = 1 }) {
  const store = openStore(spec)
  const workers = []
  const figures = { rounds: 0, histories: 0, calls: 0, maxCallsPerKey: 0, violations: [] }
  try {
    for (let p = 0; p < processes; p++) {
      const w = { pending: null }
      Object.assign(
        w,
        startChild(
          stressFixture('history-worker.js'),
          [JSON.stringify(spec), String(p)],
          (msg) => w.pending && w.pending(msg),
          {
            stdin: true,
          },
        ),
      )
      workers.push(w)
    }
    for (let round = 0; round < rounds; round++) {
      const roundKeys = Array.from({ length: keys }, (_, k) => `h${round}-k${k}`)
      let records
      if (processes === 0) {
        const all = []
        for (let c = 0; c < callers; c++) {
          all.push(
            runCaller(store, { keys: roundKeys, ops, tag: `c${c}r${round}`, seed: seed * 7919 + round * 31 + c }),
          )
        }
        records = (await Promise.all(all)).flat()
      } else {
        const replies = workers.map(
          (w) =>
            new Promise((resolve) => {
              w.pending = resolve
            }),
        )
        for (const w of workers) w.send({ round, keys: roundKeys, callers, ops, seed: seed * 7919 + round })
        const got = await Promise.all(replies)
        for (const g of got) {
          if (g.error) throw new Error(`worker failed: ${g.error}`)
          if (g.held !== 0) throw new Error(`worker lock table holds ${g.held} keys after its round`)
        }
        records = got.flatMap((g) => g.records)
      }
      records.push(...(await finalReads(store, roundKeys)))
      const result = checkRound(records)
      figures.rounds++
      figures.histories += result.keys
      figures.calls += result.calls
      for (const k of roundKeys) {
        const n = records.filter((r) => r.key === k).length
        if (n > figures.maxCallsPerKey) figures.maxCallsPerKey = n
      }
      figures.violations.push(...result.violations.map((v) => ({ round, ...v })))
    }
  } finally {
    for (const w of workers) {
      w.pending = () => {}
      w.send({ close: true })
    }
    await Promise.all(workers.map((w) => w.exited))
    await store.close()
  }
  return figures
}

module.exports = { runHistories }
