// The PostgreSQL engine against the local server. Settings come from PG* variables, with
// defaults for this machine (127.0.0.1, user root, database test). Each run works in its own
// uniquely named tables and drops them at the end. An unreachable server skips these tests
// loudly, or fails them when RESHUFFLE_DATASTORE_REQUIRE_PG=1.
'use strict'
const { spawn, spawnSync } = require('child_process')
const fs = require('fs')
const path = require('path')
const { SQLStoreAdapter } = require('..')
const { runConformance, expectCode, gate, sleep, byCodePoint, updateHeldOpen } = require('./conformance')
const { applyDefaults, serverReachable } = require('./lib/postgres-env')
const { tcpProxy } = require('./fixtures/tcp-proxy')
const { silentServer } = require('./fixtures/silent-server')
const { runNode: runNodeChild } = require('./lib/children')
const { requiredOrSkipped } = require('./lib/servers')

applyDefaults()
// Settings from the PG* variables, passed explicitly: under jest, process.env is a copy that
// native code does not see (the child-process tests cover reading PG* variables).
function pgTarget(extra = {}) {
  const { PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE } = process.env
  return { host: PGHOST, port: PGPORT, user: PGUSER, password: PGPASSWORD, database: PGDATABASE, ...extra }
}

// The one place stores are made.
function makePgStore(target, table, options) {
  return new SQLStoreAdapter(target, table, options)
}

let pg = null
try {
  pg = require('pg')
} catch (e) {
  pg = null
}
let Reshuffle = null
try {
  Reshuffle = require('reshuffle')
} catch (e) {
  Reshuffle = null
}

const server = serverReachable()
requiredOrSkipped(
  `PostgreSQL tests at ${process.env.PGHOST}:${process.env.PGPORT || 5432}`,
  server,
  'RESHUFFLE_DATASTORE_REQUIRE_PG',
)
requiredOrSkipped(
  "PostgreSQL tests that need the 'pg' package",
  { ok: pg !== null, why: 'it is not installed' },
  'RESHUFFLE_DATASTORE_REQUIRE_PG',
)

const describePg = server.ok ? describe : describe.skip
const testWithPg = pg ? test : test.skip

const run = `${process.pid.toString(36)}_${Date.now().toString(36)}`
const tables = new Set()
let tableCount = 0
function newTable() {
  const name = `rds_test_${run}_${tableCount++}`
  tables.add(name)
  return name
}

// A pg Pool for the checks these tests make from the outside.
let admin = null
async function sql(text, params) {
  if (!admin) admin = new pg.Pool({ max: 2 })
  return admin.query(text, params)
}

afterAll(async () => {
  if (!server.ok) return
  if (!pg) {
    // Without pg, psql (when installed) drops the tables.
    if (tables.size > 0) {
      spawnSync('psql', ['-q', '-c', `DROP TABLE IF EXISTS ${[...tables].join(', ')}`], { env: process.env })
    }
    return
  }
  for (const t of tables) await sql(`DROP TABLE IF EXISTS ${t}`)
  await sql('DROP SCHEMA IF EXISTS rds_schema_' + run + ' CASCADE')
  if (admin) await admin.end()
})

// Runs `node ...args` to its end (lib/children.js): { code, out, err, lines }.
async function runNode(args, timeout = 60000) {
  const r = await runNodeChild(args, { timeout })
  return { code: r.code, out: r.stdout, err: r.stderr, lines: r.messages }
}

describePg('SQLStoreAdapter (PostgreSQL)', () => {
  const tableOf = new WeakMap()
  function fresh(options) {
    const table = newTable()
    const store = makePgStore(pgTarget(), table, options)
    tableOf.set(store, table)
    return store
  }

  const writeRow = (store, key, text) =>
    sql(`INSERT INTO ${tableOf.get(store)} (id, value) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET value = $2`, [
      key,
      text,
    ])

  runConformance('SQLStoreAdapter (PostgreSQL)', async () => fresh(), {
    persistent: true,
    nul: false,
    foreign: pg && {
      write: writeRow,
      noValue: (store, key) => writeRow(store, key, null),
    },
    multiProcess: { spec: (store) => ({ kind: 'pg', table: tableOf.get(store), config: pgTarget() }) },
    reopen: async (store) => {
      const table = tableOf.get(store)
      await store.close()
      const again = makePgStore(pgTarget(), table)
      tableOf.set(again, table)
      return again
    },
  })

  describe('targets and settings', () => {
    test('a URL and config objects reach the same table', async () => {
      const table = newTable()
      const { PGHOST, PGUSER, PGDATABASE } = process.env
      const a = makePgStore(`postgres://${PGUSER}@${PGHOST}:${process.env.PGPORT || 5432}/${PGDATABASE}`, table)
      const b = makePgStore({ host: PGHOST, user: PGUSER, database: PGDATABASE }, table)
      const c = makePgStore(
        { connectionString: `postgres://${PGUSER}@${PGHOST}/${PGDATABASE}`, host: 'ignored.invalid' },
        table,
      )
      await a.set('k', 'from url')
      expect(await b.get('k')).toBe('from url')
      await b.update('k', (v) => v + ' and config')
      expect(await c.get('k')).toBe('from url and config')
      await Promise.all([a.close(), b.close(), c.close()])
    })

    const socketDir = '/var/run/postgresql'
    ;(fs.existsSync(`${socketDir}/.s.PGSQL.${process.env.PGPORT || 5432}`) ? test : test.skip)(
      'a Unix socket directory as host',
      async () => {
        const table = newTable()
        const viaSocket = makePgStore(
          `postgres://${process.env.PGUSER}@${encodeURIComponent(socketDir)}/${process.env.PGDATABASE}`,
          table,
        )
        const viaTcp = makePgStore(pgTarget(), table)
        await viaSocket.set('k', 'socket')
        expect(await viaTcp.get('k')).toBe('socket')
        await Promise.all([viaSocket.close(), viaTcp.close()])
      },
    )

    testWithPg('a pg Pool and a pg Client are read, not used', async () => {
      const table = newTable()
      const pool = new pg.Pool(pgTarget())
      const client = new pg.Client({
        connectionString: `postgresql://${process.env.PGUSER}@${process.env.PGHOST}/${process.env.PGDATABASE}`,
      })
      const a = makePgStore(pool, table)
      const b = makePgStore(client, table)
      await a.set('k', [1])
      expect(await b.get('k')).toEqual([1])
      expect(pool.totalCount).toBe(0)
      await Promise.all([a.close(), b.close(), pool.end()])
    })

    test('settings that cannot be honoured throw ERR_DATASTORE_INVALID_ARGUMENT', () => {
      const cases = [
        [{ password: 42 }, /password must be a string or a function/],
        [{ stream: {} }, /custom stream/],
        [{ port: 'eighty' }, /port/],
        [{ ssl: { cert: 'x', key: 'y' } }, /client certificates/],
        ['postgres://h/db?sslmode=sometimes', /sslmode/],
        ['postgres://h/db?sslrootcert=/x.pem', /ssl: \{ ca \}/],
      ]
      for (const [target, message] of cases) {
        let error
        try {
          makePgStore(target, 'reshuffledb')
        } catch (e) {
          error = e
        }
        expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
        expect(error.message).toMatch(message)
      }
    })

    test('table names and options are validated', () => {
      const bad = [
        [{}, 'x; DROP TABLE victim; --', undefined],
        [{}, 'a.b.c', undefined],
        [{}, 42, undefined],
        [{}, 'ok', { poolSize: 0 }],
        [{}, 'ok', { poolSize: 2.5 }],
        [{}, 'ok', { poolSize: '4' }],
        [{}, 'ok', { busyPollMicros: -1 }],
        [{}, 'ok', { busyPollMicros: 1.5 }],
        [{}, 'ok', { busyPollMicros: 20000 }],
        [{}, 'ok', { busyPollMicros: '500' }],
        [{}, 'ok', { durability: 'fsync' }],
      ]
      for (const [target, table, options] of bad) {
        let error
        try {
          makePgStore(target, table, options)
        } catch (e) {
          error = e
        }
        expect(error && error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
      }
    })

    test('the default table is reshuffledb', async () => {
      const store = makePgStore(pgTarget())
      await expect(store.list('reshuffle-datastore test: no such prefix')).resolves.toEqual([])
      await store.close()
    })

    testWithPg('schema.table works, and a missing schema is a backend error naming the table', async () => {
      const schema = `rds_schema_${run}`
      await sql(`CREATE SCHEMA ${schema}`)
      const store = makePgStore(pgTarget(), `${schema}.Items`)
      await store.set('k', 1)
      const { rows } = await sql(`SELECT id, value FROM ${schema}.items`)
      expect(rows).toEqual([{ id: 'k', value: '1' }])
      await store.close()

      const missing = makePgStore(pgTarget(), `rds_no_such_schema_${run}.items`)
      const error = await expectCode(missing.set('k', 1), 'ERR_DATASTORE_BACKEND')
      expect(error.message).toContain(`rds_no_such_schema_${run}.items`)
      expect(error.message).toMatch(/schema .* does not exist/)
      await missing.close()
    })

    testWithPg('a role that may only read uses an existing table; its writes fail naming the table', async () => {
      const table = newTable()
      const role = `rds_reader_${run}`
      const owner = makePgStore(pgTarget(), table)
      await owner.set('k', 'v')
      await sql(`CREATE ROLE ${role} LOGIN`)
      try {
        await sql(`GRANT SELECT ON ${table} TO ${role}`)
        const reader = makePgStore(pgTarget({ user: role }), table)
        expect(await reader.get('k')).toBe('v')
        expect(await reader.list()).toEqual(['k'])
        const error = await expectCode(reader.set('k', 'w'), 'ERR_DATASTORE_BACKEND')
        expect(error.message).toContain(table)
        expect(error.message).toMatch(/permission denied/)
        await reader.close()
        expect(await owner.get('k')).toBe('v')
      } finally {
        await owner.close()
        await sql(`DROP OWNED BY ${role}`)
        await sql(`DROP ROLE ${role}`)
      }
    })

    test('a server that never answers: operations reject after the connect timeout, each trying again', async () => {
      const silent = await silentServer()
      const { port } = silent
      // The default (10 s, where node-postgres waits for ever) is in the Rust unit tests of
      // config.rs; here the limits a target gives.
      const store = makePgStore(pgTarget({ host: '127.0.0.1', port, connectionTimeoutMillis: 300 }), 'reshuffledb')
      const fromUrl = makePgStore(`postgres://root@127.0.0.1:${port}/test?connect_timeout=1`, 'reshuffledb')
      try {
        const first = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
        expect(first.message).toMatch(/timed out after 300 ms/)
        expect(first.message).toContain(`127.0.0.1:${port}`)
        expect(silent.connections()).toBe(1)
        await expectCode(store.set('k', 1), 'ERR_DATASTORE_BACKEND')
        expect(silent.connections()).toBe(2) // it connected again
        const started = Date.now()
        const second = await expectCode(fromUrl.get('k'), 'ERR_DATASTORE_BACKEND')
        expect(second.message).toMatch(/timed out after 1000 ms/)
        expect(Date.now() - started).toBeGreaterThanOrEqual(900)
      } finally {
        await Promise.all([store.close(), fromUrl.close()])
        await silent.close()
      }
      // 0 is node-postgres's "no limit"; a working server answers as before.
      const unbounded = makePgStore(pgTarget({ connectionTimeoutMillis: 0 }), newTable())
      try {
        await unbounded.set('k', 1)
        expect(await unbounded.get('k')).toBe(1)
      } finally {
        await unbounded.close()
      }
    })

    test('a server that refuses the connection is a backend error', async () => {
      const store = makePgStore(pgTarget({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 2000 }), 'reshuffledb')
      const error = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
      expect(error.message).toContain('127.0.0.1:1')
      await store.close()
    })
  })

  describe('TLS', () => {
    const appName = `rds-tls-${run}`
    async function usesTls(target) {
      const store = makePgStore(target, newTable())
      await store.set('k', 1)
      let ssl = null
      if (pg) {
        const { rows } = await sql(
          'SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1',
          [appName],
        )
        ssl = rows.length > 0 && rows.every((r) => r.ssl)
      }
      await store.close()
      return ssl
    }

    test('sslmode=require encrypts without checking the certificate', async () => {
      const url = `postgres://${process.env.PGUSER}@${process.env.PGHOST}/${process.env.PGDATABASE}?sslmode=require&application_name=${appName}`
      const ssl = await usesTls(url)
      if (pg) expect(ssl).toBe(true)
    })

    test('sslmode=prefer encrypts when the server offers TLS', async () => {
      const url = `postgres://${process.env.PGUSER}@${process.env.PGHOST}/${process.env.PGDATABASE}?sslmode=prefer&application_name=${appName}`
      const ssl = await usesTls(url)
      if (pg) expect(ssl).toBe(true)
    })

    test('ssl: { rejectUnauthorized: false } encrypts; ssl: false does not', async () => {
      const ssl = await usesTls(pgTarget({ ssl: { rejectUnauthorized: false }, application_name: appName }))
      if (pg) expect(ssl).toBe(true)
      const plain = await usesTls(pgTarget({ ssl: false, application_name: appName }))
      if (pg) expect(plain).toBe(false)
    })

    test('ssl: true checks the certificate (the test server has a self-signed one)', async () => {
      const store = makePgStore(pgTarget({ ssl: true }), newTable())
      const error = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
      expect(error.message).toMatch(/certificate|UnknownIssuer|invalid peer/i)
      await store.close()
    })

    const certFile = '/etc/ssl/certs/ssl-cert-snakeoil.pem'
    ;(fs.existsSync(certFile) ? test : test.skip)('ssl: { ca } trusts the given certificate', async () => {
      const ssl = await usesTls(
        pgTarget({ host: 'localhost', ssl: { ca: fs.readFileSync(certFile) }, application_name: appName }),
      )
      if (pg) expect(ssl).toBe(true)
    })
  })

  describe('the table', () => {
    test('50 concurrent first writes from 5 stores create the table once, without errors', async () => {
      const table = newTable()
      const stores = Array.from({ length: 5 }, () => makePgStore(pgTarget(), table))
      const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => stores[i % 5].set(`k${i}`, i)))
      expect(results.filter((r) => r.status === 'rejected')).toEqual([])
      expect((await stores[0].list()).length).toBe(50)
      await Promise.all(stores.map((s) => s.close()))
    })

    testWithPg("the table has reshuffle's layout and JSON text", async () => {
      const table = newTable()
      const store = makePgStore(pgTarget(), table)
      await store.set('k', { a: [1, 'x'] })
      const { rows } = await sql(
        'SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
        [table],
      )
      expect(rows).toEqual([
        { column_name: 'id', data_type: 'character varying' },
        { column_name: 'value', data_type: 'character varying' },
        // Nullable, and never named by reshuffle's own adapter (README, Time to live).
        { column_name: 'expires_at', data_type: 'timestamp with time zone' },
      ])
      // The purge reads a partial index of the rows that expire.
      const { rows: indexes } = await sql('SELECT indexdef FROM pg_indexes WHERE tablename = $1', [table])
      expect(indexes.map((r) => r.indexdef)).toContainEqual(
        expect.stringMatching(/\(expires_at\) WHERE \(expires_at IS NOT NULL\)/),
      )
      expect((await sql(`SELECT value FROM ${table} WHERE id = 'k'`)).rows[0].value).toBe('{"a":[1,"x"]}')
      await store.close()
    })

    testWithPg('a row whose value is NULL (reshuffle stored undefined) reads as missing', async () => {
      const table = newTable()
      const store = makePgStore(pgTarget(), table)
      await store.set('other', 1)
      await sql(`INSERT INTO ${table} (id, value) VALUES ('nothing', NULL)`)
      expect(await store.get('nothing')).toBeUndefined()
      expect(await store.list()).toEqual(['other'])
      expect(await store.update('nothing', (v) => (v === undefined ? 'set' : 'was ' + v))).toEqual([undefined, 'set'])
      await store.close()
    })
  })

  describe('reshuffle 1.0.9 compatibility', () => {
    const testCompat = pg && Reshuffle && Reshuffle.SQLStoreAdapter ? test : test.skip

    testCompat('we read what reshuffle wrote, and it reads what we write', async () => {
      const table = newTable()
      const pool = new pg.Pool(pgTarget())
      const theirs = new Reshuffle.SQLStoreAdapter(pool, table)
      await theirs.set('theirs', { from: 'reshuffle', n: [1, 2] })
      const ours = makePgStore(pool, table)
      expect(await ours.get('theirs')).toEqual({ from: 'reshuffle', n: [1, 2] })
      await ours.set('ours', { from: 'us' })
      await ours.update('theirs', (v) => ({ ...v, seen: true }))
      expect(await theirs.get('ours')).toEqual({ from: 'us' })
      expect(await theirs.get('theirs')).toEqual({ from: 'reshuffle', n: [1, 2], seen: true })
      expect((await theirs.list()).sort()).toEqual(['ours', 'theirs'])
      await ours.close()
      await pool.end()
    })

    testCompat('every key is itself both ways, keys starting with U+FFFF included', async () => {
      const pool = new pg.Pool(pgTarget())
      const table = newTable()
      const theirs = new Reshuffle.SQLStoreAdapter(pool, table)
      const ours = makePgStore(pool, table)
      const odd = ['\uffff', '\uffff1x', '\uffff\uffff', '\uffff0', 'a\uffffb', 'é 🎉', "quo'te", '%_', ' ']
      for (const [i, k] of odd.entries()) await theirs.set(`r${k}`, i)
      for (const [i, k] of odd.entries()) await ours.set(`o${k}`, i)
      for (const [i, k] of odd.entries()) {
        expect(await ours.get(`r${k}`)).toBe(i)
        expect(await theirs.get(`o${k}`)).toBe(i)
        await theirs.set(`${k}`, `theirs ${i}`)
        expect(await ours.get(k)).toBe(`theirs ${i}`)
      }
      const all = [...odd.map((k) => `r${k}`), ...odd.map((k) => `o${k}`), ...odd]
      expect(await ours.list()).toEqual([...all].sort(byCodePoint))
      expect((await theirs.list()).sort(byCodePoint)).toEqual([...all].sort(byCodePoint))
      await ours.close()
      await pool.end()
    })

    testCompat('a mixed-case table name means what reshuffle means by it', async () => {
      const table = newTable()
      const mixed = table.replace('rds_test', 'RDS_Test')
      const pool = new pg.Pool(pgTarget())
      const theirs = new Reshuffle.SQLStoreAdapter(pool, mixed)
      await theirs.set('k', 'v')
      const ours = makePgStore(pool, mixed)
      expect(await ours.get('k')).toBe('v')
      await ours.close()
      await pool.end()
    })
  })

  describe('locking', () => {
    // (4 processes counting at once: the conformance suite's multiProcess test.)
    test.each([2, 1])(
      'two stores with %i connection(s) each contend for one key without losing updates',
      async (poolSize) => {
        const table = newTable()
        const a = makePgStore(pgTarget(), table, { poolSize })
        const b = makePgStore(pgTarget(), table, { poolSize })
        const bump = (s) =>
          s.update('n', async (v = 0) => {
            await sleep(1)
            return v + 1
          })
        await Promise.all(Array.from({ length: 60 }, (_, i) => bump(i % 2 ? a : b)))
        expect(await a.get('n')).toBe(60)
        await Promise.all([a.close(), b.close()])
      },
    )

    test('an update holds its key against another store until it finishes', async () => {
      const table = newTable()
      const a = makePgStore(pgTarget(), table)
      const b = makePgStore(pgTarget(), table)
      const g = gate()
      const first = a.update('k', async () => {
        await g.promise
        return 'first'
      })
      await sleep(50)
      let secondSaw = null
      const second = b.update('k', (v) => {
        secondSaw = v
        return 'second'
      })
      const setter = b.set('other', 1)
      await setter
      await sleep(50)
      expect(secondSaw).toBeNull() // still waiting for the key
      g.open()
      expect(await first).toEqual([undefined, 'first'])
      expect(await second).toEqual(['first', 'second'])
      await Promise.all([a.close(), b.close()])
    })

    test('set and remove from another store wait for a running update', async () => {
      const table = newTable()
      const [a, b, c] = [0, 1, 2].map(() => makePgStore(pgTarget(), table))
      await a.set('gone', 'here')
      const g = gate()
      let running = 0
      const first = a.update('k', async () => {
        running++
        await g.promise
        return 'from update'
      })
      const removing = a.update('gone', async () => {
        running++
        await g.promise
        return 'updated'
      })
      while (running < 2) await sleep(5)
      const setter = b.set('k', 'from set')
      const remover = b.remove('gone')
      await sleep(100)
      expect(await c.get('k')).toBeUndefined() // neither the update nor the set is visible yet
      expect(await c.get('gone')).toBe('here')
      g.open()
      await Promise.all([first, removing, setter, remover])
      expect(await c.get('k')).toBe('from set')
      expect(await c.get('gone')).toBeUndefined()
      await Promise.all([a.close(), b.close(), c.close()])
    })

    test('an updater that throws releases the key for other stores at once', async () => {
      const table = newTable()
      const a = makePgStore(pgTarget(), table)
      const b = makePgStore(pgTarget(), table)
      const boom = new Error('boom')
      await expect(
        a.update('k', () => {
          throw boom
        }),
      ).rejects.toBe(boom)
      await expect(
        a.update('k', async () => {
          await sleep(1)
          throw boom
        }),
      ).rejects.toBe(boom)
      expect(await b.update('k', (v = 0) => v + 1)).toEqual([undefined, 1])
      expect(await a.update('k', (v) => v + 1)).toEqual([1, 2])
      await Promise.all([a.close(), b.close()])
    })

    test('100 concurrent updates of 100 keys with 20 ms updaters run side by side', async () => {
      const store = fresh()
      await store.set('warm', 1)
      const started = Date.now()
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.update(`k${i}`, async (v = 0) => {
            await sleep(20)
            return v + 1
          }),
        ),
      )
      const took = Date.now() - started
      expect(results.every(([o, n]) => o === undefined && n === 1)).toBe(true)
      expect(took).toBeLessThan(1000) // one after another would take 2,000 ms
      await store.close()
    })

    test('10,000 concurrent gets complete with the right values', async () => {
      const store = fresh()
      await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`k${i}`, i)))
      const got = await Promise.all(Array.from({ length: 10000 }, (_, i) => store.get(`k${i % 100}`)))
      expect(got.every((v, i) => v === i % 100)).toBe(true)
      await store.close()
    })

    test("a bulk call of more keys than half the server's lock table is refused before it locks anything", async () => {
      // One advisory lock per key until the write (docs/postgres.md), in a lock table of
      // max_locks_per_transaction × (max_connections + max_prepared_transactions) shared by
      // every session of the server: filling it would fail the others' work. A call may hold
      // half; a larger one is refused with the settings named, and nothing is written.
      const setting = async (name) => Number((await sql(`SHOW ${name}`)).rows[0][name])
      const perTx = await setting('max_locks_per_transaction')
      const room = perTx * ((await setting('max_connections')) + (await setting('max_prepared_transactions')))
      const half = Math.floor(room / 2)
      const store = fresh()
      await store.set('before', 1)
      const entries = Array.from({ length: half + 1 }, (_, i) => [`k${i}`, i])
      const err = await expectCode(store.setMany(entries), 'ERR_DATASTORE_INVALID_ARGUMENT')
      expect(err.message).toContain(`setMany/removeMany of ${half + 1} keys`)
      expect(err.message).toContain(`would hold ${half + 1} advisory locks`)
      expect(err.message).toContain(`at most ${half}`)
      expect(err.message).toContain(`max_locks_per_transaction ${perTx}`)
      await expectCode(store.removeMany(entries.map(([k]) => k).concat('before')), 'ERR_DATASTORE_INVALID_ARGUMENT')
      expect(await store.list()).toEqual(['before'])
      // No lock of the refused calls is left behind: every key can still be updated, and a
      // call of half the room (or fewer distinct lock numbers) goes through.
      expect(await store.update('before', (n) => n + 1)).toEqual([1, 2])
      await store.setMany(entries.slice(0, half))
      expect(await store.getMany(['k0', `k${half - 1}`, `k${half}`])).toEqual([0, half - 1, undefined])
      await store.close()
    }, 60000)

    test('two keys of one lock number: a setMany takes it once, and a holder of one makes the other wait', async () => {
      // keys::key_lock_id: FNV-1a 64 of the key (then 0xff), folded to 32 bits.
      const lockId = (key) => {
        let h = 0xcbf29ce484222325n
        for (const b of [...Buffer.from(key), 0xff]) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n)
        return Number((h >> 32n) ^ (h & 0xffffffffn))
      }
      const seen = new Map()
      let pair
      for (let i = 0; !pair; i++) {
        const key = `c${i}`
        const id = lockId(key)
        if (seen.has(id)) pair = [seen.get(id), key]
        else seen.set(id, key)
      }
      const [k1, k2] = pair
      const a = fresh({ lockTimeout: 2000 })
      await a.setMany([
        [k1, 1],
        [k2, 2],
        ['other', 0],
      ])
      expect(await a.getMany([k1, k2])).toEqual([1, 2])
      const holder = makePgStore(pgTarget(), tableOf.get(a))
      const held = await updateHeldOpen(holder, k1, 'held')
      const e = await expectCode(a.setMany([[k2, 3]]), 'ERR_DATASTORE_LOCK_TIMEOUT')
      expect(e.message).toContain(JSON.stringify(k2))
      held.release()
      await held.interrupted
      await a.setMany([[k2, 3]])
      expect(await a.getMany([k1, k2])).toEqual(['held', 3])
      await Promise.all([a.close(), holder.close()])
    }, 60000)

    test('a pool of 1 connection still runs concurrent updates', async () => {
      const store = fresh({ poolSize: 1 })
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.update(`k${i % 4}`, async (v = 0) => v + 1)))
      expect(await Promise.all([0, 1, 2, 3].map((i) => store.get(`k${i}`)))).toEqual([5, 5, 5, 5])
      await store.close()
    })
  })

  describe('connections', () => {
    testWithPg('a killed connection fails the operation using it; the next one reconnects', async () => {
      const appName = `rds-kill-${run}`
      const table = newTable()
      const store = makePgStore(pgTarget({ application_name: appName }), table)
      await store.set('k', 'before')
      const { interrupted, release } = await updateHeldOpen(store, 'k', 'after')
      const { rows } = await sql(
        'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1',
        [appName],
      )
      expect(rows.length).toBeGreaterThan(0)
      await sleep(50)
      release()
      const error = await expectCode(interrupted, 'ERR_DATASTORE_BACKEND')
      expect(error.message).toContain(table)
      expect(await store.get('k')).toBe('before')
      expect(await store.update('k', (v) => v + ' and again')).toEqual(['before', 'before and again'])

      // Killed while idle: the next reads find a fresh connection.
      await sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName])
      expect(await store.get('k')).toBe('before and again')
      expect(await store.list()).toEqual(['k'])
      await store.close()
    })

    test('a server restart fails what is in flight; while it is down operations reject; then they reconnect', async () => {
      const proxy = await tcpProxy(process.env.PGHOST, Number(process.env.PGPORT || 5432))
      const store = makePgStore(pgTarget({ host: '127.0.0.1', port: proxy.port }), newTable())
      try {
        await store.set('k', 'before')
        await Promise.all(Array.from({ length: 20 }, (_, i) => store.set(`other${i}`, i)))
        expect(proxy.connections()).toBeGreaterThan(0)
        const { interrupted, release } = await updateHeldOpen(store, 'k', 'after')
        await proxy.stop() // every connection is cut, new ones are refused
        release()
        await expectCode(interrupted, 'ERR_DATASTORE_BACKEND')
        const down = await expectCode(store.get('k'), 'ERR_DATASTORE_BACKEND')
        expect(down.message).toContain(`127.0.0.1:${proxy.port}`)
        await expectCode(store.set('k', 'while down'), 'ERR_DATASTORE_BACKEND')

        await proxy.start()
        // The interrupted update and the refused set wrote nothing; the store works again.
        expect(await store.get('k')).toBe('before')
        expect(await store.update('k', (v) => v + ' and after')).toEqual(['before', 'before and after'])
        expect(await store.list('other')).toHaveLength(20)
      } finally {
        await store.close()
        await proxy.stop()
      }
    })

    testWithPg('poolSize bounds the connections; close() ends them', async () => {
      const appName = `rds-pool-${run}`
      const store = makePgStore(pgTarget({ application_name: appName }), newTable(), { poolSize: 3 })
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.update(`k${i}`, async () => {
            await sleep(10)
            return i
          }),
        ),
      )
      const count = async () =>
        Number(
          (await sql('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [appName])).rows[0].n,
        )
      const open = await count()
      expect(open).toBeGreaterThan(0)
      expect(open).toBeLessThanOrEqual(3)
      await store.close()
      let left = await count()
      for (let i = 0; i < 50 && left > 0; i++) {
        await sleep(20)
        left = await count()
      }
      expect(left).toBe(0)
    })

    testWithPg('polling for replies ends with the operations: an idle store uses no CPU', async () => {
      for (const busyPollMicros of [undefined, 0, 10000]) {
        const store = fresh(busyPollMicros === undefined ? undefined : { busyPollMicros })
        for (let i = 0; i < 100; i++) await store.set(`k${i % 10}`, i)
        await Promise.all(Array.from({ length: 100 }, (_, i) => store.get(`k${i % 10}`)))
        await expect(store.get('k9')).resolves.toBe(99)
        const before = process.cpuUsage()
        await sleep(300)
        const used = process.cpuUsage(before)
        // A loop still polling would use about the whole 300 ms.
        expect((used.user + used.system) / 1000).toBeLessThan(150)
        await store.close()
      }
    })

    testWithPg('idle connections close after idleTimeoutMillis; the next operation reconnects', async () => {
      const appName = `rds-idle-${run}`
      const store = makePgStore(pgTarget({ application_name: appName, idleTimeoutMillis: 200 }), newTable())
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.set(`k${i}`, i)))
      const count = async () =>
        Number(
          (await sql('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [appName])).rows[0].n,
        )
      expect(await count()).toBeGreaterThan(0)
      let left = await count()
      for (let i = 0; i < 100 && left > 0; i++) {
        await sleep(50)
        left = await count()
      }
      expect(left).toBe(0)
      expect(await store.get('k3')).toBe(3)
      expect(await count()).toBeGreaterThan(0)
      await store.close()
    })

    test('a process that never closes its store still exits by itself', async () => {
      const table = newTable()
      const r = await runNode([path.join(__dirname, 'fixtures', 'postgres-idle.js'), table], 20000)
      expect(r.code).toBe(0)
      expect(r.lines).toEqual([{ set: { at: 'end' } }])
    })

    test('worker threads use stores and end cleanly, closed, left open, terminated mid-operation or with timers due', async () => {
      const table = newTable()
      const r = await runNode([path.join(__dirname, 'fixtures', 'postgres-workers.js'), table], 30000)
      expect(r.err).toBe('')
      expect(r.code).toBe(0)
      expect(r.lines).toEqual([
        { mode: 'close', n: 2 },
        { mode: 'close', exit: 0 },
        { mode: 'leave', n: 2 },
        { mode: 'leave', exit: 0 },
        { busy: true },
        { mode: 'busy', terminated: true },
        { mode: 'ticking', clean: 10 },
      ])
    })
  })
})
