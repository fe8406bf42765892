//! The one trait every storage engine implements, and its contract. The store (`store.rs`)
//! owns ordering, in-process locking and the update algorithm; a backend only stores JSON text
//! and, where several processes share the data, locks keys against the other processes.
//!
//! The contract (checked for every engine by `backends::contract_tests`):
//! - **Threads.** Every method is called on the executor's thread. Work of microseconds
//!   (memory, a file append, a SQLite statement) is done inline, the future ready at its first
//!   poll; work that blocks (fsync, another process's lock, the network) parks on
//!   [`crate::runtime::executor`] and never blocks the thread.
//! - **Keys.** Keys reach the backend valid (`core::key`) and are stored as themselves; a key
//!   the engine cannot hold as itself is refused by [`Backend::check_key`], never escaped.
//! - **One holder per key per store.** The store calls [`Backend::lock`] only while it holds
//!   the key's in-process lock, so a backend never sees two holders of one key from one store;
//!   across stores, threads, processes and servers, `lock` excludes every other holder.
//! - **Locking.** `lock` may take the cross-process lock at once or defer it to the first
//!   [`HeldKey::read`] or [`HeldKey::finish`], to send it with that statement; either way the
//!   key is held from the first of those until `finish` ends or the [`HeldKey`] is dropped.
//!   A wait for another holder gives up at the operation's [`Deadline`] with `LockTimeout`,
//!   holding nothing, and leaving nothing (a thread, a server-side request) that could take
//!   the key later.
//! - **Reads.** [`HeldKey::read`] sees the last value committed by any holder before this one;
//!   [`Backend::get`] and [`Backend::list`] see committed values without taking locks.
//! - **Writes.** [`HeldKey::finish`] applies its change durably to the configured level, then
//!   releases the key; on error nothing was applied. A `HeldKey` dropped without `finish`
//!   (an updater threw, its task was dropped) writes nothing and releases the key.
//! - **Fast paths.** [`Backend::get_now`] and [`Backend::write_now`] either do exactly what
//!   the queued operation would do, completely and at once, or return `None` having changed
//!   nothing; they never wait.
//! - **Closing.** [`Backend::close`] is called once, when no operation is pending; afterwards
//!   the store rejects everything before it reaches the backend. Dropping a backend without
//!   `close` (its thread's env ended) releases its files, locks and connections.

use super::deadline::Deadline;
use super::error::Result;

/// What an operation does to a key once it holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to write (an updater returned `undefined`).
    Keep,
    /// Store this JSON text.
    Put(String),
    /// Remove the key (a missing key is not an error).
    Delete,
}

impl Change {
    /// The change with its text borrowed; `None` for [`Change::Keep`].
    pub fn as_write(&self) -> Option<Write<'_>> {
        match self {
            Change::Keep => None,
            Change::Put(json) => Some(Write::Put(json)),
            Change::Delete => Some(Write::Delete),
        }
    }
}

/// A write with its text borrowed (see [`Backend::write_now`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write<'a> {
    /// Store this JSON text.
    Put(&'a str),
    /// Remove the key (a missing key is not an error).
    Delete,
}

/// A storage engine. Values are JSON text; keys are already validated.
#[allow(async_fn_in_trait)] // the executor is single-threaded: no `Send` bound is wanted
pub trait Backend: 'static {
    type Held: HeldKey;

    /// Takes `key`'s lock against other processes and servers. The store already holds the
    /// key's in-process lock, so a backend never sees two holders of one key from one store.
    /// Backends without other processes return at once.
    ///
    /// A wait for another holder gives up at `deadline` (the `lockTimeout` option; read
    /// [`Deadline::instant`] when the wait starts) with `LockTimeout`, holding nothing: the key
    /// is free for others at once, and nothing left behind (a thread, a session) may take it
    /// later. A backend may defer taking the lock to [`HeldKey::read`] or [`HeldKey::finish`]
    /// (to save a round trip); the same deadline then applies there.
    async fn lock(&self, key: &str, deadline: &Deadline) -> Result<Self::Held>;

    /// The last committed value of `key`, without taking its lock.
    async fn get(&self, key: &str) -> Result<Option<String>>;

    /// [`Backend::get`] answered at once, for engines that can do so without waiting: hands
    /// `read` the value, borrowed (no copy), and returns what `read` returns. `None` when it
    /// cannot answer at once (not open yet, a lock to wait for, a remote server); then it has
    /// changed nothing, and the store calls [`Backend::get`]. The default never answers.
    fn get_now<R>(&self, key: &str, read: impl FnOnce(Option<&str>) -> R) -> Option<Result<R>> {
        let _ = (key, read);
        None
    }

    /// [`Backend::lock`] then [`HeldKey::finish`] with `write`, done at once for engines that
    /// can do so without waiting: takes the key's lock against other processes, applies the
    /// write durably to the configured level, releases the lock. `None` when it cannot (not
    /// open yet, another process holds the key, a write that must wait for a lock or a flush);
    /// then it has changed nothing, and the store takes the usual path. The default never does.
    fn write_now(&self, key: &str, write: Write<'_>) -> Option<Result<()>> {
        let _ = (key, write);
        None
    }

    /// Keys starting with `prefix`, sorted by Unicode code point (= UTF-8 byte order).
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Refuses a key (already valid by `core::key`) that this engine cannot hold as itself, with
    /// `InvalidKey` saying why (PostgreSQL text cannot hold NUL). A key must never be
    /// escaped into another one. Called for every operation, before it is queued. The default
    /// accepts every key.
    fn check_key(&self, key: &str) -> Result<()> {
        let _ = key;
        Ok(())
    }

    /// [`Backend::check_key`] for a `list` prefix.
    fn check_prefix(&self, prefix: &str) -> Result<()> {
        let _ = prefix;
        Ok(())
    }

    /// Flushes and releases files, locks and connections. Called once, when no operation is
    /// pending; later calls never reach the backend.
    async fn close(&self) -> Result<()>;
}

/// A key locked by [`Backend::lock`]. Dropping it without [`HeldKey::finish`] releases the lock
/// and writes nothing.
#[allow(async_fn_in_trait)]
pub trait HeldKey {
    /// The current value, as seen under the lock.
    async fn read(&mut self, key: &str) -> Result<Option<String>>;

    /// Applies `change`, makes it durable to the configured level, then releases the lock.
    /// On error nothing was applied.
    async fn finish(self, key: &str, change: Change) -> Result<()>;
}
