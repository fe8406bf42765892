// Load: `processes` workers run `ops` mixed calls in all over `keys` keys of one store; then
// the store must hold exactly what they acknowledged: each counter the sum of the increments,
// each register one of the workers' last writes (or missing if that was a remove: a worker
// reports every write of its own that no later one of its own followed, as two of its loops
// may write one key at once), and nothing else.
'use strict'
const stressFixture = (name) => require('path').join(__dirname, '..', 'fixtures', name)
const { openStore } = require('../../lib/stores')
const { startChild } = require('../../lib/children')

async function runLoad(spec, { processes = 4, ops, keys = 10000, concurrency = 16, seed = 1 }) {
  const started = Date.now()
  const per = Math.ceil(ops / processes)
  const reports = await Promise.all(
    Array.from({ length: processes }, (_, p) => {
      let report = null
      const { exited } = startChild(
        stressFixture('load-worker.js'),
        [JSON.stringify(spec), String(p), String(per), String(keys), String(concurrency), String(seed)],
        (msg) => (report = msg),
      )
      return exited.then(({ code, signal }) => {
        if (!report || report.fatal || code !== 0) {
          const how = signal ? `signal ${signal}` : `exit ${code}`
          throw new Error(`load worker ${p} failed (${how}): ${report && report.fatal}`)
        }
        return report
      })
    }),
  )
  const seconds = (Date.now() - started) / 1000

  const expectedCount = new Map()
  const candidates = new Map() // register key -> [{p, n, removed}]
  reports.forEach((r, p) => {
    for (const [key, n] of r.counts) expectedCount.set(key, (expectedCount.get(key) || 0) + n)
    for (const [key, ws] of r.last) {
      if (!candidates.has(key)) candidates.set(key, [])
      for (const w of ws) candidates.get(key).push({ p, ...w })
    }
  })

  const store = openStore(spec)
  const wrong = []
  let verified = 0
  try {
    const listed = await store.list()
    const present = new Set(listed)
    for (const key of listed) {
      if (!expectedCount.has(key) && !candidates.has(key)) wrong.push(`${key} was never written`)
    }
    for (const [key, n] of expectedCount) {
      const v = await store.get(key)
      if (v !== n) wrong.push(`${key}: ${v}, acknowledged increments ${n}`)
      verified++
    }
    for (const [key, ws] of candidates) {
      const v = await store.get(key)
      const ok = ws.some((w) => (w.removed ? v === undefined : v && v.p === w.p && v.n === w.n))
      if (!ok) wrong.push(`${key}: ${JSON.stringify(v)}, last writes ${JSON.stringify(ws)}`)
      if (present.has(key) !== (v !== undefined)) wrong.push(`${key}: list and get disagree`)
      verified++
    }
    if (store.__heldKeys() !== 0) wrong.push('the checking store holds locks')
  } finally {
    await store.close()
  }
  const tally = { get: 0, set: 0, update: 0, remove: 0, list: 0 }
  for (const r of reports) for (const k of Object.keys(tally)) tally[k] += r.tally[k]
  return {
    ops: per * processes,
    seconds,
    opsPerSecond: Math.round((per * processes) / seconds),
    tally,
    keysVerified: verified,
    rss: reports.map((r) => r.rss),
    held: reports.map((r) => r.held),
    errors: reports.flatMap((r) => r.errors),
    wrong: wrong.slice(0, 20),
    wrongCount: wrong.length,
  }
}

module.exports = { runLoad }
