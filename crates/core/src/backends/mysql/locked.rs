//! A connection holding key locks (`GET_LOCK`, named by [`lock_name`]), and taking them.
//! Whatever drops a [`Locked`] — a finished write, an updater that threw, a reply nobody
//! waits for — its locks are released on the runtime thread before the connection goes back
//! to the pool; a release that fails closes the session, which frees them on the server.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};

use super::error::my_error;
use super::runtime::detach;
use crate::backends::lock_hash::fnv1a64;
use crate::core::{DatastoreError, Result};

/// The server-wide lock name of `key` in `database.table`: 36 characters, within the 64 that
/// MySQL and MariaDB allow, from two FNV-1a hashes (pinned by `lock_hash`'s tests) so that
/// two keys share a lock only by a 128-bit accident.
pub fn lock_name(database: &str, table: &str, key: &str) -> String {
    let (d, t, k) = (database.as_bytes(), table.as_bytes(), key.as_bytes());
    let a = fnv1a64(&[b"reshuffle-datastore", d, t, k]);
    let b = fnv1a64(&[k, t, d, b"reshuffle-datastore"]);
    format!("rds:{a:016x}{b:016x}")
}

/// The error of a wait for a key's lock that gave up (the store completes it).
pub fn timed_out() -> DatastoreError {
    DatastoreError::LockTimeout {
        key: String::new(),
        waited_ms: 0,
    }
}

/// A connection and the lock names it holds.
pub struct Locked {
    conn: Option<Conn>,
    names: Vec<String>,
}

impl Locked {
    pub fn conn(&mut self) -> Result<&mut Conn> {
        self.conn
            .as_mut()
            .ok_or_else(|| DatastoreError::backend("MySQL: the connection is gone"))
    }

    /// Releases every lock, then returns the connection to its pool.
    /// After a statement failed with locks in an unknown state: ends the session, which the
    /// server answers by releasing every lock it holds (a pooled connection must not keep
    /// one), and returns `e`.
    async fn abandon(&mut self, e: DatastoreError) -> DatastoreError {
        self.names.clear();
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
        e
    }

    pub async fn unlock(mut self) {
        if let Some(conn) = self.conn.take() {
            release(conn, std::mem::take(&mut self.names)).await;
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            detach(release(conn, std::mem::take(&mut self.names)));
        }
    }
}

async fn release(mut conn: Conn, names: Vec<String>) {
    for chunk in names.chunks(100) {
        let sql = format!("DO {}", vec!["RELEASE_LOCK(?)"; chunk.len()].join(", "));
        if conn.exec_drop(sql, chunk.to_vec()).await.is_err() {
            let _ = conn.disconnect().await;
            return;
        }
    }
}

/// How the server takes a fraction of a second in `GET_LOCK`'s timeout.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// MariaDB waits fractions of a second; MySQL waits whole seconds.
    pub fractional: bool,
}

/// A connection of `pool` by `deadline`.
pub async fn connection(pool: &Pool, deadline: Option<Instant>, table: &str) -> Result<Conn> {
    let get = pool.get_conn();
    let got = match deadline {
        Some(d) => tokio::time::timeout_at(tokio::time::Instant::from_std(d), get)
            .await
            .map_err(|_| timed_out())?,
        None => get.await,
    };
    got.map_err(|e| my_error(table, None, &e))
}

/// One `GET_LOCK`: `Ok(true)` when taken.
async fn get_lock(conn: &mut Conn, name: &str, secs: f64, table: &str) -> Result<bool> {
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (name, secs))
        .await
        .map_err(|e| my_error(table, None, &e))?;
    Ok(got.flatten() == Some(1))
}

/// Takes lock `name` on `conn`: at once when free, else waiting on the server until
/// `deadline` (`None`: for as long as it takes). The wait gives up holding nothing.
pub async fn take(
    conn: &mut Conn,
    name: &str,
    deadline: Option<Instant>,
    waits: Waits,
    table: &str,
) -> Result<()> {
    if get_lock(conn, name, 0.0, table).await? {
        return Ok(());
    }
    let mut backoff = Duration::from_millis(2);
    loop {
        let left = match deadline {
            None => Duration::from_secs(3600),
            Some(d) => d.saturating_duration_since(Instant::now()),
        };
        if left.is_zero() {
            return Err(timed_out());
        }
        let secs = if waits.fractional {
            left.as_secs_f64()
        } else {
            left.as_secs() as f64
        };
        if secs > 0.0 {
            if get_lock(conn, name, secs, table).await? {
                return Ok(());
            }
            continue;
        }
        // Under a second left on a server that waits whole seconds: try again shortly.
        tokio::time::sleep(backoff.min(left)).await;
        backoff = (backoff * 2).min(Duration::from_millis(50));
        if get_lock(conn, name, 0.0, table).await? {
            return Ok(());
        }
    }
}

/// A connection of `pool` holding the locks `names`, taken in order. A wait that gives up
/// fails with a `LockTimeout` naming the lock name it waited for.
pub async fn lock_all(
    pool: &Pool,
    names: Vec<String>,
    deadline: Option<Instant>,
    waits: Waits,
    table: &str,
) -> Result<Locked> {
    let conn = connection(pool, deadline, table).await?;
    let mut locked = Locked {
        conn: Some(conn),
        names: Vec::with_capacity(names.len()),
    };
    let mut rest: VecDeque<String> = names.into();
    while let Some(first) = rest.pop_front() {
        if rest.is_empty() {
            let taken = take(locked.conn()?, &first, deadline, waits, table).await;
            taken.map_err(|e| e.for_key(&first))?;
            locked.names.push(first);
            continue;
        }
        // Many names: try up to TRY_AT_ONCE in one statement, keep the run taken before the
        // first that is held elsewhere, give back any taken after it (the order must hold),
        // then wait for that one alone; the names after it go back to be tried again.
        let more = rest.len().min(TRY_AT_ONCE - 1);
        let mut chunk: Vec<String> = std::iter::once(first).chain(rest.drain(..more)).collect();
        let got = match try_many(locked.conn()?, &chunk, table).await {
            Ok(got) => got,
            Err(e) => return Err(locked.abandon(e).await),
        };
        let run = got.iter().take_while(|&&g| g).count();
        if run == chunk.len() {
            locked.names.append(&mut chunk);
            continue;
        }
        let taken_after = (run + 1..chunk.len()).filter(|&i| got[i]);
        let give_back: Vec<String> = taken_after.map(|i| chunk[i].clone()).collect();
        if let Err(e) = release_on(locked.conn()?, give_back, table).await {
            return Err(locked.abandon(e).await);
        }
        let mut chunk = chunk.into_iter();
        locked.names.extend(chunk.by_ref().take(run));
        let blocked = chunk.next().unwrap_or_default();
        for name in chunk.rev() {
            rest.push_front(name);
        }
        let taken = take(locked.conn()?, &blocked, deadline, waits, table).await;
        taken.map_err(|e| e.for_key(&blocked))?;
        locked.names.push(blocked);
    }
    Ok(locked)
}

/// How many locks one statement tries at once for a call on many keys: one round trip instead
/// of one per key (setMany of 10,000 keys: 10,000 round trips before).
const TRY_AT_ONCE: usize = 100;

/// Tries every name of `names` without waiting, in order, in one statement: which were taken.
async fn try_many(conn: &mut Conn, names: &[String], table: &str) -> Result<Vec<bool>> {
    let sql = format!("SELECT {}", vec!["GET_LOCK(?, 0)"; names.len()].join(", "));
    let row: Option<mysql_async::Row> = conn
        .exec_first(sql, names.to_vec())
        .await
        .map_err(|e| my_error(table, None, &e))?;
    let mut row = row.ok_or_else(|| DatastoreError::backend("MySQL: GET_LOCK returned no row"))?;
    Ok((0..names.len())
        .map(|i| row.take::<Option<i64>, _>(i).flatten() == Some(1))
        .collect())
}

/// Gives back `names`, taken on `conn`.
async fn release_on(conn: &mut Conn, names: Vec<String>, table: &str) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let sql = format!("DO {}", vec!["RELEASE_LOCK(?)"; names.len()].join(", "));
    conn.exec_drop(sql, names)
        .await
        .map_err(|e| my_error(table, None, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_differ() {
        let n = lock_name("test", "reshuffledb", &"k".repeat(2048));
        assert!(n.len() <= 64);
        assert_ne!(lock_name("test", "t", "a"), lock_name("test", "t", "b"));
        assert_ne!(lock_name("test", "t", "a"), lock_name("test", "u", "a"));
        assert_eq!(lock_name("d", "t", "k"), lock_name("d", "t", "k"));
    }
}
