// A deliberately wrong store for checking the checker: its update is a get followed by a set,
// not atomic, so concurrent updates lose each other's writes.
'use strict'
const { MemoryStoreAdapter } = require('../../..')

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

module.exports = { NonAtomicStore }
