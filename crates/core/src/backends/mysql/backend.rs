//! The MySQL/MariaDB [`Backend`] (docs/mysql.md): reshuffle's table layout, keys locked across
//! servers with `GET_LOCK` on a per-key name, statements run by mysql_async on the runtime
//! thread.
//!
//! A key free at once is locked on a shared connection (`shared`); one held by another session
//! is waited for on a connection of the `waiters` pool, which then holds it alone. The holder
//! reads and writes on the connection that holds its lock (each write one autocommit
//! statement, committed before the unlock), then unlocks — or, when another operation of the
//! store waits for the key, hands the lock and the row it wrote to that one (`parked`). If the
//! connection dies the server drops the lock and the holder's later statements fail: an
//! interrupted update writes nothing. Reads without a lock use the `reads` pool, so updaters
//! that read never wait for a connection held by another updater.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Value};
use tokio::sync::OnceCell;

use super::config::MyConfig;
use super::error::{is_connection_lost, my_error};
use super::locked::{connection, lock_all, lock_name, Locked, Waits};
use super::parked::{chain_open, Parked, ParkedLocks, UNCLAIMED, VALUE_BYTES};
use super::runtime::{detach, hop, read_hop};
use super::shared::{Reply, SlotLock, Slots};
use super::sql::{prefix_pattern, Statements};
use super::table::{ready, Place};
use crate::backends::sql_identifier::TableName;
use crate::core::key::has_prefix;
use crate::core::{Backend, Change, DatastoreError, Deadline, HeldKey, KeyList, Result};

struct Shared {
    slots: Slots,
    waiters: Pool,
    reads: Pool,
    database: String,
    table: String,
    /// Quoted for SQL.
    quoted: String,
    display: String,
    /// See [`MyConfig::connect_timeout`].
    connect_timeout: Option<std::time::Duration>,
    stmts: OnceCell<Arc<Statements>>,
    /// Locks handed from a write to the next operation queued on its key (`parked`).
    parked: ParkedLocks<Hold>,
}

impl Shared {
    /// The table's statements, readying the table on first use.
    async fn stmts(&self) -> Result<Arc<Statements>> {
        self.stmts
            .get_or_try_init(|| async {
                // On a connection of the shared slots' pool, which the first key lock reuses.
                // The pool is empty until this succeeds (every operation waits for it first),
                // so the wait is for the connection alone: a host that never answers is an
                // error after `connect_timeout`, not after TCP's own two minutes.
                let get = connection(self.slots.pool(), None, &self.display);
                let mut conn = match self.connect_timeout {
                    Some(limit) => tokio::time::timeout(limit, get).await.map_err(|_| {
                        DatastoreError::backend(format!(
                            "{}: no connection to the MySQL server within {} ms \
                             (connectTimeout); the next operation tries again",
                            self.display,
                            limit.as_millis()
                        ))
                    })??,
                    None => get.await?,
                };
                let place = Place {
                    database: &self.database,
                    table: &self.table,
                    quoted: &self.quoted,
                    display: &self.display,
                };
                ready(&mut conn, &self.waiters, &place).await.map(Arc::new)
            })
            .await
            .cloned()
    }

    fn waits(&self, s: &Statements) -> Waits {
        Waits {
            fractional: s.mariadb(),
        }
    }

    fn name(&self, key: &str) -> String {
        lock_name(&self.database, &self.table, key)
    }

    /// Takes `key`'s lock: on a shared connection when it is free, else waiting on one of
    /// its own until `deadline`.
    async fn hold(&self, s: &Statements, key: &str, deadline: Option<Instant>) -> Result<Hold> {
        let name = self.name(key);
        if let Some(l) = self.slots.try_lock(&name, deadline, &self.display).await? {
            return Ok(Hold::Shared(l));
        }
        let waits = self.waits(s);
        let locked = lock_all(&self.waiters, vec![name], deadline, waits, &self.display).await?;
        Ok(Hold::Own(locked))
    }

    /// A put of a small value in one statement that takes the key's lock when it is free
    /// (`Statements::put_if_free`): `Some` when written, the lock still to release; `None`
    /// when the key is held elsewhere (or the change is not such a put): nothing written.
    async fn put_if_free(
        &self,
        s: &Statements,
        key: &str,
        change: &Change,
        deadline: Option<Instant>,
    ) -> Result<Option<SlotLock>> {
        let (json, ttl) = match change {
            Change::Put(json) => (json, None),
            Change::PutFor(json, ttl) => (json, Some(ttl_ms(*ttl))),
            _ => return Ok(None),
        };
        if json.len() > FAST_PUT_BYTES {
            return Ok(None);
        }
        let name = self.name(key);
        let sql = s.put_if_free(ttl.is_some());
        let mut params = vec![Value::from(key), Value::from(json.as_str())];
        if let Some(ms) = ttl {
            params.push(Value::from(ms));
        }
        params.push(Value::from(name.as_str()));
        self.slots
            .try_with(&name, deadline, |c| {
                Box::pin(async move {
                    c.exec_drop(sql, params).await?;
                    Ok((c.affected_rows() > 0, ()))
                })
            })
            .await
            .map(|got| got.map(|(l, ())| l))
            .map_err(|e| my_error(&self.display, Some(key), &e))
    }

    /// Takes `key`'s lock and reads its value under it: in one round trip when the key is
    /// free (`Statements::lock_and_get`, two statements run in order), else by waiting.
    async fn hold_and_read(
        &self,
        s: &Statements,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<(Hold, Option<String>)> {
        let name = self.name(key);
        let sql = s.lock_and_get(&name, key);
        let got = self
            .slots
            .try_with(&name, deadline, |c| {
                Box::pin(async move {
                    let mut r = c.query_iter(sql).await?;
                    let locked: Vec<Option<i64>> = r.collect().await?;
                    let rows: Vec<RawRow> = r.collect().await?;
                    r.drop_result().await?;
                    Ok((locked.first().copied().flatten() == Some(1), rows))
                })
            })
            .await
            .map_err(|e| my_error(&self.display, None, &e))?;
        if let Some((lock, rows)) = got {
            return Ok((Hold::Shared(lock), exact(rows, key, &self.display)?));
        }
        let mut hold = self.hold(s, key, deadline).await?;
        let value = read_on(&mut hold, s, key, &self.display).await?;
        Ok((hold, value))
    }

    async fn disconnect(&self) {
        for p in self.parked.drain() {
            p.hold.unlock().await;
        }
        let _ = self.slots.pool().clone().disconnect().await;
        let _ = self.waiters.clone().disconnect().await;
        let _ = self.reads.clone().disconnect().await;
    }

    /// Releases a parked lock that nothing took within [`UNCLAIMED`] (`parked`).
    async fn release_unclaimed(&self, key: &str, ticket: u64) {
        tokio::time::sleep(UNCLAIMED).await;
        if let Some(p) = self.parked.reclaim(key, ticket) {
            p.hold.unlock().await;
        }
    }

    /// Runs `f` on a connection of the `reads` pool, once more on a fresh one when the
    /// connection turns out to be dead (reads are safe to repeat).
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> Fn(&'c mut Conn, &'c Statements) -> Reply<'c, T>,
    {
        self.run_on(&self.reads, f).await
    }

    /// [`Shared::read`] on a connection of `pool`.
    async fn run_on<T, F>(&self, pool: &Pool, f: F) -> Result<T>
    where
        F: for<'c> Fn(&'c mut Conn, &'c Statements) -> Reply<'c, T>,
    {
        let stmts = self.stmts().await?;
        let mut retried = false;
        loop {
            let mut conn = connection(pool, None, &self.display).await?;
            match f(&mut conn, &stmts).await {
                Ok(v) => return Ok(v),
                Err(e) if !retried && is_connection_lost(&e) => retried = true,
                Err(e) => return Err(my_error(&self.display, None, &e)),
            }
        }
    }
}

pub struct MyBackend {
    shared: Arc<Shared>,
}

impl MyBackend {
    /// No I/O here: the first operation connects and readies the table.
    pub fn new(config: MyConfig, table: &TableName) -> Self {
        let database = table.schema.clone().unwrap_or(config.database);
        let quoted = format!("`{database}`.`{}`", table.table);
        let display = match &table.schema {
            Some(s) => format!("{s}.{}", table.table),
            None => table.table.clone(),
        };
        MyBackend {
            shared: Arc::new(Shared {
                slots: Slots::new(Pool::new(config.opts.clone()), config.pool_size),
                waiters: Pool::new(config.opts.clone()),
                reads: Pool::new(config.opts),
                database,
                table: table.table.clone(),
                quoted,
                display,
                connect_timeout: config.connect_timeout,
                stmts: OnceCell::new(),
                parked: ParkedLocks::default(),
            }),
        }
    }
}

impl Drop for MyBackend {
    fn drop(&mut self) {
        let shared = self.shared.clone();
        detach(async move { shared.disconnect().await });
    }
}

/// A key's lock, on the connection that holds it.
enum Hold {
    Shared(SlotLock),
    Own(Locked),
}

impl Hold {
    /// Runs `f` on the connection that holds the lock.
    async fn run<T>(
        &mut self,
        f: impl for<'c> FnOnce(&'c mut Conn) -> Reply<'c, T>,
    ) -> std::result::Result<T, mysql_async::Error> {
        match self {
            Hold::Shared(l) => l.run(f).await,
            Hold::Own(l) => match l.conn() {
                Ok(c) => f(c).await,
                Err(_) => Err(mysql_async::Error::Driver(
                    mysql_async::DriverError::ConnectionClosed,
                )),
            },
        }
    }

    async fn unlock(self) {
        match self {
            Hold::Shared(l) => l.unlock().await,
            Hold::Own(l) => l.unlock().await,
        }
    }
}

/// A key of one operation; its lock is held through `locked` once taken.
pub struct MyHeld {
    shared: Arc<Shared>,
    locked: Option<Hold>,
    deadline: Option<Instant>,
    /// When `locked` was taken, before any hand-over (`parked`).
    since: Option<Instant>,
    /// Another operation of this store waits for the key (`HeldKey::next_waits`).
    next_waits: bool,
}

impl MyHeld {
    /// Takes over the key's parked lock, if this process parked one: `Ok` with it while its
    /// chain may go on, `Err` with the lock to release first when the chain is over.
    fn take_parked(&mut self, key: &str) -> Option<std::result::Result<Option<String>, Hold>> {
        let p = self.shared.parked.take(key)?;
        if !p.fresh() {
            return Some(Err(p.hold));
        }
        self.locked = Some(p.hold);
        self.since = Some(p.since);
        Some(Ok(p.value))
    }
}

/// What `key`'s row holds after `change` was written, when it is worth remembering with a
/// parked lock: a value without expiry of up to [`VALUE_BYTES`], or no row.
fn row_after(change: &Change) -> Option<Option<String>> {
    match change {
        Change::Put(json) if json.len() <= VALUE_BYTES => Some(Some(json.clone())),
        Change::Delete => Some(None),
        _ => None,
    }
}

/// A time to live in whole milliseconds (a fraction counts as one).
fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros().div_ceil(1000)).unwrap_or(i64::MAX)
}

/// A row as read: the id's and the value's bytes (read as bytes, so that no conversion in
/// the driver can fail; the server sends text columns in the session's utf8mb4).
pub type RawRow = (Vec<u8>, Option<Vec<u8>>);

/// A value's text.
fn text(value: Vec<u8>, table: &str) -> Result<String> {
    String::from_utf8(value).map_err(|_| {
        DatastoreError::backend(format!(
            "MySQL table {table}: a value is not UTF-8 text (is the value column binary?)"
        ))
    })
}

/// The value of the row of exactly `key` among `rows` (a collation may match others).
fn exact(rows: Vec<RawRow>, key: &str, table: &str) -> Result<Option<String>> {
    match rows
        .into_iter()
        .find(|(id, _)| id == key.as_bytes())
        .and_then(|(_, v)| v)
    {
        Some(v) => text(v, table).map(Some),
        None => Ok(None),
    }
}

async fn read_on(h: &mut Hold, s: &Statements, key: &str, table: &str) -> Result<Option<String>> {
    let (sql, k) = (s.get.clone(), key.to_owned());
    let rows: Vec<RawRow> = h
        .run(|c| Box::pin(async move { c.exec(sql, (k,)).await }))
        .await
        .map_err(|e| my_error(table, None, &e))?;
    exact(rows, key, table)
}

async fn write_on(
    h: &mut Hold,
    s: &Statements,
    key: &str,
    change: &Change,
    table: &str,
) -> Result<()> {
    if let Change::Put(json) | Change::PutFor(json, _) = change {
        s.check_size(key, json)?;
    }
    let k = key.to_owned();
    let done = match change {
        Change::Keep => Ok(()),
        Change::Put(json) => {
            let (sql, v) = (s.put.clone(), json.clone());
            h.run(|c| Box::pin(async move { c.exec_drop(sql, (k, v)).await }))
                .await
        }
        Change::PutFor(json, ttl) => {
            let (sql, v, t) = (s.put_for.clone(), json.clone(), ttl_ms(*ttl));
            h.run(|c| Box::pin(async move { c.exec_drop(sql, (k, v, t)).await }))
                .await
        }
        Change::Delete => {
            let sql = s.delete.clone();
            h.run(|c| Box::pin(async move { c.exec_drop(sql, (k,)).await }))
                .await
        }
    };
    done.map_err(|e| my_error(table, Some(key), &e))
}

/// Values up to this size are put in one statement when the key is free (larger ones would
/// travel through the server's derived table).
const FAST_PUT_BYTES: usize = 64 << 10;

/// Rows per multi-row statement, and their bytes at most (within the default packet).
const CHUNK_ROWS: usize = 500;
const CHUNK_BYTES: usize = 8 << 20;

/// Writes `changes` in one transaction on `conn` (whose connection holds their locks).
async fn write_many_on(
    conn: &mut Conn,
    s: &Statements,
    changes: &[(String, Change)],
    table: &str,
) -> Result<()> {
    let err = |key: Option<&str>, e: &mysql_async::Error| my_error(table, key, e);
    for (key, change) in changes {
        if let Change::Put(json) | Change::PutFor(json, _) = change {
            s.check_size(key, json)?;
        }
    }
    let limit = s.chunk_bytes(CHUNK_BYTES);
    conn.query_drop("START TRANSACTION")
        .await
        .map_err(|e| err(None, &e))?;
    let written = async {
        let mut deletes = Vec::new();
        for ttl in [false, true] {
            let mut rows: Vec<(&String, &String, Option<i64>)> = Vec::new();
            let mut bytes = 0;
            for (key, change) in changes {
                let row = match (change, ttl) {
                    (Change::Put(json), false) => (key, json, None),
                    (Change::PutFor(json, t), true) => (key, json, Some(ttl_ms(*t))),
                    (Change::Delete, false) => {
                        deletes.push(key.clone());
                        continue;
                    }
                    _ => continue,
                };
                let size = key.len() + row.1.len();
                if rows.len() >= CHUNK_ROWS || bytes + size > limit {
                    flush(conn, s, &mut rows, ttl).await?;
                    bytes = 0;
                }
                rows.push(row);
                bytes += size;
            }
            flush(conn, s, &mut rows, ttl).await?;
        }
        for chunk in deletes.chunks(CHUNK_ROWS) {
            conn.exec_drop(s.delete_many(chunk.len()), chunk.to_vec())
                .await
                .map_err(|e| (None, e))?;
        }
        Ok::<_, (Option<String>, mysql_async::Error)>(())
    }
    .await;
    match written {
        Ok(()) => conn.query_drop("COMMIT").await.map_err(|e| err(None, &e)),
        Err((key, e)) => {
            let _ = conn.query_drop("ROLLBACK").await;
            Err(err(key.as_deref(), &e))
        }
    }
}

async fn flush(
    conn: &mut Conn,
    s: &Statements,
    rows: &mut Vec<(&String, &String, Option<i64>)>,
    ttl: bool,
) -> std::result::Result<(), (Option<String>, mysql_async::Error)> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut params = Vec::with_capacity(rows.len() * 3);
    for (k, v, t) in rows.iter() {
        params.push(Value::from(k.as_str()));
        params.push(Value::from(v.as_str()));
        if let Some(t) = t {
            params.push(Value::from(*t));
        }
    }
    let first = rows[0].0.clone();
    let sql = s.upsert(rows.len(), ttl);
    rows.clear();
    conn.exec_drop(sql, params)
        .await
        .map_err(|e| (Some(first), e))
}

impl Backend for MyBackend {
    type Held = MyHeld;

    async fn lock(&self, _key: &str, deadline: &Deadline) -> Result<MyHeld> {
        // Taken by the first statement that needs it (`read` or `finish`).
        Ok(MyHeld {
            shared: self.shared.clone(),
            locked: None,
            deadline: deadline.instant(),
            since: None,
            next_waits: false,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let shared = self.shared.clone();
        let key = key.to_owned();
        read_hop(async move {
            let rows: Vec<RawRow> = shared
                .read(|c, s| {
                    let k = key.clone();
                    Box::pin(async move { c.exec(s.get.as_str(), (k,)).await })
                })
                .await?;
            exact(rows, &key, &shared.display)
        })
        .await
    }

    async fn list_keys(&self, prefix: &str) -> Result<KeyList> {
        let shared = self.shared.clone();
        let prefix = prefix.to_owned();
        read_hop(async move {
            let pattern = prefix_pattern(&prefix);
            let rows: Vec<Vec<u8>> = shared
                .read(|c, s| {
                    let p = pattern.clone();
                    Box::pin(async move { c.exec(s.list.as_str(), (p,)).await })
                })
                .await?;
            let mut keys: Vec<String> = rows
                .into_iter()
                .filter_map(|id| String::from_utf8(id).ok())
                .filter(|id| has_prefix(id, &prefix))
                .collect();
            keys.sort_unstable();
            Ok(keys.into_iter().collect())
        })
        .await
    }

    async fn get_many(&self, keys: &[Rc<str>]) -> Result<Vec<Option<String>>> {
        let shared = self.shared.clone();
        let ids: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let rows = read_hop(async move {
            let stmts = shared.stmts().await?;
            let mut conn = connection(&shared.reads, None, &shared.display).await?;
            let fail = |e: mysql_async::Error| my_error(&shared.display, None, &e);
            // Several statements read one snapshot inside one transaction.
            let chunks: Vec<&[String]> = ids.chunks(CHUNK_ROWS).collect();
            if chunks.len() > 1 {
                conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                    .await
                    .map_err(fail)?;
            }
            let mut rows: Vec<RawRow> = Vec::new();
            for chunk in &chunks {
                let got: Vec<RawRow> = conn
                    .exec(stmts.get_many(chunk.len()), chunk.to_vec())
                    .await
                    .map_err(fail)?;
                rows.extend(got);
            }
            if chunks.len() > 1 {
                conn.query_drop("COMMIT").await.map_err(fail)?;
            }
            Ok(rows)
        })
        .await?;
        let found: HashMap<Vec<u8>, Option<Vec<u8>>> = rows.into_iter().collect();
        keys.iter()
            .map(|k| match found.get(k.as_bytes()).cloned().flatten() {
                Some(v) => text(v, &self.shared.display).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let page = self.entries_page(prefix, after, limit).await?;
        Ok(page.into_iter().map(|(k, _)| k).collect())
    }

    async fn entries_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        let shared = self.shared.clone();
        let pattern = prefix_pattern(prefix);
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        read_hop(async move {
            let rows: Vec<RawRow> = shared
                .read(|c, s| {
                    let (p, a) = (pattern.clone(), after.clone());
                    Box::pin(async move {
                        match a {
                            None => c.exec(s.page_first.as_str(), (p, limit)).await,
                            Some(a) => c.exec(s.page_after.as_str(), (p, a, limit)).await,
                        }
                    })
                })
                .await?;
            let mut entries = Vec::with_capacity(rows.len());
            for (id, v) in rows {
                let (Ok(id), Some(v)) = (String::from_utf8(id), v) else {
                    continue;
                };
                if has_prefix(&id, &prefix) {
                    entries.push((id, text(v, &shared.display)?));
                }
            }
            Ok(entries)
        })
        .await
    }

    /// Takes the locks not yet held (in key order, on one connection), writes every change
    /// in one transaction (all or nothing), then unlocks.
    async fn finish_many(&self, held: Vec<(Rc<str>, MyHeld)>, changes: Vec<Change>) -> Result<()> {
        let shared = self.shared.clone();
        let mut already = Vec::new();
        let mut names = Vec::new();
        let mut keys_of_names = Vec::new();
        let mut deadline = None;
        let mut writes = Vec::with_capacity(held.len());
        // Locks this store parked for these keys are released first: the bulk write takes its
        // locks on a connection of its own, where a parked one would be waited for.
        let mut ended = Vec::new();
        for ((key, mut h), change) in held.into_iter().zip(changes) {
            if let Some(p) = shared.parked.take(&key) {
                ended.push(p.hold);
            }
            match h.locked.take() {
                Some(l) => already.push(l),
                None => {
                    names.push(shared.name(&key));
                    keys_of_names.push(key.to_string());
                }
            }
            deadline = deadline.or(h.deadline);
            writes.push((key.to_string(), change));
        }
        if writes.iter().all(|(_, c)| *c == Change::Keep) {
            return Ok(());
        }
        // Which key each lock name is of: a lock wait that gives up names its key.
        let named: Vec<(String, String)> = names.iter().cloned().zip(keys_of_names).collect();
        hop(async move {
            for hold in ended {
                hold.unlock().await;
            }
            let stmts = shared.stmts().await?;
            let waits = shared.waits(&stmts);
            let locking = lock_all(&shared.waiters, names, deadline, waits, &shared.display);
            let mut locked = locking.await.map_err(|e| match e {
                DatastoreError::LockTimeout {
                    key: name,
                    waited_ms,
                } => DatastoreError::LockTimeout {
                    key: (named.iter().find(|(n, _)| *n == name))
                        .map_or_else(String::new, |(_, key)| key.clone()),
                    waited_ms,
                },
                other => other,
            })?;
            let written = write_many_on(locked.conn()?, &stmts, &writes, &shared.display).await;
            locked.unlock().await;
            drop(already);
            written
        })
        .await
    }

    /// A second: by then the first writes have given their connection back to the shared
    /// slots' pool, where the purge takes it (see `purge_expired`).
    fn first_purge_delay(&self) -> Duration {
        Duration::from_secs(1)
    }

    async fn purge_expired(&self) -> Result<Option<SystemTime>> {
        let shared = self.shared.clone();
        hop(async move {
            // On an idle connection of the shared slots' pool, which the writes give back as
            // their last holder unlocks: a store that only writes keeps one connection, where
            // the `reads` pool would open a second one for this alone. The purge holds no key
            // lock, and a slot that needs a connection meanwhile takes another one.
            let next: Option<Option<i64>> = shared
                .run_on(shared.slots.pool(), |c, s| {
                    Box::pin(async move {
                        c.query_drop(s.purge.as_str()).await?;
                        c.query_first(s.next_expiry.as_str()).await
                    })
                })
                .await?;
            Ok(next
                .flatten()
                .and_then(|ms| u64::try_from(ms).ok())
                .map(crate::core::expiry::system_time))
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        let shared = self.shared.clone();
        hop(async move {
            shared.disconnect().await;
            Ok(())
        })
        .await
    }
}

impl HeldKey for MyHeld {
    async fn read(&mut self, key: &str) -> Result<Option<String>> {
        let mut ended = None;
        if self.locked.is_none() {
            match self.take_parked(key) {
                Some(Ok(value)) => return Ok(value),
                Some(Err(hold)) => ended = Some(hold),
                None => {}
            }
        }
        let shared = self.shared.clone();
        let key = key.to_owned();
        let locked = self.locked.take();
        let deadline = self.deadline;
        let (locked, value) = hop(async move {
            // A chain that ended lets go first, so a session waiting for the key gets it.
            if let Some(hold) = ended {
                hold.unlock().await;
            }
            let stmts = shared.stmts().await?;
            match locked {
                Some(mut l) => {
                    let value = read_on(&mut l, &stmts, &key, &shared.display).await?;
                    Ok((l, value))
                }
                None => shared.hold_and_read(&stmts, &key, deadline).await,
            }
        })
        .await?;
        self.locked = Some(locked);
        self.since.get_or_insert_with(Instant::now);
        Ok(value)
    }

    fn next_waits(&mut self) {
        self.next_waits = true;
    }

    async fn finish(mut self, key: &str, change: Change) -> Result<()> {
        if self.locked.is_none() && change == Change::Keep {
            return Ok(()); // never locked, nothing to do
        }
        // A `set` or `remove` queued behind a write of the key writes under the lock that
        // write parked: writing beside it would leave a parked value that is not the row's.
        let mut ended = None;
        if self.locked.is_none() {
            if let Some(Err(hold)) = self.take_parked(key) {
                ended = Some(hold);
            }
        }
        let locked = self.locked.take();
        let since = self.since.unwrap_or_else(Instant::now);
        let next_waits = self.next_waits;
        let shared = self.shared.clone();
        let key = key.to_owned();
        let deadline = self.deadline;
        let (tx, rx) = crate::runtime::executor::oneshot();
        // Answers once the write is committed; the unlock (or the parking) follows on the
        // runtime thread.
        detach(async move {
            if let Some(hold) = ended {
                hold.unlock().await;
            }
            let run = async {
                let stmts = shared.stmts().await?;
                let mut locked = match locked {
                    Some(l) => l,
                    None => match shared.put_if_free(&stmts, &key, &change, deadline).await? {
                        Some(l) => return Ok((Ok(()), Hold::Shared(l), stmts.exact_keys())),
                        None => shared.hold(&stmts, &key, deadline).await?,
                    },
                };
                let written = write_on(&mut locked, &stmts, &key, &change, &shared.display).await;
                Ok::<_, DatastoreError>((written, locked, stmts.exact_keys()))
            };
            match run.await {
                Ok((written, hold, exact_keys)) => {
                    let row = match (&written, next_waits && exact_keys) {
                        (Ok(()), true) => row_after(&change),
                        _ => None,
                    };
                    match row {
                        Some(value) if chain_open(since) => {
                            // Parked before the answer: the next operation may come at once.
                            let ticket = shared.parked.park(&key, Parked { hold, value, since });
                            tx.send(written);
                            shared.release_unclaimed(&key, ticket).await;
                        }
                        _ => {
                            tx.send(written);
                            hold.unlock().await;
                        }
                    }
                }
                Err(e) => tx.send(Err(e)),
            }
        });
        rx.await.unwrap_or_else(|| {
            Err(DatastoreError::backend(
                "the MySQL thread stopped before answering",
            ))
        })
    }
}
