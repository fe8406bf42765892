'use strict'
const fs = require('fs')
const os = require('os')
const path = require('path')
const readline = require('readline')
const { spawn } = require('child_process')
const { FileStoreAdapter } = require('..')
const {
  FileStoreAdapter: ReshuffleFileStoreAdapter,
  PersistentStore: ReshufflePersistentStore,
  Reshuffle,
} = require('reshuffle')
const { runConformance, expectCode, sleep } = require('./conformance')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rd-file-spec-'))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

let counter = 0
const freshPath = () => path.join(dir, `store-${counter++}.json`)
const { runChild: runFixture, fixture } = require('./lib/children')

const paths = new WeakMap()
function open(file, options) {
  const store = new FileStoreAdapter(file, options)
  paths.set(store, file)
  return store
}

runConformance('FileStoreAdapter', async () => open(freshPath()), {
  persistent: true,
  reopen: async (store) => {
    await store.close()
    return open(paths.get(store))
  },
  multiProcess: { spec: (store) => ({ kind: 'file', path: paths.get(store) }) },
})

// Runs a fixture to its end (lib/children.js): { code, signal, lines }.
async function runChild(name, args, ms = 30000) {
  const r = await runFixture(fixture(name), args, { timeout: ms })
  return { code: r.code, signal: r.signal, lines: r.messages }
}

// Children still running after a test (one that failed half-way) are killed.
const children = new Set()
afterEach(() => {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
})
function track(child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

// A second process on the same store, driven command by command (fixtures/file-peer.js).
function peer(file) {
  const child = track(spawn(process.execPath, [fixture('file-peer.js'), file], { stdio: ['pipe', 'pipe', 'inherit'] }))
  const replies = new Map()
  const holdings = new Map()
  let next = 0
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const msg = JSON.parse(line)
    if (msg.holding) holdings.get(msg.id)()
    else replies.get(msg.id)(msg)
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  function send(op, key, value) {
    const id = next++
    const reply = new Promise((resolve) => replies.set(id, resolve))
    child.stdin.write(JSON.stringify({ id, op, key, value }) + '\n')
    return { id, reply }
  }
  return {
    exited,
    kill: () => (child.kill('SIGKILL'), exited),
    ask: (op, key, value) => send(op, key, value).reply,
    hold(key, value) {
      const id = next
      const holding = new Promise((resolve) => holdings.set(id, resolve))
      return { holding, done: send('hold', key, value).reply }
    },
  }
}

describe('FileStoreAdapter', () => {
  describe('constructor', () => {
    test('is synchronous and opens nothing', async () => {
      const file = freshPath()
      const store = new FileStoreAdapter(file)
      expect(fs.existsSync(file)).toBe(false)
      expect(await store.get('a')).toBeUndefined()
      expect(await store.list()).toEqual([])
      expect(fs.existsSync(file)).toBe(false)
      expect(fs.existsSync(`${file}.lock`)).toBe(false) // reads take no lock
      await store.set('a', 1)
      expect(fs.existsSync(file)).toBe(true)
      await store.close()
    })

    test.each([
      ['a number path', [5]],
      ['no path', []],
      ['an unknown durability', ['x.json', { durability: 'sometimes' }]],
      ['a non-string durability', ['x.json', { durability: true }]],
      ['options that are not an object', ['x.json', 'fsync']],
      ['a negative compactThreshold', ['x.json', { compactThreshold: -1 }]],
      ['a compactThreshold that is not a number', ['x.json', { compactThreshold: '1MB' }]],
    ])('%s throws ERR_DATASTORE_INVALID_ARGUMENT', (_, args) => {
      let error
      try {
        new FileStoreAdapter(...args)
      } catch (e) {
        error = e
      }
      expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
    })

    test('bad paths reject the first operation with ERR_DATASTORE_IO naming the path', async () => {
      const cases = [path.join(dir, 'no-such-folder', 's.json'), dir]
      if (process.getuid && process.getuid() !== 0) {
        const locked = path.join(dir, 'locked')
        fs.mkdirSync(locked, { mode: 0o500 })
        cases.push(path.join(locked, 's.json'))
      }
      for (const file of cases) {
        const store = new FileStoreAdapter(file)
        const e = await expectCode(store.set('a', 1), 'ERR_DATASTORE_IO')
        expect(e.message).toContain(file)
        await store.close()
      }
    })
  })

  describe('compatibility with reshuffle 1.0.9', () => {
    test("reads the file reshuffle's FileStoreAdapter wrote", async () => {
      const file = freshPath()
      const theirs = new ReshuffleFileStoreAdapter(file)
      await theirs.set('position', { offset: 10 })
      await theirs.set('jobs', ['a', 'b'])
      await theirs.set('text', 'é 🎉')
      const ours = open(file)
      expect(await ours.get('position')).toEqual({ offset: 10 })
      expect(await ours.get('jobs')).toEqual(['a', 'b'])
      expect(await ours.list()).toEqual(['jobs', 'position', 'text'])
      await ours.update('position', (p) => ({ offset: p.offset + 1 }))
      await ours.close()
    })

    test("as a Reshuffle app's store, under reshuffle's own PersistentStore", async () => {
      const file = freshPath()
      const adapter = open(file)
      const app = new Reshuffle()
      app.setPersistentStore(adapter)
      expect(app.getPersistentStore()).toBe(adapter)
      const a = new ReshufflePersistentStore(adapter, 'connector-a/')
      await a.set('cursor', 1)
      await a.update('cursor', (v) => v + 10)
      expect(await a.get('cursor')).toBe(11)
      expect(await adapter.list()).toEqual(['connector-a/cursor'])
      await adapter.close()
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ 'connector-a/cursor': 11 })
    })

    test('after close() or compact(), reshuffle reads what we wrote', async () => {
      const file = freshPath()
      const ours = open(file)
      await ours.set('a', { n: 1 })
      await ours.set('b', [1, 2])
      await ours.set('gone', true)
      await ours.remove('gone')
      await ours.compact()
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ a: { n: 1 }, b: [1, 2] })
      expect(await new ReshuffleFileStoreAdapter(file).get('b')).toEqual([1, 2])
      await ours.set('c', 'after compact')
      await ours.close()
      const theirs = new ReshuffleFileStoreAdapter(file)
      expect((await theirs.list()).sort()).toEqual(['a', 'b', 'c'])
      expect(await theirs.get('c')).toBe('after compact')
    })
  })

  describe('on disk', () => {
    test('a write appends one record: the file is not rewritten', async () => {
      const file = freshPath()
      const store = open(file)
      const all = []
      for (let i = 0; i < 2000; i++) all.push(store.set(`k${i}`, { i }))
      await Promise.all(all)
      await store.compact()
      const before = fs.statSync(file)
      const head = fs.readFileSync(file)
      await store.set('one-more', 1)
      const after = fs.statSync(file)
      expect(after.ino).toBe(before.ino)
      expect(after.size - before.size).toBeGreaterThan(0)
      expect(after.size - before.size).toBeLessThan(100)
      expect(fs.readFileSync(file).subarray(0, before.size).equals(head)).toBe(true)
      await store.close()
    })

    test('a 64 MiB value survives a write, a compaction and a reopen', async () => {
      const file = freshPath()
      let store = open(file)
      const blob = 'x'.repeat(64 * 1024 * 1024 - 16)
      await store.set('big', blob)
      await store.set('small', 1)
      await store.close()
      store = open(file)
      expect((await store.get('big')).length).toBe(blob.length)
      expect(await store.get('small')).toBe(1)
      await store.close()
    })

    test('a torn last record is dropped quietly', async () => {
      const file = freshPath()
      let store = open(file)
      await store.set('a', 1)
      await store.close()
      fs.appendFileSync(file, '1234abcd ["s","b",{"half":')
      store = open(file)
      expect(await store.get('a')).toBe(1)
      expect(await store.get('b')).toBeUndefined()
      await store.set('c', 3)
      await store.close()
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ a: 1, c: 3 })
    })

    test('damage before the end rejects with ERR_DATASTORE_CORRUPT and never touches the file', async () => {
      const file = freshPath()
      const first = open(file)
      await first.set('a', 1)
      await first.close()
      const base = fs.readFileSync(file, 'utf8')
      // Another process appends records and dies without compacting.
      const other = peer(file)
      await other.ask('set', 'x', 'xx')
      await other.ask('set', 'y', 'yy')
      await other.kill()
      const damaged = fs.readFileSync(file)
      expect(damaged.length).toBeGreaterThan(base.length)
      damaged[damaged.indexOf('"xx"') + 1] = 'z'.charCodeAt(0)
      fs.writeFileSync(file, damaged)

      const store = open(file)
      const e = await expectCode(store.get('a'), 'ERR_DATASTORE_CORRUPT')
      expect(e.message).toContain(file)
      expect(e.path).toBe(file)
      expect(e.position).toBe(base.length) // the first record starts right after the base
      await expectCode(store.set('z', 1), 'ERR_DATASTORE_CORRUPT')
      await expectCode(store.list(), 'ERR_DATASTORE_CORRUPT')
      await store.close()
      expect(fs.readFileSync(file).equals(damaged)).toBe(true)
    })

    test.each([['null'], ['[1,2]'], [''], ['{"a":1,"b":']])(
      'a base of %j is corruption, not an empty store',
      async (content) => {
        const file = freshPath()
        fs.writeFileSync(file, content)
        const store = open(file)
        const e = await expectCode(store.list(), 'ERR_DATASTORE_CORRUPT')
        expect(e.path).toBe(file)
        expect(typeof e.position).toBe('number')
        await expectCode(store.set('a', 1), 'ERR_DATASTORE_CORRUPT')
        await store.close()
        expect(fs.readFileSync(file, 'utf8')).toBe(content)
      },
    )

    test('50 concurrent sets as the very first operations on a new file are all stored', async () => {
      const file = freshPath()
      let store = open(file)
      const all = []
      for (let i = 0; i < 50; i++) all.push(store.set(`k${i}`, i))
      await Promise.all(all)
      await store.close()
      store = open(file)
      expect((await store.list()).length).toBe(50)
      for (let i = 0; i < 50; i++) expect(await store.get(`k${i}`)).toBe(i)
      await store.close()
    })

    test("durability 'fsync': concurrent writes resolve and persist", async () => {
      const file = freshPath()
      let store = open(file, { durability: 'fsync' })
      const all = []
      for (let i = 0; i < 50; i++) all.push(store.update(`k${i % 5}`, (v = 0) => v + 1))
      await Promise.all(all)
      await store.close()
      store = open(file, { durability: 'fsync' })
      for (let i = 0; i < 5; i++) expect(await store.get(`k${i}`)).toBe(10)
      await store.close()
    })

    test('the log is compacted in the background as it grows', async () => {
      const file = freshPath()
      const store = open(file)
      const value = 'v'.repeat(1000)
      for (let i = 0; i < 3000; i++) await store.set('same', `${i}${value}`)
      // 3 MB of records for a 1 KB store: compactions must have kept the file small.
      expect(fs.statSync(file).size).toBeLessThan(2.5 * 1024 * 1024)
      expect(await store.get('same')).toBe(`2999${value}`)
      await store.close()
      expect(fs.statSync(file).size).toBeLessThan(2000)
    })
  })

  describe('lifecycle', () => {
    const fdsTo = (file) =>
      fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(file)
        } catch {
          return false
        }
      }).length

    const linuxOnly = fs.existsSync('/proc/self/fd') ? test : test.skip
    linuxOnly('close() releases the data file and the lock file', async () => {
      const file = freshPath()
      const store = open(file)
      await store.set('a', 1)
      expect(fdsTo(file)).toBeGreaterThan(0)
      await store.close()
      expect(fdsTo(file)).toBe(0)
    })

    test.each([['write'], ['fsync']])(
      'an idle store never keeps the process alive (durability %s), and its writes are kept',
      async (durability) => {
        const file = freshPath()
        const first = await runChild('file-noclose.js', [file, durability])
        expect(first).toMatchObject({ code: 0, lines: [{ value: 1 }] })
        const second = await runChild('file-noclose.js', [file, durability])
        expect(second).toMatchObject({ code: 0, lines: [{ value: 2 }] })
        const store = open(file)
        expect(await store.get('left')).toBe(2)
        await store.close()
      },
    )
  })

  describe('several processes', () => {
    // (4 processes counting at once: the conformance suite's multiProcess test.)
    test('counting stays exact while every process keeps compacting the file', async () => {
      const file = freshPath()
      // Explicit compactions every 20 updates, background ones past 512 bytes.
      const spec = JSON.stringify({ kind: 'file', path: file })
      const options = JSON.stringify({ compactThreshold: 512 })
      const runs = await Promise.all(
        [0, 1, 2, 3].map(() => runChild('counter.js', [spec, 'counter', '250', options, '20'], 60000)),
      )
      for (const r of runs) expect(r).toMatchObject({ code: 0, lines: [{ errors: [] }] })
      const store = open(file)
      expect(await store.get('counter')).toBe(1000)
      await store.close()
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ counter: 1000 })
    })

    test('each process sees the others’ writes', async () => {
      const file = freshPath()
      const store = open(file)
      const other = peer(file)
      await store.set('from-parent', { n: 1 })
      expect((await other.ask('get', 'from-parent')).result).toEqual({ n: 1 })
      await other.ask('set', 'from-child', [1, 2])
      expect(await store.get('from-child')).toEqual([1, 2])
      // Reads that found the store current, then another process's write: seen at once.
      expect(await store.get('from-child')).toEqual([1, 2])
      await other.ask('set', 'from-child', [3])
      expect(await store.get('from-child')).toEqual([3])
      await other.ask('set', 'from-child', [1, 2])
      expect(await store.list('from-')).toEqual(['from-child', 'from-parent'])
      await store.remove('from-child')
      expect((await other.ask('get', 'from-child')).result).toBe('<undefined>')
      expect((await other.ask('list', 'from-')).result).toEqual(['from-parent'])
      await other.ask('close')
      await other.exited
      await store.close()
    })

    test('an updater holding key A in one process delays A, not B, in another', async () => {
      const file = freshPath()
      const store = open(file)
      const other = peer(file)
      const held = other.hold('A', 'from child')
      await held.holding
      // B is free: set, get and update go through while the child holds A.
      await store.set('B', 1)
      expect(await store.update('B', (v) => v + 1)).toEqual([1, 2])
      expect((await other.ask('get', 'B')).result).toBe(2)
      // A waits for the child's updater, then lands after it.
      let setDone = false
      const setA = store.set('A', 'from parent').then(() => (setDone = true))
      await sleep(200)
      expect(setDone).toBe(false)
      await other.ask('release', 'A')
      expect((await held.done).result).toEqual(
        ['<undefined>', 'from child'].map((v) => (v === '<undefined>' ? null : v)),
      )
      await setA
      expect(await store.get('A')).toBe('from parent')
      expect((await other.ask('get', 'A')).result).toBe('from parent')
      await other.ask('close')
      await other.exited
      await store.close()
    })

    test('SIGKILL at random moments never loses an acknowledged write (20 rounds)', async () => {
      const file = freshPath()
      const acked = new Set()
      const removed = new Set()
      const removing = new Set()
      const counters = new Map()
      const errors = []
      for (let round = 0; round < 20; round++) {
        const child = track(
          spawn(process.execPath, [fixture('file-crash.js'), file, String(round)], {
            stdio: ['ignore', 'pipe', 'inherit'],
          }),
        )
        let buffer = ''
        let firstAck
        const started = new Promise((resolve) => (firstAck = resolve))
        // 'close', not 'exit': lines still in the pipe when the child dies are read first.
        const exited = new Promise((resolve) => child.on('close', resolve))
        child.stdout.on('data', (d) => {
          buffer += d
          let nl
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const msg = JSON.parse(buffer.slice(0, nl))
            buffer = buffer.slice(nl + 1)
            if (msg.error) errors.push(msg.error)
            if (msg.set) acked.add(msg.set)
            if (msg.removed) removed.add(msg.removed)
            if (msg.removing) removing.add(msg.removing)
            if (msg.counter) counters.set(msg.counter, Math.max(counters.get(msg.counter) || 0, msg.value))
            firstAck()
          }
        })
        await Promise.race([started, exited])
        await sleep(Math.random() * 150)
        child.kill('SIGKILL')
        await exited
        expect(errors).toEqual([])

        const store = open(file)
        const keys = new Set(await store.list())
        const wrong = []
        for (const key of acked) {
          // A removal may have landed without its acknowledgement being printed.
          if (removing.has(key) && !removed.has(key)) continue
          if (keys.has(key) === removed.has(key)) wrong.push(key)
        }
        expect(wrong).toEqual([])
        for (const [name, value] of counters) {
          const stored = await store.get(name)
          // The last update may have landed without its acknowledgement being printed.
          expect(stored === value || stored === value + 1).toBe(true)
          counters.set(name, stored)
        }
        await store.close()
      }
      expect(acked.size).toBeGreaterThan(20)
    })
  })
})

describe('FileStoreAdapter: after a failed open, the next operation tries again', () => {
  test('a store in a folder that does not exist yet rejects its writes, then works once the folder is made', async () => {
    const folder = path.join(dir, `later-${counter++}`)
    const file = path.join(folder, 'store.json')
    const store = new FileStoreAdapter(file)
    // Writes open the file: each one fails while the folder is missing, and none is kept.
    const e = await expectCode(store.set('lost', 1), 'ERR_DATASTORE_IO')
    expect(e.message).toContain(file)
    await expectCode(
      store.update('counter', (n = 0) => n + 1),
      'ERR_DATASTORE_IO',
    )
    expect(fs.existsSync(folder)).toBe(false)

    fs.mkdirSync(folder)
    expect(await store.set('a', { n: 1 })).toEqual({ n: 1 })
    expect(await store.update('counter', (n = 0) => n + 1)).toEqual([undefined, 1])
    expect(await store.list()).toEqual(['a', 'counter'])
    expect(fs.existsSync(file)).toBe(true)
    await store.close()
    // Written to that path, as one JSON object (closed), which reshuffle and a new store read.
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ a: { n: 1 }, counter: 1 })
    expect(await new ReshuffleFileStoreAdapter(file).get('counter')).toBe(1)
    const again = open(file)
    expect(await again.get('a')).toEqual({ n: 1 })
    await again.close()
  })

  test('a path that is a folder rejects, then works once the folder is gone', async () => {
    const file = path.join(dir, `in-the-way-${counter++}.json`)
    fs.mkdirSync(file)
    const store = new FileStoreAdapter(file)
    const e = await expectCode(store.set('a', 1), 'ERR_DATASTORE_IO')
    expect(e.message).toContain(file)
    fs.rmdirSync(file)
    await store.set('b', 2)
    expect(await store.list()).toEqual(['b'])
    await store.close()
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ b: 2 })
  })
})

describe('FileStoreAdapter: unknown option names', () => {
  test.each([['colour'], ['durabilty'], ['poolSize'], ['prefix']])(
    'an option %j throws ERR_DATASTORE_INVALID_ARGUMENT naming it, and opens nothing',
    (name) => {
      const file = freshPath()
      let error
      try {
        new FileStoreAdapter(file, { [name]: 1 })
      } catch (e) {
        error = e
      }
      expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
      expect(error.message).toContain(`"${name}"`)
      // Alongside known ones too.
      error = undefined
      try {
        new FileStoreAdapter(file, { durability: 'fsync', lockTimeout: 100, [name]: 'x' })
      } catch (e) {
        error = e
      }
      expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
      expect(error.message).toContain(`"${name}"`)
      expect(fs.existsSync(file)).toBe(false)
    },
  )
})
