'use strict'
// npm run bench: the same workloads on this package's adapters and on their peers, in one run,
// rounds interleaved, medians reported with ratios against the matching peer.
const os = require('os')
const { workloads } = require('./workloads')
const { subjects } = require('./subjects')

const ROUNDS = Number(process.env.BENCH_ROUNDS || 5)
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

// Each comparison: our subject against a peer, on workloads with a unit and a direction.
const plans = [
  {
    title: 'MemoryStoreAdapter vs reshuffle 1.0.9 MemoryStoreAdapter',
    ours: 'memory',
    peer: 'reshuffle-memory',
    rows: [
      { name: 'sequential set', run: 'sequentialSet', unit: 'ops/s', higher: true, args: { count: 50000 } },
      { name: 'sequential get', run: 'sequentialGet', unit: 'ops/s', higher: true, args: { count: 50000 } },
      { name: 'sequential update', run: 'sequentialUpdate', unit: 'ops/s', higher: true, args: { count: 50000 } },
      { name: '100 concurrent 20 ms updates, 100 keys', run: 'concurrentSlowUpdates', unit: 'ms', higher: false, rounds: 3 },
      { name: '100,000 updates queued on one key', run: 'queuedOnOneKey', unit: 'ms', higher: false, args: { count: 100000 }, rounds: 3 },
    ],
  },
]

async function measure(subjectName, row) {
  const subject = subjects[subjectName]
  const store = await subject.open()
  try {
    const out = await workloads[row.run](store, row.args || {})
    return typeof out === 'number' ? { value: out, ok: true } : { value: out.ms, ok: out.ok, detail: out }
  } finally {
    await subject.close(store)
  }
}

function fmt(v, unit) {
  if (unit === 'ops/s') return `${Math.round(v).toLocaleString('en-US')} ops/s`
  return `${v.toFixed(1)} ms`
}

async function main() {
  console.log(`reshuffle-datastore benchmark — ${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0].model}, ${os.cpus().length} cores, Node ${process.version}`)
  const results = []
  for (const plan of plans) {
    const missing = [plan.ours, plan.peer].filter((s) => !subjects[s] || !subjects[s].available())
    if (missing.length) {
      console.log(`\n${plan.title}: skipped (${missing.map((m) => subjects[m] ? subjects[m].why() : m).join('; ')})`)
      continue
    }
    console.log(`\n${plan.title}`)
    for (const row of plan.rows) {
      const ours = []
      const peer = []
      const checks = []
      for (let r = 0; r < (row.rounds || ROUNDS); r++) {
        // Interleave so that both see the same machine state.
        const a = await measure(plan.ours, row)
        const b = await measure(plan.peer, row)
        ours.push(a.value)
        peer.push(b.value)
        checks.push(a.ok)
      }
      const o = median(ours)
      const p = median(peer)
      const ratio = row.higher ? o / p : p / o
      const ok = checks.every(Boolean)
      results.push({ plan: plan.title, row: row.name, ours: o, peer: p, unit: row.unit, ratio, ok })
      console.log(`  ${row.name.padEnd(42)} ours ${fmt(o, row.unit).padStart(16)}   peer ${fmt(p, row.unit).padStart(16)}   ${ratio.toFixed(2)}× ${ok ? '' : '  CHECK FAILED'}`)
    }
  }
  return results
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}

module.exports = { main }
