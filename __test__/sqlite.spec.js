'use strict'
const { spawn, spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { SQLStoreAdapter } = require('..')
const { runConformance, expectCode, sleep } = require('./conformance')

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rd-sqlite-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))
let counter = 0
const freshPath = () => path.join(tmp, `db${counter++}.sqlite`)

const pathOf = new WeakMap()
function openFile(p = freshPath(), table, options) {
  const store = new SQLStoreAdapter(p, table, options)
  pathOf.set(store, p)
  return store
}

// Rows written as another program would, with the sqlite3 program (Node 18's suite runs this
// file too, where better-sqlite3, built for the machine's Node, does not load).
const haveCli = spawnSync('sqlite3', ['-version']).status === 0
if (!haveCli)
  console.warn('SKIPPED: SQLite tests that write rows as another program, as the sqlite3 program is not installed')
const sqlite3 = (db, sql) => {
  const r = spawnSync('sqlite3', ['-cmd', '.timeout 5000', db, sql], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return r.stdout
}
const sqlText = (text) => (text === null ? 'NULL' : `'${text.replace(/'/g, "''")}'`)
const writeRow = (store, key, text) =>
  sqlite3(
    pathOf.get(store),
    `INSERT OR REPLACE INTO reshuffledb (id, value) VALUES (${sqlText(key)}, ${sqlText(text)})`,
  )

runConformance('SQLStoreAdapter (SQLite file)', async () => openFile(), {
  persistent: true,
  reopen: async (store) => {
    await store.close()
    return openFile(pathOf.get(store))
  },
  multiProcess: { spec: (store) => ({ kind: 'sqlite', path: pathOf.get(store) }) },
  foreign: haveCli && {
    write: async (store, key, text) => writeRow(store, key, text),
    noValue: async (store, key) => writeRow(store, key, null),
  },
})

runConformance('SQLStoreAdapter (SQLite :memory:)', async () => new SQLStoreAdapter(':memory:'), {
  persistent: false,
})

runConformance(
  "SQLStoreAdapter (SQLite file, durability 'fsync')",
  async () => openFile(freshPath(), 'reshuffledb', { durability: 'fsync' }),
  {
    persistent: true,
    reopen: async (store) => {
      await store.close()
      return openFile(pathOf.get(store), 'reshuffledb', { durability: 'fsync' })
    },
    multiProcess: {
      spec: (store) => ({ kind: 'sqlite', path: pathOf.get(store), options: { durability: 'fsync' } }),
    },
  },
)

// Child processes (lib/children.js): { code, lines }.
const { runChild: runFixture, fixture } = require('./lib/children')
async function runChild(name, args) {
  const r = await runFixture(fixture(name), args)
  return { code: r.code, lines: r.messages }
}

function thrownBy(f) {
  try {
    f()
  } catch (e) {
    return e
  }
  return undefined
}

describe('SQLStoreAdapter (SQLite): constructor', () => {
  test('an injected table name throws synchronously and runs nothing', async () => {
    const p = freshPath()
    const victim = openFile(p, 'victim')
    await victim.set('still', 'here')
    await victim.close()
    const e = thrownBy(() => new SQLStoreAdapter(p, 'x; DROP TABLE victim; --'))
    expect(e.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
    expect(e.message).toContain('x; DROP TABLE victim; --')
    const again = openFile(p, 'victim')
    expect(await again.get('still')).toBe('here')
    await again.close()
  })

  test('bad targets, tables and options throw ERR_DATASTORE_INVALID_ARGUMENT', () => {
    const p = freshPath()
    const bad = [
      () => new SQLStoreAdapter(),
      () => new SQLStoreAdapter(42),
      () => new SQLStoreAdapter(''),
      () => new SQLStoreAdapter(p, 42),
      () => new SQLStoreAdapter(p, 'a.b.c'),
      () => new SQLStoreAdapter(p, '1table'),
      () => new SQLStoreAdapter(p, 'reshuffledb', 'fsync'),
      () => new SQLStoreAdapter(p, 'reshuffledb', { durability: 'sometimes' }),
      () => new SQLStoreAdapter(p, 'reshuffledb', { durability: true }),
      () => new SQLStoreAdapter(p, 'reshuffledb', { lockTimeout: -5 }),
      () => new SQLStoreAdapter(p, 'reshuffledb', { colour: 'red' }),
    ]
    for (const f of bad) expect(thrownBy(f).code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
    expect(fs.existsSync(p)).toBe(false) // nothing was opened
  })

  test('PostgreSQL targets go to the PostgreSQL engine, never to a SQLite file', async () => {
    const before = fs.readdirSync(process.cwd())
    for (const target of [
      'postgres://u@localhost/db',
      'postgresql://u@localhost/db',
      { host: 'localhost', user: 'u' },
    ]) {
      // SQLite's options do not apply to PostgreSQL.
      const e = thrownBy(() => new SQLStoreAdapter(target, 'reshuffledb', { durability: 'fsync' }))
      expect(e.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
      // Constructing connects to nothing and creates no file.
      await new SQLStoreAdapter(target, 'reshuffledb').close()
    }
    expect(fs.readdirSync(process.cwd())).toEqual(before)
  })

  test('the defaults are reshuffle\'s: table "reshuffledb", durability normal', async () => {
    const p = freshPath()
    const a = openFile(p)
    await a.set('k', 1)
    await a.close()
    const b = openFile(p, 'reshuffledb', { durability: 'normal' })
    expect(await b.get('k')).toBe(1)
    await b.close()
  })

  test('tables are independent; schema-qualified names work (main.table)', async () => {
    const p = freshPath()
    const a = openFile(p, 'one')
    const b = openFile(p, 'main.two')
    await a.set('k', 'a')
    await b.set('k', 'b')
    expect(await a.get('k')).toBe('a')
    expect(await b.get('k')).toBe('b')
    await Promise.all([a.close(), b.close()])
  })
})

describe('SQLStoreAdapter (SQLite): tables of one file', () => {
  test('an updater of one table may update the same key of another table (no self-wait)', async () => {
    const p = freshPath()
    const one = openFile(p, 'one')
    const two = openFile(p, 'two')
    const result = await one.update('x', async () => {
      await two.update('x', () => 'inner')
      return 'outer'
    })
    expect(result).toEqual([undefined, 'outer'])
    expect(await two.get('x')).toBe('inner')
    await Promise.all([one.close(), two.close()])
  })
})

describe('SQLStoreAdapter (SQLite): errors', () => {
  test('a missing folder rejects the first operation with ERR_DATASTORE_IO naming the path', async () => {
    const p = path.join(tmp, 'no', 'such', 'folder', 'db.sqlite')
    const store = new SQLStoreAdapter(p)
    const e = await expectCode(store.get('k'), 'ERR_DATASTORE_IO')
    expect(e.message).toContain(p)
    await expectCode(store.set('k', 1), 'ERR_DATASTORE_IO')
    await store.close()
  })

  test('a directory rejects with ERR_DATASTORE_IO naming the path', async () => {
    const store = new SQLStoreAdapter(tmp)
    const e = await expectCode(store.set('k', 1), 'ERR_DATASTORE_IO')
    expect(e.message).toContain(tmp)
    await store.close()
  })

  test("SQLite's errors reach JS as ERR_DATASTORE_BACKEND with its message and the table", async () => {
    const store = openFile(freshPath(), 'nosuchschema.items')
    const e = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
    expect(e.message).toContain('nosuchschema.items')
    expect(e.message).toMatch(/unknown database/)
    await store.close()
  })
})

describe('SQLStoreAdapter (SQLite): concurrency and processes', () => {
  test('50 concurrent sets as the very first operations on a new database all succeed', async () => {
    const store = openFile()
    const all = []
    for (let i = 0; i < 50; i++) all.push(store.set(`k${String(i).padStart(2, '0')}`, i))
    expect(await Promise.all(all)).toEqual([...Array(50).keys()])
    expect((await store.list()).length).toBe(50)
    await store.close()
  })

  test('once open, an uncontended get or set settles without waiting for another thread', async () => {
    const store = openFile()
    await store.set('warm', 0)
    let settled = 0
    store.set('k', 1).then(() => settled++)
    store.get('k').then(() => settled++)
    store.update('k', (v) => v + 1).then(() => settled++)
    for (let i = 0; i < 5; i++) await Promise.resolve()
    expect(settled).toBe(3)
    expect(await store.get('k')).toBe(2)
    await store.close()
  })

  test('3 processes creating the same new database at once: every set succeeds', async () => {
    const p = freshPath()
    const startAt = String(Date.now() + 300)
    const runs = await Promise.all(['a', 'b', 'c'].map((name) => runChild('sqlite-burst.js', [p, name, '50', startAt])))
    for (const { code, lines } of runs) {
      expect(code).toBe(0)
      expect(lines).toEqual([{ ok: 50, failed: [] }])
    }
    const store = openFile(p)
    expect((await store.list()).length).toBe(150)
    expect(await store.get('b-49')).toEqual({ name: 'b', i: 49 })
    await store.close()
  })

  test('getMany reads one snapshot while another process rewrites its keys together', async () => {
    const p = freshPath()
    const store = openFile(p)
    await store.setMany([
      ['a', 0],
      ['b', 0],
    ])
    let done = false
    const writer = runChild('sqlite-pairs.js', [p, '3000']).finally(() => {
      done = true
    })
    let torn = 0
    const seen = new Set()
    while (!done) {
      const [a, b] = await store.getMany(['a', 'b'])
      if (a !== b) torn++
      seen.add(a)
      // A read settles without I/O: let the loop see the writer's exit.
      await new Promise((resolve) => setImmediate(resolve))
    }
    const { code, lines } = await writer
    expect(code).toBe(0)
    expect(lines).toEqual([{ written: 3000 }])
    expect(torn).toBe(0)
    // The reads overlapped the writes: they saw many of the pairs written.
    expect(seen.size).toBeGreaterThan(100)
    expect(await store.getMany(['a', 'b'])).toEqual([3000, 3000])
    await store.close()
  })

  test('a slow updater of key A in another process holds A but does not delay B', async () => {
    const p = freshPath()
    const store = openFile(p)
    await store.set('A', 'before')
    const child = spawn(process.execPath, [fixture('sqlite-slow.js'), p, 'A'], { stdio: ['pipe', 'pipe', 'inherit'] })
    const lines = []
    let notify = () => {}
    let buffer = ''
    child.stdout.on('data', (d) => {
      buffer += d
      let i
      while ((i = buffer.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buffer.slice(0, i)))
        buffer = buffer.slice(i + 1)
        notify()
      }
    })
    const exited = new Promise((resolve) => child.on('exit', resolve))
    const waitFor = async (pred) => {
      while (!lines.some(pred)) await new Promise((resolve) => (notify = resolve))
    }
    await waitFor((l) => l.holding)

    // The child is inside its updater of A, and cannot leave it until we write to its stdin.
    expect(await store.set('B', 'free')).toBe('free')
    expect(await store.get('A')).toBe('before') // a get sees the last committed value
    let setA = false
    const pendingA = store.set('A', 'parent').then(() => (setA = true))
    await sleep(300)
    expect(setA).toBe(false) // A is locked by the child
    expect(lines.some((l) => l.done)).toBe(false)

    child.stdin.write('go\n')
    await pendingA
    await waitFor((l) => l.done)
    expect(lines.find((l) => l.done).done).toEqual(['before', 'child'])
    expect(await store.get('A')).toBe('parent') // ours was queued behind the child's update
    expect(await exited).toBe(0)
    await store.close()
  })

  test('crash loop: every acknowledged write survives SIGKILL at random moments (20 rounds)', async () => {
    const p = freshPath()
    let lastCounter = 0
    for (let round = 0; round < 20; round++) {
      const child = spawn(process.execPath, [fixture('sqlite-crash-writer.js'), p, String(round)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      let out = ''
      let first
      const started = new Promise((resolve) => (first = resolve))
      child.stdout.on('data', (d) => {
        out += d
        first()
      })
      const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal)))
      await started
      await sleep(Math.floor(Math.random() * 150))
      child.kill('SIGKILL')
      expect(await exited).toBe('SIGKILL')
      // Only whole lines are acknowledgements (the kill may cut the last one).
      const acked = out
        .split('\n')
        .slice(0, -1)
        .map((l) => JSON.parse(l))
      const keys = acked.filter((l) => l.set).map((l) => l.set)
      const counters = acked.filter((l) => l.counter).map((l) => l.counter)
      expect(keys.length).toBeGreaterThan(0)
      const store = openFile(p)
      const listed = new Set(await store.list(`r${round}-`))
      for (const k of keys) expect(listed.has(k)).toBe(true)
      const last = keys[keys.length - 1]
      expect(await store.get(last)).toMatchObject({ round, i: keys.length - 1 })
      // Round 0 may be killed before its first update is acknowledged: then no counter is
      // an honest answer. Once a counter was seen it must never be missing or go back.
      const counter = await store.get('counter')
      await store.close()
      if (lastCounter === 0 && counters.length === 0 && counter === undefined) continue
      expect(typeof counter).toBe('number')
      if (counters.length) expect(counter).toBeGreaterThanOrEqual(counters[counters.length - 1])
      expect(counter).toBeGreaterThanOrEqual(lastCounter)
      lastCounter = counter
    }
  })

  test('an idle store does not keep the process alive, and its resolved write is kept', async () => {
    const p = freshPath()
    const { code, lines } = await runChild('sqlite-idle.js', [p])
    expect(code).toBe(0)
    expect(lines).toEqual([{ written: true }])
    const store = openFile(p)
    expect(await store.get('idle')).toEqual({ written: true })
    await store.close()
  })

  test('close() releases the connection: the WAL is checkpointed away and locks are free', async () => {
    const p = freshPath()
    const store = openFile(p)
    await store.set('k', 1)
    expect(fs.existsSync(`${p}-wal`)).toBe(true)
    expect(fs.existsSync(`${p}.reshuffle-lock`)).toBe(true)
    await store.close()
    expect(fs.existsSync(`${p}-wal`)).toBe(false)
    // Another process can take every lock at once.
    const spec = JSON.stringify({ kind: 'sqlite', path: p })
    const { code, lines } = await runChild('counter.js', [spec, 'k', '5'])
    expect(code).toBe(0)
    expect(lines).toEqual([{ done: 5, errors: [] }])
    const again = openFile(p)
    expect(await again.get('k')).toBe(6)
    await again.close()
  })

  test("':memory:' stores are private and leave no file behind", async () => {
    const cwd = fs.readdirSync(process.cwd())
    const a = new SQLStoreAdapter(':memory:')
    const b = new SQLStoreAdapter(':memory:')
    await a.set('k', 'a')
    expect(await b.get('k')).toBeUndefined()
    await Promise.all([a.close(), b.close()])
    expect(fs.readdirSync(process.cwd())).toEqual(cwd)
  })
})

describe('SQLStoreAdapter (SQLite): values', () => {
  test('a 64 MiB value round-trips through the file', async () => {
    const p = freshPath()
    const store = openFile(p)
    const blob = 'x'.repeat(64 * 1024 * 1024 - 16)
    await store.set('big', blob)
    await store.close()
    const again = openFile(p)
    const got = await again.get('big')
    expect(got.length).toBe(blob.length)
    expect(got === blob).toBe(true)
    await again.close()
  })
})

describe('SQLStoreAdapter (SQLite): list', () => {
  test('prefix ranges end inside multi-byte characters correctly, sorted by code point', async () => {
    const store = openFile()
    const keys = ['é', 'éa', 'ê', 'e', 'f', '🎉', '\uFFFD', 'é\u0000', 'e\u0000', 'ez']
    for (const k of keys) await store.set(k, k)
    expect(await store.list('é')).toEqual(['é', 'é\u0000', 'éa'])
    expect(await store.list('e')).toEqual(['e', 'e\u0000', 'ez'])
    expect(await store.list('🎉')).toEqual(['🎉'])
    expect(await store.list()).toEqual(['e', 'e\u0000', 'ez', 'f', 'é', 'é\u0000', 'éa', 'ê', '\uFFFD', '🎉'])
    await store.close()
  })
})

// reshuffle's own SQLStoreAdapter speaks only PostgreSQL; its table is made with the same
// DDL, pasted unquoted. These tests use the sqlite3 program as "another program" (the Rust
// tests do the same with a plain rusqlite connection, without needing the program).
;(haveCli ? describe : describe.skip)('SQLStoreAdapter (SQLite): compatibility (sqlite3 CLI)', () => {
  test("reads a table made as reshuffle makes it, with other programs' JSON rows", async () => {
    const p = freshPath()
    sqlite3(
      p,
      'CREATE TABLE IF NOT EXISTS reshuffledb (id varchar primary key, value varchar);' +
        `INSERT INTO reshuffledb VALUES ('obj', '{"a":[1,2,{"b":null}]}'), ('str', '"text"'), ('num', '42'), ('app/x', 'true');`,
    )
    const store = openFile(p)
    expect(await store.get('obj')).toEqual({ a: [1, 2, { b: null }] })
    expect(await store.get('str')).toBe('text')
    expect(await store.get('num')).toBe(42)
    expect(await store.list('app/')).toEqual(['app/x'])
    expect(await store.update('num', (n) => n + 1)).toEqual([42, 43])
    await store.close()
  })

  test('our rows are plain JSON text that another program reads', async () => {
    const p = freshPath()
    const store = openFile(p)
    const value = { when: new Date('2020-01-02T03:04:05.000Z'), list: [1, 'two'], nested: { ok: true } }
    await store.set('k', value)
    await store.close()
    expect(sqlite3(p, "SELECT typeof(value) FROM reshuffledb WHERE id = 'k'").trim()).toBe('text')
    const text = sqlite3(p, "SELECT value FROM reshuffledb WHERE id = 'k'").trim()
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)))
    // reshuffle's own columns, plus the nullable expiry column it never names (see README).
    expect(sqlite3(p, '.schema reshuffledb')).toContain('(id varchar primary key, value varchar, expires_at integer)')
  })
})

describe('SQLStoreAdapter (SQLite): after a failed open, the next operation tries again', () => {
  test('a database in a folder that does not exist yet rejects, then works once the folder is made', async () => {
    const folder = path.join(tmp, `later-${counter++}`)
    const p = path.join(folder, 'db.sqlite')
    const store = new SQLStoreAdapter(p)
    const e = await expectCode(store.get('k'), 'ERR_DATASTORE_IO')
    expect(e.message).toContain(p)
    // Every operation tries to open it again, and fails the same way while the folder is missing.
    await expectCode(store.set('lost', 1), 'ERR_DATASTORE_IO')
    await expectCode(
      store.update('counter', (n = 0) => n + 1),
      'ERR_DATASTORE_IO',
    )
    expect(fs.existsSync(folder)).toBe(false)

    fs.mkdirSync(folder)
    expect(await store.set('a', { n: 1 })).toEqual({ n: 1 })
    expect(await store.update('counter', (n = 0) => n + 1)).toEqual([undefined, 1])
    expect(await store.list()).toEqual(['a', 'counter'])
    await store.close()
    // Written to that path: a new store, and another program, read it there.
    expect(fs.existsSync(p)).toBe(true)
    const again = openFile(p)
    expect(await again.get('a')).toEqual({ n: 1 })
    expect(await again.get('lost')).toBeUndefined()
    expect(await again.list()).toEqual(['a', 'counter'])
    await again.close()
    if (haveCli) expect(sqlite3(p, "SELECT value FROM reshuffledb WHERE id = 'counter'").trim()).toBe('1')
  })

  test('a path that is a folder rejects, then works once the folder is gone', async () => {
    const p = freshPath()
    fs.mkdirSync(p)
    const store = new SQLStoreAdapter(p)
    const e = await expectCode(store.set('a', 1), 'ERR_DATASTORE_IO')
    expect(e.message).toContain(p)
    fs.rmdirSync(p)
    await store.set('b', 2)
    expect(await store.list()).toEqual(['b'])
    await store.close()
    expect(fs.statSync(p).isFile()).toBe(true)
    const again = openFile(p)
    expect(await again.get('b')).toBe(2)
    await again.close()
  })
})
