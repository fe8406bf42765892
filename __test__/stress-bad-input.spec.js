// Bad input at the JS boundary, on every backend: wrong types, keys that are too long,
// 10,000-level nested objects, 64 MiB values, Proxies (revoked, or with throwing traps), getters
// and toJSON that throw, updaters that return what JSON cannot store or reject with things that
// are not Errors. Each call must return a promise that rejects with a coded error (or with the
// updater's own thrown value, unchanged), crash nothing, leave the store as it was, release the
// key's lock, and leave the store usable.
'use strict'
const { makeSpec, openStore } = require('./lib/stores')
const { persistentKinds, names, figures } = require('./stress/lib/suite')
const { FileStoreAdapter, SQLStoreAdapter } = require('..')

const report = figures('bad input')
const SEED = { a: { n: 1, list: [1, 2, 3] }, 'b/é': 'text', c: null, d: 0 }

// Calls `f`, which must return a promise (never throw), and settles it.
async function settle(f) {
  let p
  try {
    p = f()
  } catch (e) {
    throw new Error(`threw synchronously instead of rejecting: ${e && e.message}`)
  }
  // The addon's objects come from Node's main realm, not jest's: no instanceof here.
  const isPromise = Object.prototype.toString.call(p) === '[object Promise]'
  if (!isPromise) {
    p = Promise.resolve(p).catch(() => {})
    throw new Error(`returned ${Object.prototype.toString.call(p)} instead of a promise`)
  }
  try {
    return { ok: true, value: await p }
  } catch (error) {
    return { ok: false, error }
  }
}

const isError = (e) => Object.prototype.toString.call(e) === '[object Error]'

async function snapshot(store) {
  const out = {}
  for (const k of await store.list()) out[k] = await store.get(k)
  return out
}

function nested(depth) {
  const root = {}
  let cur = root
  for (let i = 0; i < depth; i++) cur = cur.a = {}
  return root
}
function depthOf(v) {
  let d = 0
  while (v && v.a) ((v = v.a), d++)
  return d
}
function revokedProxy(target = {}) {
  const { proxy, revoke } = Proxy.revocable(target, {})
  revoke()
  return proxy
}
const throwingTraps = (target = {}) =>
  new Proxy(target, {
    get() {
      throw new Error('get trap')
    },
    ownKeys() {
      throw new Error('ownKeys trap')
    },
    getOwnPropertyDescriptor() {
      throw new Error('descriptor trap')
    },
  })

const badKeys = () => [
  ['a number', 1],
  ['null', null],
  ['undefined', undefined],
  ['an object', {}],
  ['an array', ['a']],
  ['a String object', new String('a')],
  ['a Symbol', Symbol('k')],
  ['a BigInt', 1n],
  ['a function', () => 'a'],
  ['the empty string', ''],
  ['2,049 bytes', 'k'.repeat(2049)],
  ['2,050 bytes of é', 'é'.repeat(1025)],
  ['a lone surrogate', 'a\uD800b'],
  ['a Proxy', new Proxy({}, {})],
  ['a revoked Proxy', revokedProxy()],
  ['a Proxy with throwing traps', throwingTraps()],
]

const badValues = () => {
  const circular = { a: 1 }
  circular.self = circular
  return [
    ['undefined', undefined],
    ['a function', () => 1],
    ['a Symbol', Symbol('v')],
    ['a BigInt', 10n],
    ['a nested BigInt', { a: [1, 2n] }],
    ['a circular object', circular],
    ['a revoked Proxy', revokedProxy()],
    ['a nested revoked Proxy', { a: revokedProxy([]) }],
    ['a Proxy with throwing traps', throwingTraps()],
    [
      'a getter that throws',
      {
        get x() {
          throw new Error('getter')
        },
      },
    ],
    [
      'a toJSON that throws',
      {
        toJSON() {
          throw new RangeError('toJSON')
        },
      },
    ],
    ['a toJSON that returns undefined', { toJSON: () => undefined }],
    [
      'a toJSON that throws a non-Error',
      {
        toJSON: () => {
          throw 'not an error'
        },
      },
    ],
  ]
}

const badUpdaterValues = () => [
  ['a function', () => () => 1],
  ['a Promise of a function', () => Promise.resolve(() => 1)],
  ['a Symbol', () => Symbol('s')],
  ['a Promise of a BigInt', async () => 5n],
  ['a revoked Proxy', () => revokedProxy()],
  ['a Proxy with throwing traps', () => throwingTraps()],
  [
    'a Promise of a Proxy whose ownKeys trap throws',
    async () =>
      new Proxy(
        {},
        {
          ownKeys() {
            throw new Error('ownKeys')
          },
        },
      ),
  ],
  [
    'an object whose getter throws',
    () => ({
      get x() {
        throw new Error('getter')
      },
    }),
  ],
  [
    'an object whose toJSON throws',
    async () => ({
      toJSON() {
        throw new Error('toJSON')
      },
    }),
  ],
]

// Updaters whose failure must come back as the very value they threw or rejected with.
const thrown = () => {
  const error = new TypeError('own error')
  const sym = Symbol('reason')
  return [
    [
      'throws an Error',
      error,
      () => {
        throw error
      },
    ],
    [
      'throws a string',
      'str',
      () => {
        throw 'str'
      },
    ],
    [
      'throws undefined',
      undefined,
      () => {
        throw undefined
      },
    ],
    ['rejects with null', null, () => Promise.reject(null)],
    [
      'rejects with 42',
      42,
      async () => {
        throw 42
      },
    ],
    ['rejects with a Symbol', sym, () => Promise.reject(sym)],
    ['rejects with a plain object', SEED, () => Promise.reject(SEED)],
    [
      'returns a thenable whose then throws',
      7,
      () => ({
        then() {
          throw 7
        },
      }),
    ],
    [
      'mutates its argument, then throws',
      error,
      (v = {}) => {
        v.n = 999
        throw error
      },
    ],
    // Resolving a promise with an object reads its `then`: a get trap that throws rejects it.
    [
      'resolves to a Proxy whose get trap throws',
      error,
      async () =>
        new Proxy(
          {},
          {
            get() {
              throw error
            },
          },
        ),
    ],
  ]
}

const kinds = ['memory', ...persistentKinds()]

describe.each(kinds)('%s', (kind) => {
  let made
  let store
  let calls = 0
  beforeAll(async () => {
    made = makeSpec(kind, 'bad')
    store = openStore(made.spec)
    for (const [k, v] of Object.entries(SEED)) await store.set(k, v)
  })
  afterAll(async () => {
    if (store) await store.close().catch(() => {})
    if (made) await made.cleanup()
  })

  // Runs `f` and returns what is wrong with its outcome ('' when it rejected as `want` says:
  // a code string, or { same: value } for the updater's own thrown value).
  async function check(what, f, want) {
    calls++
    let r
    try {
      r = await settle(f)
    } catch (e) {
      return `${what}: ${e.message}`
    }
    if (r.ok) return `${what}: resolved with ${JSON.stringify(r.value)}`
    if (typeof want === 'string') {
      if (!isError(r.error) || r.error.code !== want || typeof r.error.message !== 'string') {
        return `${what}: rejected with ${String(r.error && r.error.code)} ${String(r.error && r.error.message)}, not ${want}`
      }
    } else if (!Object.is(r.error, want.same)) {
      return `${what}: rejected with ${String(r.error && r.error.code)} ${String(r.error && (r.error.message || r.error))}, not its own value`
    }
    return ''
  }
  async function expectAll(checks) {
    const wrong = []
    for (const [what, f, want] of checks) wrong.push(await check(what, f, want))
    expect(wrong.filter(Boolean)).toEqual([])
  }
  const expectCode = (f, code) => expectAll([['call', f, code]])

  async function expectUnchanged() {
    expect(await snapshot(store)).toEqual(SEED)
    expect(store.__heldKeys()).toBe(0)
  }

  test('bad keys reject with ERR_DATASTORE_INVALID_KEY from every method', async () => {
    const checks = []
    const code = 'ERR_DATASTORE_INVALID_KEY'
    for (const [what, key] of badKeys()) {
      checks.push([`get(${what})`, () => store.get(key), code])
      checks.push([`set(${what})`, () => store.set(key, 1), code])
      checks.push([`update(${what})`, () => store.update(key, () => 1), code])
      checks.push([`remove(${what})`, () => store.remove(key), code])
      checks.push([`del(${what})`, () => store.del(key), code])
    }
    await expectAll(checks)
    // The longest key allowed works: 2,048 bytes.
    const longest = 'é'.repeat(1024)
    expect(await store.set(longest, 1)).toBe(1)
    expect(await store.get(longest)).toBe(1)
    await store.remove(longest)
    await expectUnchanged()
  })

  test('bad list prefixes and non-function updaters reject with ERR_DATASTORE_INVALID_ARGUMENT', async () => {
    const code = 'ERR_DATASTORE_INVALID_ARGUMENT'
    const checks = []
    const prefixes = [
      ['1', 1],
      ['{}', {}],
      ["['a']", ['a']],
      ['a Symbol', Symbol('p')],
      ['1n', 1n],
      ['a revoked Proxy', revokedProxy()],
    ]
    for (const [what, prefix] of prefixes) checks.push([`list(${what})`, () => store.list(prefix), code])
    const updaters = [
      ['undefined', undefined],
      ['null', null],
      ['1', 1],
      ['a string', 'v => v'],
      ['{}', {}],
      ['a revoked Proxy', revokedProxy()],
      ['a Proxy of an object', new Proxy({}, {})],
    ]
    for (const [what, updater] of updaters)
      checks.push([`update('a', ${what})`, () => store.update('a', updater), code])
    await expectAll(checks)
    // null, like undefined, means no prefix.
    expect(await store.list(null)).toEqual(await store.list())
    await expectUnchanged()
  })

  test('values JSON cannot store reject with ERR_DATASTORE_INVALID_VALUE, naming the key', async () => {
    await expectAll(
      badValues().map(([what, value]) => [
        `set('a', ${what})`,
        () => store.set('a', value),
        'ERR_DATASTORE_INVALID_VALUE',
      ]),
    )
    const r = await settle(() => store.set('a', undefined))
    expect(r.error.message).toContain('"a"')
    await expectUnchanged()
  })

  test('updaters that return what JSON cannot store reject with ERR_DATASTORE_INVALID_VALUE', async () => {
    await expectAll(
      badUpdaterValues().map(([what, updater]) => [
        `update returning ${what}`,
        () => store.update('a', updater),
        'ERR_DATASTORE_INVALID_VALUE',
      ]),
    )
    await expectUnchanged()
  })

  test("an updater's own throw or rejection comes back unchanged, whatever it is", async () => {
    const checks = []
    for (const [what, value, updater] of thrown()) {
      for (const key of ['a', 'missing'])
        checks.push([`update(${key}) whose updater ${what}`, () => store.update(key, updater), { same: value }])
    }
    await expectAll(checks)
    // A revoked function Proxy is a function to typeof; calling it throws V8's TypeError.
    const { proxy, revoke } = Proxy.revocable(() => 1, {})
    revoke()
    calls++
    const r = await settle(() => store.update('a', proxy))
    expect(r.ok).toBe(false)
    expect(isError(r.error)).toBe(true)
    expect(r.error.name).toBe('TypeError')
    await expectUnchanged()
    // The locks were released: the keys update normally.
    expect(await store.update('d', (v) => v + 1)).toEqual([0, 1])
    expect(await store.update('d', (v) => v - 1)).toEqual([1, 0])
  })

  test('10,000-level nested objects: a coded error or an exact round trip, never a crash', async () => {
    const deep = nested(10000)
    calls += 2
    const viaSet = await settle(() => store.set('deep', deep))
    const viaUpdate = await settle(() => store.update('deep2', () => deep))
    for (const [r, key] of [
      [viaSet, 'deep'],
      [viaUpdate, 'deep2'],
    ]) {
      if (r.ok) {
        expect(depthOf(await store.get(key))).toBe(10000)
        await store.remove(key)
      } else {
        expect(r.error.code).toBe('ERR_DATASTORE_INVALID_VALUE')
      }
    }
    // What JSON.stringify can write (1,000 levels, far beyond common parser limits) round-trips.
    await store.set('deep', nested(1000))
    expect(depthOf(await store.get('deep'))).toBe(1000)
    await store.remove('deep')
    await expectUnchanged()
  })

  test('a 64 MiB value round-trips, and an updater receives it whole', async () => {
    let big = 'x'.repeat(64 * 1024 * 1024)
    if (kind === 'mysql') {
      // The server's max_allowed_packet bounds a value (16 MiB by default on MariaDB 10.5,
      // 64 MiB on MySQL 8): beyond it a coded error that names it, and nothing written.
      calls += 1
      const refused = await store.set('big', big).then(
        () => null,
        (e) => e,
      )
      if (refused) {
        expect(refused.code).toBe('ERR_DATASTORE_INVALID_VALUE')
        expect(refused.message).toMatch(/max_allowed_packet/)
        expect(await store.get('big')).toBeUndefined()
        big = 'x'.repeat(15 * 1024 * 1024)
      }
    }
    calls += 3
    expect((await store.set('big', big)).length).toBe(big.length)
    expect((await store.get('big')).length).toBe(big.length)
    expect(await store.update('big', (v) => (v === big ? 'seen whole' : 'not whole'))).toEqual([big, 'seen whole'])
    await store.remove('big')
    await expectUnchanged()
  })

  test('plain Proxies are stored as JSON.stringify sees them', async () => {
    await store.set('proxy', new Proxy({ a: 1, b: [1, 2] }, {}))
    expect(await store.get('proxy')).toEqual({ a: 1, b: [1, 2] })
    await store.remove('proxy')
    await expectUnchanged()
  })

  test('after all that the store still works, and then closes; later calls reject with ERR_DATASTORE_CLOSED', async () => {
    expect(await store.set('e', [1])).toEqual([1])
    expect(await store.update('e', (v) => [...v, 2])).toEqual([[1], [1, 2]])
    await store.remove('e')
    await expectUnchanged()
    await store.close()
    for (const f of [
      () => store.get('a'),
      () => store.set('a', 1),
      () => store.update('a', () => 1),
      () => store.remove('a'),
      () => store.list(),
    ]) {
      await expectCode(f, 'ERR_DATASTORE_CLOSED')
    }
    if (kind !== 'memory') {
      // Nothing was written by the bad calls: a fresh instance sees the seed.
      const again = openStore(made.spec)
      try {
        expect(await snapshot(again)).toEqual(SEED)
        // A 1,000-level object survives close and reopening (for the file: compaction and
        // reading the compacted file back).
        await again.set('deep', nested(1000))
      } finally {
        await again.close()
      }
      const third = openStore(made.spec)
      try {
        expect(depthOf(await third.get('deep'))).toBe(1000)
      } finally {
        await third.close()
      }
    }
    report(`${names[kind]}: ${calls} bad calls rejected with a code or the updater's own value, store unchanged`)
    store = null
  })
})

test('constructors throw ERR_DATASTORE_INVALID_ARGUMENT at once for bad arguments', () => {
  const cases = [
    () => new FileStoreAdapter(1),
    () => new FileStoreAdapter({}),
    () => new FileStoreAdapter(revokedProxy()),
    () => new FileStoreAdapter('/tmp/x.json', 5),
    () => new FileStoreAdapter('/tmp/x.json', { durability: 'never' }),
    () => new FileStoreAdapter('/tmp/x.json', { compactThreshold: -1 }),
    () => new SQLStoreAdapter(1),
    () => new SQLStoreAdapter(':memory:', 'x; DROP TABLE y'),
    () => new SQLStoreAdapter(':memory:', 42),
    () => new SQLStoreAdapter(':memory:', 'a.b.c'),
  ]
  for (const make of cases) {
    let error
    try {
      make()
    } catch (e) {
      error = e
    }
    expect(isError(error)).toBe(true)
    expect(error.code).toBe('ERR_DATASTORE_INVALID_ARGUMENT')
  }
})
