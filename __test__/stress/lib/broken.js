// A deliberately wrong store for checking the checker: its update is a get followed by a set,
// not atomic, so concurrent updates lose each other's writes.
'use strict'
const { MemoryStoreAdapter } = require('../../..')
const { runCaller, checkRound, finalReads } = require('./history')

class NonAtomicStore {
  constructor() {
    this.inner = new MemoryStoreAdapter()
  }
  get(k) {
    return this.inner.get(k)
  }
  set(k, v) {
    return this.inner.set(k, v)
  }
  remove(k) {
    return this.inner.remove(k)
  }
  async update(k, updater) {
    const old = await this.inner.get(k)
    const neu = await updater(old)
    if (neu !== undefined) await this.inner.set(k, neu)
    return [old, neu]
  }
  close() {
    return this.inner.close()
  }
}

// Runs `rounds` rounds of 6 async callers on 3 keys of a NonAtomicStore and returns how many
// histories the checker found violating (it must find some, or it checks nothing).
async function nonAtomicViolations(rounds) {
  const store = new NonAtomicStore()
  let violations = 0
  for (let round = 0; round < rounds; round++) {
    const keys = [`a${round}`, `b${round}`, `c${round}`]
    const callers = [0, 1, 2, 3, 4, 5].map((c) =>
      runCaller(store, { keys, ops: 4, tag: `c${c}r${round}`, seed: round * 10 + c }),
    )
    const records = (await Promise.all(callers)).flat()
    records.push(...(await finalReads(store, keys)))
    violations += checkRound(records).violations.length
  }
  await store.close()
  return violations
}

module.exports = { NonAtomicStore, nonAtomicViolations }
