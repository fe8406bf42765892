// Crash loops: a writer process is killed with SIGKILL at a random moment, then the store is
// opened again and every write the writer saw acknowledged must be there.
'use strict'
const stressFixture = (name) => require('path').join(__dirname, '..', 'fixtures', name)
const { openStore, sleep } = require('../../lib/stores')
const { startChild } = require('../../lib/children')

// Runs `rounds` kill rounds against the store of `spec`. Returns figures; throws (through
// `expect`) on the first lost write.
async function crashLoop(spec, rounds, { maxDelayMs = 150 } = {}) {
  const acked = new Set()
  const removed = new Set()
  const removing = new Set()
  const counters = new Map()
  const errors = []
  let kills = 0
  let verified = 0
  for (let round = 0; round < rounds; round++) {
    let firstAck
    const started = new Promise((resolve) => (firstAck = resolve))
    const { child, exited } = startChild(
      stressFixture('crash-writer.js'),
      [JSON.stringify(spec), String(round)],
      (msg) => {
        if (msg.error) errors.push(msg.error)
        if (msg.set) acked.add(msg.set)
        if (msg.removed) removed.add(msg.removed)
        if (msg.removing) removing.add(msg.removing)
        if (msg.counter) counters.set(msg.counter, Math.max(counters.get(msg.counter) || 0, msg.value))
        firstAck()
      },
    )
    // Every 5th kill lands early, while the process starts or opens the store (recovery of
    // the previous crash included); the others at a random moment after the first write.
    if (round % 5 === 4) await sleep(Math.random() * 80)
    else {
      await Promise.race([started, exited])
      await sleep(Math.random() * maxDelayMs)
    }
    child.kill('SIGKILL')
    const { signal } = await exited
    expect(errors).toEqual([])
    expect(signal).toBe('SIGKILL')
    kills++

    // The store opens, and holds every acknowledged write.
    const store = openStore(spec)
    try {
      const keys = new Set(await store.list())
      const wrong = []
      for (const key of acked) {
        // A removal may have landed without its acknowledgement being printed.
        if (removing.has(key) && !removed.has(key)) continue
        if (keys.has(key) === removed.has(key)) wrong.push(key)
        verified++
      }
      expect(wrong).toEqual([])
      for (const [name, value] of counters) {
        const stored = await store.get(name)
        // The last update may have landed without its acknowledgement being printed.
        if (stored !== value && stored !== value + 1) {
          throw new Error(`${spec.kind} round ${round}: ${name} is ${stored}, acknowledged ${value}`)
        }
        counters.set(name, stored)
        verified++
      }
      // Still writable after the crash.
      const [, after] = await store.update('after-crash', (v = 0) => v + 1)
      expect(after).toBe(round + 1)
      expect(store.__heldKeys()).toBe(0)
    } finally {
      await store.close()
    }
  }
  if (spec.kind === 'pg') {
    // The same, read straight from the table with node-postgres, not through this package.
    const { Client } = require('pg')
    const client = new Client(spec.config)
    await client.connect()
    try {
      const { rows } = await client.query(`SELECT id, value FROM ${spec.table}`)
      const table = new Map(rows.map((r) => [r.id, r.value]))
      const missing = [...acked].filter((k) => !removing.has(k) && !table.has(k))
      expect(missing).toEqual([])
      for (const [name, value] of counters) expect(JSON.parse(table.get(name))).toBe(value)
      verified += acked.size + counters.size
    } finally {
      await client.end()
    }
  }
  return { kills, acknowledgedWrites: acked.size + [...counters.values()].reduce((a, b) => a + b, 0), checks: verified }
}

module.exports = { crashLoop }
