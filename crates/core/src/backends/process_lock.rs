//! Per-key locks shared by every process that opens the same store, for the file and SQLite
//! backends: byte-range locks on a sidecar lock file, one byte per key slot at an offset derived
//! from the key's hash. The kernel releases them when a process dies, so a crash never leaves
//! a key locked.
//!
//! - Linux: open-file-description locks (`F_OFD_SETLK`); other Unix: POSIX record locks
//!   (`F_SETLK`), which are per process: fine here, since in-process exclusion is the store's
//!   FIFO and this table counts holders per slot (two keys may share a slot; the range is
//!   unlocked when the last holder leaves). Other platforms: in-process locking only (see
//!   README).
//! - A free slot is taken on the JS thread with a non-blocking call (microseconds); a slot held
//!   by another process is waited for on a thread ([`run_blocking`]), never on the JS thread.
//!   On Linux that thread waits on an open file description of its own (the lock file reopened
//!   through `/proc/self/fd`), which the guard then owns: a wait that gives up (a deadline,
//!   its thread's env ending) just drops its receiver, and if the lock comes after all, the
//!   description is closed by the thread and the lock goes with it. Nothing waits on, or can
//!   later lock, the shared description. Elsewhere a wait polls with back-off.
//! - A call that locks many keys at once (`setMany`, `removeMany` of more than
//!   [`BULK_KEYS`] keys) locks whole buckets instead of their slots: the key slots form
//!   [`BUCKETS`] contiguous spans, and locking a span excludes every slot in it. The kernel
//!   checks each new lock against every lock of the file, so one range per key made a call of
//!   n keys cost O(n²) (40,000 keys: 22 s); per bucket it is O(n) plus at most [`BUCKETS`]
//!   ranges, and adjacent spans merge into one. A bucket that another process holds a slot of
//!   is locked slot by slot as before (the only place such a call waits). Locks are taken in
//!   ascending slot order, spans included, by every call of every process, so calls never
//!   deadlock. In this process a span and the slots inside it are one lock owner's ranges:
//!   `held` and `buckets` count the holders, a slot inside a held span takes no range of its
//!   own, and a span's release leaves the slots still held here locked.
//! - Offset 0 is the store-wide lock ([`ProcessLocks::lock_store`]): shared for ordinary writers,
//!   exclusive for maintenance such as compaction.
//! - The first 8 bytes of the lock file, mapped into memory by every process, count the releases
//!   of the store-wide exclusive lock ([`ProcessLocks::changes`]). Backends that change their data
//!   only under that lock let readers skip looking at the data file while the count is unchanged:
//!   one memory load instead of a `stat` per read.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::backends::lock_hash::fnv1a64;
use crate::core::{DatastoreError, Deadline, Result};
#[cfg(target_os = "linux")]
use crate::runtime::executor::run_blocking;
#[cfg(target_os = "linux")]
use crate::runtime::timer::with_deadline;

/// Key slots span offsets 1..=SLOTS; collisions only make two keys wait for each other.
const SLOTS: u64 = 1 << 40;

/// How many contiguous spans of slots a call of many keys locks whole (see the module docs).
pub const BUCKETS: u64 = 1 << 10;

/// Slots per bucket.
const BUCKET_LEN: u64 = SLOTS / BUCKETS;

/// A call locking more keys than this locks buckets (the module docs).
pub const BULK_KEYS: usize = 64;

/// The bucket of a key slot (offset ≥ 1).
fn bucket_of(slot: u64) -> u64 {
    (slot - 1) / BUCKET_LEN
}

/// The first slot of bucket `b`.
fn bucket_start(b: u64) -> u64 {
    1 + b * BUCKET_LEN
}

/// Lock mode of a byte range.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// The lock file of one store, shared by its handles in this process.
pub struct ProcessLocks {
    file: Arc<File>,
    path: PathBuf,
    /// Holders in this process per slot offset (and offset 0), on the shared description.
    held: RefCell<BTreeMap<u64, usize>>,
    /// Holders in this process per bucket whose whole span is locked on the shared description.
    buckets: RefCell<HashMap<u64, usize>>,
    /// The shared change count, where the platform can map it.
    counter: Option<sys::SharedCounter>,
}

impl ProcessLocks {
    /// Opens (creating if needed) the lock file at `path`, never through a symlink: one
    /// planted there would make us grow and write its target.
    pub fn open(path: &Path) -> Result<Rc<Self>> {
        let file = sidecar_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| sidecar_error(path, e))?;
        let counter = sys::SharedCounter::map(&file);
        Ok(Rc::new(ProcessLocks {
            file: Arc::new(file),
            path: path.to_owned(),
            held: RefCell::new(BTreeMap::new()),
            buckets: RefCell::new(HashMap::new()),
            counter,
        }))
    }

    /// How many times any process released the store-wide exclusive lock, or `None` where the
    /// count cannot be shared (then readers must look at the data every time).
    pub fn changes(&self) -> Option<u64> {
        self.counter.as_ref().map(|c| c.load())
    }

    /// The slot offset of `key`: from the pinned hash of `backends::lock_hash`, so every
    /// build and version of this package locks the same byte for a key (see
    /// docs/file-format.md, "Lock file").
    pub fn slot_of(key: &str) -> u64 {
        1 + fnv1a64(&[key.as_bytes()]) % SLOTS
    }

    /// Takes `key`'s lock exclusively against other processes, waiting until `deadline` at
    /// most (then `LockTimeout`, holding nothing).
    pub async fn lock_key(self: &Rc<Self>, key: &str, deadline: &Deadline) -> Result<RangeGuard> {
        self.lock_range(Self::slot_of(key), Mode::Exclusive, deadline)
            .await
    }

    /// Takes the store-wide lock (offset 0). Releasing it exclusively counts as a change.
    pub async fn lock_store(self: &Rc<Self>, mode: Mode) -> Result<RangeGuard> {
        let mut guard = self.lock_range(0, mode, &Deadline::never()).await?;
        guard.counts_change = mode == Mode::Exclusive;
        Ok(guard)
    }

    /// Takes the locks of `keys` — each `(lock name, key)`: the name is hashed to the slot, the
    /// key named in errors — exclusively against other processes, in ascending slot order,
    /// waiting until `deadline` at most: per slot, or per bucket for more than [`BULK_KEYS`]
    /// keys (see the module docs). A wait that gives up fails with `LockTimeout` naming the
    /// key it waited for, holding nothing.
    pub async fn lock_keys(
        self: &Rc<Self>,
        keys: &[(&str, &str)],
        deadline: &Deadline,
    ) -> Result<Vec<RangeGuard>> {
        let mut slots: Vec<(u64, &str)> = (keys.iter())
            .map(|&(name, key)| (Self::slot_of(name), key))
            .collect();
        slots.sort_unstable_by_key(|&(slot, _)| slot);
        slots.dedup_by_key(|&mut (slot, _)| slot);
        let by_slot = slots.len() <= BULK_KEYS;
        let mut guards = Vec::new();
        for group in slots.chunk_by(|a, b| by_slot || bucket_of(a.0) == bucket_of(b.0)) {
            if !by_slot {
                if let Some(g) = self.try_lock_bucket(bucket_of(group[0].0))? {
                    guards.push(g);
                    continue;
                }
            }
            for &(slot, key) in group {
                let guard = self.lock_range(slot, Mode::Exclusive, deadline).await;
                guards.push(guard.map_err(|e| e.for_key(key))?);
            }
        }
        Ok(guards)
    }

    /// Locks bucket `b`'s whole span without waiting: `Ok(None)` if another process holds a
    /// slot of it (or the span).
    fn try_lock_bucket(self: &Rc<Self>, b: u64) -> Result<Option<RangeGuard>> {
        let held_here = self.buckets.borrow().get(&b).is_some_and(|&n| n > 0);
        if !held_here {
            match sys::try_lock_span(&self.file, bucket_start(b), BUCKET_LEN, Mode::Exclusive) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return Err(DatastoreError::io(self.path.display(), e)),
            }
        }
        *self.buckets.borrow_mut().entry(b).or_insert(0) += 1;
        Ok(Some(RangeGuard {
            locks: self.clone(),
            offset: bucket_start(b),
            bucket: true,
            counts_change: false,
            own: None,
        }))
    }

    /// [`ProcessLocks::lock_key`] without waiting: `Ok(None)` if another process holds it.
    pub fn try_lock_key(self: &Rc<Self>, key: &str) -> Result<Option<RangeGuard>> {
        let offset = Self::slot_of(key);
        if !self.held_here(offset) && !self.covered(offset) {
            match sys::try_lock(&self.file, offset, Mode::Exclusive) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return Err(DatastoreError::io(self.path.display(), e)),
            }
        }
        Ok(Some(self.share(offset)))
    }

    async fn lock_range(
        self: &Rc<Self>,
        offset: u64,
        mode: Mode,
        deadline: &Deadline,
    ) -> Result<RangeGuard> {
        if self.held_here(offset) || self.covered(offset) {
            return Ok(self.share(offset));
        }
        match sys::try_lock(&self.file, offset, mode) {
            Ok(true) => Ok(self.share(offset)),
            Ok(false) => self.wait(offset, mode, deadline.instant()).await,
            Err(e) => Err(DatastoreError::io(self.path.display(), e)),
        }
    }

    /// Waits for a range another process holds (see the module docs), until `deadline`.
    #[cfg(target_os = "linux")]
    async fn wait(
        self: &Rc<Self>,
        offset: u64,
        mode: Mode,
        deadline: Option<Instant>,
    ) -> Result<RangeGuard> {
        let file = self.file.clone();
        let waiting = Box::pin(run_blocking(move || sys::wait_own(&file, offset, mode)));
        let own = with_deadline(waiting, deadline)
            .await
            .map_err(|_| timed_out())?
            .unwrap_or_else(|| Err(std::io::Error::other("lock thread stopped")))
            .map_err(|e| DatastoreError::io(self.path.display(), e))?;
        Ok(RangeGuard {
            locks: self.clone(),
            offset,
            bucket: false,
            counts_change: false,
            own: Some(own),
        })
    }

    /// Waits for a range another process holds, until `deadline`: POSIX record locks belong
    /// to the process, so a wait cannot have a description of its own, and a blocked thread
    /// could not give up. It polls with back-off instead.
    #[cfg(not(target_os = "linux"))]
    async fn wait(
        self: &Rc<Self>,
        offset: u64,
        mode: Mode,
        deadline: Option<Instant>,
    ) -> Result<RangeGuard> {
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let next = Instant::now() + pause;
            if deadline.is_some_and(|d| next > d) {
                return Err(timed_out());
            }
            crate::runtime::timer::Sleep::until(next).await;
            if self.held_here(offset) || self.covered(offset) {
                return Ok(self.share(offset));
            }
            match sys::try_lock(&self.file, offset, mode) {
                Ok(true) => return Ok(self.share(offset)),
                Ok(false) => pause = (pause * 2).min(std::time::Duration::from_millis(20)),
                Err(e) => return Err(DatastoreError::io(self.path.display(), e)),
            }
        }
    }

    /// Whether this process holds the range at `offset` already (for another holder).
    fn held_here(&self, offset: u64) -> bool {
        self.held.borrow().get(&offset).is_some_and(|&n| n > 0)
    }

    /// Whether the key slot at `offset` lies in a bucket this process holds whole.
    fn covered(&self, offset: u64) -> bool {
        offset != 0 && self.buckets.borrow().contains_key(&bucket_of(offset))
    }

    /// One more holder of the range at `offset`, which this process has locked.
    fn share(self: &Rc<Self>, offset: u64) -> RangeGuard {
        *self.held.borrow_mut().entry(offset).or_insert(0) += 1;
        RangeGuard {
            locks: self.clone(),
            offset,
            bucket: false,
            counts_change: false,
            own: None,
        }
    }

    fn release(&self, offset: u64) {
        let mut held = self.held.borrow_mut();
        let Some(n) = held.get_mut(&offset) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            held.remove(&offset);
            // Inside a span held here, the span's lock stands for it (and its release keeps
            // the slots then held).
            if !self.covered(offset) {
                sys::unlock(&self.file, offset);
            }
        }
    }

    /// One holder of bucket `b`'s span leaves; the last unlocks the span around the slots
    /// this process still holds in it, which stay locked.
    fn release_bucket(&self, b: u64) {
        let mut buckets = self.buckets.borrow_mut();
        let Some(n) = buckets.get_mut(&b) else {
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        buckets.remove(&b);
        let (start, end) = (bucket_start(b), bucket_start(b) + BUCKET_LEN);
        let mut from = start;
        for &slot in self.held.borrow().range(start..end).map(|(slot, _)| slot) {
            if slot > from {
                sys::unlock_span(&self.file, from, slot - from);
            }
            from = slot + 1;
        }
        if from < end {
            sys::unlock_span(&self.file, from, end - from);
        }
    }
}

/// The lock file of the data at `data`: `<data><suffix>` (`.lock` for a file store,
/// `.reshuffle-lock` for a SQLite database), next to it.
pub fn lock_path(data: &Path, suffix: &str) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Options for opening a sidecar file (a lock or temp file next to the data): symlinks are
/// never followed (`O_NOFOLLOW` where the platform has it).
pub fn sidecar_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o
}

/// Why a sidecar was not opened: a symlink stood at `path`.
pub fn link_refused(path: &Path) -> String {
    format!("{}: {LINK_REFUSED}", path.display())
}

const LINK_REFUSED: &str = "is a symbolic link; this file belongs to the store and is never \
                            opened through a link (remove the link)";

/// The error of opening the sidecar at `path`, saying so when a symlink stood in its place.
pub fn sidecar_error(path: &Path, e: std::io::Error) -> DatastoreError {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return DatastoreError::io(path.display(), LINK_REFUSED);
    }
    DatastoreError::io(path.display(), e)
}

/// The error of a wait that gave up (the store completes it with the key and the limit).
fn timed_out() -> DatastoreError {
    DatastoreError::LockTimeout {
        key: String::new(),
        waited_ms: 0,
    }
}

/// A held range; dropping it releases this holder's share.
pub struct RangeGuard {
    locks: Rc<ProcessLocks>,
    /// The slot (or 0, the store-wide lock), or the first slot of a bucket's span.
    offset: u64,
    /// Whether this guards the span of the bucket starting at `offset`.
    bucket: bool,
    counts_change: bool,
    /// The open file description that holds the range, when a wait took it on one of its own
    /// (closing it releases the range); `None`: the shared one, counted in `held`.
    own: Option<File>,
}

impl Drop for RangeGuard {
    fn drop(&mut self) {
        if self.counts_change {
            // Before unlocking: whoever takes the lock next sees the count moved.
            if let Some(c) = &self.locks.counter {
                c.bump();
            }
        }
        match self.own.take() {
            Some(file) => drop(file),
            None if self.bucket => self.locks.release_bucket(bucket_of(self.offset)),
            None => self.locks.release(self.offset),
        }
    }
}

#[cfg(unix)]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::unix::io::AsRawFd;

    use super::Mode;

    #[cfg(target_os = "linux")]
    const SETLK: libc::c_int = libc::F_OFD_SETLK;
    #[cfg(target_os = "linux")]
    const SETLKW: libc::c_int = libc::F_OFD_SETLKW;
    #[cfg(not(target_os = "linux"))]
    const SETLK: libc::c_int = libc::F_SETLK;

    fn flock(offset: u64, len: u64, kind: libc::c_int) -> libc::flock {
        // SAFETY: flock is plain old data; all-zero is a valid value (and OFD locks need l_pid 0).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as _;
        fl.l_whence = libc::SEEK_SET as _;
        fl.l_start = offset as _;
        fl.l_len = len as _;
        fl
    }

    fn kind(mode: Mode) -> libc::c_int {
        match mode {
            Mode::Shared => libc::F_RDLCK,
            Mode::Exclusive => libc::F_WRLCK,
        }
    }

    /// `Ok(false)` when another process holds a conflicting lock.
    pub fn try_lock(file: &File, offset: u64, mode: Mode) -> io::Result<bool> {
        try_lock_span(file, offset, 1, mode)
    }

    /// [`try_lock`] for the `len` bytes at `offset`.
    pub fn try_lock_span(file: &File, offset: u64, len: u64, mode: Mode) -> io::Result<bool> {
        let fl = flock(offset, len, kind(mode));
        // SAFETY: valid fd and a pointer to a live flock.
        if unsafe { libc::fcntl(file.as_raw_fd(), SETLK, &fl) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
            _ => Err(err),
        }
    }

    /// Blocks until the lock is ours.
    #[cfg(target_os = "linux")]
    fn lock_wait(file: &File, offset: u64, mode: Mode) -> io::Result<()> {
        let fl = flock(offset, 1, kind(mode));
        loop {
            // SAFETY: as above.
            if unsafe { libc::fcntl(file.as_raw_fd(), SETLKW, &fl) } == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
        }
    }

    /// Blocks until the range is locked on an open file description of its own, returned:
    /// the lock file reopened through `/proc/self/fd` (the same file, whatever its path names
    /// now). Runs on a thread; if nobody takes the result, dropping it releases the range.
    #[cfg(target_os = "linux")]
    pub fn wait_own(file: &File, offset: u64, mode: Mode) -> io::Result<File> {
        let own = File::options()
            .read(true)
            .write(true)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        lock_wait(&own, offset, mode)?;
        Ok(own)
    }

    pub fn unlock(file: &File, offset: u64) {
        unlock_span(file, offset, 1)
    }

    pub fn unlock_span(file: &File, offset: u64, len: u64) {
        let fl = flock(offset, len, libc::F_UNLCK);
        // SAFETY: as above. Unlocking a range we hold cannot fail in a way we could act on.
        unsafe { libc::fcntl(file.as_raw_fd(), SETLK, &fl) };
    }

    const PAGE: usize = 4096;

    /// A `u64` in the first page of the lock file, mapped shared by every process.
    pub struct SharedCounter {
        page: *mut libc::c_void,
    }

    impl SharedCounter {
        /// Maps the counter, growing the file to one page if needed (never shrinking it).
        pub fn map(file: &File) -> Option<Self> {
            let len = file.metadata().ok()?.len();
            if len < PAGE as u64 {
                file.set_len(PAGE as u64).ok()?;
            }
            // SAFETY: a shared read-write mapping of the file's first page; the fd stays open
            // for the life of ProcessLocks, and the mapping is removed in Drop.
            let page = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            (page != libc::MAP_FAILED).then_some(SharedCounter { page })
        }

        fn cell(&self) -> &std::sync::atomic::AtomicU64 {
            // SAFETY: the page is mapped, page-aligned (so 8-aligned) and lives as long as self.
            unsafe { &*(self.page as *const std::sync::atomic::AtomicU64) }
        }

        pub fn load(&self) -> u64 {
            self.cell().load(std::sync::atomic::Ordering::Acquire)
        }

        pub fn bump(&self) {
            self.cell()
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    impl Drop for SharedCounter {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly what `map` mapped.
            unsafe { libc::munmap(self.page, PAGE) };
        }
    }
}

#[cfg(not(unix))]
mod sys {
    //! No cross-process byte-range locks on this platform yet: in-process locking only.
    use std::fs::File;
    use std::io;

    use super::Mode;

    pub fn try_lock(_: &File, _: u64, _: Mode) -> io::Result<bool> {
        Ok(true)
    }
    pub fn try_lock_span(_: &File, _: u64, _: u64, _: Mode) -> io::Result<bool> {
        Ok(true)
    }
    pub fn unlock(_: &File, _: u64) {}
    pub fn unlock_span(_: &File, _: u64, _: u64) {}

    /// No shared counter on this platform: readers look at the data every time.
    pub struct SharedCounter;

    impl SharedCounter {
        pub fn map(_: &File) -> Option<Self> {
            None
        }
        pub fn load(&self) -> u64 {
            0
        }
        pub fn bump(&self) {}
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::runtime::executor::block_on;

    #[test]
    fn slots_are_pinned_and_nonzero() {
        // Every build and version must lock the same byte for a key: never change these.
        assert_eq!(ProcessLocks::slot_of("counter"), 283_140_078_869);
        assert_eq!(ProcessLocks::slot_of("kv\0counter"), 816_061_681_294);
        assert_eq!(ProcessLocks::slot_of("a"), 33_105_954_666);
        assert_eq!(ProcessLocks::slot_of("é 🎉"), 109_003_811_241);
        assert!(ProcessLocks::slot_of("") >= 1);
    }

    #[test]
    fn exclusive_store_releases_are_counted_for_every_process() {
        let dir = std::env::temp_dir().join(format!("rd-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("locks");
        block_on(async move {
            let a = ProcessLocks::open(&path).unwrap();
            let b = ProcessLocks::open(&path).unwrap(); // another mapping of the same page
            let before = b.changes().unwrap();
            drop(a.lock_store(Mode::Shared).await.unwrap());
            assert_eq!(b.changes(), Some(before), "shared holds change nothing");
            drop(a.lock_store(Mode::Exclusive).await.unwrap());
            assert_eq!(b.changes(), Some(before + 1));
        });
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Lock entries the kernel has for `file`'s inode (Linux: /proc/locks).
    #[cfg(target_os = "linux")]
    fn ranges_on(file: &File) -> usize {
        use std::os::unix::fs::MetadataExt;
        let ino = format!(":{}", file.metadata().unwrap().ino());
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        locks
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(5)
                    .is_some_and(|f| f.ends_with(&ino))
            })
            .count()
    }

    fn scratch(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("rd-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("locks");
        (dir, path)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn many_keys_lock_buckets_not_one_range_each() {
        let (dir, path) = scratch("bulk");
        block_on(async move {
            let a = ProcessLocks::open(&path).unwrap();
            let other = File::options().read(true).write(true).open(&path).unwrap();
            let keys: Vec<String> = (0..5000).map(|i| format!("key{i}")).collect();
            let names: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), k.as_str())).collect();
            // A key of this process held before, inside some bucket the call will lock.
            let before = a.lock_key("held-before", &Deadline::never()).await.unwrap();
            let bulk = a.lock_keys(&names, &Deadline::never()).await.unwrap();
            assert!(bulk.len() <= BUCKETS as usize, "{} guards", bulk.len());
            // Adjacent spans merge: far fewer ranges than keys, never more than buckets.
            assert!(
                ranges_on(&other) <= BUCKETS as usize + 1,
                "{}",
                ranges_on(&other)
            );
            for &(k, _) in names.iter().step_by(97).chain([("key4999", "")].iter()) {
                let slot = ProcessLocks::slot_of(k);
                assert!(
                    !sys::try_lock(&other, slot, Mode::Exclusive).unwrap(),
                    "{k} free"
                );
            }
            // A key of this process taken while its bucket is held, released after it.
            let during = a
                .lock_key("taken-during", &Deadline::never())
                .await
                .unwrap();
            drop(bulk);
            for (k, _) in [("held-before", &before), ("taken-during", &during)] {
                let slot = ProcessLocks::slot_of(k);
                assert!(
                    !sys::try_lock(&other, slot, Mode::Exclusive).unwrap(),
                    "{k} lost"
                );
            }
            for &(k, _) in names.iter().step_by(97) {
                let slot = ProcessLocks::slot_of(k);
                assert!(
                    sys::try_lock(&other, slot, Mode::Exclusive).unwrap(),
                    "{k} kept"
                );
                sys::unlock(&other, slot);
            }
            drop((before, during));
            assert_eq!(ranges_on(&other), 0);
        });
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn many_keys_wait_only_for_a_key_another_process_holds() {
        let (dir, path) = scratch("bulk-wait");
        block_on(async move {
            let a = ProcessLocks::open(&path).unwrap();
            let other = Arc::new(File::options().read(true).write(true).open(&path).unwrap());
            let keys: Vec<String> = (0..500).map(|i| format!("key{i}")).collect();
            let names: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), k.as_str())).collect();
            // Another process holds a key outside the call, in the bucket of one inside it:
            // the call locks that bucket slot by slot and does not wait.
            let inside = ProcessLocks::slot_of("key7");
            let outside = (0..)
                .map(|i| format!("x{i}"))
                .find(|k| {
                    let s = ProcessLocks::slot_of(k);
                    bucket_of(s) == bucket_of(inside) && s != inside
                })
                .unwrap();
            let outside_slot = ProcessLocks::slot_of(&outside);
            assert!(sys::try_lock(&other, outside_slot, Mode::Exclusive).unwrap());
            let quick = Deadline::after(Some(std::time::Duration::from_millis(200)));
            let bulk = a.lock_keys(&names, &quick).await.unwrap();
            assert!(!sys::try_lock(&other, inside, Mode::Exclusive).unwrap());
            drop(bulk);
            // It holds one inside: the call times out naming it, and holds nothing after.
            assert!(sys::try_lock(&other, inside, Mode::Exclusive).unwrap());
            let quick = Deadline::after(Some(std::time::Duration::from_millis(50)));
            match a.lock_keys(&names, &quick).await {
                Err(DatastoreError::LockTimeout { key, .. }) => assert_eq!(key, "key7"),
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("locked a held key"),
            }
            assert!(sys::try_lock(&other, ProcessLocks::slot_of("key8"), Mode::Exclusive).unwrap());
            sys::unlock(&other, ProcessLocks::slot_of("key8"));
            // Released by the other process meanwhile: the call waits for it, then has it.
            let f2 = other.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                sys::unlock(&f2, inside);
            });
            let bulk = a.lock_keys(&names, &Deadline::never()).await.unwrap();
            assert!(!sys::try_lock(&other, inside, Mode::Exclusive).unwrap());
            drop(bulk);
            sys::unlock(&other, outside_slot);
        });
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn another_description_waits_for_the_holder() {
        let dir = std::env::temp_dir().join(format!("rd-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("locks");
        block_on(async move {
            let a = ProcessLocks::open(&path).unwrap();
            let guard = a.lock_key("k", &Deadline::never()).await.unwrap();
            let again = a.lock_key("k", &Deadline::never()).await.unwrap(); // same process: counted, not blocked
                                                                            // A second open file description stands in for another process.
            let other = File::options().read(true).write(true).open(&path).unwrap();
            let slot = ProcessLocks::slot_of("k");
            assert!(!sys::try_lock(&other, slot, Mode::Exclusive).unwrap());
            drop(guard);
            assert!(!sys::try_lock(&other, slot, Mode::Exclusive).unwrap());
            drop(again);
            assert!(sys::try_lock(&other, slot, Mode::Exclusive).unwrap());
            // Now `a` must wait on a thread until `other` lets go.
            let waiter = a.clone();
            let file = Arc::new(other);
            let f2 = file.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                sys::unlock(&f2, slot);
            });
            let g = waiter.lock_key("k", &Deadline::never()).await.unwrap();
            drop(g);
            drop(file);
        });
        std::fs::remove_dir_all(&dir).ok();
    }
}
