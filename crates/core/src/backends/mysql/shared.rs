//! Connections shared by the holders of many keys: a `GET_LOCK` is the session's, and one
//! session may hold many, so a key free at once is locked on one of a few shared
//! connections, and its holder's statements take turns there with other holders' (each a
//! short statement). Waits for a key held elsewhere never run here (they would stall every
//! holder on the connection): they take a connection of their own (`locked::lock_all`).
//!
//! A holder remembers the connection's generation: if the connection dies (the server then
//! drops its locks) the slot opens a new one of a new generation, and every statement of an
//! older holder fails, so a holder never writes without its lock. A slot gives its connection
//! back to the pool when its last holder unlocks, so idle connections close as the pool's do.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, Pool};
use tokio::sync::Mutex;

use super::error::{is_connection_lost, my_error};
use super::runtime::detach;
use crate::core::Result;

/// A statement's reply on a borrowed connection.
pub type Reply<'c, T> =
    Pin<Box<dyn Future<Output = std::result::Result<T, mysql_async::Error>> + Send + 'c>>;

#[derive(Default)]
struct State {
    conn: Option<Conn>,
    generation: u64,
    holders: usize,
}

impl State {
    /// Forgets a dead connection: its holders' later statements fail.
    fn lost(&mut self) {
        self.conn = None;
        self.generation += 1;
    }

    /// One holder fewer; the last gives the connection back to the pool.
    fn leave(&mut self) {
        self.holders = self.holders.saturating_sub(1);
        if self.holders == 0 {
            self.conn = None;
        }
    }
}

#[derive(Default)]
struct Slot {
    state: Arc<Mutex<State>>,
}

/// Which slot holds (or is releasing) a lock, by name: the next holder of the same key tries
/// there, where the session still holding it lets it in at once (a session may take a lock it
/// holds again; each holder releases once), instead of finding it busy from another one.
/// Each entry counts the holders on that slot that have not released yet.
type Recent = Arc<parking_lot::Mutex<HashMap<String, (Arc<Slot>, usize)>>>;

/// The shared connections of one store.
pub struct Slots {
    pool: Pool,
    slots: Vec<Arc<Slot>>,
    next: AtomicUsize,
    recent: Recent,
}

fn closed() -> mysql_async::Error {
    mysql_async::Error::Driver(DriverError::ConnectionClosed)
}

impl Slots {
    pub fn new(pool: Pool, count: usize) -> Self {
        Slots {
            pool,
            slots: (0..count.max(1)).map(|_| Arc::default()).collect(),
            next: AtomicUsize::new(0),
            recent: Recent::default(),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A slot to run on: one with an open connection and no statement in flight, else one
    /// with no statement in flight (it opens a connection), else the next in turn. So few
    /// connections are opened while few statements run at once.
    async fn pick(&self, name: &str) -> (Arc<Slot>, tokio::sync::OwnedMutexGuard<State>) {
        let last = self.recent.lock().get(name).map(|(s, _)| s.clone());
        if let Some(slot) = last {
            let guard = slot.state.clone().lock_owned().await;
            return (slot, guard);
        }
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut idle = None;
        for j in 0..n {
            let slot = &self.slots[(start + j) % n];
            if let Ok(guard) = slot.state.clone().try_lock_owned() {
                if guard.conn.is_some() {
                    return (slot.clone(), guard);
                }
                if idle.is_none() {
                    idle = Some((slot.clone(), guard));
                }
            }
        }
        if let Some(found) = idle {
            return found;
        }
        let slot = self.slots[start].clone();
        let guard = slot.state.clone().lock_owned().await;
        (slot, guard)
    }

    /// Takes lock `name` on a shared connection if it is free right now; `None` when another
    /// session holds it.
    pub async fn try_lock(
        &self,
        name: &str,
        deadline: Option<Instant>,
        table: &str,
    ) -> Result<Option<SlotLock>> {
        let n = name.to_owned();
        let got = self
            .try_with(name, deadline, |c| {
                Box::pin(async move {
                    let got: Option<Option<i64>> =
                        c.exec_first("SELECT GET_LOCK(?, 0)", (n,)).await?;
                    Ok((got.flatten() == Some(1), ()))
                })
            })
            .await
            .map_err(|e| my_error(table, None, &e))?;
        Ok(got.map(|(l, ())| l))
    }

    /// Runs `f`, a statement that takes lock `name` if it is free (and says whether it did),
    /// on a shared connection. `None` when another session holds the lock. If `f` fails, the
    /// lock is released (it may have been taken before the failure).
    pub async fn try_with<T>(
        &self,
        name: &str,
        deadline: Option<Instant>,
        f: impl for<'c> FnOnce(&'c mut Conn) -> Reply<'c, (bool, T)>,
    ) -> std::result::Result<Option<(SlotLock, T)>, mysql_async::Error> {
        let (slot, mut st) = self.pick(name).await;
        if st.conn.is_none() {
            let get = self.pool.get_conn();
            let conn = match deadline {
                Some(d) => tokio::time::timeout_at(tokio::time::Instant::from_std(d), get)
                    .await
                    .map_err(|_| timed_out_error())?,
                None => get.await,
            }?;
            st.conn = Some(conn);
            st.generation += 1;
        }
        st.holders += 1;
        let generation = st.generation;
        let got = match st.conn.as_mut() {
            Some(c) => f(c).await,
            None => Err(closed()),
        };
        match got {
            Ok((true, v)) => {
                drop(st);
                let mut recent = self.recent.lock();
                match recent.get_mut(name) {
                    Some((s, holders)) if Arc::ptr_eq(s, &slot) => *holders += 1,
                    _ => {
                        recent.insert(name.to_owned(), (slot.clone(), 1));
                    }
                }
                drop(recent);
                let lock = SlotLock {
                    slot: Some(slot),
                    generation,
                    name: name.to_owned(),
                    recent: self.recent.clone(),
                };
                Ok(Some((lock, v)))
            }
            Ok((false, _)) => {
                st.leave();
                Ok(None)
            }
            Err(e) => {
                if is_connection_lost(&e) {
                    st.lost();
                } else if let Some(c) = st.conn.as_mut() {
                    if c.exec_drop("DO RELEASE_LOCK(?)", (name,)).await.is_err() {
                        // Closing the session frees its locks on the server.
                        if let Some(c) = st.conn.take() {
                            let _ = c.disconnect().await;
                        }
                        st.generation += 1;
                    }
                }
                st.leave();
                Err(e)
            }
        }
    }
}

/// The driver's error for a connection not had by the deadline (see `timed_out`).
fn timed_out_error() -> mysql_async::Error {
    mysql_async::Error::Other(Box::new(TimedOut))
}

/// No connection was free by the operation's deadline.
#[derive(Debug)]
pub struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no connection was free by the lock timeout")
    }
}

impl std::error::Error for TimedOut {}

/// A key's lock held on a shared connection; unlocked when dropped.
pub struct SlotLock {
    slot: Option<Arc<Slot>>,
    generation: u64,
    name: String,
    recent: Recent,
}

impl SlotLock {
    /// Runs `f` on the connection that holds the lock, in turn with its other holders; fails
    /// if that connection was lost (the lock with it).
    pub async fn run<T>(
        &self,
        f: impl for<'c> FnOnce(&'c mut Conn) -> Reply<'c, T>,
    ) -> std::result::Result<T, mysql_async::Error> {
        let Some(slot) = &self.slot else {
            return Err(closed());
        };
        let mut st = slot.state.lock().await;
        if st.generation != self.generation {
            return Err(closed());
        }
        let Some(conn) = st.conn.as_mut() else {
            return Err(closed());
        };
        let r = f(conn).await;
        if matches!(&r, Err(e) if is_connection_lost(e)) {
            st.lost();
        }
        r
    }

    pub async fn unlock(mut self) {
        if let Some(slot) = self.slot.take() {
            let name = std::mem::take(&mut self.name);
            release(slot, self.generation, name, self.recent.clone()).await;
        }
    }
}

impl Drop for SlotLock {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            detach(release(
                slot,
                self.generation,
                std::mem::take(&mut self.name),
                self.recent.clone(),
            ));
        }
    }
}

async fn release(slot: Arc<Slot>, generation: u64, name: String, recent: Recent) {
    let mut st = slot.state.lock().await;
    if st.generation == generation {
        if let Some(conn) = st.conn.as_mut() {
            if conn
                .exec_drop("DO RELEASE_LOCK(?)", (name.as_str(),))
                .await
                .is_err()
            {
                // Closing the session frees its locks on the server.
                if let Some(conn) = st.conn.take() {
                    let _ = conn.disconnect().await;
                }
                st.generation += 1;
            }
        }
    }
    st.leave();
    let mut recent = recent.lock();
    if let Some((s, holders)) = recent.get_mut(&name) {
        if Arc::ptr_eq(s, &slot) {
            *holders -= 1;
            if *holders == 0 {
                recent.remove(&name);
            }
        }
    }
}
