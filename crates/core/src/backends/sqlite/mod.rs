//! SQLite storage (docs/sqlite.md): reshuffle's table `(id varchar primary key, value varchar)` of
//! JSON text, in a database file or a private in-memory database.
//!
//! - Statements run on the JS thread on one connection, whose `get`/`put`/`delete` statements
//!   are prepared once and held ([`stmt`]): a `get` or `set` is a few microseconds of inline
//!   work. That connection waits for other
//!   processes' locks only briefly ([`conn::INLINE_BUSY_TIMEOUT`]); a statement that still
//!   meets `SQLITE_BUSY` runs again on the worker thread ([`worker`]), so the JS thread never
//!   waits long and callers never see `SQLITE_BUSY`.
//! - The database is opened on first use, on the worker thread (which waits for other
//!   processes as long as needed): WAL, then `CREATE TABLE IF NOT EXISTS`. Operations that
//!   arrive meanwhile wait for that one opening.
//! - Cross-process key locks are byte-range locks on `<path>.reshuffle-lock`
//!   ([`ProcessLocks`]). An update holds its key's lock, never a write transaction, while the
//!   updater runs: reading is one `SELECT`, writing one autocommit statement.
//! - Durability `Normal` commits to the WAL without fsync (a resolved write is in the OS and
//!   survives a killed process); `Fsync` sends writes to the worker, which commits the writes
//!   queued together in one transaction with `synchronous=FULL`.

mod conn;
#[cfg(all(test, unix))]
mod fault_tests;
mod ops;
mod sql;
mod stmt;
#[cfg(test)]
mod tests;
mod worker;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

pub use conn::Durability;
use sql::{is_busy, Statements};
use stmt::Conn;
use worker::Worker;

use super::process_lock::{ProcessLocks, RangeGuard};
use super::sql_identifier::TableName;
use crate::core::{
    Backend, Change, DatastoreError, Deadline, HeldKey, KeyList, Result, StoredText, Write,
};
use crate::runtime::wait_list::WaitList;

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `':memory:'`: private to this store, gone when it closes.
    Memory,
    /// A database file, created if missing.
    File(PathBuf),
}

/// WAL pages written by this connection between two checkpoints by the worker.
const CHECKPOINT_EVERY_WRITES: u32 = 1000;

/// The lock file next to a database file.
pub fn lock_path(db: &Path) -> PathBuf {
    super::process_lock::lock_path(db, ".reshuffle-lock")
}

/// Runs `op` again while SQLite reports a lock conflict that its busy handler does not wait
/// for (a stale WAL snapshot), a few times; the worker's busy timeout covers the rest.
fn retry_busy<T>(mut op: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut attempts = 0;
    loop {
        match op() {
            Err(e) if is_busy(&e) && attempts < 3 => attempts += 1,
            r => return r,
        }
    }
}

/// An open database.
struct Db {
    conn: Conn,
    sql: Arc<Statements>,
    /// `None` for `:memory:`, which no other process can see.
    locks: Option<Rc<ProcessLocks>>,
    /// `None` for `:memory:`: no other connection can reach it, so nothing is ever busy.
    worker: Option<Worker>,
    durability: Durability,
    writes: Cell<u32>,
    /// Set when a synchronous attempt ([`Db::read_now`], [`Db::write_now`]) met another
    /// connection's lock: the store's queued fallback of that same operation, the next
    /// statement run here, then goes straight to the worker instead of waiting inline again.
    skip_inline: Cell<bool>,
}

impl Db {
    /// Runs `inline` on the JS thread's connection, with its arguments borrowed. If another
    /// process holds the lock it needs, runs the statement again on the worker, which waits
    /// the lock out: `for_worker` makes that owned copy of it (only then).
    async fn run<T: Send + 'static, W>(
        &self,
        inline: impl FnOnce(&Conn, &Statements) -> rusqlite::Result<T>,
        for_worker: impl FnOnce() -> W,
    ) -> Result<T>
    where
        W: Fn(&Conn, &Statements) -> rusqlite::Result<T> + Send + 'static,
    {
        if self.skip_inline.replace(false) {
            let busy = rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            );
            return self.on_worker(busy, for_worker()).await;
        }
        match inline(&self.conn, &self.sql) {
            Err(e) if is_busy(&e) => self.on_worker(e, for_worker()).await,
            r => r.map_err(|e| self.sql.error(e)),
        }
    }

    /// Runs `op` on the worker, which waits out other connections' locks; `busy` is the
    /// error met on the JS thread, reported as is where there is no worker (`:memory:`).
    async fn on_worker<T: Send + 'static>(
        &self,
        busy: rusqlite::Error,
        op: impl Fn(&Conn, &Statements) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        match &self.worker {
            Some(w) => {
                w.run(move |c, s| retry_busy(|| op(c, s)).map_err(|e| s.error(e)))
                    .await
            }
            None => Err(self.sql.error(busy)),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<String>> {
        self.run(
            |c, s| ops::read(c, s, key),
            || {
                let key = key.to_owned();
                move |c, s| ops::read(c, s, &key)
            },
        )
        .await
    }

    /// [`Db::read`] on the JS thread's connection, handing `read` the value borrowed from
    /// SQLite; `None` if another connection holds a lock it needs (see `skip_inline`).
    fn read_now<R>(
        &self,
        key: &str,
        read: impl FnOnce(Option<StoredText<'_>>) -> R,
    ) -> Option<Result<R>> {
        self.now(ops::read_with(&self.conn, &self.sql, key, read))
    }

    /// Whether writes run on the JS thread's connection; with `Fsync` they go to the worker,
    /// which commits those queued together in one transaction.
    fn writes_inline(&self) -> bool {
        self.durability == Durability::Normal || self.worker.is_none()
    }

    /// [`Db::write`] on the JS thread's connection, for [`Db::writes_inline`] and with the
    /// key's process lock held; `None` if another connection holds a lock it needs (then the
    /// statement changed nothing).
    fn write_now(&self, key: &str, write: Write<'_>) -> Option<Result<()>> {
        let done = self.now(ops::write(&self.conn, &self.sql, key, write))?;
        if done.is_ok() {
            self.wrote();
        }
        Some(done)
    }

    /// The outcome of a synchronous attempt: `None` if it met a lock (see `skip_inline`).
    fn now<T>(&self, r: rusqlite::Result<T>) -> Option<Result<T>> {
        match r {
            Err(e) if is_busy(&e) => {
                self.skip_inline.set(true);
                None
            }
            r => Some(r.map_err(|e| self.sql.error(e))),
        }
    }

    async fn list_keys(&self, prefix: &str) -> Result<KeyList> {
        self.run(
            |c, s| ops::list_keys(c, s, prefix),
            || {
                let prefix = prefix.to_owned();
                move |c, s| ops::list_keys(c, s, &prefix)
            },
        )
        .await
    }

    async fn read_many(&self, keys: &[Rc<str>]) -> Result<Vec<Option<String>>> {
        self.run(
            |c, s| ops::read_many(c, s, keys),
            || {
                let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                move |c, s| {
                    let keys: Vec<Rc<str>> = keys.iter().map(|k| Rc::from(k.as_str())).collect();
                    ops::read_many(c, s, &keys)
                }
            },
        )
        .await
    }

    async fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        self.run(
            |c, s| ops::page(c, s, prefix, after, limit),
            || {
                let (prefix, after) = (prefix.to_owned(), after.map(str::to_owned));
                move |c, s| ops::page(c, s, &prefix, after.as_deref(), limit)
            },
        )
        .await
    }

    /// Applies `changes` to `keys` in one transaction; with `Fsync` on the worker, whose
    /// commits reach the disk.
    async fn write_many(&self, keys: &[Rc<str>], changes: Vec<Change>) -> Result<()> {
        let owned = || {
            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let changes = changes.clone();
            move |c: &Conn, s: &Statements| {
                let keys: Vec<Rc<str>> = keys.iter().map(|k| Rc::from(k.as_str())).collect();
                ops::write_many(c, s, &keys, &changes)
            }
        };
        if let (false, Some(w)) = (self.writes_inline(), &self.worker) {
            let op = owned();
            return w.run(move |c, s| op(c, s).map_err(|e| s.error(e))).await;
        }
        self.run(|c, s| ops::write_many(c, s, keys, &changes), owned)
            .await?;
        self.wrote();
        Ok(())
    }

    async fn purge(&self) -> Result<Option<u64>> {
        self.run(ops::purge, || ops::purge).await
    }

    async fn write(&self, key: &str, change: Change) -> Result<()> {
        if change == Change::Keep {
            return Ok(());
        }
        if let (false, Some(w)) = (self.writes_inline(), &self.worker) {
            return w.write(key, change).await;
        }
        self.run(
            |c, s| ops::apply(c, s, key, &change),
            || {
                let (key, change) = (key.to_owned(), change.clone());
                move |c, s| ops::apply(c, s, &key, &change)
            },
        )
        .await?;
        self.wrote();
        Ok(())
    }

    /// Counts a write committed by the JS thread's connection; every
    /// [`CHECKPOINT_EVERY_WRITES`] the worker checkpoints the WAL.
    fn wrote(&self) {
        if let Some(w) = &self.worker {
            let n = self.writes.get() + 1;
            if n >= CHECKPOINT_EVERY_WRITES {
                w.checkpoint();
                self.writes.set(0);
            } else {
                self.writes.set(n);
            }
        }
    }

    async fn close(self) -> Result<()> {
        let Db {
            conn,
            sql,
            locks,
            worker,
            ..
        } = self;
        let closed = conn.close().map_err(|e| sql.error(e));
        drop(locks);
        if let Some(w) = worker {
            w.close().await;
        }
        closed
    }
}

/// The opening shared by the operations that arrive while it runs.
#[derive(Default)]
struct Opening {
    result: RefCell<Option<Result<Rc<Db>>>>,
    waiters: WaitList,
}

enum State {
    /// Not opened yet, or the last opening failed (the next operation tries again).
    Idle,
    Opening(Rc<Opening>),
    Open(Rc<Db>),
    Closed,
}

/// SQLite backend. See the module docs.
pub struct SqliteBackend {
    target: Target,
    durability: Durability,
    sql: Arc<Statements>,
    /// The table as it names key locks (see [`SqliteBackend::lock_name`]).
    lock_table: String,
    state: RefCell<State>,
}

impl SqliteBackend {
    /// Cheap: nothing is opened until the first operation.
    pub fn new(target: Target, table: &TableName, durability: Durability) -> Self {
        SqliteBackend {
            target,
            durability,
            sql: Arc::new(Statements::new(table)),
            lock_table: match &table.schema {
                Some(schema) if !schema.eq_ignore_ascii_case("main") => table.display(),
                _ => table.table.clone(),
            }
            .to_ascii_lowercase(),
            state: RefCell::new(State::Idle),
        }
    }

    /// The name of `key`'s cross-process lock. Tables of one database share the lock file, so
    /// the table is part of the name: an updater of one table may update the same key of
    /// another without waiting for itself. SQLite folds table names to lower case, and
    /// `main.t` is `t`.
    fn lock_name(&self, key: &str) -> String {
        let table = &self.lock_table;
        let mut name = String::with_capacity(table.len() + 1 + key.len());
        name.push_str(table);
        name.push('\0');
        name.push_str(key);
        name
    }

    async fn db(&self) -> Result<Rc<Db>> {
        let opening = match &*self.state.borrow() {
            State::Open(db) => return Ok(db.clone()),
            State::Closed => return Err(DatastoreError::Closed),
            State::Opening(o) => Some(o.clone()),
            State::Idle => None,
        };
        if let Some(o) = opening {
            o.waiters.until(|| o.result.borrow().is_some()).await;
            return o
                .result
                .borrow()
                .clone()
                .unwrap_or(Err(DatastoreError::Closed));
        }
        let o = Rc::new(Opening::default());
        *self.state.borrow_mut() = State::Opening(o.clone());
        let result = self.open().await.map(Rc::new);
        *self.state.borrow_mut() = match &result {
            Ok(db) => State::Open(db.clone()),
            Err(_) => State::Idle,
        };
        *o.result.borrow_mut() = Some(result.clone());
        o.waiters.wake_all();
        result
    }

    async fn open(&self) -> Result<Db> {
        let (conn, locks, worker) = match &self.target {
            Target::Memory => (conn::open_memory(&self.sql)?, None, None),
            Target::File(path) => {
                let (worker, conn) =
                    Worker::start(path.clone(), self.durability, self.sql.clone()).await?;
                let locks = match ProcessLocks::open(&lock_path(path)) {
                    Ok(l) => l,
                    Err(e) => {
                        drop(conn);
                        worker.close().await;
                        return Err(e);
                    }
                };
                (conn, Some(locks), Some(worker))
            }
        };
        Ok(Db {
            conn,
            sql: self.sql.clone(),
            locks,
            worker,
            durability: self.durability,
            writes: Cell::new(0),
            skip_inline: Cell::new(false),
        })
    }
}

/// A key held by this process: the database and, for file databases, its byte-range lock
/// (`lock`), or for the keys of one `lock_many` call all their ranges, on the first key's.
pub struct SqliteHeld {
    db: Rc<Db>,
    _key: Option<RangeGuard>,
    _bulk: Vec<RangeGuard>,
}

impl Backend for SqliteBackend {
    type Held = SqliteHeld;

    async fn lock(&self, key: &str, deadline: &Deadline) -> Result<SqliteHeld> {
        let db = self.db().await?;
        let key = match &db.locks {
            Some(l) => Some(l.lock_key(&self.lock_name(key), deadline).await?),
            None => None,
        };
        Ok(SqliteHeld {
            db,
            _key: key,
            _bulk: Vec::new(),
        })
    }

    async fn lock_many(&self, keys: &[Rc<str>], deadline: &Deadline) -> Result<Vec<SqliteHeld>> {
        let db = self.db().await?;
        let mut ranges = match &db.locks {
            Some(l) => {
                let names: Vec<String> = keys.iter().map(|k| self.lock_name(k)).collect();
                let named: Vec<(&str, &str)> = (names.iter().zip(keys))
                    .map(|(name, key)| (name.as_str(), &**key))
                    .collect();
                Some(l.lock_keys(&named, deadline).await?)
            }
            None => None,
        };
        Ok(keys
            .iter()
            .map(|_| SqliteHeld {
                db: db.clone(),
                _key: None,
                _bulk: ranges.take().unwrap_or_default(),
            })
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.db().await?.read(key).await
    }

    fn get_now<R>(
        &self,
        key: &str,
        read: impl FnOnce(Option<StoredText<'_>>) -> R,
    ) -> Option<Result<R>> {
        match &*self.state.borrow() {
            State::Open(db) => db.read_now(key, read),
            _ => None,
        }
    }

    fn write_now(&self, key: &str, write: Write<'_>) -> Option<Result<()>> {
        let state = self.state.borrow();
        let State::Open(db) = &*state else {
            return None;
        };
        if !db.writes_inline() {
            return None;
        }
        // Released after the write: when `_lock` drops, at the end.
        let _lock = match &db.locks {
            Some(locks) => match locks.try_lock_key(&self.lock_name(key)) {
                Ok(Some(guard)) => Some(guard),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            },
            None => None,
        };
        db.write_now(key, write)
    }

    async fn list_keys(&self, prefix: &str) -> Result<KeyList> {
        self.db().await?.list_keys(prefix).await
    }

    async fn get_many(&self, keys: &[Rc<str>]) -> Result<Vec<Option<String>>> {
        self.db().await?.read_many(keys).await
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let page = self.db().await?.page(prefix, after, limit).await?;
        Ok(page.into_iter().map(|(k, _)| k).collect())
    }

    async fn entries_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        self.db().await?.page(prefix, after, limit).await
    }

    /// One transaction, while every key's process lock is held (released after the commit).
    async fn finish_many(
        &self,
        held: Vec<(Rc<str>, SqliteHeld)>,
        changes: Vec<Change>,
    ) -> Result<()> {
        let Some((_, first)) = held.first() else {
            return Ok(());
        };
        let db = first.db.clone();
        let keys: Vec<Rc<str>> = held.iter().map(|(k, _)| k.clone()).collect();
        db.write_many(&keys, changes).await
    }

    async fn purge_expired(&self) -> Result<Option<std::time::SystemTime>> {
        let db = match &*self.state.borrow() {
            State::Open(db) => db.clone(),
            _ => return Ok(None),
        };
        Ok(db.purge().await?.map(crate::core::expiry::system_time))
    }

    async fn close(&self) -> Result<()> {
        let state = std::mem::replace(&mut *self.state.borrow_mut(), State::Closed);
        match state {
            State::Open(db) => match Rc::try_unwrap(db) {
                Ok(db) => db.close().await,
                // Not reached: the store closes only when no operation holds the database.
                Err(_) => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

impl HeldKey for SqliteHeld {
    async fn read(&mut self, key: &str) -> Result<Option<String>> {
        self.db.read(key).await
    }

    /// Writes, then releases the key's lock (when `self` drops, after the commit).
    async fn finish(self, key: &str, change: Change) -> Result<()> {
        self.db.write(key, change).await
    }
}
