//! The PostgreSQL [`Backend`]: reshuffle's table, keys locked across servers with session-level
//! advisory locks on `(table, key)` numbers.
//!
//! Locking a key (see docs/postgres.md):
//! 1. fast path: `pg_try_advisory_lock` on a shared connection, pipelined with other work;
//! 2. when another session holds it: a pinned connection waits with `pg_advisory_lock`;
//!    if no connection may be pinned, `pg_try_advisory_lock` is retried with back-off.
//!
//! A deadline (`lockTimeout`) bounds the wait: the pinned wait runs under the server's own
//! `lock_timeout` (set for that statement and reset right after, in the same round trip), so
//! a wait that gives up leaves no lock request behind on the server; the back-off stops too.
//!
//! The holder reads and writes on the connection that holds the lock, then unlocks there;
//! writes are single autocommit statements sent before the unlock, so another server sees
//! the write as soon as it gets the lock. If the connection dies the server drops the lock and
//! every later statement of the holder fails: an interrupted update writes nothing.

use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;

use futures_util::future::join;
use tokio::sync::OnceCell;

use super::config::{PasswordSource, PgConfig};
use super::error::pg_error;
use super::keys;
use super::lock_room::{self, LockRoom};
use super::pool::{Conn, Lease, Pool};
use super::runtime::{detach, reply, run};
use crate::backends::sql_identifier::TableName;
use crate::core::key::has_prefix;
use crate::core::{Backend, Change, DatastoreError, Deadline, HeldKey, KeyList, Result};
use crate::runtime::timer::Sleep;

pub struct PgBackend {
    pool: Rc<Pool>,
    table_id: i32,
    /// The server's lock-table settings, read by the first bulk call that needs them.
    lock_room: Rc<OnceCell<LockRoom>>,
}

impl PgBackend {
    /// No I/O here: the first operation connects and creates the table. `password`, when
    /// given, is asked for each new connection's password (instead of `config.password`).
    pub fn new(
        config: PgConfig,
        password: Option<Rc<dyn PasswordSource>>,
        table: &TableName,
    ) -> Self {
        let quoted = table.quoted_folded();
        PgBackend {
            table_id: keys::table_lock_id(&quoted),
            pool: Pool::new(config, password, quoted, table.display()),
            lock_room: Rc::new(OnceCell::new()),
        }
    }
}

/// A key of one operation; its advisory lock is held through `lease`'s connection.
pub struct PgHeld {
    pool: Rc<Pool>,
    /// The connection holding the key's lock, once taken.
    lease: Option<Lease>,
    ids: (i32, i32),
    id: String,
    /// When a wait for the key's lock gives up (`lockTimeout`); `None`: never.
    deadline: Option<Instant>,
}

/// The connection is gone: closed, or the server ended the session (operator intervention,
/// class 57P) or reported a connection exception (class 08).
fn is_closed_conn(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.as_db_error().is_some_and(|d| {
            let code = d.code().code();
            code.starts_with("57P") || code.starts_with("08")
        })
}

/// The error of a statement on `c`, which is retired when the error says its session is over.
fn failed(c: &Conn, table: &str, e: &tokio_postgres::Error) -> DatastoreError {
    if is_closed_conn(e) {
        c.retire();
    }
    pg_error(table, e)
}

/// Runs a query that is safe to repeat on a fresh shared connection, retrying once when the
/// connection turns out to be dead (e.g. its server process was terminated while idle). Its
/// reply is expected soon: the loop polls for it.
async fn on_shared<T, F, Fut>(pool: &Rc<Pool>, f: F) -> Result<(T, Lease)>
where
    F: Fn(Arc<Conn>) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
{
    let mut retried = false;
    loop {
        let lease = pool.shared().await?;
        match reply(pool.busy_poll(), f(lease.conn.clone())).await {
            Ok(v) => return Ok((v, lease)),
            Err(e) if !retried && is_closed_conn(&e) => {
                lease.conn.retire();
                retried = true;
            }
            Err(e) => return Err(failed(&lease.conn, &pool.table_display, &e)),
        }
    }
}

/// One `pg_try_advisory_lock` on a shared connection.
enum Try {
    Busy,
    /// Locked; with the value read right behind the lock when one was asked for.
    Got(Option<String>),
}

fn value_of(row: Option<tokio_postgres::Row>) -> std::result::Result<Option<String>, PgErr> {
    match row {
        None => Ok(None),
        Some(r) => r.try_get::<_, Option<String>>(0),
    }
}

type PgErr = tokio_postgres::Error;

/// Tries the key's lock; with `read_id`, the value is read in the same round trip. The read
/// is a separate statement sent behind the lock, so its snapshot is taken after the lock is
/// held and sees every write of the previous holder.
async fn try_once(
    c: Arc<Conn>,
    (t, k): (i32, i32),
    read_id: Option<String>,
) -> std::result::Result<Try, PgErr> {
    let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&t, &k];
    let lock = c.client.query_one(&c.stmts.try_lock, &lock_params);
    let Some(id) = read_id else {
        let got: bool = lock.await?.try_get(0)?;
        return Ok(if got { Try::Got(None) } else { Try::Busy });
    };
    let (locked, row) = join(lock, c.client.query_opt(&c.stmts.get, &[&id])).await;
    let got: bool = locked?.try_get(0)?;
    if !got {
        return Ok(Try::Busy);
    }
    match row.and_then(value_of) {
        Ok(v) => Ok(Try::Got(v)),
        Err(e) => {
            let _ = c.client.execute(&c.stmts.unlock, &[&t, &k]).await;
            Err(e)
        }
    }
}

/// The error of a wait for a key's lock that gave up (the store completes it).
fn timed_out() -> DatastoreError {
    DatastoreError::LockTimeout {
        key: String::new(),
        waited_ms: 0,
    }
}

/// The server's `lock_timeout` for a wait that must end by `deadline`: whole milliseconds,
/// rounded up, at least 1 (0 would mean no limit).
fn server_lock_timeout(deadline: Instant) -> String {
    let left = deadline.saturating_duration_since(Instant::now());
    let ms = left.as_micros().div_ceil(1000).max(1);
    format!("{ms}ms")
}

/// Waits on a pinned connection for the key's lock (reading the value right behind it when
/// `read_id` is given), bounded by `deadline` through the server's `lock_timeout`.
async fn wait_pinned(
    pinned: &Lease,
    (t, k): (i32, i32),
    read_id: Option<&String>,
    deadline: Option<Instant>,
) -> Result<Option<String>> {
    let table = &pinned.pool_table();
    let c = &pinned.conn;
    let lock_params: [&(dyn ToSql + Sync); 2] = [&t, &k];
    let limit = deadline.map(server_lock_timeout);
    let bounded = async {
        if let Some(limit) = &limit {
            c.client
                .query_one(&c.stmts.set_lock_timeout, &[limit])
                .await?;
        }
        Ok(())
    };
    let lock = c.client.execute(&c.stmts.lock, &lock_params);
    let read = async {
        match read_id {
            Some(id) => c.client.query_opt(&c.stmts.get, &[id]).await.map(Some),
            None => Ok(None),
        }
    };
    let reset = async {
        if limit.is_some() {
            c.client.execute(&c.stmts.reset_lock_timeout, &[]).await?;
        }
        Ok::<_, PgErr>(())
    };
    // Sent in this order on the one connection: limit, lock, read (runs once the lock is
    // held), reset.
    let (set, (locked, (row, reset))) = join(bounded, join(lock, join(read, reset))).await;
    set.and(reset).map_err(|e: PgErr| failed(c, table, &e))?;
    if let Err(e) = locked {
        if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return Err(timed_out());
        }
        return Err(failed(c, table, &e));
    }
    match row.and_then(|r| value_of(r.flatten())) {
        Ok(v) => Ok(v),
        Err(e) => {
            let _ = c.client.execute(&c.stmts.unlock, &[&t, &k]).await;
            Err(failed(c, table, &e))
        }
    }
}

/// Takes the key's lock (see the module docs), reading the value under it when `read_id` is
/// given. The returned lease's connection holds the lock. Only the first attempt polls for its
/// reply: a key held by another session may stay held for long. Gives up at `deadline`.
async fn lock_key(
    pool: Rc<Pool>,
    ids: (i32, i32),
    read_id: Option<String>,
    deadline: Option<Instant>,
) -> Result<(Lease, Option<String>)> {
    let mut backoff = Duration::from_millis(1);
    let mut first = true;
    loop {
        if !first {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(timed_out());
            }
            if let Some(pinned) = pool.pinned().await? {
                let value = wait_pinned(&pinned, ids, read_id.as_ref(), deadline).await?;
                return Ok((pinned, value));
            }
            let mut next = Instant::now() + backoff;
            if let Some(d) = deadline {
                next = next.min(d);
            }
            Sleep::until(next).await;
            backoff = (backoff * 2).min(Duration::from_millis(50));
        }
        first = false;
        let (outcome, lease) = on_shared(&pool, |c| try_once(c, ids, read_id.clone())).await?;
        if let Try::Got(value) = outcome {
            return Ok((lease, value));
        }
    }
}

/// Applies `change` on the connection that holds the key's lock, then unlocks there. Resolves
/// once the write is committed: the unlock is sent right behind it on the same connection and
/// finishes in the background, holding the lease until the server has run it (so the
/// connection cannot be pinned while it still holds the lock). Later statements of this
/// process on that connection run after the unlock; on another connection they find the lock
/// free, or wait for it like any other holder's.
async fn write_and_unlock(
    lease: Lease,
    (t, k): (i32, i32),
    id: String,
    change: Change,
) -> Result<()> {
    let conn = lease.conn.clone();
    let table = lease.pool_table();
    let busy_poll = lease.busy_poll();
    let write = async {
        match &change {
            Change::Keep => Ok(0),
            Change::Put(json) => conn.client.execute(&conn.stmts.put, &[&id, json]).await,
            Change::PutFor(json, ttl) => {
                let ms = ttl_ms(*ttl);
                conn.client
                    .execute(&conn.stmts.put_for, &[&id, json, &ms])
                    .await
            }
            Change::Delete => conn.client.execute(&conn.stmts.delete, &[&id]).await,
        }
    };
    let mut write = std::pin::pin!(write);
    // The first poll hands the write to the connection; the unlock is queued after it.
    let first = poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
    detach(async move {
        let c = &lease.conn;
        let _ = c.client.execute(&c.stmts.unlock, &[&t, &k]).await;
        drop(lease);
    });
    let written = match first {
        Poll::Ready(r) => r,
        Poll::Pending => reply(busy_poll, write).await,
    };
    written.map(|_| ()).map_err(|e| failed(&conn, &table, &e))
}

/// Keys held through their leases, unlocked (in the background, each on its connection)
/// when this is dropped.
struct Unlocks(Vec<(Lease, (i32, i32))>);

impl Drop for Unlocks {
    fn drop(&mut self) {
        for (lease, (t, k)) in self.0.drain(..) {
            detach(async move {
                let c = &lease.conn;
                let _ = c.client.execute(&c.stmts.unlock, &[&t, &k]).await;
                drop(lease);
            });
        }
    }
}

/// A lock a bulk call needs: its key, the lock number, and how long to wait for it.
type Wanted = (Rc<str>, (i32, i32), Option<Instant>);

/// How many key locks one step of [`lock_in_order`] tries at once, pipelined.
const TRY_AT_ONCE: usize = 100;

/// Takes the locks of `wanted` (`(key, ids, deadline)`, in the order of `ids`, each once)
/// into `leases`. Up to
/// [`TRY_AT_ONCE`] are tried at once without waiting, pipelined on the shared connections: one
/// round trip for them instead of one each (setMany of 10,000 keys took 2.2 s). The run taken
/// before the first that another session holds is kept; any taken after it are given back, so
/// nothing is held out of order while waiting, and that one is waited for alone before the
/// rest are tried again. A wait that gives up names its key.
async fn lock_in_order(pool: &Rc<Pool>, wanted: &[Wanted], leases: &mut Unlocks) -> Result<()> {
    let mut i = 0;
    while i < wanted.len() {
        let end = (i + TRY_AT_ONCE).min(wanted.len());
        let now = Some(Instant::now());
        let tries = wanted[i..end]
            .iter()
            .map(|&(_, ids, _)| lock_key(pool.clone(), ids, None, now));
        let tried = futures_util::future::join_all(tries).await;
        let mut give_back = Unlocks(Vec::new());
        let mut blocked = None;
        let mut failed = None;
        for (j, got) in (i..end).zip(tried) {
            let ids = wanted[j].1;
            match got {
                Ok((lease, _)) if blocked.is_none() && failed.is_none() => {
                    leases.0.push((lease, ids))
                }
                Ok((lease, _)) => give_back.0.push((lease, ids)),
                Err(DatastoreError::LockTimeout { .. }) => blocked = blocked.or(Some(j)),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        // Every lock of this step is kept or given back by now (a lease dropped otherwise
        // would leave its lock on a pooled connection); those kept are the caller's to unlock.
        drop(give_back);
        if let Some(e) = failed {
            return Err(e);
        }
        let Some(j) = blocked else {
            i = end;
            continue;
        };
        let (key, ids, deadline) = &wanted[j];
        let waited = lock_key(pool.clone(), *ids, None, *deadline).await;
        leases.0.push((waited.map_err(|e| e.for_key(key))?.0, *ids));
        i = j + 1;
    }
    Ok(())
}

/// A time to live in whole milliseconds (a fraction counts as one), for the server's clock.
fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros().div_ceil(1000)).unwrap_or(i64::MAX)
}

impl Backend for PgBackend {
    type Held = PgHeld;

    async fn lock(&self, key: &str, deadline: &Deadline) -> Result<PgHeld> {
        // The lock is taken by the first statement that needs it (`read` or `finish`), so
        // that it travels in the same round trip.
        let id = key.to_owned();
        Ok(PgHeld {
            pool: self.pool.clone(),
            lease: None,
            ids: (self.table_id, keys::key_lock_id(&id)),
            id,
            deadline: deadline.instant(),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let id = key.to_owned();
        let pool = self.pool.clone();
        run(async move {
            let (row, _lease) = on_shared(&pool, |c| {
                let id = id.clone();
                async move { c.client.query_opt(&c.stmts.get, &[&id]).await }
            })
            .await?;
            read_value(&pool, row)
        })
        .await
    }

    async fn list_keys(&self, prefix: &str) -> Result<KeyList> {
        let prefix = prefix.to_owned();
        let pool = self.pool.clone();
        run(async move {
            let (rows, _lease) = on_shared(&pool, |c| {
                let p = prefix.clone();
                async move { c.client.query(&c.stmts.list, &[&p]).await }
            })
            .await?;
            let mut keys = Vec::with_capacity(rows.len());
            for row in rows {
                let id: String = row
                    .try_get(0)
                    .map_err(|e| pg_error(&pool.table_display, &e))?;
                if has_prefix(&id, &prefix) {
                    keys.push(id);
                }
            }
            keys.sort_unstable();
            Ok(keys.into_iter().collect())
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        self.pool.close();
        Ok(())
    }

    async fn get_many(&self, keys: &[Rc<str>]) -> Result<Vec<Option<String>>> {
        let ids: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let pool = self.pool.clone();
        let rows = run(async move {
            let (rows, _lease) = on_shared(&pool, |c| {
                let ids = ids.clone();
                async move { c.client.query(&c.stmts.get_many, &[&ids]).await }
            })
            .await?;
            Ok::<_, DatastoreError>(rows)
        })
        .await?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let pair = row
                .try_get::<_, String>(0)
                .and_then(|id| Ok((id, row.try_get::<_, Option<String>>(1)?)))
                .map_err(|e| pg_error(&self.pool.table_display, &e))?;
            found.insert(pair.0, pair.1);
        }
        Ok(keys
            .iter()
            .map(|k| found.get(&**k).cloned().flatten())
            .collect())
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
        let (prefix, after) = (prefix.to_owned(), after.map(str::to_owned));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let pool = self.pool.clone();
        run(async move {
            let (rows, _lease) = on_shared(&pool, |c| {
                let (p, a) = (prefix.clone(), after.clone());
                async move { c.client.query(&c.stmts.page, &[&p, &a, &limit]).await }
            })
            .await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<std::result::Result<Vec<(String, String)>, PgErr>>()
                .map_err(|e| pg_error(&pool.table_display, &e))
        })
        .await
    }

    /// Takes every key's lock (in the order of the lock numbers, see `lock_in_order`), writes
    /// them all in one statement (all or nothing), then unlocks each on the connection that
    /// holds it.
    async fn finish_many(&self, held: Vec<(Rc<str>, PgHeld)>, changes: Vec<Change>) -> Result<()> {
        let pool = self.pool.clone();
        let lock_room = self.lock_room.clone();
        run(async move {
            let keys = held.len();
            // Unlocks every key taken so far when dropped: after the write, or on an error.
            let mut leases = Unlocks(Vec::with_capacity(keys));
            let mut wanted = Vec::with_capacity(keys);
            let (mut put_ids, mut put_values, mut put_ttls, mut deletes) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ((key, mut h), change) in held.into_iter().zip(changes) {
                match h.lease.take() {
                    Some(lease) => leases.0.push((lease, h.ids)),
                    None => wanted.push((key, h.ids, h.deadline)),
                }
                let id = std::mem::take(&mut h.id);
                match change {
                    Change::Keep => {}
                    Change::Put(json) => {
                        put_ids.push(id);
                        put_values.push(json);
                        put_ttls.push(None::<i64>);
                    }
                    Change::PutFor(json, ttl) => {
                        put_ids.push(id);
                        put_values.push(json);
                        put_ttls.push(Some(ttl_ms(ttl)));
                    }
                    Change::Delete => deletes.push(id),
                }
            }
            // In the order of the lock numbers, each number once: two keys may share one
            // (keys::key_lock_id), and key order alone would not order the locks the same way
            // in every process, or would wait for a number this call holds already.
            wanted.sort_unstable_by_key(|&(_, ids, _)| ids);
            wanted.dedup_by_key(|&mut (_, ids, _)| ids);
            wanted.retain(|(_, ids, _)| leases.0.iter().all(|(_, held)| held != ids));
            let needed = wanted.len() + leases.0.len();
            if needed > lock_room::UNCHECKED {
                let room = lock_room
                    .get_or_try_init(|| async {
                        let (row, _lease) = on_shared(&pool, |c| async move {
                            c.client.query_one(lock_room::QUERY, &[]).await
                        })
                        .await?;
                        LockRoom::from_row(&row).map_err(|e| pg_error(&pool.table_display, &e))
                    })
                    .await?;
                room.check(needed, keys, &pool.table_display)?;
            }
            lock_in_order(&pool, &wanted, &mut leases).await?;
            let written = on_shared(&pool, |c| {
                let (a, b, t, d) = (
                    put_ids.clone(),
                    put_values.clone(),
                    put_ttls.clone(),
                    deletes.clone(),
                );
                async move {
                    c.client
                        .execute(&c.stmts.write_many, &[&a, &b, &t, &d])
                        .await
                }
            })
            .await;
            // Unlocked whatever happened: the write is one statement, done or not.
            drop(leases);
            written.map(|_| ())
        })
        .await
    }

    async fn purge_expired(&self) -> Result<Option<std::time::SystemTime>> {
        let pool = self.pool.clone();
        run(async move {
            let (row, _lease) = on_shared(&pool, |c| async move {
                c.client.query_one(&c.stmts.purge, &[]).await
            })
            .await?;
            let next: Option<i64> = row
                .try_get(0)
                .map_err(|e| pg_error(&pool.table_display, &e))?;
            Ok(next
                .and_then(|ms| u64::try_from(ms).ok())
                .map(crate::core::expiry::system_time))
        })
        .await
    }

    fn check_key(&self, key: &str) -> Result<()> {
        keys::check(key, "key")
    }

    fn check_prefix(&self, prefix: &str) -> Result<()> {
        keys::check(prefix, "list prefix")
    }
}

/// A row's value; a NULL value (reshuffle's `set(k, undefined)`) reads as missing.
fn read_value(pool: &Pool, row: Option<tokio_postgres::Row>) -> Result<Option<String>> {
    match row {
        None => Ok(None),
        Some(r) => r
            .try_get::<_, Option<String>>(0)
            .map_err(|e| pg_error(&pool.table_display, &e)),
    }
}

impl HeldKey for PgHeld {
    async fn read(&mut self, _key: &str) -> Result<Option<String>> {
        let id = self.id.clone();
        if let Some(lease) = &self.lease {
            let conn = lease.conn.clone();
            let table = lease.pool_table();
            let busy_poll = lease.busy_poll();
            return run(async move {
                let row = reply(busy_poll, conn.client.query_opt(&conn.stmts.get, &[&id])).await;
                row.and_then(value_of)
                    .map_err(|e| failed(&conn, &table, &e))
            })
            .await;
        }
        let (lease, value) = run(lock_key(
            self.pool.clone(),
            self.ids,
            Some(id),
            self.deadline,
        ))
        .await?;
        self.lease = Some(lease);
        Ok(value)
    }

    async fn finish(mut self, _key: &str, change: Change) -> Result<()> {
        let ids = self.ids;
        let deadline = self.deadline;
        let id = std::mem::take(&mut self.id);
        if let Some(lease) = self.lease.take() {
            return run(write_and_unlock(lease, ids, id, change)).await;
        }
        if change == Change::Keep {
            return Ok(()); // never locked, nothing to do
        }
        let pool = self.pool.clone();
        run(async move {
            if let Change::Put(json) | Change::PutFor(json, _) = &change {
                // One statement: a transaction-scoped try-lock, and the upsert when it is free.
                // ON CONFLICT DO UPDATE acts on the latest row version, whatever the snapshot.
                let (t, k) = ids;
                let ttl = match &change {
                    Change::PutFor(_, ttl) => Some(ttl_ms(*ttl)),
                    _ => None,
                };
                let (written, _lease) = on_shared(&pool, |c| {
                    let id = id.clone();
                    let json = json.clone();
                    async move {
                        match ttl {
                            None => {
                                c.client
                                    .execute(&c.stmts.put_if_free, &[&id, &json, &t, &k])
                                    .await
                            }
                            Some(ms) => {
                                c.client
                                    .execute(&c.stmts.put_for_if_free, &[&id, &json, &t, &k, &ms])
                                    .await
                            }
                        }
                    }
                })
                .await?;
                if written == 1 {
                    return Ok(());
                }
            }
            let (lease, _) = lock_key(pool, ids, None, deadline).await?;
            write_and_unlock(lease, ids, id, change).await
        })
        .await
    }
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let (t, k) = self.ids;
            detach(async move {
                let _ = lease
                    .conn
                    .client
                    .execute(&lease.conn.stmts.unlock, &[&t, &k])
                    .await;
                drop(lease);
            });
        }
    }
}
