'use strict'
// How the command line reads and writes a store, decided in one place: through the batch and
// streaming methods where the store has them (entries, keys, getMany, setMany), else through
// list(), get() and set(), which every adapter has. Memory stays bounded by a batch where the
// store streams; with list() it holds the keys, and one batch of values.

const BATCH = 256

function access(store, { batch = BATCH } = {}) {
  const has = (name) => typeof store[name] === 'function'
  let listed
  const list = () => (listed = listed || store.list())
  return {
    // Every [key, value] of the store, in key order.
    async *entries() {
      if (has('entries')) {
        yield* store.entries({ batch })
        return
      }
      const keys = await list()
      for (let i = 0; i < keys.length; i += batch) {
        const page = keys.slice(i, i + batch)
        const values = has('getMany') ? await store.getMany(page) : await Promise.all(page.map((k) => store.get(k)))
        for (let j = 0; j < page.length; j++) {
          // A key removed since list() (by another process) is skipped.
          if (values[j] !== undefined) yield [page[j], values[j]]
        }
      }
    },

    // How many keys the store holds.
    async count() {
      return (await list()).length
    },

    // Whether the store holds no key.
    async isEmpty() {
      if (has('keys')) return (await store.keys({ limit: 1 })).length === 0
      return (await list()).length === 0
    },

    // Writes `entries` ([key, value][]); resolves to how many were written, or rejects with the
    // first error, its `written` property saying how many of them were written all the same.
    async write(entries) {
      if (has('setMany')) {
        try {
          await store.setMany(entries)
        } catch (e) {
          throw withWritten(e, 0) // all or nothing
        }
        return entries.length
      }
      const results = await Promise.allSettled(entries.map(([k, v]) => store.set(k, v)))
      const failed = results.find((r) => r.status === 'rejected')
      const written = results.filter((r) => r.status === 'fulfilled').length
      if (failed) throw withWritten(failed.reason, written)
      return written
    },
  }
}

function withWritten(error, written) {
  if (error !== null && typeof error === 'object') {
    try {
      error.written = written
    } catch {
      // a frozen error: the count is lost, the error is not
    }
  }
  return error
}

module.exports = { access, BATCH }
