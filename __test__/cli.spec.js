// The command line (README, Command line): every command run as users run it, in a child
// process; reshuffle's own JSON file copied to SQLite and PostgreSQL and back; export | import;
// stats and compact on a file store with appended records; errors and exit statuses. Then the
// parts the commands are made of: the target rule, the JSON object reader, the progress line and
// the choice between streaming and list()/get()/set().
'use strict'
const fs = require('fs')
const os = require('os')
const path = require('path')
const { FileStoreAdapter: ReshuffleFileStoreAdapter } = require('reshuffle')
const api = require('..')
const { runNode } = require('./lib/children')
const { pgReachable, pgConfig, dropTables, random } = require('./lib/stores')
const { applyDefaults } = require('./lib/postgres-env')
const { redisUrl, redisReachable } = require('./lib/redis-env')
const { resolveTarget, UsageError, CommandError } = require('../bin/lib/targets')
const { ObjectReader, InputError } = require('../bin/lib/object-reader')
const { Progress } = require('../bin/lib/progress')
const { access } = require('../bin/lib/access')
const pkg = require('../package.json')

const BIN = path.join(__dirname, '..', pkg.bin['reshuffle-datastore'])

const requirePg = process.env.RESHUFFLE_DATASTORE_REQUIRE_PG === '1'
const pg = pgReachable()
if (!pg.ok) {
  const banner = '#'.repeat(78)
  console.warn(
    `${banner}\n# Command line tests on PostgreSQL SKIPPED: no server (${pg.why.split('\n')[0]}).\n` +
      `# Set RESHUFFLE_DATASTORE_REQUIRE_PG=1 to make this a failure.\n${banner}`,
  )
}
const describePg = pg.ok ? describe : describe.skip

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rds-cli-'))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let counter = 0
const fresh = (ext) => path.join(dir, `s${counter++}${ext}`)

// Runs the command line; PG* variables (with this machine's defaults) are in its environment.
const cli = (args, options = {}) => runNode([BIN, ...args], { env: applyDefaults({ ...process.env }), ...options })

// A postgres:// URL for the test server, from the same settings as every PostgreSQL test.
function pgUrl() {
  const { host, port, user, password, database } = pgConfig()
  if (host.startsWith('/')) return 'postgres://' // a socket folder: PGHOST in the environment says it
  const auth = encodeURIComponent(user) + (password ? `:${encodeURIComponent(password)}` : '')
  return `postgres://${auth}@${host}${port ? `:${port}` : ''}/${encodeURIComponent(database)}`
}

// What reshuffle apps keep, and keys and values that are easy to get wrong on the way.
const DATA = {
  cursor: { offset: 10, at: '2026-01-01T00:00:00.000Z' },
  jobs: ['a', 'b', { nested: [1, 2, { deep: null }] }],
  counter: 42,
  small: -1.5e-7,
  flag: false,
  nothing: null,
  empty: '',
  emptyObject: {},
  emptyArray: [],
  'quote"s and \\backslashes': 'value with "quotes" and \\',
  'per%cent/slash': 'a/b%20',
  'emoji 😀 é': '😀 and é and \u2028 and \uffff',
  '\uffff': 'the last BMP character',
  10: 'an integer-like key',
  2: 'another one',
  'line\nbreak\ttab': 'value\r\nwith line breaks\t',
  'comma,}]': '{"not": "an object"}, ]',
  big: 'x'.repeat(1 << 20),
}

// Writes `data` with reshuffle 1.0.9's own FileStoreAdapter: its JSON file, as an app left it.
async function writeReshuffleFile(file, data) {
  const store = new ReshuffleFileStoreAdapter(file)
  for (const [key, value] of Object.entries(data)) await store.set(key, value)
  return fs.readFileSync(file)
}

// What reshuffle's FileStoreAdapter reads from `file`.
async function readWithReshuffle(file) {
  const store = new ReshuffleFileStoreAdapter(file)
  const read = {}
  for (const key of await store.list()) read[key] = await store.get(key)
  return read
}

// Makes a file store with `ops` ([key, value] sets, [key] removes) in a process that exits
// without close(), so every write is still an appended record.
async function fileStoreWithRecords(file, ops) {
  const script = `
    const { FileStoreAdapter } = require(${JSON.stringify(require.resolve('..'))})
    const store = new FileStoreAdapter(${JSON.stringify(file)})
    ;(async () => {
      for (const op of ${JSON.stringify(ops)}) await (op.length === 2 ? store.set(op[0], op[1]) : store.remove(op[0]))
    })()
  `
  const r = await runNode(['-e', script])
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
}

async function exported(target, args = []) {
  const r = await cli(['export', target, ...args])
  expect(r.stderr).toMatch(/^exported \d+ keys? from /)
  expect(r.code).toBe(0)
  return JSON.parse(r.stdout)
}

test('the PostgreSQL server is reachable, or its tests are allowed to be skipped', () => {
  expect(pg.ok || !requirePg).toBe(true)
})

test('--help prints the usage and --version the version, with exit status 0', async () => {
  const help = await cli(['--help'])
  expect(help.code).toBe(0)
  for (const command of [
    'compact <file>',
    'export <target>',
    'import <target>',
    'copy <from> <to>',
    'stats <target>',
  ]) {
    expect(help.stdout).toContain(command)
  }
  expect(help.stdout).toMatch(/postgres:\/\//)
  const version = await cli(['--version'])
  expect(version.code).toBe(0)
  expect(version.stdout.trim()).toBe(pkg.version)
})

describe("reshuffle's JSON file, copied to another backend and back", () => {
  async function roundTrip(data, there, args = {}) {
    const source = fresh('.json')
    const original = await writeReshuffleFile(source, data)
    const to = await cli(['copy', source, there, ...(args.to || [])])
    expect(to.stderr).toMatch(new RegExp(`^copied ${Object.keys(data).length} keys \\(`))
    expect(to.code).toBe(0)
    expect(fs.readFileSync(source).equals(original)).toBe(true) // the source is left as it was

    const back = fresh('.json')
    const from = await cli(['copy', there, back, ...(args.from || [])])
    expect(from.stderr).toMatch(new RegExp(`^copied ${Object.keys(data).length} keys \\(`))
    expect(from.code).toBe(0)
    // The copy is closed, so its file is one JSON object again, as reshuffle reads it.
    expect(JSON.parse(fs.readFileSync(back, 'utf8'))).toEqual(data)
    expect(await readWithReshuffle(back)).toEqual(data)
  }

  test('to SQLite and back', async () => {
    await roundTrip({ ...DATA, 'nul\u0000key': 'NUL is a character like any other' }, fresh('.db'))
  })

  test('to SQLite in a table of its own, named sqlite:<path>', async () => {
    const db = `sqlite:${fresh('.data')}`
    await roundTrip(DATA, db, { to: ['--table', 'app_state'], from: ['--from-table=app_state'] })
  })

  const describeRedis = redisReachable().ok ? describe : describe.skip
  describeRedis('Redis', () => {
    test('to Redis (a database of its own) and back', async () => {
      const url = new URL(redisUrl())
      url.pathname = '/9'
      const Redis = require('ioredis')
      const admin = new Redis(url.toString())
      await admin.flushdb()
      try {
        await roundTrip({ ...DATA, 'nul\u0000key': 'NUL is a character like any other' }, url.toString())
      } finally {
        await admin.flushdb()
        await admin.quit()
      }
    })
  })

  describePg('PostgreSQL', () => {
    const tables = []
    afterAll(() => dropTables(pgConfig(), tables))
    const table = () => {
      const name = `rds_cli_${process.pid}_${counter++}`
      tables.push(name)
      return name
    }

    test('to PostgreSQL and back', async () => {
      const t = table()
      await roundTrip(DATA, pgUrl(), { to: ['--table', t], from: ['--table', t] })
    })

    test('SQLite to PostgreSQL, one table to another', async () => {
      const db = fresh('.db')
      await cli(['copy', await fileWith(DATA), db])
      const t = table()
      const r = await cli(['copy', db, pgUrl(), '--to-table', t])
      expect(r.code).toBe(0)
      expect(await exported(pgUrl(), ['--table', t])).toEqual(DATA)
    })

    test('a key PostgreSQL cannot hold stops the copy with its code, saying what was written', async () => {
      const t = table()
      const r = await cli(['copy', await fileWith({ a: 1, 'nul\u0000key': 2 }), pgUrl(), '--table', t])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/ERR_DATASTORE_INVALID_KEY: .*NUL/)
      // One batch: with set(), the key before it was written; with an all-or-nothing setMany(), nothing.
      expect(r.stderr).toMatch(/(1 key was|nothing was) written to PostgreSQL .* before the error/)
    })

    test('a table that already holds keys is refused, and merged into with --merge', async () => {
      const t = table()
      expect((await cli(['copy', await fileWith({ a: 1, b: 2 }), pgUrl(), '--table', t])).code).toBe(0)
      const refused = await cli(['copy', await fileWith({ b: 3 }), pgUrl(), '--table', t])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/already holds keys: pass --merge/)
      const merged = await cli(['copy', await fileWith({ b: 3, c: 4 }), pgUrl(), '--table', t, '--merge'])
      expect(merged.code).toBe(0)
      expect(await exported(pgUrl(), ['--table', t])).toEqual({ a: 1, b: 3, c: 4 })
    })

    test('stats on a table', async () => {
      const t = table()
      await cli(['copy', await fileWith({ a: 1, bb: 'xy' }), pgUrl(), '--table', t])
      const r = await cli(['stats', pgUrl(), '--table', t, '--json'])
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'postgres', keys: 2, keyBytes: 3, valueBytes: 5 })
    })
  })
})

// A reshuffle JSON file holding `data`.
async function fileWith(data) {
  const file = fresh('.json')
  await writeReshuffleFile(file, data)
  return file
}

describe('export | import', () => {
  test('a file store with records, exported, imported into SQLite and exported again', async () => {
    const file = fresh('.json')
    await fileStoreWithRecords(file, [
      ['a', 1],
      ['__proto__', { polluted: true }],
      ['b', { x: [1, 'é'] }],
      ['a', 2],
      ['gone', true],
      ['gone'],
      ['😀', '\u2028'],
    ])
    const expected = JSON.parse('{"a":2,"__proto__":{"polluted":true},"b":{"x":[1,"é"]},"😀":"\\u2028"}')
    const out = await cli(['export', file])
    expect(out.code).toBe(0)
    expect(out.stderr).toBe(`exported 4 keys from file store ${file}\n`)
    expect(JSON.parse(out.stdout)).toEqual(expected)

    const db = fresh('.db')
    const imported = await cli(['import', db], { input: out.stdout })
    expect(imported.stderr).toBe(`imported 4 keys into SQLite database ${db} (table reshuffledb)\n`)
    expect(imported.code).toBe(0)
    expect(await exported(db)).toEqual(expected)
    const store = new api.SQLStoreAdapter(db, 'reshuffledb')
    expect(await store.get('__proto__')).toEqual({ polluted: true })
    await store.close()
  })

  test('import reads pretty-printed JSON, and a key given twice keeps its last value', async () => {
    const db = fresh('.db')
    const input = '\ufeff{\n  "k": 1,\n  "list": [ 1, 2 ],\n  "k": { "last": true }\n}\n'
    const r = await cli(['import', db, '-q'], { input })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(await exported(db)).toEqual({ k: { last: true }, list: [1, 2] })
  })

  test('import of many keys writes them all, in batches', async () => {
    const data = {}
    for (let i = 0; i < 3000; i++) data[`key ${i}`] = { i, text: 'v'.repeat(i % 50) }
    const file = fresh('.json')
    const r = await cli(['import', file], { input: JSON.stringify(data) })
    expect(r.stderr).toBe(`imported 3,000 keys into file store ${file}\n`)
    expect(r.code).toBe(0)
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(data) // closed: one JSON object
  })

  test('import refuses a store that holds keys, and merges into it with --merge', async () => {
    const db = fresh('.db')
    expect((await cli(['import', db], { input: '{"a":1,"b":2}' })).code).toBe(0)
    const refused = await cli(['import', db], { input: '{"b":3}' })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/already holds keys: pass --merge/)
    expect((await cli(['import', db, '--merge'], { input: '{"b":3,"c":4}' })).code).toBe(0)
    expect(await exported(db)).toEqual({ a: 1, b: 3, c: 4 })
  })

  test('input that is not one JSON object is refused, and nothing is written', async () => {
    const cases = [
      ['', /stdin is empty/],
      ['[1, 2]', /expected an object/],
      ['{"a":1,}', /expected a key/],
      ['{"a": undefined}', /the value of key "a" is not JSON/],
      ['{"a":1', /ends inside the object/],
      ['{"a":1}\n3b1f09a2 ["s","a",2]\n', /text after the object .*run compact on it, or use copy/],
    ]
    for (const [input, message] of cases) {
      const db = fresh('.db')
      const r = await cli(['import', db], { input })
      expect(r.stderr).toMatch(message)
      expect(r.stderr).toMatch(/nothing was written to SQLite database/)
      expect(r.code).toBe(1)
      expect(await exported(db)).toEqual({})
    }
  })

  test('a value the store refuses stops the import with its code', async () => {
    const r = await cli(['import', fresh('.json')], { input: '{"ok":1,"\\ud800":2}' })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^reshuffle-datastore import: ERR_DATASTORE_INVALID_KEY: /)
  })
})

describe('stats', () => {
  test('a file store with appended records: keys, bytes, file size and records; the file is untouched', async () => {
    const file = fresh('.json')
    await fileStoreWithRecords(file, [['a', 1], ['bb', { x: 2 }], ['a', 'é'], ['bb']])
    const before = fs.readFileSync(file)
    const r = await cli(['stats', file, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      target: `file store ${file}`,
      kind: 'file',
      keys: 1,
      keyBytes: 1,
      valueBytes: 4, // "é"
      fileBytes: before.length,
      baseBytes: 3, // {}\n
      records: 4,
      tornBytes: 0,
    })
    expect(fs.readFileSync(file)).toEqual(before)

    const text = await cli(['stats', file])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^file store .*\n {2}keys +1\n {2}key bytes +1\n {2}value bytes +4\n/)
    expect(text.stdout).toMatch(/\n {2}records +4\n$/)
  })

  test('a torn last record is counted apart, and not read', async () => {
    const file = fresh('.json')
    await fileStoreWithRecords(file, [['a', 1]])
    const torn = '0badc0de ["s","b",'
    fs.appendFileSync(file, torn)
    const r = await cli(['stats', file, '--json'])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ keys: 1, records: 1, tornBytes: torn.length })
  })

  test("reshuffle's file: one JSON object, no records", async () => {
    const file = await fileWith({ a: 1, b: [true] })
    const r = await cli(['stats', file, '--json'])
    expect(JSON.parse(r.stdout)).toMatchObject({
      keys: 2,
      keyBytes: 2,
      valueBytes: 7,
      fileBytes: fs.statSync(file).size,
      baseBytes: fs.statSync(file).size,
      records: 0,
    })
  })

  test('a SQLite database', async () => {
    const db = fresh('.sqlite3')
    await cli(['copy', await fileWith({ a: 1 }), db])
    const r = await cli(['stats', db, '--json'])
    expect(r.code).toBe(0)
    const figures = JSON.parse(r.stdout)
    expect(figures).toMatchObject({ kind: 'sqlite', keys: 1, keyBytes: 1, valueBytes: 1 })
    expect(figures.fileBytes).toBeGreaterThan(0)
  })
})

describe('compact', () => {
  test('a file store with records becomes one JSON object that reshuffle reads', async () => {
    const file = fresh('.json')
    await fileStoreWithRecords(file, [['a', 1], ['b', [1, 2]], ['a', { now: 'é' }], ['c', null], ['c']])
    const r = await cli(['compact', file])
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/^compacted file store .*: 5 records folded in, \d+ B -> \d+ B\n$/)
    const expected = { a: { now: 'é' }, b: [1, 2] }
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(expected)
    expect(await readWithReshuffle(file)).toEqual(expected)
    const stats = await cli(['stats', file, '--json'])
    expect(JSON.parse(stats.stdout)).toMatchObject({ keys: 2, records: 0 })
  })

  test('only a file store that exists', async () => {
    const db = fresh('.db')
    await cli(['copy', await fileWith({ a: 1 }), db])
    const onDb = await cli(['compact', db])
    expect(onDb.code).toBe(2)
    expect(onDb.stderr).toMatch(/compact works on a file store; .* is a SQLite database/)
    const missing = fresh('.json')
    const r = await cli(['compact', missing])
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(`reshuffle-datastore compact: no such file: ${missing}\n`)
    expect(fs.existsSync(missing)).toBe(false)
  })
})

describe('errors', () => {
  test('a corrupt file: every command exits 1 with ERR_DATASTORE_CORRUPT, and the file is untouched', async () => {
    const file = fresh('.json')
    const damaged = '{"a":1}\nnot a record\n12345678 ["s","b",2]\n'
    fs.writeFileSync(file, damaged)
    for (const args of [
      ['export', file],
      ['stats', file],
      ['compact', file],
      ['copy', file, fresh('.db')],
    ]) {
      const r = await cli(args)
      expect(r.stderr).toMatch(
        new RegExp(`^reshuffle-datastore ${args[0]}: ERR_DATASTORE_CORRUPT: .*corrupt at byte 8`),
      )
      expect(r.code).toBe(1)
      expect(r.stdout).toBe('')
    }
    expect(fs.readFileSync(file, 'utf8')).toBe(damaged)
  })

  test('a database that cannot be reached exits 1 with ERR_DATASTORE_BACKEND', async () => {
    const r = await cli(['export', 'postgres://nobody:secret@127.0.0.1:1/nothing'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^reshuffle-datastore export: ERR_DATASTORE_BACKEND: cannot connect/)
    expect(r.stderr).not.toMatch(/secret/)
  })

  test('a missing source exits 1, and is not created', async () => {
    for (const ext of ['.json', '.db']) {
      const missing = fresh(ext)
      const r = await cli(['export', missing])
      expect(r.stderr).toBe(`reshuffle-datastore export: no such file: ${missing}\n`)
      expect(r.code).toBe(1)
      expect(fs.existsSync(missing)).toBe(false)
    }
  })

  test('usage errors print the usage and exit 2', async () => {
    const file = await fileWith({ a: 1 })
    const cases = [
      [[], /no command given/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['constructor'], /unknown command "constructor"/],
      [['export'], /export takes <target>/],
      [['copy', file], /copy takes <from> <to>/],
      [['export', file, 'extra'], /export takes <target>/],
      [['export', file, '--bogus'], /unknown option --bogus/],
      [['export', file, '-x'], /unknown option -x/],
      [['stats', file, '--merge'], /stats has no option --merge/],
      [['export', file, '--table'], /--table needs a value/],
      [['export', file, '--table', 't'], /is a file store, which has no table/],
      [['copy', file, fresh('.json'), '--table', 't'], /neither target has a table/],
      [['copy', file, fresh('.db'), '--from-table', 't'], /has no table: --from-table is for SQL targets/],
      [['copy', file, file], /copy from file store .* to itself/],
      [['export', 'ftp://host/file'], /unknown kind of target ftp:\/\//],
      [['import', fresh('')], /does not exist yet, so its name must say what it is/],
    ]
    for (const [args, message] of cases) {
      const r = await cli(args, { input: '{}' })
      expect(r.stderr).toMatch(message)
      expect(r.stderr).toMatch(/\nUsage: reshuffle-datastore <command> \[options\]\n/)
      expect(r.code).toBe(2)
    }
  })
})

describe('the target rule', () => {
  const kind = (text, role = 'destination') => resolveTarget(text, { role }).kind

  test('prefixes, URLs and extensions', () => {
    expect(kind('a.json')).toBe('file')
    expect(kind('A.JSON')).toBe('file')
    expect(kind('a.db')).toBe('sqlite')
    expect(kind('a.sqlite')).toBe('sqlite')
    expect(kind('a.sqlite3')).toBe('sqlite')
    expect(kind('file:a.db')).toBe('file')
    expect(kind('sqlite:a.json')).toBe('sqlite')
    expect(resolveTarget('file:///tmp/x.state', { role: 'destination' }).path).toBe('/tmp/x.state')
    expect(kind('postgres://u@h/d')).toBe('postgres')
    expect(kind('postgresql://u@h/d')).toBe('postgres')
    expect(kind('mysql://u@h/d')).toBe('mysql')
    expect(kind('redis://h')).toBe('redis')
    expect(kind('rediss://h')).toBe('redis')
    expect(resolveTarget('a.db', { role: 'destination' }).table).toBe('reshuffledb')
    expect(resolveTarget('redis://h', { role: 'destination' }).table).toBeUndefined()
  })

  test('any other existing path by its content; a new one must say what it is', async () => {
    const sqlite = path.join(dir, 'state-sqlite')
    await cli(['copy', await fileWith({ a: 1 }), `sqlite:${sqlite}`])
    expect(kind(sqlite, 'source')).toBe('sqlite')
    const json = path.join(dir, 'state-json')
    fs.writeFileSync(json, '{"a":1}')
    expect(kind(json, 'source')).toBe('file')
    const empty = path.join(dir, 'state-empty')
    fs.writeFileSync(empty, '')
    expect(() => kind(empty)).toThrow(UsageError)
    expect(() => kind(path.join(dir, 'state-new'))).toThrow(UsageError)
    expect(() => kind(path.join(dir, 'state-new'), 'source')).toThrow(CommandError)
  })

  test('a URL is shown without its password', () => {
    expect(resolveTarget('postgres://u:pw@h/d', { role: 'source' }).label).toBe(
      'PostgreSQL postgres://u:***@h/d (table reshuffledb)',
    )
  })
})

describe('the JSON object reader', () => {
  const read = (pieces) => {
    const reader = new ObjectReader('the input')
    const members = []
    for (const piece of pieces) members.push(...reader.push(piece))
    reader.end()
    return members
  }

  test('gives the members of any JSON object, however the text is cut', () => {
    const next = random(18)
    const { big, ...small } = DATA
    const texts = [
      JSON.stringify(small),
      JSON.stringify(small, null, 2),
      '{}',
      ' \n{ }\n',
      '{"a":{"b":{"c":[[],[{}],"]}\\"\\\\"]}},"d":"\\u0000"}',
    ]
    for (const text of texts) {
      for (let round = 0; round < 50; round++) {
        const pieces = []
        for (let i = 0; i < text.length;) {
          const n = 1 + Math.floor(next() * (round % 2 ? 7 : 64))
          pieces.push(text.slice(i, i + n))
          i += n
        }
        expect(Object.fromEntries(read(pieces))).toEqual(JSON.parse(text))
      }
    }
    // A value larger than the pieces it arrives in.
    const text = JSON.stringify({ before: 1, big, after: [2] })
    const pieces = []
    for (let i = 0; i < text.length; i += 65536) pieces.push(text.slice(i, i + 65536))
    expect(read(pieces)).toEqual([
      ['before', 1],
      ['big', big],
      ['after', [2]],
    ])
  })

  test('refuses anything else, saying where', () => {
    const cases = [
      ['', /is empty/],
      ['null', /expected an object \(\{\), found "n" at character 0/],
      ['{"a" 1}', /expected :, found "1" at character 5/],
      ['{"a":1]}', /an unmatched \] at character 6/],
      ['{"a":}', /no value for key "a"/],
      ['{a:1}', /expected a key or \}/],
      ['{"a":1} {}', /text after the object/],
      ['{"a":1 2}', /the value of key "a" is not JSON/],
      ['{"a\n":1}', /a control character inside a key/],
    ]
    for (const [text, message] of cases) {
      expect(() => read([text])).toThrow(InputError)
      expect(() => read([text])).toThrow(message)
    }
  })
})

describe('progress', () => {
  function run(tty) {
    const written = []
    let now = 0
    const progress = new Progress({ isTTY: tty, write: (s) => written.push(s) }, 'copy', {
      total: 10,
      now: () => now,
      delay: 1000,
      every: 100,
    })
    progress.update(1, 10) // within the delay: nothing
    now = 1500
    progress.update(5, 2048)
    now = 1550
    progress.update(6, 4096) // within `every` of the last drawing: nothing
    now = 1700
    progress.update(10, 4096)
    progress.end()
    return written
  }

  test('on a terminal: a bar redrawn in place, cleared at the end', () => {
    expect(run(true)).toEqual([
      `\rcopy [${'#'.repeat(15)}${'-'.repeat(15)}]  50%  5/10 keys  2.0 KiB\x1b[K`,
      `\rcopy [${'#'.repeat(30)}] 100%  10/10 keys  4.0 KiB\x1b[K`,
      '\r\x1b[K',
    ])
  })

  test('elsewhere: plain lines', () => {
    expect(run(false)).toEqual(['copy: 5/10 keys, 2.0 KiB\n', 'copy: 10/10 keys, 4.0 KiB\n'])
  })
})

describe('how a store is read and written', () => {
  function plainStore(data) {
    const calls = []
    return {
      calls,
      list: async () => (calls.push('list'), Object.keys(data).sort()),
      get: async (k) => (calls.push('get'), data[k]),
      set: async (k, v) => (calls.push('set'), (data[k] = v)),
    }
  }

  test('with list(), get() and set() when that is all the store has', async () => {
    const store = plainStore({ a: 1, b: 2, c: 3 })
    const a = access(store, { batch: 2 })
    const entries = []
    for await (const e of a.entries()) entries.push(e)
    expect(entries).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ])
    expect(await a.count()).toBe(3)
    expect(await a.isEmpty()).toBe(false)
    expect(
      await a.write([
        ['d', 4],
        ['e', 5],
      ]),
    ).toBe(2)
    expect(store.calls).toEqual(['list', 'get', 'get', 'get', 'set', 'set'])
  })

  test('through entries(), keys() and setMany() where the store has them', async () => {
    const store = plainStore({ a: 1 })
    const streamed = []
    Object.assign(store, {
      async *entries(options) {
        store.calls.push(`entries ${options.batch}`)
        yield ['a', 1]
      },
      keys: async (options) => (store.calls.push(`keys ${options.limit}`), ['a']),
      setMany: async (entries) => (store.calls.push('setMany'), streamed.push(...entries)),
    })
    const a = access(store, { batch: 7 })
    const entries = []
    for await (const e of a.entries()) entries.push(e)
    expect(entries).toEqual([['a', 1]])
    expect(await a.isEmpty()).toBe(false)
    expect(await a.write([['b', 2]])).toBe(1)
    expect(streamed).toEqual([['b', 2]])
    expect(store.calls).toEqual(['entries 7', 'keys 1', 'setMany'])
  })

  test('through getMany() after list() where the store has getMany() only', async () => {
    const store = plainStore({ a: 1, b: 2 })
    store.getMany = async (keys) => (
      store.calls.push(`getMany ${keys.join()}`),
      keys.map((k) => (k === 'b' ? undefined : 1))
    )
    const entries = []
    for await (const e of access(store).entries()) entries.push(e)
    expect(entries).toEqual([['a', 1]]) // b was removed since list(): skipped
    expect(store.calls).toEqual(['list', 'getMany a,b'])
  })

  test('a failed write says how many of its batch were written', async () => {
    const store = plainStore({})
    store.set = async (k) => {
      if (k === 'bad') throw new Error('refused')
    }
    const error = await access(store)
      .write([
        ['a', 1],
        ['bad', 2],
        ['c', 3],
      ])
      .catch((e) => e)
    expect(error.message).toBe('refused')
    expect(error.written).toBe(2)
  })
})

// MySQL/MariaDB targets (a mysql:// URL), as the commands above are run on the other backends:
// each test in a table of its own (--table), dropped at the end with mysql2. An unreachable
// server skips these tests loudly, or fails them when RESHUFFLE_DATASTORE_REQUIRE_MYSQL=1.
const { mysqlConfig, dropTables: dropMysqlTables, mysqlTests } = require('./lib/mysql-env')

const { ok: mysqlOk, mysql2 } = mysqlTests('Command line tests on MySQL')
const describeMy = mysqlOk ? describe : describe.skip

// A mysql:// URL for the test server, from the same settings as every MySQL test
// (mysql://root@127.0.0.1:3306/test on this machine).
function mysqlUrl() {
  const config = mysqlConfig()
  if (config.uri) return config.uri // MYSQL_URL
  const { host, port, user, password, database } = config
  const auth = encodeURIComponent(user) + (password ? `:${encodeURIComponent(password)}` : '')
  return `mysql://${auth}@${host}:${port}/${encodeURIComponent(database)}`
}

describeMy('MySQL targets', () => {
  const url = mysqlUrl()
  const label = (t) => `MySQL ${url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@')} (table ${t})`
  const tables = []
  let admin = null
  // Rows of a table, read from the outside with mysql2.
  async function sql(text, params) {
    if (!admin) admin = mysql2.createPool({ ...mysqlConfig(), connectionLimit: 1 })
    const [rows] = await admin.query(text, params)
    return rows
  }
  afterAll(async () => {
    if (admin) await admin.end()
    await dropMysqlTables(tables)
  })
  const table = () => {
    const name = `rds_cli_my_${process.pid}_${counter++}`
    tables.push(name)
    return name
  }
  const rowCount = async (t) => Number((await sql(`SELECT COUNT(*) AS n FROM ${t}`))[0].n)

  test("reshuffle's JSON file to MySQL and back", async () => {
    const t = table()
    const data = { ...DATA, 'nul\u0000key': 'NUL is a character like any other' }
    const source = fresh('.json')
    const original = await writeReshuffleFile(source, data)
    const to = await cli(['copy', source, url, '--table', t])
    expect(to.stderr).toMatch(new RegExp(`^copied ${Object.keys(data).length} keys \\(`))
    expect(to.stderr).toContain(`to ${label(t)}\n`)
    expect(to.code).toBe(0)
    expect(fs.readFileSync(source).equals(original)).toBe(true) // the source is left as it was
    // In the table, as JSON text a row per key.
    expect(await rowCount(t)).toBe(Object.keys(data).length)
    const [row] = await sql(`SELECT value FROM ${t} WHERE id = ?`, ['cursor'])
    expect(JSON.parse(row.value)).toEqual(data.cursor)

    const back = fresh('.json')
    const from = await cli(['copy', url, back, '--from-table', t])
    expect(from.stderr).toMatch(
      new RegExp(`^copied ${Object.keys(data).length} keys \\(.* from ${literally(label(t))} to `),
    )
    expect(from.code).toBe(0)
    expect(JSON.parse(fs.readFileSync(back, 'utf8'))).toEqual(data)
    expect(await readWithReshuffle(back)).toEqual(data)
  })

  test('export | import through a MySQL table', async () => {
    const t = table()
    const { big, ...data } = DATA
    const imported = await cli(['import', url, '--table', t], { input: JSON.stringify({ ...data, big }) })
    expect(imported.stderr).toBe(`imported ${Object.keys(DATA).length} keys into ${label(t)}\n`)
    expect(imported.code).toBe(0)
    expect(await rowCount(t)).toBe(Object.keys(DATA).length)
    const out = await cli(['export', url, '--table', t])
    expect(out.stderr).toBe(`exported ${Object.keys(DATA).length} keys from ${label(t)}\n`)
    expect(out.code).toBe(0)
    expect(JSON.parse(out.stdout)).toEqual(DATA)
    // A table that does not exist reads as an empty store, and says so.
    const missing = table()
    const empty = await cli(['export', url, '--table', missing])
    expect(empty.code).toBe(0)
    expect(JSON.parse(empty.stdout)).toEqual({})
    expect(empty.stderr).toBe(`exported 0 keys from ${label(missing)}: the table was empty or did not exist\n`)
  })

  test('a table that already holds keys is refused, and merged into with --merge', async () => {
    const t = table()
    expect((await cli(['import', url, '--table', t], { input: '{"a":1,"b":2}' })).code).toBe(0)
    const refused = await cli(['import', url, '--table', t], { input: '{"b":3}' })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/already holds keys: pass --merge/)
    const copyRefused = await cli(['copy', await fileWith({ b: 3 }), url, '--table', t])
    expect(copyRefused.code).toBe(1)
    expect(copyRefused.stderr).toMatch(/already holds keys: pass --merge/)
    expect(await exported(url, ['--table', t])).toEqual({ a: 1, b: 2 })
    const merged = await cli(['copy', await fileWith({ b: 3, c: 4 }), url, '--table', t, '--merge'])
    expect(merged.code).toBe(0)
    expect(await exported(url, ['--table', t])).toEqual({ a: 1, b: 3, c: 4 })
  })

  test('stats on a MySQL table', async () => {
    const t = table()
    expect((await cli(['copy', await fileWith({ a: 1, bb: 'xy' }), url, '--table', t])).code).toBe(0)
    const r = await cli(['stats', url, '--table', t, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ target: label(t), kind: 'mysql', keys: 2, keyBytes: 3, valueBytes: 5 })
    const text = await cli(['stats', url, '--table', t])
    expect(text.code).toBe(0)
    expect(text.stdout).toBe(`${label(t)}\n  keys         2\n  key bytes    3\n  value bytes  5\n`)
  })

  test('SQLite to MySQL and MySQL to SQLite, one table to another', async () => {
    const db = fresh('.db')
    expect((await cli(['copy', await fileWith(DATA), db])).code).toBe(0)
    const t = table()
    const to = await cli(['copy', db, url, '--to-table', t])
    expect(to.stderr).toMatch(new RegExp(`^copied ${Object.keys(DATA).length} keys \\(.*\\) from SQLite database `))
    expect(to.code).toBe(0)
    expect(await rowCount(t)).toBe(Object.keys(DATA).length)
    expect(await exported(url, ['--table', t])).toEqual(DATA)

    const back = fresh('.sqlite')
    const from = await cli(['copy', url, `sqlite:${back}`, '--from-table', t, '--to-table', 'app_state'])
    expect(from.code).toBe(0)
    expect(await exported(back, ['--table', 'app_state'])).toEqual(DATA)
  })

  ;(pg.ok ? test : test.skip)('MySQL to PostgreSQL and back into another MySQL table', async () => {
    const t = table()
    const data = { a: 1, 'emoji 😀 é': DATA['emoji 😀 é'], jobs: DATA.jobs, big: DATA.big }
    expect((await cli(['copy', await fileWith(data), url, '--table', t])).code).toBe(0)
    const pgTable = `rds_cli_${process.pid}_${counter++}`
    try {
      const to = await cli(['copy', url, pgUrl(), '--from-table', t, '--to-table', pgTable])
      expect(to.stderr).toMatch(/^copied 4 keys \(.*\) from MySQL .* to PostgreSQL /)
      expect(to.code).toBe(0)
      expect(await exported(pgUrl(), ['--table', pgTable])).toEqual(data)
      const t2 = table()
      const from = await cli(['copy', pgUrl(), url, '--from-table', pgTable, '--to-table', t2])
      expect(from.code).toBe(0)
      expect(await exported(url, ['--table', t2])).toEqual(data)
    } finally {
      await dropTables(pgConfig(), [pgTable])
    }
  })

  test("a value reshuffle's MySQL table cannot hold stops the copy with its code, saying what was written", async () => {
    // The table reshuffle's MySQLStoreAdapter creates: values of at most 500 characters.
    const t = table()
    await sql(`CREATE TABLE ${t} (id varchar(250) primary key, value varchar(500))`)
    const r = await cli(['copy', await fileWith({ a: 1, long: 'x'.repeat(600) }), url, '--table', t])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^reshuffle-datastore copy: ERR_DATASTORE_INVALID_VALUE: .*ALTER TABLE .* MODIFY value/)
    // One batch: with set(), the key before it was written; with an all-or-nothing setMany(), nothing.
    const said = /\n?reshuffle-datastore copy: (1 key was|nothing was) written to MySQL .* before the error\n$/.exec(
      r.stderr,
    )
    expect(said).not.toBe(null)
    expect(await rowCount(t)).toBe(said[1] === 'nothing was' ? 0 : 1)
    const [long] = await sql(`SELECT COUNT(*) AS n FROM ${t} WHERE id = 'long'`)
    expect(Number(long.n)).toBe(0) // never a silent truncation
  })
})

// `text` as a regular expression that matches it literally.
function literally(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
