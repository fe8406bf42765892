// Crash loops: a writer process is killed with SIGKILL at a random moment, then the store is
// opened again and every write the writer saw acknowledged must be there.
'use strict'
const { openStore, sleep } = require('./stores')
const { startChild } = require('./children')

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
    const { child, exited } = startChild('crash-writer.js', [JSON.stringify(spec), String(round)], (msg) => {
      if (msg.error) errors.push(msg.error)
      if (msg.set) acked.add(msg.set)
      if (msg.removed) removed.add(msg.removed)
      if (msg.removing) removing.add(msg.removing)
      if (msg.counter) counters.set(msg.counter, Math.max(counters.get(msg.counter) || 0, msg.value))
      firstAck()
    })
    await Promise.race([started, exited])
    await sleep(Math.random() * maxDelayMs)
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
  return { kills, acknowledgedWrites: acked.size + [...counters.values()].reduce((a, b) => a + b, 0), checks: verified }
}

module.exports = { crashLoop }
