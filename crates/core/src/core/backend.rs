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

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use super::deadline::Deadline;
use super::error::{DatastoreError, Result};
use super::key_list::KeyList;

/// A value as [`Backend::get_now`] hands it to its reader.
pub enum StoredText<'a> {
    /// Borrowed from the engine: no copy.
    Borrowed(&'a str),
    /// A large value the engine cannot lend in one piece (SQLite assembles it from its pages
    /// into a buffer of its own): the reader copies it once, into a buffer of its choosing,
    /// instead of copying SQLite's copy.
    Large(&'a mut dyn LargeText),
}

impl StoredText<'_> {
    /// The text as an owned `String`.
    pub fn into_string(self) -> Result<String> {
        match self {
            StoredText::Borrowed(s) => Ok(s.to_owned()),
            StoredText::Large(large) => {
                let mut bytes = Vec::with_capacity(large.len());
                large.read_into(&mut bytes)?;
                // `read_into` appends checked UTF-8 only: this check never fails.
                String::from_utf8(bytes)
                    .map_err(|e| DatastoreError::backend(format!("stored text: {e}")))
            }
        }
    }
}

/// A large stored value, read straight into the reader's buffer ([`StoredText::Large`]).
pub trait LargeText {
    /// Its length in bytes.
    fn len(&self) -> usize;

    /// Whether it is empty (never, for a value worth this path).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends its [`LargeText::len`] bytes to `buf`, checked to be UTF-8; `Ok(true)` when
    /// they are all ASCII. On error `buf` holds no partial value (it is left as it was).
    fn read_into(&mut self, buf: &mut Vec<u8>) -> Result<bool>;
}

/// What an operation does to a key once it holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to write (an updater returned `undefined`).
    Keep,
    /// Store this JSON text, with no expiry (an earlier one is cleared).
    Put(String),
    /// Store this JSON text, expiring this long after the write (see `core::expiry`).
    PutFor(String, Duration),
    /// Remove the key (a missing key is not an error).
    Delete,
}

impl Change {
    /// The change with its text borrowed; `None` for [`Change::Keep`].
    pub fn as_write(&self) -> Option<Write<'_>> {
        match self {
            Change::Keep => None,
            Change::Put(json) => Some(Write::Put(json)),
            Change::PutFor(json, ttl) => Some(Write::PutFor(json, *ttl)),
            Change::Delete => Some(Write::Delete),
        }
    }

    /// A put of `json`, expiring after `ttl` when one is given.
    pub fn put(json: String, ttl: Option<Duration>) -> Change {
        match ttl {
            Some(ttl) => Change::PutFor(json, ttl),
            None => Change::Put(json),
        }
    }
}

/// A write with its text borrowed (see [`Backend::write_now`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write<'a> {
    /// Store this JSON text, with no expiry.
    Put(&'a str),
    /// Store this JSON text, expiring this long after the write.
    PutFor(&'a str, Duration),
    /// Remove the key (a missing key is not an error).
    Delete,
}

impl Write<'_> {
    /// The change this write makes, owned.
    pub fn to_change(self) -> Change {
        match self {
            Write::Put(json) => Change::Put(json.to_owned()),
            Write::PutFor(json, ttl) => Change::PutFor(json.to_owned(), ttl),
            Write::Delete => Change::Delete,
        }
    }
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

    /// [`Backend::lock`] for every key of one [`Backend::finish_many`] call (`keys` distinct,
    /// sorted), in the same order: the store holds their in-process locks already. Whatever
    /// order a backend takes them in across processes, every call of every process must take
    /// them in that order, so two calls never deadlock. A `LockTimeout` names the key waited
    /// for, as one from [`Backend::finish_many`] should (else the store names the first). The
    /// default locks them one by one, in the order given.
    async fn lock_many(&self, keys: &[Rc<str>], deadline: &Deadline) -> Result<Vec<Self::Held>> {
        let mut held = Vec::with_capacity(keys.len());
        for key in keys {
            held.push(self.lock(key, deadline).await.map_err(|e| e.for_key(key))?);
        }
        Ok(held)
    }

    /// The last committed value of `key`, without taking its lock.
    async fn get(&self, key: &str) -> Result<Option<String>>;

    /// [`Backend::get`] answered at once, for engines that can do so without waiting: hands
    /// `read` the value — borrowed, or for a large value maybe as a [`LargeText`] to copy
    /// once — and returns what `read` returns. `None` when it cannot answer at once (not open
    /// yet, a lock to wait for, a remote server); then it has changed nothing, and the store
    /// calls [`Backend::get`]. The default never answers.
    fn get_now<R>(
        &self,
        key: &str,
        read: impl FnOnce(Option<StoredText<'_>>) -> R,
    ) -> Option<Result<R>> {
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

    /// Keys starting with `prefix`, sorted by Unicode code point (= UTF-8 byte order),
    /// gathered in a [`KeyList`], which `list()` hands to JS. An engine that reads its keys
    /// from borrowed memory pushes them without a `String` per key; one whose driver hands it
    /// owned keys collects them.
    async fn list_keys(&self, prefix: &str) -> Result<KeyList>;

    /// [`Backend::list_keys`] as separate strings, for callers that keep or cut the keys.
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.list_keys(prefix).await?.to_vec())
    }

    /// The values of `keys`, in their order (`None`: missing), read as one snapshot: no write
    /// of another holder lands between two of the reads. The default reads one by one, which
    /// is a snapshot for engines whose reads never wait (every write of this process is
    /// ordered by the store, and there are no other processes).
    async fn get_many(&self, keys: &[Rc<str>]) -> Result<Vec<Option<String>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

    /// Up to `limit` keys starting with `prefix` and sorting strictly after `after`, in code
    /// point order: one page of [`Backend::list`]. A key that exists throughout a walk of the
    /// pages is on exactly one of them. The default lists and cuts.
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let keys = self.list(prefix).await?;
        Ok(keys
            .into_iter()
            .filter(|k| after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .collect())
    }

    /// Whether every page of a listing costs a walk of all the engine's keys (an engine with
    /// no ordered index of keys, such as Redis, whose pages are each a `SCAN` of the database).
    /// Then a walk of many pages (`entries()`) lists the names once, with one
    /// [`Backend::list_page`] to the end, and reads them a batch at a time with
    /// [`Backend::get_many`], instead of asking for each page: one walk of the keys, not one
    /// per page. A key that exists throughout such a walk is still seen exactly once. The
    /// default: pages are cheap seeks of an ordered index.
    fn pages_walk_every_key(&self) -> bool {
        false
    }

    /// [`Backend::list_page`] with the values: up to `limit` entries. Fewer only at the end of
    /// the walk — the caller stops at a short page — so an engine that lists the keys first and
    /// reads them after must list on past a key that vanished in between. The default does
    /// that: it lists, reads the keys listed with [`Backend::get_many`], and lists again after
    /// the last key listed while the page is short of entries and the listing was not.
    async fn entries_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        let mut entries = Vec::new();
        let mut after = after.map(str::to_owned);
        while entries.len() < limit {
            let wanted = limit - entries.len();
            let keys = self.list_page(prefix, after.as_deref(), wanted).await?;
            let listing_ended = keys.len() < wanted;
            let names: Vec<Rc<str>> = keys.iter().map(|k| Rc::from(k.as_str())).collect();
            let values = self.get_many(&names).await?;
            after = keys.last().cloned();
            entries.extend(
                keys.into_iter()
                    .zip(values)
                    .filter_map(|(key, value)| Some((key, value?))),
            );
            if listing_ended {
                break;
            }
        }
        Ok(entries)
    }

    /// Applies `changes` to the keys of `held` (same order, distinct keys, each held), all or
    /// nothing, durably to the configured level, then releases them. The default finishes
    /// them one by one, which is all or nothing only for engines whose writes cannot fail
    /// half-way (memory); engines that can fail or crash in between override it with one
    /// transaction or one record.
    async fn finish_many(
        &self,
        held: Vec<(Rc<str>, Self::Held)>,
        changes: Vec<Change>,
    ) -> Result<()> {
        for ((key, h), change) in held.into_iter().zip(changes) {
            h.finish(&key, change).await?;
        }
        Ok(())
    }

    /// How long after the store's first write the purge first looks for keys that expired
    /// while the store was not open ([`Backend::purge_expired`]); an expiring write starts it at
    /// once. A backend on a server may wait until its first writes have given their connection
    /// back, so that this purge does not open one of its own. The default: at once.
    fn first_purge_delay(&self) -> Duration {
        Duration::ZERO
    }

    /// Removes the keys whose expiry passed (values written with a time to live), in the
    /// background; reads already leave them out. Returns when the next known expiry comes,
    /// for the store to purge again then (`None`: none known). Called on the executor's
    /// thread, never concurrently with itself. The default purges nothing.
    async fn purge_expired(&self) -> Result<Option<SystemTime>> {
        Ok(None)
    }

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

    /// Told before [`HeldKey::finish`] when another operation of this store waits for the key:
    /// the backend may keep the key locked after the write and hand the lock, with the value
    /// it wrote, to that operation's [`Backend::lock`] instead of releasing and taking it
    /// again. A backend that does must still release it soon if nothing comes for it, and
    /// must bound how long one lock is handed on, so other processes get their turn.
    /// Default: nothing.
    fn next_waits(&mut self) {}
}

/// The reader tests hand [`Backend::get_now`]: the value as an owned `String`.
#[cfg(test)]
pub(crate) fn owned(v: Option<StoredText<'_>>) -> Option<String> {
    v.map(|t| t.into_string().expect("a stored value reads"))
}
