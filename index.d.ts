// Types of reshuffle-datastore's public API (index.js).
/// <reference lib="esnext.disposable" />

/** What an updater receives and returns: the current value (undefined when missing) → the new one (undefined: no change). */
export type Updater<T> = (value: T | undefined) => T | undefined | Promise<T | undefined>

/** The API every adapter and PersistentStore offers. Values are JSON (JSON.stringify's rules). */
export interface DatastoreAdapter {
  /** The value of `key` (a fresh copy), or `undefined` when it is missing. */
  get<T = any>(key: string): Promise<T | undefined>
  /**
   * Stores a copy of `value`; resolves to `value` itself, as reshuffle's adapters do. With
   * `{ ttl }` the key expires that many milliseconds later; without, an earlier expiry is cleared.
   */
  set<T = any>(key: string, value: T, options?: WriteOptions): Promise<T>
  /**
   * Atomically replaces the value of `key` with what `updater` returns, holding the key's lock
   * (in this process and, for shared backends, in all others) while it runs. Resolves to
   * `[oldValue, newValue]`; an updater's error rejects with that same error.
   */
  update<T = any>(key: string, updater: Updater<T>, options?: WriteOptions): Promise<[T | undefined, T | undefined]>
  /** Removes `key`; a missing key is not an error. */
  remove(key: string): Promise<void>
  /** Alias of `remove`, the name reshuffle's connectors call. */
  del(key: string): Promise<void>
  /** Keys starting with `prefix` (all keys without it), sorted by Unicode code point. */
  list(prefix?: string): Promise<string[]>
  /**
   * The values of `keys` in their order (`undefined` for a missing key), read as one snapshot
   * in one round trip.
   */
  getMany<T = any>(keys: readonly string[]): Promise<Array<T | undefined>>
  /**
   * Sets every `[key, value]`, all or nothing, waiting for each key's lock; a key given twice
   * takes its last value. `{ ttl }` applies to every entry. At most 1,000,000 keys; on
   * PostgreSQL at most half the server's lock table (3,200 keys with its defaults), since each
   * key's lock is held until the write: a larger call rejects with ERR_DATASTORE_INVALID_ARGUMENT
   * and writes nothing.
   */
  setMany<T = any>(entries: ReadonlyArray<readonly [string, T]>, options?: WriteOptions): Promise<void>
  /** Removes every key of `keys`, all or nothing; missing keys are not an error. Limits as `setMany`'s. */
  removeMany(keys: readonly string[]): Promise<void>
  /** One page of keys, sorted by Unicode code point (see {@link KeysOptions}). */
  keys(options?: KeysOptions): Promise<string[]>
  /**
   * Every `[key, value]` in key order, fetched `batch` at a time: memory stays bounded by one
   * page, and a key that exists throughout the walk is seen exactly once while others write.
   */
  entries<T = any>(options?: EntriesOptions): AsyncIterable<[string, T]>
  /** Waits for pending operations and releases the store; later calls reject with ERR_DATASTORE_CLOSED. */
  close(): Promise<void>
  /** The same as `close()`: `await using store = new MemoryStoreAdapter()` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void>
  /** Throws ERR_DATASTORE_INVALID_KEY unless `key` is a non-empty string (reshuffle's check). */
  validateKey(key: string): void
  /** Throws ERR_DATASTORE_INVALID_VALUE for `undefined` (reshuffle's check). */
  validateValue(value: any): void
}

/** Options of `set`, `update` and `setMany`. */
export interface WriteOptions {
  /**
   * Milliseconds from this write until the key expires: from then on `get` returns
   * `undefined`, `list`/`keys`/`entries` omit it and an updater sees `undefined`, in every
   * process sharing the store. Greater than 0, at most 2^53 - 1. Expired keys are purged in
   * the background by a timer that never keeps the process alive.
   */
  ttl?: number
}

/** Options of `keys()`. */
export interface KeysOptions {
  /** Only keys that start with `prefix`. */
  prefix?: string
  /** Only keys that sort strictly after `after`: the last key of the previous page. */
  after?: string
  /** At most this many keys (a whole number from 1); all of them without it. */
  limit?: number
}

/** Options of `entries()`. */
export interface EntriesOptions {
  /** Only keys that start with `prefix`. */
  prefix?: string
  /** Start strictly after this key. */
  after?: string
  /** Entries fetched per round trip, 1 to 100000; 100 by default. */
  batch?: number
}

/**
 * Options every adapter accepts.
 *
 * An updater must not use its own key: `get`/`set`/`update`/`remove` of that key (and `list`
 * or `close` of its store) called while the updater's synchronous part runs reject at once with
 * `ERR_DATASTORE_REENTRANT`. After an `await` inside an async updater this cannot be detected;
 * such a call would wait for the updater forever — `lockTimeout` turns that into an error.
 */
export interface StoreOptions {
  /**
   * Milliseconds an operation may wait for its key — its turn in this store's queue, then the
   * key's lock in another thread, process or server — before it rejects with
   * `ERR_DATASTORE_LOCK_TIMEOUT`, holding nothing; the other waiters keep their order.
   * From 0 (never wait) to 2147483647, fractions allowed, or `Infinity` (no limit: the
   * default). Anything else, like an unknown option name, throws ERR_DATASTORE_INVALID_ARGUMENT.
   */
  lockTimeout?: number
}

/** In-process store, not persistent. Values are kept as JSON text: every read is a fresh copy. */
export declare class MemoryStoreAdapter {
  constructor(options?: StoreOptions)
}
export interface MemoryStoreAdapter extends DatastoreAdapter {}

/** Options of FileStoreAdapter. */
export interface FileStoreOptions extends StoreOptions {
  /** 'write' (default): a resolved write has reached the OS (survives SIGKILL); 'fsync': it has reached the disk. */
  durability?: 'write' | 'fsync'
  /** Compact in the background once the file is larger than this many bytes and twice the live data (default 1 MiB; a whole number from 0 to 2^53). */
  compactThreshold?: number
}

/**
 * A store in one JSON file, compatible with reshuffle 1.0.9's FileStoreAdapter: it opens the
 * file reshuffle wrote, and after `close()` or `compact()` the file is again one JSON object
 * that reshuffle reads. Writes append a record (constant cost); several processes may share
 * the file, with `update` atomic across them.
 */
export declare class FileStoreAdapter {
  constructor(path: string, options?: FileStoreOptions)
  /** Rewrites the file as one JSON object (new file, flush, rename) after every write called before. */
  compact(): Promise<void>
}
export interface FileStoreAdapter extends DatastoreAdapter {}

/** Options of SQLStoreAdapter. */
export interface SQLStoreOptions extends StoreOptions {
  /** SQLite: 'normal' (default; WAL, survives a killed process) or 'fsync' (reaches the disk before resolving). */
  durability?: 'normal' | 'fsync'
  /** PostgreSQL: the most connections this store opens, 1 to 1000 (default: the pool's `max`, else 10). */
  poolSize?: number
  /**
   * PostgreSQL: how long, in microseconds, the event loop keeps polling for a reply instead of
   * sleeping, 0 to 10000 (default 1000; 0 turns it off). Polling stops by itself while replies
   * come slower.
   */
  busyPollMicros?: number
}

/**
 * A store in an SQL table `(id varchar primary key, value varchar)` of JSON text — the layout
 * of reshuffle's SQLStoreAdapter. `target`: a SQLite file path (created if missing) or
 * `':memory:'`; for PostgreSQL a pg `Pool`, `Client` or config object, or a `postgres://` URL.
 * `table` (default `'reshuffledb'`) is an SQL identifier, optionally `schema.table`.
 * A pg Pool or Client is followed: its settings are used (a `password` function is called for
 * each new connection), and ending it (`end()`) closes this store too.
 */
export declare class SQLStoreAdapter {
  constructor(target: string | object, table?: string, options?: SQLStoreOptions)
}
export interface SQLStoreAdapter extends DatastoreAdapter {}

/** Options of MySQLStoreAdapter. */
export interface MySQLStoreOptions extends StoreOptions {
  /**
   * The most connections this store opens to hold keys, 1 to 1000 (default: the pool's
   * `connectionLimit`, else 10); as many again serve reads.
   */
  poolSize?: number
}

/**
 * A store in a MySQL (5.7+) or MariaDB (10.5+) table `(id primary key, value)` of JSON text —
 * the layout of reshuffle's MySQLStoreAdapter, read and written as is. `target`: a mysql2 pool
 * (callback or promise API; its settings are used), a mysql2-style config object, or a
 * `mysql://` URL. `table` (default `'reshuffledb'`) is an SQL identifier, optionally
 * `database.table`. Tables it creates hold keys of 2,048 bytes and values of 64 MiB; a value
 * that does not fit an existing column rejects with `ERR_DATASTORE_INVALID_VALUE` naming the
 * `ALTER TABLE` that fixes it. Ending the mysql2 pool (`end()`) closes this store too.
 */
export declare class MySQLStoreAdapter {
  constructor(target: string | object, table?: string, options?: MySQLStoreOptions)
}
export interface MySQLStoreAdapter extends DatastoreAdapter {}
/** Options of RedisStoreAdapter. */
export interface RedisStoreOptions extends StoreOptions {
  /** Put before every key in Redis (default `''`): stores with different prefixes never meet. */
  prefix?: string
  /**
   * How long, in milliseconds, an `update`'s lease on its key lives unless renewed, 10 to
   * 86400000 (default 10000). The lease is renewed every third of it while the updater runs;
   * a process killed while holding one delays the others by at most this long.
   */
  leaseMs?: number
  /**
   * The server is a node of a Redis Cluster (default false; implied by an ioredis `Cluster`
   * client): each key goes to the node serving its hash slot, found with `CLUSTER SLOTS` and
   * followed through `MOVED`/`ASK` redirections. `setMany`/`removeMany` are all or nothing
   * per hash slot there, and `getMany` a snapshot per slot.
   */
  cluster?: boolean
}

/** The ioredis or node-redis client settings this store reads (host, port, username, password, db, tls.ca). */
export interface RedisClientLike {
  options: object
  quit?(...args: any[]): any
  disconnect?(...args: any[]): any
}

/**
 * A store in Redis (6 or later, or Valkey): values are strings of JSON text at `{prefix+key}`,
 * and `update` is atomic across servers with a lease at `{prefix+key}:lease` that its final
 * write checks (a write whose lease was lost rejects with ERR_DATASTORE_LEASE_LOST and is never
 * applied). `target`: a `redis://` or `rediss://` (TLS) URL, or an ioredis (also `Cluster`) or
 * node-redis client whose settings are used and whose `quit()`/`disconnect()` closes this store
 * too. Time to live is Redis's own.
 */
export declare class RedisStoreAdapter {
  constructor(target: string | RedisClientLike, options?: RedisStoreOptions)
}
export interface RedisStoreAdapter extends DatastoreAdapter {}

/** Any adapter PersistentStore can wrap: ours, or reshuffle's (which have `del` but no `remove`). */
export interface AdapterLike {
  get(key: string): Promise<any>
  set(key: string, value: any): Promise<any>
  update(key: string, updater: (value: any) => any): Promise<any[]>
  list(prefix?: string): Promise<string[]>
  getMany?(keys: string[]): Promise<any[]>
  setMany?(entries: Array<[string, any]>, options?: WriteOptions): Promise<void>
  removeMany?(keys: string[]): Promise<void>
  keys?(options?: KeysOptions): Promise<string[]>
  entries?(options?: EntriesOptions): AsyncIterable<[string, any]>
  del?(key: string): Promise<void>
  remove?(key: string): Promise<void>
  close?(): Promise<void>
}

/**
 * A namespaced view over an adapter, compatible with reshuffle's PersistentStore: keys are
 * stored as `prefix + key`; `list()` returns the full keys of this namespace, and so do `keys()`
 * and `entries()` (their `after` is a full key too). Wrapping another PersistentStore uses its
 * adapter with the new prefix. Over an adapter without the bulk and paged methods (reshuffle's
 * own), they are made of its get, set, del and list — one call per key, and `setMany` is not
 * all or nothing — and `{ ttl }` is refused.
 */
export declare class PersistentStore {
  constructor(backend: AdapterLike | PersistentStore, prefix?: string)
  readonly adapter: AdapterLike
  readonly prefix: string
  /** Closes the adapter, which every namespace over it shares. */
  close(): Promise<void>
}
export interface PersistentStore extends DatastoreAdapter {}

/**
 * Every error this package rejects with or throws: an `Error` of the realm that loaded the
 * package (so `instanceof Error` holds in jest's sandbox too), with a stable `code` and what it
 * is about. An updater's own error passes through as it is, never wrapped.
 */
export declare class DatastoreError extends Error {
  constructor(code: DatastoreErrorCode, message: string, details?: object)
  readonly code: DatastoreErrorCode
  /** The key concerned (invalid values, lock timeouts, reentry, abandoned updaters, lost leases). */
  readonly key?: string
  /** The operation an updater called on its own key (ERR_DATASTORE_REENTRANT). */
  readonly operation?: string
  /** The file concerned (ERR_DATASTORE_IO, ERR_DATASTORE_CORRUPT). */
  readonly path?: string
  /** Where stored data stops making sense (ERR_DATASTORE_CORRUPT). */
  readonly position?: number
}

/** The `code` of every error this package rejects with. */
export type DatastoreErrorCode =
  | 'ERR_DATASTORE_INVALID_KEY'
  | 'ERR_DATASTORE_INVALID_VALUE'
  | 'ERR_DATASTORE_INVALID_ARGUMENT'
  | 'ERR_DATASTORE_CLOSED'
  | 'ERR_DATASTORE_CORRUPT'
  | 'ERR_DATASTORE_IO'
  | 'ERR_DATASTORE_BACKEND'
  | 'ERR_DATASTORE_LOCK_TIMEOUT'
  | 'ERR_DATASTORE_REENTRANT'
  | 'ERR_DATASTORE_UPDATER_ABANDONED'
  | 'ERR_DATASTORE_LEASE_LOST'
  | 'ERR_DATASTORE_INTERNAL'
  | 'ERR_DATASTORE_NOT_BUILT'
