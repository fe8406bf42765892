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

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, Pool};
use tokio::sync::Mutex;

use super::error::{is_connection_lost, my_error};
use super::locked::connection;
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
    state: Mutex<State>,
}

/// The shared connections of one store.
pub struct Slots {
    pool: Pool,
    slots: Vec<Arc<Slot>>,
    next: AtomicUsize,
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
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Takes lock `name` on a shared connection if it is free right now; `None` when another
    /// session holds it.
    pub async fn try_lock(
        &self,
        name: &str,
        deadline: Option<Instant>,
        table: &str,
    ) -> Result<Option<SlotLock>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = self.slots[i].clone();
        let mut st = slot.state.lock().await;
        if st.conn.is_none() {
            st.conn = Some(connection(&self.pool, deadline, table).await?);
            st.generation += 1;
        }
        st.holders += 1;
        let generation = st.generation;
        let got: std::result::Result<Option<Option<i64>>, _> = match st.conn.as_mut() {
            Some(c) => c.exec_first("SELECT GET_LOCK(?, 0)", (name,)).await,
            None => Err(closed()),
        };
        match got {
            Ok(v) if v.flatten() == Some(1) => {
                drop(st);
                Ok(Some(SlotLock {
                    slot: Some(slot),
                    generation,
                    name: name.to_owned(),
                }))
            }
            Ok(_) => {
                st.leave();
                Ok(None)
            }
            Err(e) => {
                if is_connection_lost(&e) {
                    st.lost();
                }
                st.leave();
                Err(my_error(table, None, &e))
            }
        }
    }
}

/// A key's lock held on a shared connection; unlocked when dropped.
pub struct SlotLock {
    slot: Option<Arc<Slot>>,
    generation: u64,
    name: String,
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
            release(slot, self.generation, std::mem::take(&mut self.name)).await;
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
            ));
        }
    }
}

async fn release(slot: Arc<Slot>, generation: u64, name: String) {
    let mut st = slot.state.lock().await;
    if st.generation == generation {
        if let Some(conn) = st.conn.as_mut() {
            if conn.exec_drop("DO RELEASE_LOCK(?)", (name,)).await.is_err() {
                // Closing the session frees its locks on the server.
                if let Some(conn) = st.conn.take() {
                    let _ = conn.disconnect().await;
                }
                st.generation += 1;
            }
        }
    }
    st.leave();
}
