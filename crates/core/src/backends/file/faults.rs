//! Injected I/O failures for tests of the file backend (`fault_tests.rs`).
//!
//! Every write, flush, rename and cut of the backend goes through `disk.rs`, which asks
//! [`take`] whether to fail it. Only test builds on Linux have the registry; in every other
//! build the check does not exist, so production I/O is the plain `std::fs` call.
//!
//! A plan applies to the files under one folder (tests run in parallel, each in its own folder)
//! and fires a given number of times.

use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Where a failure is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The `write` of a record to the data file.
    Append,
    /// The `fdatasync` of the data file (durability `'fsync'`).
    Sync,
    /// A write to a compaction's temp file (the base, or the records copied at the end).
    TempWrite,
    /// The `fsync` of a compaction's temp file.
    TempSync,
    /// The rename of the temp file over the data file.
    Rename,
    /// The `fsync` of the folder after the rename.
    DirSync,
    /// The truncation that cuts a torn record off the data file.
    Cut,
}

/// What the failing call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Writes the first `n` bytes (fewer if the buffer is shorter), then fails with `ENOSPC`,
    /// as a `write` that ran out of space half-way does.
    Short(usize),
    /// Fails with `ENOSPC` before writing anything.
    NoSpace,
    /// Fails with `EIO`.
    Eio,
}

impl Fault {
    pub fn error(self) -> io::Error {
        match self {
            Fault::Short(_) | Fault::NoSpace => io::Error::from_raw_os_error(libc::ENOSPC),
            Fault::Eio => io::Error::from_raw_os_error(libc::EIO),
        }
    }
}

struct Plan {
    folder: PathBuf,
    point: Point,
    fault: Fault,
    remaining: u32,
    fired: u32,
}

static PLANS: Mutex<Vec<Plan>> = Mutex::new(Vec::new());

/// Makes the next `times` calls at `point` on files under `folder` fail with `fault`.
pub fn arm(folder: &Path, point: Point, fault: Fault, times: u32) {
    let folder = folder.canonicalize().unwrap_or_else(|_| folder.to_owned());
    PLANS.lock().push(Plan {
        folder,
        point,
        fault,
        remaining: times,
        fired: 0,
    });
}

/// Removes every plan for files under `folder`: the fault has cleared.
pub fn clear(folder: &Path) {
    let folder = folder.canonicalize().unwrap_or_else(|_| folder.to_owned());
    PLANS.lock().retain(|p| p.folder != folder);
}

/// The fault to inject into this call at `point` on `path`, if one is planned.
pub fn take(point: Point, path: &Path) -> Option<Fault> {
    let mut plans = PLANS.lock();
    let plan = plans
        .iter_mut()
        .find(|p| p.point == point && p.remaining > 0 && path.starts_with(&p.folder))?;
    plan.remaining -= 1;
    plan.fired += 1;
    Some(plan.fault)
}

/// How many faults were injected at `point` under `folder` since it was last cleared.
pub fn fired(folder: &Path, point: Point) -> u32 {
    let folder = folder.canonicalize().unwrap_or_else(|_| folder.to_owned());
    PLANS
        .lock()
        .iter()
        .filter(|p| p.folder == folder && p.point == point)
        .map(|p| p.fired)
        .sum()
}

/// The path of an open file, as the kernel names it (an unlinked file's ends in " (deleted)").
pub fn path_of(file: &std::fs::File) -> PathBuf {
    use std::os::unix::io::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or_default()
}
