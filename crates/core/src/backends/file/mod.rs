//! A store in one JSON file that reshuffle 1.0.9's FileStoreAdapter can read after `close()`
//! or `compact()`, written by appending one checksummed record per change (format: `format.rs`,
//! docs/file-format.md).
//!
//! Locking, across every process that opens the file (sidecar `<path>.lock`, see
//! [`ProcessLocks`]):
//! - a key's lock is held from [`Backend::lock`] until its change is durable;
//! - the store-wide lock, exclusive, is held for every change to the file itself: an append
//!   (microseconds, on the JS thread), the creation of the file, the rename of a compaction
//!   (`compact.rs`). Under it the end of the file is a record boundary or a torn record of a
//!   crashed writer, which is cut off before anything is appended.
//!
//! Readers never take the store-wide lock: before answering they apply the records added since
//! they last looked (the file grew) or reload (the path now names another file: a compaction).
//! An incomplete last record is skipped by readers (it may be another writer's append in
//! progress). Damage anywhere else, confirmed under the store-wide lock, poisons the store:
//! every later operation rejects with `Corrupt`, and this store never writes to the file again.

mod compact;
mod contents;
mod disk;
#[cfg(all(test, target_os = "linux"))]
mod faults;
pub(crate) mod format;
mod sync;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::backends::process_lock::{lock_path, Mode, ProcessLocks, RangeGuard};
use crate::core::expiry::now_ms;
use crate::core::lock_table::{KeyGuard, LockTable};
use crate::core::{
    Backend, Change, DatastoreError, Deadline, HeldKey, KeyList, Result, StoredText,
};
use crate::runtime::executor::{run_blocking, run_critical, start_thread};
use crate::runtime::wait_list::WaitList;

use contents::{Contents, Whole};
use disk::FileId;
use format::Op;
use sync::Syncer;

/// When a write has reached the level a caller waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// `write()` returned: the change survives the process being killed.
    #[default]
    Write,
    /// `fdatasync` returned: the change survives power loss.
    Fsync,
}

impl Durability {
    /// Parses the `durability` option.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "write" => Ok(Self::Write),
            "fsync" => Ok(Self::Fsync),
            other => Err(DatastoreError::invalid_argument(format!(
                "FileStoreAdapter: durability must be 'write' or 'fsync', got {other:?}"
            ))),
        }
    }
}

/// Options of [`FileBackend::new`].
#[derive(Clone, Debug, Default)]
pub struct FileOptions {
    pub durability: Durability,
    /// File size below which no background compaction starts (default 1 MiB); one starts
    /// once the file is also larger than twice the live data.
    pub compact_min_bytes: Option<u64>,
}

const DEFAULT_COMPACT_MIN: u64 = 1 << 20;

/// Data files at least this big load on another thread ([`Shared::load_ahead`]): smaller
/// ones read and parse here in well under a millisecond, quicker than the hand-over.
const LOAD_OFF_THREAD_MIN: u64 = 256 << 10;

/// Contents of more keys than this are freed on another thread when replaced.
const DROP_OFF_THREAD_MIN: usize = 10_000;

thread_local! {
    /// The one key of a store's `gate`, made once per thread.
    static STORE_LOCK: Rc<str> = Rc::from("store");
}

/// The data file as this process last saw it.
struct DataFile {
    file: Arc<File>,
    id: FileId,
    /// End of the records applied to the map: a record boundary.
    applied: u64,
    /// Where the base ends and records start.
    base_end: u64,
    /// A torn record was seen after `applied` and left in place (no store-wide lock to cut
    /// it). Its writer may have crashed, which moves no change count: until it is cut, the
    /// file must be looked at again, or an append would land after the torn bytes.
    torn: bool,
}

/// An open store: its lock file (opened by the first lock), its data file (absent until the
/// first write creates it) and the data as of `data.applied`.
struct Open {
    locks: Option<Rc<ProcessLocks>>,
    /// The lock file's change count when the data was last compared with the file.
    seen_changes: Option<u64>,
    data: Option<DataFile>,
    contents: Contents,
}

impl Open {
    /// Whether the file has records and is larger than both `min` and twice the live data.
    fn compaction_due(&self, min: u64) -> bool {
        self.data.as_ref().is_some_and(|d| {
            d.applied > d.base_end && d.applied > min.max(2 * self.contents.live_bytes)
        })
    }

    /// Installs a file read whole (by [`Whole::read`]); the old contents are dropped on
    /// another thread when they are big, as freeing them takes as long as building them.
    fn install(&mut self, whole: Whole, locked: bool) {
        let old = std::mem::replace(&mut self.contents, whole.contents);
        if old.map.len() > DROP_OFF_THREAD_MIN {
            let _ = start_thread("reshuffle-file-free", move || drop(old));
        }
        self.data = Some(DataFile {
            file: Arc::new(whole.file),
            id: whole.id,
            applied: whole.applied,
            base_end: whole.base_end,
            torn: whole.torn && !locked,
        });
    }
}

/// The open state's data is its [`Contents`]: `open.map`, `open.value(k)`, `open.apply(op)`.
impl std::ops::Deref for Open {
    type Target = Contents;
    fn deref(&self) -> &Contents {
        &self.contents
    }
}

impl std::ops::DerefMut for Open {
    fn deref_mut(&mut self) -> &mut Contents {
        &mut self.contents
    }
}

struct Shared {
    /// Absolute path of the data file as given.
    path: PathBuf,
    /// Where the data file really is: `path`, or the target of the symlink at `path` (a
    /// compaction renames over this, so a symlink stays one). Set by the first operation.
    resolved: OnceCell<PathBuf>,
    /// The path as the caller gave it, for messages.
    shown: String,
    options: FileOptions,
    open: RefCell<Option<Open>>,
    /// This process's turn at the store-wide lock, which `ProcessLocks` counts per process and
    /// so cannot make exclusive between two holders of one process: the in-process FIFO lock
    /// of one key, [`STORE_LOCK`].
    gate: Rc<LockTable>,
    syncer: Syncer,
    poisoned: RefCell<Option<DatastoreError>>,
    compaction_queued: Cell<bool>,
    /// Woken when a background compaction ends.
    compaction_waiters: WaitList,
    /// A [`Shared::load_ahead`] is reading the file; others wait on `load_waiters`.
    loading: Cell<bool>,
    load_waiters: WaitList,
    closed: Cell<bool>,
}

/// The file backend. Cheap to construct: nothing is opened until the first operation.
pub struct FileBackend {
    shared: Rc<Shared>,
}

impl FileBackend {
    pub fn new(path: &str, options: FileOptions) -> Result<Self> {
        if path.is_empty() || path.contains('\0') {
            return Err(DatastoreError::invalid_argument(
                "FileStoreAdapter(path): the path must be a non-empty string without NUL",
            ));
        }
        let absolute = std::path::absolute(path).map_err(|e| DatastoreError::io(path, e))?;
        Ok(FileBackend {
            shared: Rc::new(Shared {
                path: absolute,
                resolved: OnceCell::new(),
                shown: path.to_owned(),
                options,
                open: RefCell::new(None),
                gate: LockTable::new(),
                syncer: Syncer::default(),
                poisoned: RefCell::new(None),
                compaction_queued: Cell::new(false),
                compaction_waiters: WaitList::default(),
                loading: Cell::new(false),
                load_waiters: WaitList::default(),
                closed: Cell::new(false),
            }),
        })
    }

    /// Rewrites the file as one JSON object (atomically), if it holds any record. Resolves
    /// once done. `'static`, so a caller can queue it behind other operations.
    pub fn compact(&self) -> impl Future<Output = Result<()>> + 'static {
        let shared = self.shared.clone();
        async move { shared.compact().await }
    }
}

impl Shared {
    fn io(&self, e: impl std::fmt::Display) -> DatastoreError {
        DatastoreError::io(&self.shown, e)
    }

    fn check(&self) -> Result<()> {
        match &*self.poisoned.borrow() {
            Some(e) => Err(e.clone()),
            None if self.closed.get() => Err(DatastoreError::Closed),
            None => Ok(()),
        }
    }

    /// The error for damage at `position`. Seen under the store-wide lock (no writer can be
    /// half-way), it poisons the store; a reader without the lock only reports it, and
    /// [`Shared::read_current`] checks again under the lock.
    fn damaged(&self, locked: bool, position: u64, reason: String) -> DatastoreError {
        let e = DatastoreError::Corrupt {
            path: self.shown.clone(),
            position,
            reason,
        };
        if locked {
            *self.poisoned.borrow_mut() = Some(e.clone());
        }
        e
    }

    /// The error for a failed `fdatasync`, which also poisons the store: the kernel may have
    /// dropped the unflushed pages, so no later write could be acknowledged as durable. A new
    /// store reads what the file holds.
    fn flush_failed(&self, e: io::Error) -> DatastoreError {
        let e = self.io(format!(
            "fdatasync failed: {e}; the store refuses further operations (open it again)"
        ));
        let mut poisoned = self.poisoned.borrow_mut();
        poisoned.get_or_insert(e).clone()
    }

    /// The data file's path (see `resolved`).
    fn path(&self) -> &Path {
        self.resolved.get().unwrap_or(&self.path)
    }

    fn compact_min(&self) -> u64 {
        self.options
            .compact_min_bytes
            .unwrap_or(DEFAULT_COMPACT_MIN)
    }

    /// Sets up the open state (the data file is looked at by [`Shared::catch_up`]).
    fn ensure_open(&self) -> Result<()> {
        self.check()?;
        if self.open.borrow().is_some() {
            return Ok(());
        }
        self.resolved
            .get_or_init(|| disk::resolve_symlink(&self.path));
        match std::fs::metadata(self.path()) {
            Ok(m) if m.is_dir() => return Err(self.io("is a directory")),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io(e)),
        }
        *self.open.borrow_mut() = Some(Open {
            locks: None,
            seen_changes: None,
            data: None,
            contents: Contents::default(),
        });
        Ok(())
    }

    /// The lock file, opened (created) by the first operation that locks: reads need none, so
    /// a store in a read-only folder can still be read.
    fn locks(&self) -> Result<Rc<ProcessLocks>> {
        self.ensure_open()?;
        let mut guard = self.open.borrow_mut();
        let open = guard.as_mut().ok_or(DatastoreError::Closed)?;
        if let Some(locks) = &open.locks {
            return Ok(locks.clone());
        }
        let locks = ProcessLocks::open(&lock_path(self.path(), ".lock")).map_err(|e| match e {
            DatastoreError::Io { path, message } => self.io(format!("{message} ({path})")),
            other => other,
        })?;
        open.locks = Some(locks.clone());
        Ok(locks)
    }

    /// Runs `f` on the open state after applying what other processes wrote. With `locked`
    /// (the caller holds the store-wide lock exclusively) a torn last record is cut off.
    fn with_current<T>(&self, locked: bool, f: impl FnOnce(&mut Open) -> T) -> Result<T> {
        self.ensure_open()?;
        let mut guard = self.open.borrow_mut();
        let open = guard.as_mut().ok_or(DatastoreError::Closed)?;
        self.catch_up(open, locked)?;
        Ok(f(open))
    }

    /// [`Shared::with_current`] for readers: without the store-wide lock, except that damage
    /// is confirmed under the lock by reading the whole file again (a read racing with a
    /// writer that cuts off a torn record could mix old and new bytes).
    async fn read_current<T>(&self, f: impl Fn(&mut Open) -> T) -> Result<T> {
        self.load_ahead().await?;
        match self.with_current(false, &f) {
            Err(DatastoreError::Corrupt { .. }) if self.poisoned.borrow().is_none() => {
                let (_gate, _range) = self.lock_store().await?;
                if let Some(open) = self.open.borrow_mut().as_mut() {
                    open.data = None;
                }
                self.with_current(true, &f)
            }
            other => other,
        }
    }

    /// Brings `open` up to date with the file. Every change to the file happens under the
    /// store-wide exclusive lock, whose release moves the lock file's shared change count: while
    /// the count is where it was, the data is current and the file need not be looked at.
    fn catch_up(&self, open: &mut Open, locked: bool) -> Result<()> {
        let changes = open.locks.as_ref().and_then(|l| l.changes());
        if Self::is_current(open, changes) {
            return Ok(());
        }
        self.compare_with_file(open, locked)?;
        open.seen_changes = changes;
        Ok(())
    }

    /// Whether `open` is known current without looking at the file: no torn record pending,
    /// and the lock file's change count (`changes`, just read) where it was last compared.
    fn is_current(open: &Open, changes: Option<u64>) -> bool {
        let clean = open.data.as_ref().is_some_and(|d| !d.torn);
        clean && changes.is_some() && changes == open.seen_changes
    }

    /// The value of `key`, borrowed, when [`Shared::read_current`] would answer from memory
    /// without looking at the file; `None` otherwise (not open yet, closed, poisoned, or the
    /// file may have changed), having changed nothing.
    fn read_now<R>(&self, key: &str, read: impl FnOnce(Option<&str>) -> R) -> Option<R> {
        if self.check().is_err() {
            return None;
        }
        let guard = self.open.borrow();
        let open = guard.as_ref()?;
        let changes = open.locks.as_ref().and_then(|l| l.changes());
        Self::is_current(open, changes).then(|| read(open.value(key)))
    }

    fn compare_with_file(&self, open: &mut Open, locked: bool) -> Result<()> {
        let meta = match std::fs::metadata(self.path()) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if open.data.take().is_some() {
                    open.reset(BTreeMap::new(), BTreeMap::new());
                }
                return Ok(());
            }
            Err(e) => return Err(self.io(e)),
        };
        if meta.is_dir() {
            return Err(self.io("is a directory"));
        }
        match &open.data {
            Some(d) if d.id == disk::file_id(&meta) && meta.len() >= d.applied => {
                if meta.len() > d.applied {
                    self.read_tail(open, meta.len(), locked)?;
                } else if let Some(d) = &mut open.data {
                    d.torn = false; // cut by another process
                }
                Ok(())
            }
            _ => self.reload(open, locked),
        }
    }

    /// Applies the records between what was applied and `len`.
    fn read_tail(&self, open: &mut Open, len: u64, locked: bool) -> Result<()> {
        let Some(d) = &open.data else {
            return Ok(());
        };
        let (file, start) = (d.file.clone(), d.applied);
        let buf = disk::read_at(&file, start, len - start).map_err(|e| self.io(e))?;
        let log = format::parse_log(&buf, start)
            .map_err(|d| self.damaged(locked, d.position, d.reason))?;
        let applied = start + log.valid_len as u64;
        if log.torn && locked {
            disk::cut(&file, applied).map_err(|e| self.io(e))?;
        }
        for op in log.ops {
            open.apply(op);
        }
        if let Some(d) = &mut open.data {
            d.applied = applied;
            d.torn = log.torn && !locked;
        }
        Ok(())
    }

    /// Reads the whole file at the path again.
    fn reload(&self, open: &mut Open, locked: bool) -> Result<()> {
        let whole = match Whole::read(self.path()).map_err(|e| self.io(e))? {
            None => {
                open.data = None;
                open.reset(BTreeMap::new(), BTreeMap::new());
                return Ok(());
            }
            Some(Err(d)) => return Err(self.damaged(locked, d.position, d.reason)),
            Some(Ok(whole)) => whole,
        };
        if whole.torn && locked {
            disk::cut(&whole.file, whole.applied).map_err(|e| self.io(e))?;
        }
        open.install(whole, locked);
        Ok(())
    }

    /// Reads and parses the whole data file on another thread when an operation would do it
    /// here — the first one, or the first after another process compacted the file — so a big
    /// store does not stall the JS thread while it loads. Then the usual catch-up finds the
    /// data current, or applies what was appended since (a tail). Damage, a vanished file
    /// and small files are left to that catch-up, which handles them on this thread as always.
    /// Concurrent callers share one load.
    async fn load_ahead(&self) -> Result<()> {
        self.ensure_open()?;
        self.load_waiters.until(|| !self.loading.get()).await;
        let held = {
            let guard = self.open.borrow();
            let open = guard.as_ref().ok_or(DatastoreError::Closed)?;
            let changes = open.locks.as_ref().and_then(|l| l.changes());
            if Self::is_current(open, changes) {
                return Ok(());
            }
            open.data.as_ref().map(|d| d.id)
        };
        let meta = match std::fs::metadata(self.path()) {
            Ok(m) if m.is_file() && m.len() >= LOAD_OFF_THREAD_MIN => m,
            _ => return Ok(()),
        };
        if held == Some(disk::file_id(&meta)) {
            return Ok(());
        }
        self.loading.set(true);
        let path = self.path().to_owned();
        let read = run_blocking(move || Whole::read(&path)).await;
        self.loading.set(false);
        self.load_waiters.wake_all();
        let mut guard = self.open.borrow_mut();
        // Installed only over the state it was read to replace: an operation that reloaded
        // on this thread meanwhile has newer data.
        if let (Some(Ok(Some(Ok(whole)))), Some(open)) = (read, guard.as_mut()) {
            if open.data.as_ref().map(|d| d.id) == held {
                open.install(whole, false);
                open.seen_changes = None;
            }
        }
        Ok(())
    }

    /// Takes the store-wide lock for this process (gate) and against other processes.
    async fn lock_store(&self) -> Result<(KeyGuard, RangeGuard)> {
        let locks = self.locks()?;
        let gate = self.gate.acquire(STORE_LOCK.with(Rc::clone)).await;
        let range = locks.lock_store(Mode::Exclusive).await?;
        self.check()?;
        Ok((gate, range))
    }

    /// Creates the data file holding an empty base, if there is none (store lock held).
    async fn create_if_missing(&self) -> Result<()> {
        let missing = self.with_current(true, |open| open.data.is_none())?;
        if !missing {
            return Ok(());
        }
        let path = self.path().to_owned();
        // Critical: the rename must not outlive the store-wide lock held here.
        let file = run_critical(move || disk::replace(&path, b"{}\n"))
            .await
            .unwrap_or_else(|| Err(io::Error::other("file thread stopped")))
            .map_err(|e| self.io(e))?;
        let meta = file.metadata().map_err(|e| self.io(e))?;
        let mut guard = self.open.borrow_mut();
        let open = guard.as_mut().ok_or(DatastoreError::Closed)?;
        open.reset(BTreeMap::new(), BTreeMap::new());
        open.data = Some(DataFile {
            file: Arc::new(file),
            id: disk::file_id(&meta),
            applied: meta.len(),
            base_end: meta.len(),
            torn: false,
        });
        Ok(())
    }

    /// Appends the changes of `writes` to the file as one record (store lock held): a reader
    /// applies all of them or, torn by a crash, none. Returns the file written and whether
    /// the log has grown enough to compact.
    fn append(&self, writes: Vec<(&str, Change)>) -> Result<Option<(Arc<File>, bool)>> {
        let min = self.compact_min();
        self.with_current(true, |open| {
            let ops: Vec<Op> = writes
                .into_iter()
                .filter_map(|(key, change)| {
                    let key = key.to_owned();
                    match change {
                        Change::Keep => None,
                        Change::Put(json) => Some(Op::Put(key, json)),
                        Change::PutFor(json, ttl) => Some(Op::PutUntil(
                            key,
                            json,
                            crate::core::expiry::expires_at(ttl),
                        )),
                        Change::Delete => Some(Op::Delete(key)),
                    }
                })
                .filter(|op| !Self::committed(open, op))
                .collect();
            let d = open
                .data
                .as_mut()
                .ok_or_else(|| self.io("the data file is missing"))?;
            let file = d.file.clone();
            if ops.is_empty() {
                // Already committed: nothing to append (the flush, if any, still runs).
                return Ok(Some((file, false)));
            }
            let record = match ops.as_slice() {
                [one] => format::encode(one),
                many => format::encode_batch(many),
            };
            if let Err(e) = disk::append(&file, &record) {
                // A partial record is a torn tail: cut it off now if we can (the next writer
                // would otherwise).
                d.torn = disk::cut(&file, d.applied).is_err();
                return Err(self.io(e));
            }
            d.applied += record.len() as u64;
            for op in ops {
                open.apply(op);
            }
            Ok(Some((file, open.compaction_due(min))))
        })?
    }

    /// Whether `op` would change nothing: the same value, with no expiry, already there (or
    /// the key already absent).
    fn committed(open: &Open, op: &Op) -> bool {
        match op {
            Op::Put(key, json) => {
                open.map.get(key) == Some(json) && !open.expiries.contains_key(key)
            }
            Op::PutUntil(..) => false,
            Op::Delete(key) => !open.map.contains_key(key),
        }
    }

    /// Appends `writes` (their keys held) and waits until they are as durable as configured;
    /// then starts a compaction if the log has grown enough.
    async fn write(self: &Rc<Self>, writes: Vec<(&str, Change)>) -> Result<()> {
        let written = {
            let (_gate, _range) = self.lock_store().await?;
            self.load_ahead().await?;
            self.create_if_missing().await?;
            self.append(writes)?
        };
        let Some((file, due)) = written else {
            return Ok(());
        };
        if self.options.durability == Durability::Fsync {
            let seq = self.syncer.note_write(&file);
            if let Err(e) = self.syncer.wait_durable(seq).await {
                return Err(self.flush_failed(e));
            }
        }
        if due {
            self.compact_soon();
        }
        Ok(())
    }

    /// Deletes the keys whose expiry passed (one record); returns the next expiry.
    async fn purge_expired(&self) -> Result<Option<u64>> {
        let has_expiring = self.read_current(|open| !open.expiries.is_empty()).await?;
        if !has_expiring {
            return Ok(None);
        }
        let (_gate, _range) = self.lock_store().await?;
        let now = now_ms();
        let expired: Vec<String> = self.with_current(true, |open| {
            open.expiries
                .iter()
                .filter(|(_, &at)| crate::core::expiry::is_expired(at, now))
                .map(|(k, _)| k.clone())
                .collect()
        })?;
        if !expired.is_empty() {
            let writes = expired
                .iter()
                .map(|k| (k.as_str(), Change::Delete))
                .collect();
            self.append(writes)?;
        }
        self.with_current(true, |open| open.expiries.values().min().copied())
    }
}

/// A key locked in this process and against other processes: its range (`lock`), or for the
/// keys of one `lock_many` call all their ranges, on the first key's (the others hold none).
pub struct FileHeld {
    shared: Rc<Shared>,
    _key: Option<RangeGuard>,
    _bulk: Vec<RangeGuard>,
}

impl Backend for FileBackend {
    type Held = FileHeld;

    async fn lock(&self, key: &str, deadline: &Deadline) -> Result<FileHeld> {
        let locks = self.shared.locks()?;
        let guard = locks.lock_key(key, deadline).await?;
        Ok(FileHeld {
            shared: self.shared.clone(),
            _key: Some(guard),
            _bulk: Vec::new(),
        })
    }

    async fn lock_many(&self, keys: &[Rc<str>], deadline: &Deadline) -> Result<Vec<FileHeld>> {
        let locks = self.shared.locks()?;
        let names: Vec<(&str, &str)> = keys.iter().map(|k| (&**k, &**k)).collect();
        let mut ranges = Some(locks.lock_keys(&names, deadline).await?);
        Ok(keys
            .iter()
            .map(|_| FileHeld {
                shared: self.shared.clone(),
                _key: None,
                _bulk: ranges.take().unwrap_or_default(),
            })
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.shared
            .read_current(|open| open.value(key).map(str::to_owned))
            .await
    }

    fn get_now<R>(
        &self,
        key: &str,
        read: impl FnOnce(Option<StoredText<'_>>) -> R,
    ) -> Option<Result<R>> {
        self.shared
            .read_now(key, |v| read(v.map(StoredText::Borrowed)))
            .map(Ok)
    }

    async fn list_keys(&self, prefix: &str) -> Result<KeyList> {
        self.shared
            .read_current(|open| open.live_from(prefix, None).map(|(k, _)| k).collect())
            .await
    }

    /// One read of the data as it is now: a snapshot.
    async fn get_many(&self, keys: &[Rc<str>]) -> Result<Vec<Option<String>>> {
        self.shared
            .read_current(|open| {
                keys.iter()
                    .map(|k| open.value(k).map(str::to_owned))
                    .collect()
            })
            .await
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.shared
            .read_current(|open| {
                open.live_from(prefix, after)
                    .take(limit)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .await
    }

    async fn entries_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        self.shared
            .read_current(|open| {
                open.live_from(prefix, after)
                    .take(limit)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .await
    }

    /// One record for all the changes: all or nothing, even across a crash.
    async fn finish_many(
        &self,
        held: Vec<(Rc<str>, FileHeld)>,
        changes: Vec<Change>,
    ) -> Result<()> {
        let writes = held
            .iter()
            .zip(changes)
            .map(|((key, _), change)| (&**key, change))
            .collect();
        // The key locks (`held`) are released after the write, when this returns.
        self.shared.write(writes).await
    }

    async fn purge_expired(&self) -> Result<Option<std::time::SystemTime>> {
        Ok(self
            .shared
            .purge_expired()
            .await?
            .map(crate::core::expiry::system_time))
    }

    async fn close(&self) -> Result<()> {
        let shared = &self.shared;
        if shared.open.borrow().is_none() {
            shared.closed.set(true);
            return Ok(());
        }
        shared.background_done().await;
        // Leave one JSON object behind if there are records; never write to a damaged file.
        let has_records = shared.poisoned.borrow().is_none()
            && shared
                .with_current(false, |open| {
                    open.data.as_ref().is_some_and(|d| d.applied > d.base_end)
                })
                .unwrap_or(false);
        let result = if has_records {
            shared.compact().await
        } else {
            Ok(())
        };
        shared.closed.set(true);
        *shared.open.borrow_mut() = None;
        result
    }
}

impl HeldKey for FileHeld {
    async fn read(&mut self, key: &str) -> Result<Option<String>> {
        self.shared
            .read_current(|open| open.value(key).map(str::to_owned))
            .await
    }

    async fn finish(self, key: &str, change: Change) -> Result<()> {
        if change == Change::Keep {
            return Ok(());
        }
        self.shared.write(vec![(key, change)]).await
    }
}

#[cfg(all(test, unix))]
mod tests;

#[cfg(all(test, target_os = "linux"))]
mod fault_tests;
