// The MySQL/MariaDB engine against the local server. Settings come from MYSQL_URL or the
// MYSQL_* variables, with defaults for this machine (127.0.0.1:3306, root, database test). Each
// run works in its own uniquely named tables and drops them at the end. An unreachable server
// skips these tests loudly, or fails them when RESHUFFLE_DATASTORE_REQUIRE_MYSQL=1.
'use strict'
const { MySQLStoreAdapter } = require('..')
const { runConformance, expectCode, sleep, updateHeldOpen, bulkWaitsInKeyOrder } = require('./conformance')
const { mysqlConfig, lockName, dropTables, mysqlTests } = require('./lib/mysql-env')
const { runChild, runNode, fixture, startWorker } = require('./lib/children')
const { silentServer } = require('./fixtures/silent-server')

let Reshuffle = null
try {
  Reshuffle = require('reshuffle')
} catch {
  Reshuffle = null
}

const { ok: mysqlOk, mysql2: mysql } = mysqlTests('MySQL tests')
const describeMy = mysqlOk ? describe : describe.skip

const run = `${process.pid.toString(36)}_${Date.now().toString(36)}`
const tables = new Set()
let tableCount = 0
function newTable() {
  const name = `rds_test_${run}_${tableCount++}`
  tables.add(name)
  return name
}

// The one place stores are made.
function makeStore(target, table, options) {
  return new MySQLStoreAdapter(target, table, options)
}

// A mysql2 promise pool for the checks these tests make from the outside.
let admin = null
async function sql(text, params) {
  if (!admin) admin = mysql.createPool({ ...mysqlConfig(), connectionLimit: 2 })
  const [rows] = await admin.query(text, params)
  return rows
}

afterAll(async () => {
  if (!mysqlOk) return
  await dropTables([...tables])
  if (admin) await admin.end()
})

describeMy('MySQLStoreAdapter (MariaDB/MySQL)', () => {
  const tableOf = new WeakMap()
  function fresh(options) {
    const table = newTable()
    const store = makeStore(mysqlConfig(), table, options)
    tableOf.set(store, table)
    return store
  }

  const writeRow = (store, key, text) =>
    sql(`INSERT INTO ${tableOf.get(store)} (id, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)`, [
      key,
      text,
    ])

  runConformance('MySQLStoreAdapter', async () => fresh(), {
    persistent: true,
    foreign: {
      write: writeRow,
      noValue: (store, key) => writeRow(store, key, null),
    },
    multiProcess: { spec: (store) => ({ kind: 'mysql', table: tableOf.get(store), config: mysqlConfig() }) },
    reopen: async (store) => {
      const table = tableOf.get(store)
      await store.close()
      const again = makeStore(mysqlConfig(), table)
      tableOf.set(again, table)
      return again
    },
  })

  describe('targets and settings', () => {
    test('a server that never answers: operations reject after connectTimeout, each trying again', async () => {
      const silent = await silentServer()
      const { port } = silent
      const settings = { host: '127.0.0.1', port, user: 'root', database: 'test', connectTimeout: 300 }
      const store = makeStore(settings, newTable())
      try {
        const first = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
        expect(first.message).toMatch(/no connection to the MySQL server within 300 ms \(connectTimeout\)/)
        expect(silent.connections()).toBe(1)
        await expectCode(store.set('k', 1), 'ERR_DATASTORE_BACKEND')
        expect(silent.connections()).toBe(2) // it connected again
      } finally {
        await store.close()
        await silent.close()
      }
      expect(() => makeStore({ ...mysqlConfig(), connectTimeout: 'soon' }, newTable())).toThrow(/connectTimeout/)
      // 0 is mysql2's "no limit"; a working server answers as before.
      const unbounded = makeStore({ ...mysqlConfig(), connectTimeout: 0 }, newTable())
      await unbounded.set('k', 1)
      expect(await unbounded.get('k')).toBe(1)
      await unbounded.close()
    })

    test('a URL, a config object and mysql2 pools (promise and callback) reach the same table', async () => {
      const table = newTable()
      const c = mysqlConfig()
      const url =
        c.uri ||
        `mysql://${c.user}${c.password ? ':' + encodeURIComponent(c.password) : ''}@${c.host}:${c.port}/${c.database}`
      const promisePool = mysql.createPool(c)
      const callbackPool = require('mysql2').createPool(c)
      const a = makeStore(url, table)
      const b = makeStore(c, table)
      const p = makeStore(promisePool, table)
      const q = makeStore(callbackPool, table)
      await a.set('k', 'from url')
      expect(await b.get('k')).toBe('from url')
      await p.update('k', (v) => v + ', promise pool')
      await q.update('k', (v) => v + ', callback pool')
      expect(await a.get('k')).toBe('from url, promise pool, callback pool')
      // The pools' settings are read; their connections are not used.
      expect(promisePool.pool._allConnections.length).toBe(0)
      expect(callbackPool._allConnections.length).toBe(0)
      await Promise.all([a.close(), b.close(), promisePool.end(), new Promise((r) => callbackPool.end(r))])
      await expectCode(p.get('k'), 'ERR_DATASTORE_CLOSED')
      await expectCode(q.get('k'), 'ERR_DATASTORE_CLOSED')
    })

    test('bad targets, table names and options throw ERR_DATASTORE_INVALID_ARGUMENT', async () => {
      const cases = [
        [['not a url'], /mysql:\/\//],
        [[{ ...mysqlConfig(), port: 'eighty' }], /port/],
        [[{ ...mysqlConfig(), ssl: { cert: 'x', key: 'y' } }], /client certificates/],
        [[{ host: '127.0.0.1' }], /database/],
        [[mysqlConfig(), 'x; DROP TABLE victim; --'], /SQL identifier/],
        [[mysqlConfig(), 'kv', { poolSize: 0 }], /poolSize/],
        [[mysqlConfig(), 'kv', { busyPollMicros: 5 }], /busyPollMicros/],
        [[42], /mysql2 pool/],
      ]
      for (const [args, message] of cases) {
        let error
        try {
          makeStore(...args)
        } catch (e) {
          error = e
        }
        expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
        expect(error.message).toMatch(message)
      }
      // mysql2's SSL profiles give `ca` as an array of certificates: read, not refused.
      const profiled = makeStore({ ...mysqlConfig(), ssl: { ca: ['-----BEGIN CERTIFICATE-----'] } }, 'kv')
      await profiled.close()
    })

    test('idle connections do not keep Node alive', async () => {
      const script = `
        const { MySQLStoreAdapter } = require(${JSON.stringify(require.resolve('..'))})
        const s = new MySQLStoreAdapter(${JSON.stringify(mysqlConfig())}, ${JSON.stringify(newTable())})
        s.set('k', 1).then(() => s.update('k', (v) => v + 1)).then(() => console.log(JSON.stringify({ ok: true })))
      `
      const r = await runNode(['-e', script], { timeout: 20000 })
      expect(r.signal).toBe(null)
      expect(r.code).toBe(0)
      expect(r.messages).toEqual([{ ok: true }])
    })
  })

  test('between bursts of operations the store spends no CPU', async () => {
    // The MySQL thread stays awake briefly after each job (docs/mysql.md); once idle, it and
    // the JS thread's polling must stop. A thread that kept spinning would cost ~500 ms here.
    const store = fresh()
    await store.set('k', 1)
    for (let i = 0; i < 200; i++) expect(await store.get('k')).toBe(1)
    await sleep(50)
    const before = process.cpuUsage()
    await sleep(500)
    const spent = process.cpuUsage(before)
    expect((spent.user + spent.system) / 1000).toBeLessThan(150)
    await store.close()
  })

  describe('atomic across processes', () => {
    test('4 processes × 250 concurrent +1 updates of a new key on a new table end at exactly 1000', async () => {
      const spec = { kind: 'mysql', table: newTable(), config: mysqlConfig() }
      const runs = await Promise.all(
        [0, 1, 2, 3].map(() =>
          runChild(fixture('counter.js'), [JSON.stringify(spec), 'n', '250'], { timeout: 120000 }),
        ),
      )
      for (const r of runs) {
        expect(r.signal).toBe(null)
        expect(r.messages).toEqual([{ done: 250, errors: [] }])
      }
      const store = makeStore(mysqlConfig(), spec.table)
      expect(await store.get('n')).toBe(1000)
      await store.close()
    }, 180000)

    test('50 stores making one new table at once all succeed', async () => {
      const table = newTable()
      const stores = Array.from({ length: 50 }, () => makeStore(mysqlConfig(), table, { poolSize: 1 }))
      // Every store's first operation at once: the table is made once and all succeed. Each
      // store closes when its operation is done, so that the sessions of all 50 (a store's
      // first write also opens a read connection for its first purge) never fill a default
      // server's max_connections (151), which other test files share.
      await Promise.all(
        stores.map(async (s, i) => {
          await s.update(`k${i}`, (v = 0) => v + i)
          await s.close()
        }),
      )
      const check = makeStore(mysqlConfig(), table)
      expect((await check.list('k')).length).toBe(50)
      expect(await check.getMany(['k0', 'k49'])).toEqual([0, 49])
      await check.close()
    })

    test('set and remove wait for a held key; lockTimeout bounds the wait', async () => {
      const table = newTable()
      const a = makeStore(mysqlConfig(), table)
      const b = makeStore(mysqlConfig(), table, { lockTimeout: 200 })
      const c = makeStore(mysqlConfig(), table)
      await a.set('k', 1)
      const held = await updateHeldOpen(a, 'k', 2)
      const started = Date.now()
      const e = await expectCode(
        b.update('k', () => 3),
        'ERR_DATASTORE_LOCK_TIMEOUT',
      )
      expect(e.message).toMatch(/"k"/)
      expect(Date.now() - started).toBeGreaterThanOrEqual(180)
      const set = c.set('k', 4)
      await sleep(100)
      expect(await b.get('k')).toBe(1) // the set waits for the holder
      held.release()
      expect(await held.interrupted).toEqual([1, 2])
      await set
      expect(await b.get('k')).toBe(4)
      await Promise.all([a.close(), b.close(), c.close()])
    })

    // Operations queued on a key hand its lock, and the row each wrote, to the next one
    // (docs/mysql.md, "Handing a held key on").
    test('updates, sets and removes queued on one key each see the one before', async () => {
      const a = fresh()
      const ops = []
      const expected = []
      let model
      for (let i = 0; i < 90; i++) {
        if (i % 10 === 4) {
          ops.push(a.set('k', 1000 * i))
          model = 1000 * i
          expected.push(1000 * i)
        } else if (i % 10 === 9) {
          ops.push(a.remove('k'))
          model = undefined
          expected.push(undefined)
        } else {
          ops.push(a.update('k', (v = 0) => v + 1))
          expected.push([model, (model || 0) + 1])
          model = (model || 0) + 1
        }
      }
      // setMany and removeMany queue behind them too, and take the lock they find handed on.
      ops.push(
        a.setMany([
          ['k', 'bulk'],
          ['other', 1],
        ]),
      )
      expected.push(undefined)
      ops.push(a.update('k', (v) => `${v}!`))
      expected.push(['bulk', 'bulk!'])
      ops.push(a.removeMany(['k']))
      expected.push(undefined)
      ops.push(a.update('k', (v) => (v === undefined ? 'gone' : v)))
      expected.push([undefined, 'gone'])
      expect(await Promise.all(ops)).toEqual(expected)
      expect(await a.get('k')).toBe('gone')
      // A set that nothing waits for, right after an update handed it the key: the next
      // update reads the set's value, not the one handed on before it.
      for (let i = 0; i < 20; i++) {
        const first = a.update('k', () => i)
        await a.set('k', `s${i}`)
        expect(await first).toEqual([i === 0 ? 'gone' : `s${i - 1}!`, i])
        expect(await a.update('k', (v) => `${v}!`)).toEqual([`s${i}`, `s${i}!`])
      }
      await a.close()
    })

    test('updates queued on one key in two stores (two sessions) lose nothing', async () => {
      const a = fresh()
      const c = makeStore(mysqlConfig(), tableOf.get(a))
      const ofA = Array.from({ length: 200 }, () => a.update('n', (v = 0) => v + 1))
      const ofC = Array.from({ length: 50 }, () => c.update('n', (v = 0) => v + 1000))
      await Promise.all([...ofA, ...ofC])
      expect(await a.get('n')).toBe(200 + 50 * 1000)
      await Promise.all([a.close(), c.close()])
    })

    test('a key whose updates queue up is handed on for a moment only: a store waiting for it gets its turn', async () => {
      const a = fresh()
      const b = makeStore(mysqlConfig(), tableOf.get(a), { lockTimeout: 300 })
      await a.set('n', 0)
      // Longer than b's lockTimeout in all: only chains that end let b in.
      const queued = Array.from({ length: 2000 }, () => a.update('n', (v) => v + 1))
      await queued[0]
      for (let i = 0; i < 3; i++) await b.update('n', (v) => v + 1000)
      const finished = await Promise.all(queued)
      expect(finished[1999][1]).toBeGreaterThan(2000) // b's updates landed before a's last
      expect(await b.get('n')).toBe(2000 + 3000)
      await Promise.all([a.close(), b.close()])
    }, 60000)

    test('setMany of 5,000 keys waits for the one another store holds, names it on timeout, and keeps order', async () => {
      // Many locks are tried 100 to a statement (docs/mysql.md).
      const table = newTable()
      const a = makeStore(mysqlConfig(), table)
      const b = makeStore(mysqlConfig(), table, { lockTimeout: 300 })
      const c = makeStore(mysqlConfig(), table, { lockTimeout: 5000 })
      const database = (await sql('SELECT DATABASE() AS d'))[0].d
      await bulkWaitsInKeyOrder(a, b, c, async (key) => {
        const [{ used }] = await sql('SELECT IS_USED_LOCK(?) AS used', [lockName(database, table, key)])
        return used !== null
      })
      await Promise.all([a.close(), b.close(), c.close()])
    })

    // 'spin' is terminated while its updater's JavaScript runs: the call into it is cut off.
    test.each(['terminated', 'throw', 'exit', 'spin'])(
      'a worker thread that ends (%s) while its update holds a key lets go of the lock at once',
      async (mode) => {
        const table = newTable()
        const store = makeStore(mysqlConfig(), table, { lockTimeout: 5000 })
        await store.set('k', 1)
        const spec = { kind: 'mysql', table, config: mysqlConfig() }
        const { worker, held, exited } = startWorker(spec, 'k', mode === 'terminated' ? 'hold' : mode)
        await held
        if (mode === 'terminated' || mode === 'spin') {
          const database = (await sql('SELECT DATABASE() AS d'))[0].d
          const [{ holder }] = await sql('SELECT IS_USED_LOCK(?) AS holder', [lockName(database, table, 'k')])
          expect(holder).not.toBe(null)
          await worker.terminate()
        }
        await exited
        // The worker's update ('from-worker') wrote nothing; ours counts from 1.
        expect(await store.update('k', (n) => n + 1)).toEqual([1, 2])
        await store.close()
      },
    )

    test('a connection lost mid-update writes nothing, and the next operation reconnects', async () => {
      const table = newTable()
      const store = makeStore(mysqlConfig(), table)
      await store.set('k', 'before')
      const held = await updateHeldOpen(store, 'k', 'after')
      const database = (await sql('SELECT DATABASE() AS d'))[0].d
      const [{ holder }] = await sql('SELECT IS_USED_LOCK(?) AS holder', [lockName(database, table, 'k')])
      expect(holder).not.toBe(null)
      await sql(`KILL ${Number(holder)}`)
      held.release()
      await expectCode(held.interrupted, 'ERR_DATASTORE_BACKEND')
      expect(await store.get('k')).toBe('before')
      expect(await store.update('k', (v) => v + ', again')).toEqual(['before', 'before, again'])
      await store.close()
    })
  })

  describe("reshuffle's table", () => {
    const testWithReshuffle = Reshuffle ? test : test.skip

    testWithReshuffle("what reshuffle's MySQLStoreAdapter writes we read, and the other way", async () => {
      const table = newTable()
      const pool = mysql.createPool(mysqlConfig())
      const theirs = new Reshuffle.MySQLStoreAdapter(pool, table)
      await theirs.set('a', { n: 1 })
      await theirs.set('s', 'text')
      const ours = makeStore(pool, table)
      expect(await ours.get('a')).toEqual({ n: 1 })
      expect(await ours.list()).toEqual(['a', 's'])
      await ours.update('a', (v) => ({ n: v.n + 1 }))
      await ours.set('b', [1, 2])
      expect(await theirs.get('a')).toEqual({ n: 2 })
      expect(await theirs.get('b')).toEqual([1, 2])
      expect((await theirs.list()).sort()).toEqual(['a', 'b', 's'])
      const [columns] = await pool.query(`SHOW COLUMNS FROM ${table}`)
      expect(columns.map((c) => c.Field)).toEqual(['id', 'value', 'expires_at'])
      await pool.end()
      await expectCode(ours.get('a'), 'ERR_DATASTORE_CLOSED')
    })

    test("a value longer than reshuffle's column rejects with the ALTER TABLE that fixes it", async () => {
      const table = newTable()
      await sql(`CREATE TABLE ${table} (id varchar(250) primary key, value varchar(500))`)
      const store = makeStore(mysqlConfig(), table)
      await store.set('k', 'short')
      const e = await expectCode(store.set('k', 'x'.repeat(600)), 'ERR_DATASTORE_INVALID_VALUE')
      expect(e.message).toContain(table)
      expect(e.message).toMatch(/ALTER TABLE .* MODIFY value LONGTEXT/)
      await expectCode(
        store.update('k', () => 'y'.repeat(600)),
        'ERR_DATASTORE_INVALID_VALUE',
      )
      // The failed write let go of the key's lock: another store's sessions take it at once.
      const other = makeStore(mysqlConfig(), table, { lockTimeout: 500 })
      expect(await other.update('k', (v) => v)).toEqual(['short', 'short'])
      await other.close()
      await expectCode(
        store.setMany([
          ['a', 1],
          ['k', 'z'.repeat(600)],
        ]),
        'ERR_DATASTORE_INVALID_VALUE',
      )
      expect(await store.get('k')).toBe('short')
      expect(await store.get('a')).toBeUndefined()
      await sql(`ALTER TABLE ${table} MODIFY value LONGTEXT CHARACTER SET utf8mb4`)
      await store.set('k', 'x'.repeat(600))
      expect((await store.get('k')).length).toBe(600)
      await store.close()
    })

    test('tables we create hold keys of 2,048 bytes and values of 64 MiB', async () => {
      // A value travels in one packet: the server's max_allowed_packet (16 MiB by default on
      // MariaDB) must be raised for 64 MiB. Over the limit, a write rejects with the fix.
      const small = fresh()
      const [{ packet: limit }] = await sql('SELECT @@max_allowed_packet AS packet')
      const over = 'o'.repeat(Number(limit))
      const e = await expectCode(small.set('over', over), 'ERR_DATASTORE_INVALID_VALUE')
      expect(e.message).toMatch(/max_allowed_packet/)
      await expectCode(small.setMany([['over', over]]), 'ERR_DATASTORE_INVALID_VALUE')
      expect(await small.get('over')).toBeUndefined()
      await small.close()

      const wanted = 80 << 20
      if (Number(limit) < wanted) await sql(`SET GLOBAL max_allowed_packet = ${wanted}`)
      try {
        const store = fresh() // new connections see the new limit
        const key = 'é'.repeat(1024)
        const big = 'v'.repeat(64 << 20)
        await store.set(key, big)
        expect((await store.get(key)).length).toBe(big.length)
        expect(await store.list()).toEqual([key])
        await store.close()
      } finally {
        if (Number(limit) < wanted) await sql(`SET GLOBAL max_allowed_packet = ${Number(limit)}`)
      }
    }, 120000)
  })

  describe("reshuffle's key column, and the server sessions a store leaves", () => {
    test("a key longer than reshuffle's id column rejects with the ALTER TABLE that fixes it; nothing is written", async () => {
      const table = newTable()
      await sql(`CREATE TABLE ${table} (id varchar(250) primary key, value varchar(500))`)
      const store = makeStore(mysqlConfig(), table)
      const fits = 'k'.repeat(250)
      const long = 'k'.repeat(251)
      await store.set(fits, 'fits')
      const attempts = [
        store.set(long, 1),
        store.update(long, () => 1),
        store.setMany([
          ['a', 1],
          [long, 2],
        ]),
      ]
      let fix = null
      for (const attempt of attempts) {
        const e = await expectCode(attempt, 'ERR_DATASTORE_INVALID_KEY')
        expect(e.message).toContain(table)
        const alter = e.message.match(/ALTER TABLE \S+ MODIFY id .*$/)
        expect(alter).not.toBe(null)
        expect(alter[0]).toContain(table)
        fix = alter[0]
      }
      expect(await sql(`SELECT id, value FROM ${table}`)).toEqual([{ id: fits, value: '"fits"' }])
      expect(await store.getMany([long, 'a', fits])).toEqual([undefined, undefined, 'fits'])
      // The failed writes let go of the key's lock: another store takes it at once, and fails
      // the same way instead of timing out.
      const other = makeStore(mysqlConfig(), table, { lockTimeout: 500 })
      await expectCode(
        other.update(long, () => 3),
        'ERR_DATASTORE_INVALID_KEY',
      )
      await other.close()
      // The statement the message names makes the key fit.
      await sql(fix)
      await store.set(long, 'fits now')
      expect(await store.get(long)).toBe('fits now')
      expect(await store.list()).toEqual([fits, long])
      await store.close()
    })

    // The store's sessions are counted by user: a MySQL user of this run's own, dropped at the end.
    describe('server sessions', () => {
      const user = `rds_s_${run}`
      const password = `pw_${run}`
      beforeAll(async () => {
        const [{ d: database }] = await sql('SELECT DATABASE() AS d')
        await sql("CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?", [user, password])
        await sql(`GRANT ALL ON \`${database}\`.* TO ?@'%'`, [user])
      })
      afterAll(async () => {
        await sql("DROP USER IF EXISTS ?@'%'", [user])
      })

      // The test server's settings, as that user.
      function asUser() {
        const c = mysqlConfig()
        if (typeof c !== 'string') return { ...c, user, password }
        const url = new URL(c)
        url.username = user
        url.password = password
        return url.href
      }

      const sessions = async () =>
        Number((await sql('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ?', [user]))[0].n)

      // Polls (bounded: 5 s, less than the 10 s after which idle connections close by
      // themselves) until the user has no session left; resolves whether it has none.
      async function sessionsEnd() {
        for (let i = 0; i < 50; i++) {
          if ((await sessions()) === 0) return true
          await sleep(100)
        }
        return false
      }

      // A few operations, concurrent updates of many keys among them, so that the store opens
      // several connections (shared holders, reads, a waiters' connection for setMany).
      async function work(store) {
        await store.set('a', 1)
        expect(await store.get('a')).toBe(1)
        expect(await store.list()).toEqual(['a'])
        const updates = await Promise.all(Array.from({ length: 40 }, (_, i) => store.update(`k${i}`, (n = 0) => n + i)))
        expect(updates[39]).toEqual([undefined, 39])
        await store.setMany([
          ['b', 2],
          ['c', 3],
        ])
        expect(await sessions()).toBeGreaterThanOrEqual(2)
      }

      // The first purge of expired keys comes a second after the first write, on a connection
      // the writes have given back: it opens none of its own (it used to open a reads-pool
      // connection, one more session). The count is taken once the first write has settled
      // and again after the purge, with the store idle in between: while writes are still
      // running (a loaded machine can stretch them past the second), the purge would share
      // the slots' pool with them and may legitimately grow it.
      test('a store that only writes opens no session of its own for its first purge', async () => {
        const store = makeStore(asUser(), newTable())
        try {
          await store.set('w0', 0)
          await sleep(300)
          // The table's first statements and the write (an unlock follows each reply, while
          // the next write may already want a connection): at most two.
          const settled = await sessions()
          expect(settled).toBeLessThanOrEqual(2)
          await sleep(1500)
          expect(await sessions()).toBeLessThanOrEqual(settled)
          for (let i = 1; i < 20; i++) await store.set(`w${i}`, i)
          expect(await store.update('w0', (n) => n + 1)).toEqual([0, 1])
          await store.remove('w1')
          expect(await store.get('w1')).toBeUndefined()
        } finally {
          await store.close()
        }
        expect(await sessionsEnd()).toBe(true)
      })

      test('close() ends every session the store opened', async () => {
        const store = makeStore(asUser(), newTable())
        await work(store)
        await store.close()
        expect(await sessionsEnd()).toBe(true)
        await expectCode(store.get('a'), 'ERR_DATASTORE_CLOSED')
      })

      test.each(['promise', 'callback'])(
        'ending the mysql2 pool (%s API) the store was made over ends its sessions too',
        async (api) => {
          const pool = api === 'promise' ? mysql.createPool(asUser()) : require('mysql2').createPool(asUser())
          const store = makeStore(pool, newTable())
          await work(store)
          if (api === 'promise') await pool.end()
          else await new Promise((resolve, reject) => pool.end((e) => (e ? reject(e) : resolve())))
          expect(await sessionsEnd()).toBe(true)
          await expectCode(store.get('a'), 'ERR_DATASTORE_CLOSED')
        },
      )
    })
  })
})
