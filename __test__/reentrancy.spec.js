// Waits that would never end: an updater that uses its own key (rejected at once with
// ERR_DATASTORE_REENTRANT), the lockTimeout option (ERR_DATASTORE_LOCK_TIMEOUT), an updater
// promise that is garbage-collected unsettled (ERR_DATASTORE_UPDATER_ABANDONED), and the
// process exiting by itself with stores left open. Every test has a jest timeout, so that a
// regression fails instead of hanging.
'use strict'
const { runNode } = require('./lib/children')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { MemoryStoreAdapter, FileStoreAdapter, SQLStoreAdapter, PersistentStore } = require('..')
const { expectCode, gate } = require('./conformance')
const { applyDefaults, serverReachable } = require('./lib/postgres-env')
const { pgConfig } = require('./lib/stores')

applyDefaults()
const fixtures = path.join(__dirname, 'fixtures')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rds-reentrancy-'))
const server = serverReachable()
let pg = null
try {
  pg = require('pg')
} catch (e) {
  pg = null
}
const run = `${process.pid.toString(36)}_${Date.now().toString(36)}`
const pgTables = []
let fileCount = 0
const tmp = (ext) => path.join(dir, `s${fileCount++}.${ext}`)

afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true })
  if (server.ok && pg && pgTables.length > 0) {
    const admin = new pg.Pool({ max: 1 })
    for (const t of pgTables) await admin.query(`DROP TABLE IF EXISTS ${t}`)
    await admin.end()
  }
})

// Runs a fixture (lib/children.js): its JSON lines, exit code, the signal that ended it (it is
// killed after `timeout` ms: a process that does not exit by itself fails) and its stderr.
async function runFixture(args, timeout = 30000) {
  const r = await runNode(args, { timeout })
  return { lines: r.messages, code: r.code, signal: r.signal, stderr: r.stderr }
}

const merged = (lines) => Object.assign({}, ...lines)

// The stores every in-process test runs on, with the given options.
const kinds = {
  memory: (options) => new MemoryStoreAdapter(options),
  file: (options) => new FileStoreAdapter(tmp('json'), options),
  sqlite: (options) => new SQLStoreAdapter(tmp('db'), 'kv', options),
}

describe('lockTimeout option', () => {
  test.each(Object.keys(kinds))('%s: accepted as a number, Infinity, null or undefined', async (kind) => {
    for (const lockTimeout of [0, 250, Infinity, null, undefined]) {
      const store = kinds[kind]({ lockTimeout })
      await store.set('k', 1)
      await store.close()
    }
  })

  test.each(Object.keys(kinds))('%s: anything else throws ERR_DATASTORE_INVALID_ARGUMENT', (kind) => {
    for (const lockTimeout of [-1, NaN, '100', {}, true]) {
      let error
      try {
        kinds[kind]({ lockTimeout })
      } catch (e) {
        error = e
      }
      expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
      expect(error.message).toMatch(/lockTimeout/)
    }
  })

  test.each(Object.keys(kinds))(
    '%s: a waiter behind a slow updater times out and leaves the queue; the others keep FIFO order',
    async (kind) => {
      const store = kinds[kind]({ lockTimeout: 200 })
      try {
        await store.set('k', 'v')
        const slow = gate()
        const done = []
        const first = store.update('k', async (v) => {
          await slow.promise
          return v + '0'
        })
        first.then(() => done.push('slow'))
        const timedOut = store.update('k', (v) => v + 'X')
        const error = await expectCode(timedOut, 'ERR_DATASTORE_LOCK_TIMEOUT')
        expect(error.key).toBe('k')
        expect(error.message).toMatch(/200 ms/)
        // Called now, released at once: none of these waits anywhere near the limit.
        const a = store.set('k', 'a').then(() => done.push('set'))
        const b = store.update('k', (v) => v + 'b').then((r) => done.push(`update ${r[0]}->${r[1]}`))
        const c = store.get('k').then((v) => done.push(`get ${v}`))
        slow.open()
        await Promise.all([first, a, b, c])
        expect(done).toEqual(['slow', 'set', 'update a->ab', 'get ab'])
        expect(await store.get('k')).toBe('ab')
      } finally {
        await store.close()
      }
    },
    20000,
  )

  test('an async updater awaiting its own key after an await fails with the timeout, then the key is free', async () => {
    const store = new MemoryStoreAdapter({ lockTimeout: 100 })
    await store.set('k', 1)
    await expectCode(
      store.update('k', async (v) => {
        await null // from here on the call cannot be told apart from any other caller
        await store.set('k', v + 100)
        return v + 1
      }),
      'ERR_DATASTORE_LOCK_TIMEOUT',
    )
    expect(await store.get('k')).toBe(1)
    expect(await store.update('k', (v) => v + 1)).toEqual([1, 2])
    await store.close()
  }, 10000)

  test('list waiting behind a stuck update is bounded too', async () => {
    const store = new MemoryStoreAdapter({ lockTimeout: 100 })
    const slow = gate()
    const pending = store.update('k', () => slow.promise.then(() => 1))
    const error = await expectCode(store.list(), 'ERR_DATASTORE_LOCK_TIMEOUT')
    expect(error.message).toMatch(/writes called before/)
    slow.open()
    await pending
    expect(await store.list()).toEqual(['k'])
    await store.close()
  }, 10000)

  test('0 never waits: a busy key rejects at once, a free key works', async () => {
    const store = new MemoryStoreAdapter({ lockTimeout: 0 })
    const slow = gate()
    const pending = store.update('busy', () => slow.promise.then(() => 1))
    await expectCode(store.get('busy'), 'ERR_DATASTORE_LOCK_TIMEOUT')
    expect(await store.set('free', 2)).toBe(2)
    slow.open()
    expect(await pending).toEqual([undefined, 1])
    await store.close()
  }, 10000)

  test('without the option a waiter waits as long as the updater runs', async () => {
    const store = new MemoryStoreAdapter()
    const slow = gate()
    const pending = store.update('k', () => slow.promise.then(() => 1))
    let settled = false
    const waiter = store.get('k').then((v) => {
      settled = true
      return v
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(settled).toBe(false)
    slow.open()
    expect(await waiter).toBe(1)
    await pending
    await store.close()
  }, 10000)
})

describe('re-entrancy details', () => {
  test('the error names the key and the operation', async () => {
    const store = new MemoryStoreAdapter()
    let error
    await store.update('k', () => {
      error = store.remove('k').catch((e) => e)
      return 1
    })
    error = await error
    expect(error.code).toBe('ERR_DATASTORE_REENTRANT')
    expect(error.key).toBe('k')
    expect(error.operation).toBe('remove')
    expect(error.message).toMatch(/return the new value instead/)
    await store.close()
  }, 10000)

  test('through a PersistentStore namespace, on the full key', async () => {
    const store = new MemoryStoreAdapter()
    const ns = new PersistentStore(store, 'app/')
    await expectCode(
      ns.update('k', () => ns.get('k')),
      'ERR_DATASTORE_REENTRANT',
    )
    // Another namespace's same short key is another key.
    const other = new PersistentStore(store, 'other/')
    expect(await ns.update('k', () => other.set('k', 1).then(() => 2))).toEqual([undefined, 2])
    expect(await other.get('k')).toBe(1)
    await store.close()
  }, 10000)

  test('another store with the same key is not affected', async () => {
    const a = new MemoryStoreAdapter()
    const b = new MemoryStoreAdapter()
    expect(await a.update('k', () => b.set('k', 'b').then(() => 'a'))).toEqual([undefined, 'a'])
    expect([await a.get('k'), await b.get('k')]).toEqual(['a', 'b'])
    await a.close()
    await b.close()
  }, 10000)
})

// Child processes: one per backend, PostgreSQL when the server is reachable. Each makes a
// fresh store spec (lib/stores.js) that the fixture opens.
const backends = [
  ['memory', () => ({ kind: 'memory' })],
  ['file', () => ({ kind: 'file', path: tmp('json') })],
  ['sqlite', () => ({ kind: 'sqlite', path: tmp('db') })],
]
if (server.ok) {
  backends.push([
    'postgres',
    () => {
      const table = `rds_reentry_${run}_${pgTables.length}`
      pgTables.push(table)
      return { kind: 'pg', table, config: pgConfig() }
    },
  ])
} else {
  test.skip(`PostgreSQL child-process tests (server not reachable: ${server.why})`, () => {})
}

describe('an updater promise collected unsettled', () => {
  test.each(backends)(
    '%s: rejects with ERR_DATASTORE_UPDATER_ABANDONED and releases the key',
    async (kind, spec) => {
      const r = await runFixture(['--expose-gc', path.join(fixtures, 'updater-abandoned.js'), JSON.stringify(spec())])
      expect(r.stderr).toBe('')
      const out = merged(r.lines)
      expect(out.error).toBeUndefined()
      expect(out.first).toEqual({ code: 'ERR_DATASTORE_UPDATER_ABANDONED', key: 'k' })
      expect(out.asyncFirst).toEqual({ code: 'ERR_DATASTORE_UPDATER_ABANDONED', key: 'k' })
      expect(out.later).toEqual({ resolved: 'after' })
      expect(out.value).toBe('after')
      expect(out.closed).toBe(true)
      expect([r.code, r.signal]).toEqual([0, null])
    },
    40000,
  )
})

describe('the process exits by itself with a store left open', () => {
  // Runs stuck-exit.js in `mode` and checks it exits by itself, cleanly; resolves its lines
  // without the `lost` update's. That update's updater promise is garbage: a collection before
  // the exit rejects it with ERR_DATASTORE_UPDATER_ABANDONED (tested above), and whether V8 runs
  // one first is its choice. So its line is optional, but if it comes it must be that rejection.
  const runStuckExit = async (spec, mode, nodeArgs = []) => {
    const r = await runFixture([...nodeArgs, path.join(fixtures, 'stuck-exit.js'), JSON.stringify(spec), mode])
    expect(r.stderr).toBe('')
    expect([r.code, r.signal]).toEqual([0, null])
    const lost = r.lines.filter((l) => 'lost' in l)
    for (const line of lost) expect(line).toEqual({ lost: 'ERR_DATASTORE_UPDATER_ABANDONED' })
    return { lines: r.lines.filter((l) => !('lost' in l)), lost }
  }
  const timedOutThenExited = [{ armed: true }, { waiter: 'ERR_DATASTORE_LOCK_TIMEOUT' }, { exit: 0 }]

  test.each(backends)(
    '%s: updaters that never settle and a queued waiter do not keep it alive',
    async (kind, spec) => {
      const { lines } = await runStuckExit(spec(), 'plain')
      expect(lines).toEqual([{ armed: true }, { exit: 0 }])
    },
    40000,
  )

  test.each(backends)(
    '%s: with lockTimeout the waiter rejects first, then the process exits',
    async (kind, spec) => {
      const { lines } = await runStuckExit(spec(), 'timeout')
      expect(lines).toEqual(timedOutThenExited)
    },
    40000,
  )

  test.each(backends)(
    '%s: collections meanwhile abandon the unreachable updater, and the process still exits',
    async (kind, spec) => {
      const { lines, lost } = await runStuckExit(spec(), 'collecting', ['--expose-gc'])
      expect(lost).toEqual([{ lost: 'ERR_DATASTORE_UPDATER_ABANDONED' }])
      expect(lines).toEqual(timedOutThenExited)
    },
    40000,
  )
})
