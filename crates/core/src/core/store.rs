//! The store: the operations of the README's API and Semantics sections, written once, over any [`Backend`].
//!
//! Every operation takes its place synchronously, when it is called: it registers with the
//! store's activity (so `close` and `list` can wait for it) and joins its key's FIFO queue.
//! So on one store an operation sees every write to its key called before it, awaited or not.
//!
//! Waiting never hangs silently where it can be avoided:
//! - While an updater's synchronous part runs (the JS function call itself), its key is on the
//!   store's `calling` stack; an operation on that key (or `list`/`close`, which would wait for
//!   the update too) called from there is rejected at once with `Reentrant`. The part of an
//!   async updater that runs after an `await` cannot be told apart from any other caller, so
//!   it is not detected; for that, the `lock_timeout` option bounds every wait of an
//!   operation for its key — its turn here, then the key's lock in other threads, processes
//!   and servers ([`Backend::lock`] gets the same [`Deadline`]) — and `list`'s wait for
//!   earlier writes (`LockTimeout`, the waiter leaves the queue, the others keep their order,
//!   nothing stays held). `close` waits for everything pending, without a limit.
//! - The uncontended path pays one `RefCell` emptiness check and one `Option` check.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use super::backend::{Backend, Change, HeldKey, StoredText, Write};
use super::deadline::Deadline;
use super::error::{DatastoreError, Result};
use super::json;
use super::key::validate_key;
use super::key_list::KeyList;
use super::lock_table::{Acquire, KeyGuard, LockTable};

/// A key's place in this store's queue, as a bulk call takes it.
type Turn = (Rc<str>, Acquire);
use super::updater::{UpdateError, Updater};
use crate::runtime::executor::Executor;
use crate::runtime::timer::{with_deadline, Sleep};
use crate::runtime::wait_list::WaitList;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Open,
    Closing,
    Closed,
}

/// Operations in flight, for `close` (waits for all) and `list` (waits for earlier writes).
#[derive(Default)]
struct Activity {
    pending: Cell<usize>,
    next_write: Cell<u64>,
    writes: RefCell<BTreeSet<u64>>,
    /// Woken whenever an operation ends, and when the store is closed.
    waiters: WaitList,
}

struct Ticket {
    activity: Rc<Activity>,
    write: Option<u64>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let a = &self.activity;
        a.pending.set(a.pending.get() - 1);
        if let Some(seq) = self.write {
            a.writes.borrow_mut().remove(&seq);
        }
        a.waiters.wake_all();
    }
}

impl Activity {
    fn begin(self: &Rc<Self>, is_write: bool) -> Ticket {
        self.pending.set(self.pending.get() + 1);
        let write = is_write.then(|| {
            let seq = self.next_write.get();
            self.next_write.set(seq + 1);
            self.writes.borrow_mut().insert(seq);
            seq
        });
        Ticket {
            activity: self.clone(),
            write,
        }
    }

    /// Resolves once `done()` holds, re-checking whenever an operation ends.
    fn wait_until(
        self: &Rc<Self>,
        done: impl Fn(&Activity) -> bool + 'static,
    ) -> impl Future<Output = ()> + 'static {
        let activity = self.clone();
        async move { activity.waiters.until(|| done(&activity)).await }
    }
}

/// Settings every backend shares (read once by the binding, see `js::adapter`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long an operation may wait for its key (its turn here, and the key's lock in other
    /// threads, processes and servers) before it rejects with `LockTimeout`. `None` (the default): as long as it takes — an updater may legitimately
    /// run for minutes (remote APIs), and a queue of them longer still.
    pub lock_timeout: Option<Duration>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Inner<B> {
    backend: B,
    locks: Rc<LockTable>,
    activity: Rc<Activity>,
    state: Cell<State>,
    options: StoreOptions,
    /// Keys whose updater's synchronous part is running now, innermost last (an updater may
    /// synchronously start an update of another key, whose updater then runs inline).
    calling: RefCell<Vec<Rc<str>>>,
    /// Whether the background purge of expired keys runs (see [`Store::written`]).
    purging: Cell<bool>,
    /// An expiring write came while the purge ran: the next expiry it waits for may no longer
    /// be the soonest, so it asks the backend again at its next wake-up.
    purge_recheck: Cell<bool>,
    /// Whether a write has started the purge once: expiring keys may be in the store already,
    /// written before it opened or by another process.
    purge_checked: Cell<bool>,
}

impl<B> Inner<B> {
    /// `Reentrant` if `key` (or, for `None`, any key) has its updater running right now.
    fn check_reentry(&self, key: Option<&str>, operation: &'static str) -> Result<()> {
        let calling = self.calling.borrow();
        if calling.is_empty() {
            return Ok(());
        }
        let hit = match key {
            Some(key) => calling.iter().find(|k| &***k == key),
            None => calling.last(),
        };
        match hit {
            Some(k) => Err(DatastoreError::Reentrant {
                key: k.to_string(),
                operation,
            }),
            None => Ok(()),
        }
    }

    /// The deadline of an operation's waits (see [`Deadline`]).
    fn deadline(&self) -> Deadline {
        Deadline::after(self.options.lock_timeout)
    }

    /// The error of a wait for `key` that gave up at `deadline` (`key` empty: `list`'s wait).
    fn timed_out(deadline: &Deadline, key: &str) -> DatastoreError {
        DatastoreError::LockTimeout {
            key: key.to_owned(),
            waited_ms: deadline.limit().map_or(0, millis),
        }
    }

    /// Tells `held`, before its write, when another operation waits for `key`
    /// ([`HeldKey::next_waits`]).
    fn tell_if_waited(&self, key: &str, held: &mut impl HeldKey) {
        if self.locks.has_waiters(key) {
            held.next_waits();
        }
    }

    /// Waits for the key's turn, until `deadline`.
    async fn turn(&self, turn: Acquire, key: &str, deadline: &Deadline) -> Result<KeyGuard> {
        if self.options.lock_timeout.is_none() {
            return Ok(turn.await);
        }
        with_deadline(turn, deadline.instant())
            .await
            .map_err(|_| Self::timed_out(deadline, key))
    }

    /// A backend's error for a wait of `key`: a timeout is completed here with the limit.
    fn backend_error(deadline: &Deadline, key: &str, e: DatastoreError) -> DatastoreError {
        match e {
            DatastoreError::LockTimeout { .. } => Self::timed_out(deadline, key),
            other => other,
        }
    }
}

/// What [`Store::enter`] hands an operation: its registration, its place in the key's queue,
/// and the key.
type Entered = (Ticket, Acquire, Rc<str>);

/// A datastore over backend `B`. Cheap to clone (shared handle); single-threaded.
pub struct Store<B: Backend> {
    inner: Rc<Inner<B>>,
}

impl<B: Backend> Clone for Store<B> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
        }
    }
}

/// The result of `update`: the old and the new JSON text.
pub type UpdateResult<E> = std::result::Result<(Option<String>, Option<String>), UpdateError<E>>;

impl<B: Backend> Store<B> {
    pub fn new(backend: B) -> Self {
        Self::with_options(backend, StoreOptions::default())
    }

    pub fn with_options(backend: B, options: StoreOptions) -> Self {
        Store {
            inner: Rc::new(Inner {
                backend,
                locks: LockTable::new(),
                activity: Rc::default(),
                state: Cell::new(State::Open),
                options,
                calling: RefCell::new(Vec::new()),
                purging: Cell::new(false),
                purge_recheck: Cell::new(false),
                purge_checked: Cell::new(false),
            }),
        }
    }

    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// Keys whose in-process lock is held or awaited right now.
    pub fn held_keys(&self) -> usize {
        self.inner.locks.held_keys()
    }

    /// Validates, registers and queues an operation on `key`, in call order. The key is
    /// copied once, here; the lock table and the operation share that copy.
    fn enter(&self, key: &str, is_write: bool, operation: &'static str) -> Result<Entered> {
        validate_key(key)?;
        self.inner.backend.check_key(key)?;
        if self.inner.state.get() != State::Open {
            return Err(DatastoreError::Closed);
        }
        self.inner.check_reentry(Some(key), operation)?;
        let key: Rc<str> = key.into();
        Ok((
            self.inner.activity.begin(is_write),
            self.inner.locks.acquire(key.clone()),
            key,
        ))
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>>> + 'static {
        let entered = self.enter(key, false, "get");
        let inner = self.inner.clone();
        async move {
            let (_ticket, turn, key) = entered?;
            let _guard = inner.turn(turn, &key, &inner.deadline()).await?;
            inner.backend.get(&key).await
        }
    }

    /// [`Store::get`] answered synchronously when nothing has to wait: the store is open, no
    /// updater is running, no operation holds or awaits the key, and the backend can answer
    /// at once ([`Backend::get_now`]). Then `read` gets the value ([`StoredText`]), and its result is
    /// returned. Nothing else runs in between, so this is exactly a `get` that completes on
    /// its first poll, without queueing. `None`: call [`Store::get`], which queues as usual
    /// (and reports invalid keys, a closed store and reentry).
    pub fn get_now<R>(
        &self,
        key: &str,
        read: impl FnOnce(Option<StoredText<'_>>) -> R,
    ) -> Option<Result<R>> {
        if !self.is_free(key) {
            return None;
        }
        self.inner.backend.get_now(key, read)
    }

    /// [`Store::set`] done synchronously when nothing has to wait: the store is open, no
    /// updater is running, no operation holds or awaits the key, and the backend can lock and
    /// write at once ([`Backend::write_now`]). Nothing else runs in between, so this is exactly
    /// a `set` that completes on its first poll, without queueing; as it is over before the
    /// call returns, no `list` or `close` can be waiting for it. `None`: call [`Store::set`].
    pub fn set_now(&self, key: &str, json: &str, ttl: Option<Duration>) -> Option<Result<()>> {
        if !self.is_free(key) {
            return None;
        }
        let write = match ttl {
            Some(ttl) => Write::PutFor(json, ttl),
            None => Write::Put(json),
        };
        let done = self.inner.backend.write_now(key, write)?;
        if done.is_ok() {
            self.written(ttl.is_some());
        }
        Some(done)
    }

    /// [`Store::remove`] done synchronously when nothing has to wait (see [`Store::set_now`]).
    pub fn remove_now(&self, key: &str) -> Option<Result<()>> {
        if !self.is_free(key) {
            return None;
        }
        self.inner.backend.write_now(key, Write::Delete)
    }

    /// Whether an operation on `key` may skip the queue: the key is valid, the store open, no
    /// updater running (reentry is for the queued path to detect), and the key neither held
    /// nor awaited.
    fn is_free(&self, key: &str) -> bool {
        let inner = &self.inner;
        validate_key(key).is_ok()
            && inner.backend.check_key(key).is_ok()
            && inner.state.get() == State::Open
            && inner.calling.borrow().is_empty()
            && !inner.locks.is_held(key)
    }

    /// Stores `json` under `key`.
    pub fn set(&self, key: &str, json: String) -> impl Future<Output = Result<()>> + 'static {
        self.set_expiring(key, json, None)
    }

    /// Stores `json` under `key`, expiring after `ttl` when one is given (see `core::expiry`).
    pub fn set_expiring(
        &self,
        key: &str,
        json: String,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + 'static {
        self.write(key, Change::put(json, ttl), "set")
    }

    /// Removes `key`; a missing key is not an error.
    pub fn remove(&self, key: &str) -> impl Future<Output = Result<()>> + 'static {
        self.write(key, Change::Delete, "remove")
    }

    fn write(
        &self,
        key: &str,
        change: Change,
        operation: &'static str,
    ) -> impl Future<Output = Result<()>> + 'static {
        let entered = self.enter(key, true, operation);
        let store = self.clone();
        async move {
            let inner = &store.inner;
            let (_ticket, turn, key) = entered?;
            let deadline = inner.deadline();
            let _guard = inner.turn(turn, &key, &deadline).await?;
            let fix = |e| Inner::<B>::backend_error(&deadline, &key, e);
            let mut held = inner.backend.lock(&key, &deadline).await.map_err(fix)?;
            let expiring = matches!(change, Change::PutFor(..));
            inner.tell_if_waited(&key, &mut held);
            held.finish(&key, change).await.map_err(fix)?;
            store.written(expiring);
            Ok(())
        }
    }

    /// The update algorithm (README, Semantics: update): lock the key here and in other processes, read, call
    /// the updater, write its result unless it is `None`, unlock. An updater error writes
    /// nothing and releases the lock (the guards drop).
    pub fn update<U: Updater>(
        &self,
        key: &str,
        updater: U,
    ) -> impl Future<Output = UpdateResult<U::Error>> + 'static {
        self.update_expiring(key, updater, None)
    }

    /// [`Store::update`] whose new value, if any, expires after `ttl` when one is given.
    pub fn update_expiring<U: Updater>(
        &self,
        key: &str,
        updater: U,
        ttl: Option<Duration>,
    ) -> impl Future<Output = UpdateResult<U::Error>> + 'static {
        let entered = self.enter(key, true, "update");
        let store = self.clone();
        async move {
            let inner = &store.inner;
            let (_ticket, turn, key) = entered?;
            let deadline = inner.deadline();
            let _guard = inner.turn(turn, &key, &deadline).await?;
            let fix = |e| Inner::<B>::backend_error(&deadline, &key, e);
            let mut held = inner.backend.lock(&key, &deadline).await.map_err(fix)?;
            let old = held.read(&key).await.map_err(fix)?;
            inner.calling.borrow_mut().push(key.clone());
            let call = updater.call(old.as_deref());
            inner.calling.borrow_mut().pop();
            let new = call.await?;
            let change = match &new {
                Some(json) => Change::put(json.clone(), ttl),
                None => Change::Keep,
            };
            let expiring = matches!(change, Change::PutFor(..));
            inner.tell_if_waited(&key, &mut held);
            held.finish(&key, change).await.map_err(fix)?;
            store.written(expiring);
            Ok((old, new))
        }
    }

    /// Validates and queues an operation on several keys (`keys`, in any order, duplicates
    /// allowed), in call order: one registration, and a place in each distinct key's queue.
    /// Returns the distinct keys sorted, with their turns.
    fn enter_many(
        &self,
        keys: &[String],
        is_write: bool,
        operation: &'static str,
    ) -> Result<(Ticket, Vec<Turn>)> {
        let inner = &self.inner;
        for key in keys {
            validate_key(key)?;
            inner.backend.check_key(key)?;
        }
        if inner.state.get() != State::Open {
            return Err(DatastoreError::Closed);
        }
        let mut distinct: Vec<&str> = keys.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        for key in &distinct {
            inner.check_reentry(Some(key), operation)?;
        }
        let turns = distinct
            .into_iter()
            .map(|k| {
                let key: Rc<str> = k.into();
                (key.clone(), inner.locks.acquire(key))
            })
            .collect();
        Ok((inner.activity.begin(is_write), turns))
    }

    /// The values of `keys`, in their order (`None`: missing), as one snapshot: after every
    /// write of these keys called before, with no write landing between two of the reads.
    pub fn get_many(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Result<Vec<Option<String>>>> + 'static {
        let entered = self.enter_many(&keys, false, "getMany");
        let inner = self.inner.clone();
        async move {
            let (_ticket, turns) = entered?;
            let deadline = inner.deadline();
            let mut guards = Vec::with_capacity(turns.len());
            for (key, turn) in turns {
                guards.push(inner.turn(turn, &key, &deadline).await?);
            }
            let keys: Vec<Rc<str>> = keys.iter().map(|k| Rc::from(k.as_str())).collect();
            inner.backend.get_many(&keys).await
        }
    }

    /// Applies `changes` to `keys` (same order) all or nothing, holding every key's lock here
    /// and in other processes (taken in key order, so two such calls never deadlock). A key
    /// given twice takes its last change.
    pub fn write_many(
        &self,
        keys: Vec<String>,
        changes: Vec<Change>,
        operation: &'static str,
    ) -> impl Future<Output = Result<()>> + 'static {
        let entered = self.enter_many(&keys, true, operation);
        let store = self.clone();
        async move {
            let inner = &store.inner;
            let (_ticket, turns) = entered?;
            let mut last: std::collections::HashMap<&str, Change> =
                keys.iter().map(String::as_str).zip(changes).collect();
            let deadline = inner.deadline();
            let mut guards = Vec::with_capacity(turns.len());
            let mut sorted = Vec::with_capacity(turns.len());
            let mut ordered = Vec::with_capacity(turns.len());
            for (key, turn) in turns {
                guards.push(inner.turn(turn, &key, &deadline).await?);
                ordered.push(last.remove(&*key).unwrap_or(Change::Keep));
                sorted.push(key);
            }
            // A lock wait that gave up, in either step, names its key and the limit.
            let first: Rc<str> = sorted.first().cloned().unwrap_or_else(|| "".into());
            let fix = |e: DatastoreError| match e.for_key(&first) {
                DatastoreError::LockTimeout { key, .. } => Inner::<B>::timed_out(&deadline, &key),
                other => other,
            };
            let held = inner
                .backend
                .lock_many(&sorted, &deadline)
                .await
                .map_err(fix)?;
            let held = sorted.into_iter().zip(held).collect();
            let expiring = ordered.iter().any(|c| matches!(c, Change::PutFor(..)));
            inner
                .backend
                .finish_many(held, ordered)
                .await
                .map_err(fix)?;
            store.written(expiring);
            Ok(())
        }
    }

    /// One page of keys: up to `limit` starting with `prefix` and sorting strictly after
    /// `after`, after every write called before (see [`Backend::list_page`]).
    pub fn list_page(
        &self,
        prefix: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>>> + 'static {
        let inner = self.inner.clone();
        let checked = inner.backend.check_prefix(prefix);
        let prefix = prefix.to_owned();
        self.after_writes_named(
            async move {
                checked?;
                inner
                    .backend
                    .list_page(&prefix, after.as_deref(), limit)
                    .await
            },
            "keys",
        )
    }

    /// [`Backend::pages_walk_every_key`]: whether a walk of many pages should list once.
    pub fn pages_walk_every_key(&self) -> bool {
        self.inner.backend.pages_walk_every_key()
    }

    /// [`Store::list_page`] with the values.
    pub fn entries_page(
        &self,
        prefix: &str,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, String)>>> + 'static {
        let inner = self.inner.clone();
        let checked = inner.backend.check_prefix(prefix);
        let prefix = prefix.to_owned();
        self.after_writes_named(
            async move {
                checked?;
                let page = inner
                    .backend
                    .entries_page(&prefix, after.as_deref(), limit)
                    .await?;
                // The binding splices the values into one JSON text: a value that is not one
                // JSON value (another program wrote it) would break that text or, worse, add
                // entries of its own. It rejects the page, as `get` of that key rejects.
                match page.iter().find(|(_, value)| !json::is_json(value)) {
                    Some((key, _)) => Err(DatastoreError::value_not_json(key)),
                    None => Ok(page),
                }
            },
            "entries",
        )
    }

    /// A value was written (`expiring`: with a time to live): starts the purge when it may have
    /// work — after an expiring write, and once after the store's first write
    /// ([`Backend::first_purge_delay`] later).
    fn written(&self, expiring: bool) {
        if expiring {
            self.start_purge(Duration::ZERO);
        } else if !self.inner.purge_checked.replace(true) {
            self.start_purge(self.inner.backend.first_purge_delay());
        }
    }

    /// Makes sure the background purge of expired keys runs. It sleeps without keeping the
    /// host alive, wakes at least every second while the backend knows of keys to expire (a
    /// later write may expire sooner than the one it waits for), and ends when none are left
    /// or with the store.
    fn start_purge(&self, delay: Duration) {
        let inner = &self.inner;
        if inner.purging.replace(true) {
            // Its next expiry was read before this write (perhaps while the write was in
            // flight): it reads it again within a second.
            inner.purge_recheck.set(true);
            return;
        }
        let Some(exec) = Executor::current() else {
            inner.purging.set(false);
            return;
        };
        let weak = Rc::downgrade(inner);
        exec.start(async move {
            let mut next = SystemTime::now() + delay;
            loop {
                let wait = next
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .min(Duration::from_secs(1));
                Sleep::background(Instant::now() + wait).await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.state.get() != State::Open {
                    inner.purging.set(false);
                    return;
                }
                if inner.purge_recheck.replace(false) {
                    next = SystemTime::now();
                }
                if SystemTime::now() < next {
                    continue;
                }
                match inner.backend.purge_expired().await {
                    Ok(Some(at)) => next = at,
                    Ok(None) => {
                        inner.purging.set(false);
                        return;
                    }
                    // Reads leave expired keys out meanwhile; try again a little later.
                    Err(_) => next = SystemTime::now() + Duration::from_secs(5),
                }
            }
        });
    }

    /// Keys starting with `prefix`, sorted by code point, after every write called before.
    pub fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + 'static {
        let keys = self.list_keys(prefix);
        async move { Ok(keys.await?.to_vec()) }
    }

    /// [`Store::list`] as a [`KeyList`] (see [`Backend::list_keys`]).
    pub fn list_keys(&self, prefix: &str) -> impl Future<Output = Result<KeyList>> + 'static {
        let inner = self.inner.clone();
        let checked = inner.backend.check_prefix(prefix);
        let prefix = prefix.to_owned();
        self.after_writes_named(
            async move {
                checked?;
                inner.backend.list_keys(&prefix).await
            },
            "list",
        )
    }

    /// Runs `op` — backend maintenance such as a compaction — once every write called before
    /// it has finished; `close` waits for it. Rejects with `Closed` once the store is closing.
    /// Called from an updater of this store, it rejects with `Reentrant` (it would wait for it).
    pub fn after_writes<T: 'static>(
        &self,
        op: impl Future<Output = Result<T>> + 'static,
    ) -> impl Future<Output = Result<T>> + 'static {
        self.after_writes_named(op, "compact")
    }

    fn after_writes_named<T: 'static>(
        &self,
        op: impl Future<Output = Result<T>> + 'static,
        operation: &'static str,
    ) -> impl Future<Output = Result<T>> + 'static {
        let open = self.inner.state.get() == State::Open;
        let reentry = self.inner.check_reentry(None, operation);
        let inner = self.inner.clone();
        let ticket = (open && reentry.is_ok()).then(|| inner.activity.begin(false));
        let barrier = inner.activity.next_write.get();
        async move {
            let Some(_ticket) = ticket else {
                reentry?;
                return Err(DatastoreError::Closed);
            };
            let earlier_done = inner
                .activity
                .wait_until(move |a| a.writes.borrow().first().is_none_or(|&s| s >= barrier));
            match inner.options.lock_timeout {
                None => earlier_done.await,
                Some(_) => {
                    let deadline = inner.deadline();
                    with_deadline(Box::pin(earlier_done), deadline.instant())
                        .await
                        .map_err(|_| Inner::<B>::timed_out(&deadline, ""))?
                }
            }
            op.await
        }
    }

    /// Waits for pending operations, then closes the backend. Operations called from now on
    /// reject with `Closed`; closing again resolves once the first close is done. Called from
    /// an updater of this store, it rejects with `Reentrant` and changes nothing.
    pub fn close(&self) -> impl Future<Output = Result<()>> + 'static {
        let inner = self.inner.clone();
        let reentry = inner.check_reentry(None, "close");
        let first = inner.state.get() == State::Open && reentry.is_ok();
        if first {
            inner.state.set(State::Closing);
        }
        async move {
            reentry?;
            let activity = inner.activity.clone();
            activity.wait_until(|a| a.pending.get() == 0).await;
            if first {
                let result = inner.backend.close().await;
                inner.state.set(State::Closed);
                activity.waiters.wake_all();
                result
            } else {
                let closed = || inner.state.get() == State::Closed;
                activity.waiters.until(closed).await;
                Ok(())
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.state.get() != State::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::memory::MemoryBackend;
    use crate::runtime::executor::{block_on, oneshot, Executor, Receiver};

    /// Returns `"1"` once its receiver fires.
    struct Wait(Receiver<()>);

    impl Updater for Wait {
        type Error = ();
        #[allow(clippy::manual_async_fn)] // the future must not borrow `current`
        fn call(
            self,
            _: Option<&str>,
        ) -> impl Future<Output = std::result::Result<Option<String>, UpdateError<()>>> + 'static
        {
            async move {
                self.0.await;
                Ok(Some("1".to_owned()))
            }
        }
    }

    #[test]
    fn after_writes_waits_for_earlier_writes_and_close_waits_for_it() {
        block_on(async {
            let store = Store::new(MemoryBackend::new());
            let (tx, rx) = oneshot();
            let upd = store.update("k", Wait(rx));
            let view = store.clone();
            let op = store.after_writes(async move { view.backend().get("k").await });
            let seen = Rc::new(RefCell::new(None));
            let out = seen.clone();
            let exec = Executor::current().expect("executor");
            exec.spawn(async move { *out.borrow_mut() = Some(op.await) });
            exec.spawn(async move { upd.await.map(|_| ()).unwrap_or(()) });
            assert!(seen.borrow().is_none());
            tx.send(());
            store.close().await.expect("close");
            assert_eq!(*seen.borrow(), Some(Ok(Some("1".to_owned()))));
            assert_eq!(
                store.after_writes(async { Ok(()) }).await,
                Err(DatastoreError::Closed)
            );
        });
    }
}
