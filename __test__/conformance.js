// The shared conformance suite: every backend runs it from a short spec file.
//
//   runConformance('memory', async () => new MemoryStoreAdapter(), { persistent: false })
//
// `makeStore()` returns a fresh, empty store. Capability toggles:
// - persistent: `reopen(store)` closes a store and opens another on the same data.
// - nul: false for an engine that cannot hold NUL in a key (PostgreSQL): such keys reject.
// - multiProcess: `spec(store)` describes the store for other processes (see lib/stores.js):
//   processes updating one counter at once lose no update (fixtures/counter.js).
// - foreign: for engines whose data other programs can write (SQL tables, Redis):
//   `write(store, key, text)` stores `text` as key's value as such a program would, and
//   `noValue(store, key)` makes a key that is listed but has no value to read (a NULL value,
//   a Redis key of another type).
'use strict'

const { DatastoreError } = require('..')
const { runChild, fixture } = require('./lib/children')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// A promise with its resolve function, for updaters that wait until the test lets them go.
function gate() {
  let open
  const promise = new Promise((resolve) => (open = resolve))
  return { promise, open }
}

// An update of `key` to `value` whose updater, once running, waits for `release()`; resolves
// once the updater runs (a server store holds the key's lock on the server then).
async function updateHeldOpen(store, key, value) {
  const g = gate()
  let entered = false
  const interrupted = store.update(key, async () => {
    entered = true
    await g.promise
    return value
  })
  while (!entered) await sleep(5)
  return { interrupted, release: () => g.open() }
}

// For engines that take a bulk call's locks in key order, trying many at once: `hasty` (a
// store of the same data as `holder`, made with lockTimeout: 300) setMany's 5,000 keys while
// `holder` holds k2500. It times out naming that key, having written nothing. Tried again by
// `patient` (the same data, lockTimeout: 5000): while it waits for k2500 it holds k2499 but not
// k2501, which it tried with k2500 and gave back, so nothing is held out of order (`isHeld(key)`
// asks the server); after the release it completes. (Waited for, not timed: on a loaded machine
// reaching k2499 took more than 100 ms; and k2501 is given back a moment after it was tried.)
async function bulkWaitsInKeyOrder(holder, hasty, patient, isHeld) {
  const entries = Array.from({ length: 5000 }, (_, i) => [`k${i}`, i])
  const held = await updateHeldOpen(holder, 'k2500', 'held')
  const e = await expectCode(hasty.setMany(entries), 'ERR_DATASTORE_LOCK_TIMEOUT')
  expect(e.message).toMatch(/"k2500".*300 ms/)
  expect(await hasty.get('k1')).toBeUndefined()
  const again = entries.map(([k, v]) => [k, v + 1])
  const bulk = patient.setMany(again)
  const until = Date.now() + 4000
  while (!(await isHeld('k2499')) && Date.now() < until) await sleep(5)
  // Keys tried in the same batch as k2500 are held for a moment, until they are given back.
  while ((await isHeld('k2501')) && Date.now() < until) await sleep(5)
  expect([await isHeld('k2499'), await isHeld('k2501')]).toEqual([true, false])
  expect(await holder.get('k0')).toBeUndefined() // nothing written while it waits
  held.release()
  expect(await held.interrupted).toEqual([undefined, 'held'])
  await bulk
  expect(await holder.getMany(['k0', 'k2500', 'k4999'])).toEqual([1, 2501, 5000])
}

async function expectCode(promise, code) {
  let error
  try {
    await promise
  } catch (e) {
    error = e
  }
  // Errors are DatastoreErrors of this realm (jest's sandbox), so instanceof holds here.
  expect(error).toBeInstanceOf(Error)
  expect(error).toBeInstanceOf(DatastoreError)
  expect(error.code).toBe(code)
  expect(typeof error.message).toBe('string')
  return error
}

function runConformance(name, makeStore, caps = {}) {
  describe(`${name}: conformance`, () => {
    let store
    beforeEach(async () => {
      store = await makeStore()
    })
    afterEach(async () => {
      if (store) await store.close()
    })

    describe('get / set / remove', () => {
      test('a missing key is undefined, never null', async () => {
        const v = await store.get('missing')
        expect(v).toBeUndefined()
        expect(v).not.toBeNull()
      })

      test('set resolves to the value itself (as reshuffle) and keeps a copy', async () => {
        const value = { a: 1, list: [1, 'two', null], nested: { ok: true } }
        const result = await store.set('k', value)
        expect(result).toBe(value)
        value.a = 2
        const got = await store.get('k')
        expect(got).toEqual({ a: 1, list: [1, 'two', null], nested: { ok: true } })
        expect(got).not.toBe(value)
      })

      test('every JSON type round-trips', async () => {
        const values = [0, -1.5, 'text', '', true, false, null, [], {}, [1, [2, [3]]], { 'é 🎉': 'ü' }]
        for (const [i, v] of values.entries()) {
          await store.set(`v${i}`, v)
        }
        for (const [i, v] of values.entries()) {
          expect(await store.get(`v${i}`)).toEqual(v)
        }
      })

      test('copies in and out: later mutation never changes the stored value', async () => {
        const value = { a: 1, list: [1] }
        await store.set('k', value)
        value.a = 2
        value.list.push(2)
        const got = await store.get('k')
        expect(got).toEqual({ a: 1, list: [1] })
        got.a = 3
        got.list.push(3)
        expect(await store.get('k')).toEqual({ a: 1, list: [1] })
      })

      test("JSON's own rules: toJSON, Date, dropped functions and undefined members", async () => {
        const when = new Date('2020-01-02T03:04:05.000Z')
        await store.set('k', { when, fn: () => 1, gone: undefined, custom: { toJSON: () => 'C' } })
        expect(await store.get('k')).toEqual({ when: '2020-01-02T03:04:05.000Z', custom: 'C' })
        await store.set('d', when)
        expect(await store.get('d')).toBe('2020-01-02T03:04:05.000Z')
      })

      test('remove and its alias del; a missing key is not an error', async () => {
        await store.set('a', 1)
        await store.set('b', 2)
        expect(await store.remove('a')).toBeUndefined()
        expect(await store.del('b')).toBeUndefined()
        expect(await store.get('a')).toBeUndefined()
        expect(await store.get('b')).toBeUndefined()
        await expect(store.remove('never')).resolves.toBeUndefined()
        await expect(store.del('never')).resolves.toBeUndefined()
      })

      test('any characters in keys, each key stored as itself', async () => {
        const keys = [
          'quo\'te"',
          '100%_',
          'a/b\\c',
          'emoji 🎉',
          ' space ',
          'x'.repeat(2048),
          '\uffff',
          '\uffff1x',
          'a\uffff',
        ]
        if (caps.nul !== false) keys.push('nul\u0000byte', '\u0000')
        for (const k of keys) await store.set(k, k.length)
        for (const k of keys) expect(await store.get(k)).toBe(k.length)
        expect(await store.list()).toEqual([...keys].sort(byCodePoint))
        expect(await store.list('\uffff')).toEqual(['\uffff', '\uffff1x'])
      })

      if (caps.nul === false) {
        test('a key or prefix with NUL, which this engine cannot hold, rejects and changes nothing', async () => {
          const e = await expectCode(store.set('nul\u0000byte', 1), 'ERR_DATASTORE_INVALID_KEY')
          expect(e.message).toMatch(/NUL/)
          await expectCode(
            store.update('\u0000', () => 1),
            'ERR_DATASTORE_INVALID_KEY',
          )
          await expectCode(store.list('a\u0000'), 'ERR_DATASTORE_INVALID_KEY')
          expect(await store.list()).toEqual([])
        })
      }

      test('a 2,048-byte key works, 2,049 bytes is rejected', async () => {
        const okKey = 'é'.repeat(1024)
        await store.set(okKey, 1)
        expect(await store.get(okKey)).toBe(1)
        await expectCode(store.set('é'.repeat(1024) + 'x', 1), 'ERR_DATASTORE_INVALID_KEY')
      })

      test('keys of every length around 256 bytes, with multi-byte characters, stay whole', async () => {
        const keys = []
        for (let n = 240; n <= 262; n++) {
          keys.push('a'.repeat(n), 'é'.repeat(n >> 1) + 'x'.repeat(n & 1), '😀'.repeat(n >> 2) + 'y'.repeat(n & 3))
        }
        for (const k of keys) await store.set(k, k.length)
        for (const k of keys) expect(await store.get(k)).toBe(k.length)
        expect(await store.list()).toEqual([...new Set(keys)].sort(byCodePoint))
      })

      test('values of every size, with multi-byte characters, stay whole when written over each other', async () => {
        // Short texts cross in one buffer, long ones in another kept between calls: a value
        // must never keep bytes of a longer one written before it, nor lose its own.
        const texts = []
        for (const n of [1, 200, 252, 253, 256, 300, 4096, 70000, 3 << 20, 1000, 5]) {
          texts.push('a'.repeat(n), 'é'.repeat(n >> 1) + '€', '😀'.repeat(n >> 2) + 'ü')
        }
        for (const text of texts) {
          await store.set('v', { text })
          expect(await store.get('v')).toEqual({ text })
          expect(await store.update('v', (old) => ({ text: old.text + '!' }))).toEqual([{ text }, { text: text + '!' }])
        }
        expect(await store.get('v')).toEqual({ text: texts.at(-1) + '!' })
      })

      test('large values work (8 MiB)', async () => {
        const big = { blob: 'x'.repeat(8 * 1024 * 1024) }
        await store.set('big', big)
        const got = await store.get('big')
        expect(got.blob.length).toBe(big.blob.length)
      })

      // Around 128 KiB of JSON text a value's text takes another path (SQLite reads it with its
      // blob reader, the binding makes an external string): ASCII and not, on both sides of it.
      test('values around 128 KiB read back exactly, ASCII or not', async () => {
        const limit = 128 * 1024
        const values = {
          below: 'a'.repeat(limit - 12), // {"text":"…"}: 11 bytes more, so limit - 1 bytes
          at: 'b'.repeat(limit - 11), // limit bytes
          accents: 'é'.repeat(limit),
          mixed: 'x'.repeat(limit) + '😀\u0000"\\',
        }
        for (const [key, text] of Object.entries(values)) await store.set(key, { text })
        for (const [key, text] of Object.entries(values)) {
          const got = await store.get(key)
          expect(got.text.length).toBe(text.length)
          expect(got.text === text).toBe(true)
        }
        expect(await store.getMany(Object.keys(values))).toEqual(Object.values(values).map((text) => ({ text })))
      })
    })

    describe('list', () => {
      test('sorted by Unicode code point, with and without prefix', async () => {
        // UTF-16 order would put the emoji (a surrogate pair) before U+FFFD.
        const keys = ['b', 'a', 'a\uFFFD', 'a😀', 'ab', 'B', 'a/1', 'Z']
        for (const k of keys) await store.set(k, true)
        expect(await store.list()).toEqual(['B', 'Z', 'a', 'a/1', 'ab', 'a\uFFFD', 'a😀', 'b'])
        expect(await store.list('a')).toEqual(['a', 'a/1', 'ab', 'a\uFFFD', 'a😀'])
        expect(await store.list('a/')).toEqual(['a/1'])
        expect(await store.list('nothing')).toEqual([])
      })

      test('an empty store lists []', async () => {
        expect(await store.list()).toEqual([])
      })

      test('sees every write called before it, awaited or not', async () => {
        store.set('x', 1)
        store.set('y', 2)
        store.remove('x')
        expect(await store.list()).toEqual(['y'])
      })

      test('a non-string prefix rejects', async () => {
        await expectCode(store.list(5), 'ERR_DATASTORE_INVALID_ARGUMENT')
      })
    })

    describe('bad input', () => {
      test.each([
        ['a number', 1],
        ['null', null],
        ['undefined', undefined],
        ['an object', { k: 1 }],
        ['an empty string', ''],
        ['a too long string', 'k'.repeat(2049)],
      ])('a key that is %s rejects with ERR_DATASTORE_INVALID_KEY and changes nothing', async (_, key) => {
        await store.set('keep', 1)
        await expectCode(store.set(key, 1), 'ERR_DATASTORE_INVALID_KEY')
        await expectCode(store.get(key), 'ERR_DATASTORE_INVALID_KEY')
        await expectCode(
          store.update(key, () => 1),
          'ERR_DATASTORE_INVALID_KEY',
        )
        await expectCode(store.remove(key), 'ERR_DATASTORE_INVALID_KEY')
        expect(await store.list()).toEqual(['keep'])
        expect(await store.get('keep')).toBe(1)
      })

      const circular = {}
      circular.self = circular
      test.each([
        ['undefined', undefined],
        ['a function', () => 1],
        ['a Symbol', Symbol('s')],
        ['a BigInt', 10n],
        ['a circular object', circular],
        ['an object with a BigInt inside', { n: 1n }],
        [
          'an object whose getter throws',
          {
            get boom() {
              throw new Error('getter')
            },
          },
        ],
      ])('a value that is %s rejects with ERR_DATASTORE_INVALID_VALUE naming the key', async (_, value) => {
        await store.set('k', 'before')
        const e = await expectCode(store.set('k', value), 'ERR_DATASTORE_INVALID_VALUE')
        expect(e.message).toContain('"k"')
        expect(await store.get('k')).toBe('before')
        // still usable
        await store.set('k', 'after')
        expect(await store.get('k')).toBe('after')
      })

      test('an updater that returns a non-JSON value rejects and writes nothing', async () => {
        await store.set('k', 1)
        await expectCode(
          store.update('k', () => () => 1),
          'ERR_DATASTORE_INVALID_VALUE',
        )
        await expectCode(
          store.update('k', async () => 5n),
          'ERR_DATASTORE_INVALID_VALUE',
        )
        expect(await store.get('k')).toBe(1)
        expect(await store.update('k', (v) => v + 1)).toEqual([1, 2])
      })

      test('update without a function rejects with ERR_DATASTORE_INVALID_ARGUMENT', async () => {
        await expectCode(store.update('k', 5), 'ERR_DATASTORE_INVALID_ARGUMENT')
        await expectCode(store.update('k'), 'ERR_DATASTORE_INVALID_ARGUMENT')
      })
    })

    describe('update', () => {
      test('resolves to [old, new] and stores new', async () => {
        expect(await store.update('n', (v = 0) => v + 1)).toEqual([undefined, 1])
        expect(await store.update('n', (v) => v + 1)).toEqual([1, 2])
        expect(await store.get('n')).toBe(2)
      })

      test('undefined from the updater means no change', async () => {
        await store.set('k', { a: 1 })
        expect(await store.update('k', () => undefined)).toEqual([{ a: 1 }, undefined])
        expect(await store.get('k')).toEqual({ a: 1 })
        expect(await store.update('missing', () => undefined)).toEqual([undefined, undefined])
        expect(await store.list()).toEqual(['k'])
      })

      test('arrays and null reach the updater unchanged', async () => {
        await store.set('arr', [1, 2, 3])
        await store.set('nul', null)
        let seenArr
        let seenNull = 'unset'
        await store.update('arr', (v) => {
          seenArr = v
          return v
        })
        await store.update('nul', (v) => {
          seenNull = v
          return v
        })
        expect(Array.isArray(seenArr)).toBe(true)
        expect(seenArr).toEqual([1, 2, 3])
        expect(seenNull).toBeNull()
      })

      test('the updater gets a copy: mutating it does not change the returned old value', async () => {
        await store.set('k', { jobs: ['a'] })
        const [old, next] = await store.update('k', (v) => {
          v.jobs.push('b')
          return v
        })
        expect(old).toEqual({ jobs: ['a'] })
        expect(next).toEqual({ jobs: ['a', 'b'] })
      })

      test('async updaters are awaited', async () => {
        const [, next] = await store.update('k', async (v = 0) => {
          await sleep(5)
          return v + 10
        })
        expect(next).toBe(10)
        expect(await store.get('k')).toBe(10)
      })

      test("the updater's error reaches the caller as the same object and releases the lock", async () => {
        class CustomError extends Error {
          constructor() {
            super('custom')
            this.status = 418
          }
        }
        const custom = new CustomError()
        await store.set('k', 1)
        const caught = await store
          .update('k', () => {
            throw custom
          })
          .catch((e) => e)
        expect(caught).toBe(custom)
        expect(caught.status).toBe(418)

        const thrownString = await store
          .update('k', async () => {
            await sleep(1)
            throw 'plain string'
          })
          .catch((e) => e)
        expect(thrownString).toBe('plain string')

        const rejected = await store.update('k', () => Promise.reject(custom)).catch((e) => e)
        expect(rejected).toBe(custom)

        expect(await store.get('k')).toBe(1)
        expect(await store.update('k', (v) => v + 1)).toEqual([1, 2])
      })

      test('a thenable returned by the updater is awaited', async () => {
        const thenable = { then: (resolve) => setTimeout(() => resolve(7), 1) }
        expect(await store.update('k', () => thenable)).toEqual([undefined, 7])
      })

      test('200 concurrent +1 updates on one key end at exactly 200', async () => {
        const all = []
        for (let i = 0; i < 200; i++) {
          all.push(
            store.update('counter', async (v = 0) => {
              await sleep(Math.random() * 2)
              return v + 1
            }),
          )
        }
        const results = await Promise.all(all)
        expect(await store.get('counter')).toBe(200)
        // FIFO: the i-th call saw i as its old value.
        results.forEach(([old], i) => expect(old).toBe(i === 0 ? undefined : i))
      })

      test('updates of 50 different keys run at the same time', async () => {
        // Every updater waits until all 50 run: only if none waits for another can they finish
        // (a store that ran them one by one would time out here).
        let running = 0
        let most = 0
        const allRunning = gate()
        const all = []
        for (let i = 0; i < 50; i++) {
          all.push(
            store.update(`key${i}`, async (v = 0) => {
              running++
              most = Math.max(most, running)
              if (running === 50) allRunning.open()
              await allRunning.promise
              running--
              return v + 1
            }),
          )
        }
        await Promise.all(all)
        expect(most).toBe(50)
        for (let i = 0; i < 50; i++) expect(await store.get(`key${i}`)).toBe(1)
      })

      test('operations on other keys never wait for a running updater', async () => {
        const g = gate()
        const slow = store.update('slow', async () => {
          await g.promise
          return 'done'
        })
        await store.set('other', 1)
        expect(await store.get('other')).toBe(1)
        expect(await store.update('other', (v) => v + 1)).toEqual([1, 2])
        await store.remove('other')
        g.open()
        expect(await slow).toEqual([undefined, 'done'])
      })

      test('a set issued while an update runs lands after it and wins', async () => {
        const g = gate()
        const order = []
        const upd = store.update('k', async () => {
          await g.promise
          order.push('update')
          return 'from update'
        })
        const set = store.set('k', 'from set').then(() => order.push('set'))
        const get = store.get('k')
        await sleep(10)
        expect(order).toEqual([])
        g.open()
        await Promise.all([upd, set])
        expect(order).toEqual(['update', 'set'])
        expect(await get).toBe('from set')
        expect(await store.get('k')).toBe('from set')
      })

      test('operations on one key complete in call order (FIFO)', async () => {
        const done = []
        const ops = [
          store
            .update('k', async () => {
              await sleep(20)
              return 1
            })
            .then(() => done.push('update1')),
          store.get('k').then((v) => done.push(`get:${v}`)),
          store.set('k', 2).then(() => done.push('set')),
          store.update('k', (v) => v * 10).then(() => done.push('update2')),
          store.remove('k').then(() => done.push('remove')),
          store.get('k').then((v) => done.push(`get:${v}`)),
        ]
        await Promise.all(ops)
        expect(done).toEqual(['update1', 'get:1', 'set', 'update2', 'remove', 'get:undefined'])
      })
    })

    describe('ordering on one instance', () => {
      test('a set that is not awaited is seen by the next get', async () => {
        store.set('k', 'v')
        expect(await store.get('k')).toBe('v')
        store.remove('k')
        expect(await store.get('k')).toBeUndefined()
      })
    })

    describe('close', () => {
      test('waits for pending operations, then rejects later calls with ERR_DATASTORE_CLOSED', async () => {
        const g = gate()
        const upd = store.update('k', async () => {
          await g.promise
          return 1
        })
        const closing = store.close()
        await expectCode(store.get('k'), 'ERR_DATASTORE_CLOSED').finally(() => g.open())
        expect(await upd).toEqual([undefined, 1])
        await closing
        await expectCode(store.set('k', 1), 'ERR_DATASTORE_CLOSED')
        await expectCode(
          store.update('k', () => 1),
          'ERR_DATASTORE_CLOSED',
        )
        await expectCode(store.remove('k'), 'ERR_DATASTORE_CLOSED')
        await expectCode(store.list(), 'ERR_DATASTORE_CLOSED')
        await expect(store.close()).resolves.toBeUndefined()
      })

      test('[Symbol.asyncDispose] is close() (await using)', async () => {
        // Node defines Symbol.asyncDispose in its main realm only; jest's sandbox has none,
        // where TypeScript's helpers and polyfills use the registered symbol.
        const dispose = Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')
        await store.set('k', 1)
        await expect(store[dispose]()).resolves.toBeUndefined()
        await expectCode(store.get('k'), 'ERR_DATASTORE_CLOSED')
      })
    })

    describe("reshuffle's PersistentStore checks", () => {
      test('validateKey and validateValue throw coded errors, and pass good input', () => {
        expect(() => store.validateKey('')).toThrow(DatastoreError)
        expect(() => store.validateKey(1)).toThrow(expect.objectContaining({ code: 'ERR_DATASTORE_INVALID_KEY' }))
        expect(() => store.validateValue(undefined)).toThrow(
          expect.objectContaining({ code: 'ERR_DATASTORE_INVALID_VALUE' }),
        )
        expect(store.validateKey('k')).toBeUndefined()
        expect(store.validateValue(null)).toBeUndefined()
      })
    })

    describe('an updater using its own store', () => {
      // Each of these would wait for the updater itself; they reject at once instead. The jest
      // timeout turns a regression (a hang) into a failure.
      test('get, set, update, remove of its own key reject with ERR_DATASTORE_REENTRANT', async () => {
        await store.set('k', 1)
        const errors = []
        const result = await store.update('k', (v) => {
          for (const op of [
            () => store.get('k'),
            () => store.set('k', 2),
            () => store.update('k', () => 3),
            () => store.remove('k'),
            () => store.del('k'),
          ]) {
            errors.push(
              op().then(
                () => 'resolved',
                (e) => e,
              ),
            )
          }
          return v + 10
        })
        expect(result).toEqual([1, 11])
        for (const p of errors) {
          const e = await p
          expect(e.code).toBe('ERR_DATASTORE_REENTRANT')
          expect(e.key).toBe('k')
          expect(e.message).toMatch(/must not use its own key/)
        }
        expect(await store.get('k')).toBe(11)
      }, 10000)

      test('awaiting its own key inside the updater rejects the update with that error', async () => {
        await store.set('k', 1)
        const e = await expectCode(
          store.update('k', async () => {
            await store.get('k')
            return 2
          }),
          'ERR_DATASTORE_REENTRANT',
        )
        expect(e.operation).toBe('get')
        expect(await store.get('k')).toBe(1)
        expect(await store.update('k', (v) => v + 1)).toEqual([1, 2])
      }, 10000)

      test('list and close of its own store reject; the store stays open', async () => {
        const codes = []
        await store.update('k', () => {
          codes.push(
            store.list().then(
              () => 'resolved',
              (e) => e.code,
            ),
          )
          codes.push(
            store.close().then(
              () => 'resolved',
              (e) => e.code,
            ),
          )
          return 1
        })
        expect(await Promise.all(codes)).toEqual(['ERR_DATASTORE_REENTRANT', 'ERR_DATASTORE_REENTRANT'])
        expect(await store.list()).toEqual(['k'])
      }, 10000)

      test('other keys of the same store work inside an updater, also after an await', async () => {
        await store.set('other', 'x')
        const [, result] = await store.update('k', async () => {
          const before = await store.get('other')
          await store.set('third', 3)
          await store.update('fourth', () => 4)
          return { before, after: await store.get('third') }
        })
        expect(result).toEqual({ before: 'x', after: 3 })
        expect(await store.get('fourth')).toBe(4)
      }, 10000)

      test('nested updates of different keys work', async () => {
        let inner
        await store.set('a', 'old')
        const [, outer] = await store.update('a', async () => {
          const [, b] = await store.update('b', () => {
            // Not awaited, so never a deadlock: rejected at once when b's updater runs inside
            // a's synchronous part (memory), else it waits for a's update and sees its result.
            inner = store.get('a').then(
              (v) => v,
              (e) => e.code,
            )
            return 'b'
          })
          return `a+${b}`
        })
        expect(outer).toBe('a+b')
        expect(['ERR_DATASTORE_REENTRANT', 'a+b']).toContain(await inner)
        expect(await store.get('b')).toBe('b')
      }, 10000)
    })

    describe('time to live', () => {
      test('a key set with ttl reads as missing once it expires, everywhere', async () => {
        await store.set('short', 1, { ttl: 1 })
        await store.set('long', 2, { ttl: 600000 })
        await store.setMany(
          [
            ['many-short', 3],
            ['many-short2', 4],
          ],
          { ttl: 1 },
        )
        await store.update('upd-short', () => 5, { ttl: 1 })
        await sleep(30)
        expect(await store.get('short')).toBeUndefined()
        expect(await store.get('long')).toBe(2)
        expect(await store.getMany(['short', 'long', 'many-short', 'upd-short'])).toEqual([
          undefined,
          2,
          undefined,
          undefined,
        ])
        expect(await store.list()).toEqual(['long'])
        expect(await store.keys()).toEqual(['long'])
        const seen = []
        for await (const entry of store.entries()) seen.push(entry)
        expect(seen).toEqual([['long', 2]])
        let old = 'not called'
        expect(await store.update('short', (v) => ((old = v), 'again'))).toEqual([undefined, 'again'])
        expect(old).toBeUndefined()
        expect(await store.get('short')).toBe('again') // no ttl now: it stays
      })

      test('a set without ttl clears an earlier expiry; an update without ttl keeps none', async () => {
        await store.set('k', 1, { ttl: 1 })
        await store.set('k', 2)
        await store.set('u', 1, { ttl: 1 })
        await store.update('u', () => 2)
        await sleep(30)
        expect(await store.get('k')).toBe(2)
        expect(await store.get('u')).toBe(2)
      })

      test('bad ttl values and unknown write options reject with ERR_DATASTORE_INVALID_ARGUMENT', async () => {
        for (const ttl of [0, -1, NaN, Infinity, '100', {}, 2 ** 60]) {
          await expectCode(store.set('k', 1, { ttl }), 'ERR_DATASTORE_INVALID_ARGUMENT')
          await expectCode(
            store.update('k', () => 1, { ttl }),
            'ERR_DATASTORE_INVALID_ARGUMENT',
          )
          await expectCode(store.setMany([['k', 1]], { ttl }), 'ERR_DATASTORE_INVALID_ARGUMENT')
        }
        await expectCode(store.set('k', 1, { tll: 5 }), 'ERR_DATASTORE_INVALID_ARGUMENT')
        await expectCode(store.set('k', 1, null), 'ERR_DATASTORE_INVALID_ARGUMENT')
        expect(await store.get('k')).toBeUndefined()
      })

      if (caps.persistent) {
        test('expiries survive close and reopen', async () => {
          await store.set('kept', 1, { ttl: 600000 })
          await store.set('gone', 2, { ttl: 1 })
          await store.set('plain', 3)
          store = await caps.reopen(store)
          await sleep(30)
          expect(await store.getMany(['kept', 'gone', 'plain'])).toEqual([1, undefined, 3])
          expect(await store.keys()).toEqual(['kept', 'plain'])
        })
      }
    })

    describe('bulk', () => {
      test('getMany: values in order, undefined for missing, duplicates allowed', async () => {
        await store.set('a', { n: 1 })
        await store.set('b', null)
        expect(await store.getMany(['b', 'missing', 'a', 'a'])).toEqual([null, undefined, { n: 1 }, { n: 1 }])
        expect(await store.getMany([])).toEqual([])
      })

      test('getMany sees every write called before it, awaited or not', async () => {
        store.set('x', 1)
        store.update('y', () => 2)
        expect(await store.getMany(['x', 'y'])).toEqual([1, 2])
      })

      test('setMany writes all or nothing: one value JSON cannot store, and nothing changes', async () => {
        await store.set('a', 'before')
        await expectCode(
          store.setMany([
            ['a', 'after'],
            ['b', () => {}],
          ]),
          'ERR_DATASTORE_INVALID_VALUE',
        )
        await expectCode(store.setMany([['a', 1], ['']]), 'ERR_DATASTORE_INVALID_ARGUMENT')
        await expectCode(store.setMany([['', 1]]), 'ERR_DATASTORE_INVALID_KEY')
        expect(await store.getMany(['a', 'b'])).toEqual(['before', undefined])
        await store.setMany([
          ['a', 1],
          ['b', 2],
          ['a', 3],
        ])
        expect(await store.getMany(['a', 'b'])).toEqual([3, 2])
      })

      test('an updater can setMany and removeMany thousands of other keys of its store', async () => {
        // Engines that lock buckets of keys for a large call (file, SQLite) must not make it
        // wait for the updater's own key, which shares a bucket with some of them.
        const entries = Array.from({ length: 3000 }, (_, i) => [`bulk/${i}`, i])
        const [, cursor] = await store.update('cursor', async (n = 0) => {
          await store.setMany(entries)
          await store.removeMany(entries.slice(0, 1000).map(([k]) => k))
          return n + 1
        })
        expect(cursor).toBe(1)
        expect(await store.getMany(['bulk/0', 'bulk/1000', 'bulk/2999'])).toEqual([undefined, 1000, 2999])
        expect(await store.keys({ prefix: 'bulk/', limit: 5000 })).toHaveLength(2000)
      })

      test("setMany and removeMany wait for each key's lock", async () => {
        const g = gate()
        const upd = store.update('held', async () => {
          await g.promise
          return 'from update'
        })
        let settled = false
        const many = store
          .setMany([
            ['held', 'from setMany'],
            ['free', 1],
          ])
          .finally(() => (settled = true))
        await sleep(20)
        // All or nothing: not even the free key is written while another key is held.
        expect(settled).toBe(false)
        g.open()
        await upd
        await many
        expect(await store.getMany(['held', 'free'])).toEqual(['from setMany', 1])
        await store.removeMany(['held', 'free', 'never'])
        expect(await store.keys()).toEqual([])
      })
    })

    describe('paging', () => {
      test('keys({ prefix, after, limit }) pages through every key once, in order', async () => {
        const all = Array.from({ length: 57 }, (_, i) => `p/${String(i).padStart(3, '0')}`)
        await store.setMany(all.map((k) => [k, k.length]))
        await store.set('q/other', 1)
        const seen = []
        let after
        for (;;) {
          const page = await store.keys({ prefix: 'p/', after, limit: 10 })
          expect(page.length).toBeLessThanOrEqual(10)
          seen.push(...page)
          if (page.length < 10) break
          after = page[page.length - 1]
        }
        expect(seen).toEqual(all)
        expect(await store.keys({ after: 'p/055' })).toEqual(['p/056', 'q/other'])
        await expectCode(store.keys({ limit: 0 }), 'ERR_DATASTORE_INVALID_ARGUMENT')
        await expectCode(store.keys({ size: 1 }), 'ERR_DATASTORE_INVALID_ARGUMENT')
      })

      test('entries({ prefix, batch }) yields every [key, value] once while others write', async () => {
        const all = Array.from({ length: 120 }, (_, i) => `e/${String(i).padStart(3, '0')}`)
        await store.setMany(all.map((k, i) => [k, { i }]))
        const seen = []
        let n = 0
        for await (const [key, value] of store.entries({ prefix: 'e/', batch: 7 })) {
          seen.push(key)
          if (all.includes(key)) expect(value).toEqual({ i: all.indexOf(key) })
          else expect(value).toBe('new')
          // Meanwhile others write keys before and after the walk's position.
          await store.set(`e/${String(n++).padStart(3, '0')}x`, 'new')
          await store.remove(`e/zz${n}`)
        }
        // Every key that existed throughout is seen exactly once, in order.
        expect(seen.filter((k) => all.includes(k))).toEqual(all)
        expect(new Set(seen).size).toBe(seen.length)
        const bad = store.entries({ batch: 0 })[Symbol.asyncIterator]()
        await expectCode(bad.next(), 'ERR_DATASTORE_INVALID_ARGUMENT')
      })
    })

    if (caps.foreign) {
      describe('values written by another program', () => {
        test('a value that is not JSON: reads of it reject with ERR_DATASTORE_CORRUPT naming the key, and no entry is made up', async () => {
          await store.set('a', 1)
          // Spliced into a page of entries as it is, this text would add an entry ["x", 2].
          await caps.foreign.write(store, 'b', '1],["x",2')
          await store.set('c', 3)
          const got = await expectCode(store.get('b'), 'ERR_DATASTORE_CORRUPT')
          expect(got.message).toMatch(/the value of key "b" is corrupt/)
          await expectCode(store.getMany(['a', 'b']), 'ERR_DATASTORE_CORRUPT')
          let called = false
          const updated = await expectCode(
            store.update('b', () => {
              called = true
              return 1
            }),
            'ERR_DATASTORE_CORRUPT',
          )
          expect(updated.message).toMatch(/the value of key "b" is corrupt/)
          expect(called).toBe(false)
          for (const batch of [1, 10]) {
            const seen = []
            const walk = (async () => {
              for await (const entry of store.entries({ batch })) seen.push(entry)
            })()
            const walked = await expectCode(walk, 'ERR_DATASTORE_CORRUPT')
            expect(walked.message).toMatch(/the value of key "b" is corrupt/)
            // Batch 1 yields the entry before it; batch 10 rejects the page that holds it.
            expect(seen).toEqual(batch === 1 ? [['a', 1]] : [])
          }
          // Nothing else changed, the key was let go, and a set mends it.
          expect(await store.getMany(['a', 'c'])).toEqual([1, 3])
          await store.set('b', 2)
          const all = []
          for await (const entry of store.entries()) all.push(entry)
          expect(all).toEqual([
            ['a', 1],
            ['b', 2],
            ['c', 3],
          ])
        })

        test('a key listed without a value to read does not end a walk of entries early', async () => {
          await store.setMany([
            ['a', 1],
            ['c', 3],
            ['d', 4],
          ])
          await caps.foreign.noValue(store, 'b')
          for (const batch of [1, 2, 3, 100]) {
            const seen = []
            for await (const entry of store.entries({ batch })) seen.push(entry)
            expect([batch, seen]).toEqual([
              batch,
              [
                ['a', 1],
                ['c', 3],
                ['d', 4],
              ],
            ])
          }
        })
      })
    }

    if (caps.persistent) {
      describe('persistence', () => {
        test('values survive close and reopen', async () => {
          await store.set('a', { n: 1 })
          await store.update('b', () => [1, 2])
          await store.set('c', 'gone')
          await store.remove('c')
          store = await caps.reopen(store)
          expect(await store.get('a')).toEqual({ n: 1 })
          expect(await store.get('b')).toEqual([1, 2])
          expect(await store.get('c')).toBeUndefined()
          expect(await store.list()).toEqual(['a', 'b'])
        })
      })
    }

    if (caps.multiProcess) {
      describe('several processes', () => {
        test('4 processes × 250 concurrent +1 updates of one new counter, and 100 of this one, end at exactly 1100', async () => {
          const spec = caps.multiProcess.spec(store)
          const mine = Array.from({ length: 100 }, () => store.update('counter', (v = 0) => v + 1))
          const runs = await Promise.all(
            [0, 1, 2, 3].map(() =>
              runChild(fixture('counter.js'), [JSON.stringify(spec), 'counter', '250'], { timeout: 120000 }),
            ),
          )
          await Promise.all(mine)
          for (const r of runs) {
            expect(r.signal).toBe(null)
            expect(r.messages).toEqual([{ done: 250, errors: [] }])
          }
          expect(await store.get('counter')).toBe(1100)
        }, 180000)
      })
    }
  })
}

function byCodePoint(a, b) {
  const x = [...a].map((c) => c.codePointAt(0))
  const y = [...b].map((c) => c.codePointAt(0))
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i]
  return x.length - y.length
}

module.exports = { runConformance, expectCode, gate, sleep, byCodePoint, updateHeldOpen, bulkWaitsInKeyOrder }
