// Compiled by `tsc -p __test__/types` (npm run lint): the public types accept typical use and
// reject misuse (each @ts-expect-error must be an error).
import {
  MemoryStoreAdapter,
  FileStoreAdapter,
  SQLStoreAdapter,
  MySQLStoreAdapter,
  RedisStoreAdapter,
  PersistentStore,
  DatastoreAdapter,
  DatastoreError,
  DatastoreErrorCode,
} from '../..'

interface Job {
  id: string
  tries: number
}

async function main(): Promise<void> {
  const store: DatastoreAdapter = new MemoryStoreAdapter()
  // The classes carry the whole API themselves (class and interface merged).
  const direct = new MemoryStoreAdapter()
  const n: number | undefined = await direct.get<number>('n')
  // @ts-expect-error the value type is checked on the classes too
  await direct.set<number>('n', 'not a number')
  void n
  const jobs = await store.get<Job[]>('jobs')
  const count: number = (jobs ?? []).length
  const stored: Job = await store.set<Job>('job', { id: 'a', tries: 0 })
  const [before, after] = await store.update<Job[]>('jobs', (old = []) => [...old, stored])
  const pairs: [Job[] | undefined, Job[] | undefined] = [before, after]
  await store.update<number>('n', async (n = 0) => n + 1)
  await store.update<number>('n', () => undefined)
  const keys: string[] = await store.list('job')
  await store.remove('job')
  await store.del('job')

  const ns = new PersistentStore(store, 'connector/')
  const nested = new PersistentStore(ns, 'other/')
  const prefix: string = nested.prefix
  await ns.set('cursor', 1)

  // @ts-expect-error the updater must return the value type
  await store.update<number>('n', (n = 0) => String(n))
  // @ts-expect-error keys are strings
  await store.get(1)

  const code: DatastoreErrorCode = 'ERR_DATASTORE_CLOSED'
  void [count, pairs, keys, prefix, code]
  await store.close()
}

void main

// Options every adapter accepts, and the codes of the errors that end waits.
const timed = new MemoryStoreAdapter({ lockTimeout: 5000 })
const timedFile = new FileStoreAdapter('./state.json', { lockTimeout: 5000, durability: 'fsync' })
const timedSql = new SQLStoreAdapter('./state.db', 'kv', { lockTimeout: 0 })
const pgOptions = new SQLStoreAdapter('postgres://app@db/app', 'kv', { poolSize: 4, busyPollMicros: 0 })
const mysqlStore: DatastoreAdapter = new MySQLStoreAdapter('mysql://app@db/app', 'kv', {
  poolSize: 4,
  lockTimeout: 500,
})
const waitCodes: DatastoreErrorCode[] = [
  'ERR_DATASTORE_REENTRANT',
  'ERR_DATASTORE_LOCK_TIMEOUT',
  'ERR_DATASTORE_UPDATER_ABANDONED',
]
const redis = new RedisStoreAdapter('redis://cache:6379', { prefix: 'app:', lockTimeout: 5000, leaseMs: 30000 })
const fromClient = new RedisStoreAdapter({ options: { host: 'cache', port: 6379 }, quit: async () => 'OK' })
// @ts-expect-error the prefix is a string
const badPrefix = new RedisStoreAdapter('redis://cache:6379', { prefix: 1 })
const leaseCode: DatastoreErrorCode = 'ERR_DATASTORE_LEASE_LOST'
void [timed, timedFile, timedSql, pgOptions, mysqlStore, waitCodes, redis, fromClient, badPrefix, leaseCode]

// Errors are a class of their own, and stores are AsyncDisposable (`await using`).
async function disposing(): Promise<void> {
  await using store = new MemoryStoreAdapter()
  await using namespaced = new PersistentStore(new MemoryStoreAdapter(), 'n/')
  try {
    await store.get('k')
  } catch (e) {
    if (e instanceof DatastoreError) {
      const code: DatastoreErrorCode = e.code
      const key: string | undefined = e.key
      void [code, key]
    }
  }
  void namespaced
}
void disposing

// Expiry, bulk and paged reads.
async function bulk(store: DatastoreAdapter): Promise<void> {
  await store.set<string>('token', 'abc', { ttl: 60_000 })
  await store.update<number>('seen', (n = 0) => n + 1, { ttl: 1000 })
  const values: Array<Job | undefined> = await store.getMany<Job>(['a', 'b'])
  await store.setMany<number>([
    ['a', 1],
    ['b', 2],
  ])
  await store.setMany([['c', { any: 'thing' }]], { ttl: 5 })
  await store.removeMany(['a', 'b'])
  const page: string[] = await store.keys({ prefix: 'job/', after: 'job/9', limit: 100 })
  for await (const [key, job] of store.entries<Job>({ prefix: 'job/', batch: 500 })) {
    const tries: number = job.tries
    void [key, tries]
  }
  // @ts-expect-error setMany takes [key, value] pairs
  await store.setMany<number>([['a', 'one']])
  // @ts-expect-error ttl is a number of milliseconds
  await store.set('k', 1, { ttl: '1m' })
  // @ts-expect-error keys() takes options, not a prefix string
  await store.keys('job/')
  void [values, page]
}
void bulk
