//! Plain file operations of the file backend: identity of the file at a path, reads of a
//! range, and atomic replacement (temp file, flush, rename, flush of the folder).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::backends::process_lock::{link_refused, sidecar_options};

#[cfg(all(test, target_os = "linux"))]
use super::faults::{self, Fault};

/// Fails this call where a test planned it (`faults.rs`). Expands to nothing outside test
/// builds, so production I/O is the plain `std::fs` call.
macro_rules! inject {
    ($point:ident, $path:expr, |$fault:ident| $on_fault:expr) => {
        #[cfg(all(test, target_os = "linux"))]
        if let Some($fault) = faults::take(faults::Point::$point, &$path) {
            return $on_fault;
        }
    };
}

/// Writes a prefix of `bytes` as a short write does, then fails with the fault's error.
#[cfg(all(test, target_os = "linux"))]
fn failed_write(mut file: &File, bytes: &[u8], fault: Fault) -> io::Result<()> {
    if let Fault::Short(n) = fault {
        file.write_all(&bytes[..n.min(bytes.len().saturating_sub(1))])?;
    }
    Err(fault.error())
}

/// Identity of the file at a path: a compaction replaces it with a new one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileId(u64, u64);

#[cfg(unix)]
pub fn file_id(meta: &Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId(meta.dev(), meta.ino())
}

/// Without inode numbers, creation time stands in (a rename keeps the new file's).
#[cfg(not(unix))]
pub fn file_id(meta: &Metadata) -> FileId {
    let created = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    FileId(created, 0)
}

/// The file a symlink at `path` points to (even if it does not exist yet), else `path`.
pub fn resolve_symlink(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| {
                match (std::fs::read_link(path), path.parent()) {
                    (Ok(target), Some(folder)) => folder.join(target),
                    _ => path.to_owned(),
                }
            })
        }
        _ => path.to_owned(),
    }
}

/// Opens the data file for reading and appending; a file this process may only read is opened
/// read-only (reads work, writes fail with the OS error).
pub fn open_data(path: &Path) -> io::Result<File> {
    match OpenOptions::new().read(true).append(true).open(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path),
        other => other,
    }
}

/// Reads `len` bytes at `offset` (fewer if the file is shorter now).
pub fn read_at(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut done = 0;
    while done < buf.len() {
        let n = read_some(file, &mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

#[cfg(unix)]
fn read_some(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(windows)]
fn read_some(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::windows::fs::FileExt;
    file.seek_read(buf, offset)
}

/// Appends `bytes` with one `write` call where the OS allows (O_APPEND: never interleaved with
/// other appenders' records).
pub fn append(file: &File, bytes: &[u8]) -> io::Result<()> {
    inject!(Append, faults::path_of(file), |fault| failed_write(
        file, bytes, fault
    ));
    let mut f = file;
    f.write_all(bytes)
}

/// Flushes the data written to the data file (`fdatasync`).
pub fn sync_data(file: &File) -> io::Result<()> {
    inject!(Sync, faults::path_of(file), |fault| Err(fault.error()));
    file.sync_data()
}

/// Cuts the data file to `len` bytes (a torn record off its end).
pub fn cut(file: &File, len: u64) -> io::Result<()> {
    inject!(Cut, faults::path_of(file), |fault| Err(fault.error()));
    file.set_len(len)
}

/// Writes to a compaction's temp file.
fn write_temp_bytes(file: &File, bytes: &[u8]) -> io::Result<()> {
    inject!(TempWrite, faults::path_of(file), |fault| failed_write(
        file, bytes, fault
    ));
    let mut f = file;
    f.write_all(bytes)
}

/// A new name for the temp file of a compaction of `path`: `<path>.tmp-<pid>-<n>`, `n` new for
/// each one in this process (two stores of one file in one process may compact at once);
/// `background` (suffix `-bg`) names the one of a compaction that writes it without holding
/// the store-wide lock.
pub fn temp_path(path: &Path, background: bool) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    if background {
        name.push("-bg");
    }
    PathBuf::from(name)
}

/// Flushes the folder holding `path`, so a rename into it is durable.
#[cfg(unix)]
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    inject!(DirSync, parent, |fault| Err(fault.error()));
    File::open(parent)?.sync_all()
}

#[cfg(not(unix))]
fn sync_parent(_: &Path) -> io::Result<()> {
    Ok(())
}

/// Removes temp files that compactions of `path` left behind when their process died. Call it
/// only while holding the store-wide lock: then no live process is writing one.
fn remove_stale_temps(path: &Path) {
    let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let mut prefix = name.to_owned();
    prefix.push(".tmp-");
    let Some(prefix) = prefix.to_str() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        // `<pid>-<n>[-bg]`, and `<pid>[-bg]` as older versions named them.
        let stale = file_name.to_str().is_some_and(|n| {
            n.strip_prefix(prefix)
                .map(|rest| rest.strip_suffix("-bg").unwrap_or(rest))
                .is_some_and(|id| {
                    !id.is_empty()
                        && id.split('-').count() <= 2
                        && id.split('-').all(|part| {
                            !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
                        })
                })
        });
        // Only files: a symlink planted under such a name is left alone (and never opened).
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(entry.path()).ok();
        }
    }
}

/// Creates the temp file `temp`, new, never through a symlink (one planted there would make
/// us write its target). A regular file left there by a process with the same pid is
/// removed first.
fn create_temp(temp: &Path) -> io::Result<File> {
    let create = || sidecar_options().write(true).create_new(true).open(temp);
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(temp)?.file_type().is_symlink() {
                return Err(io::Error::other(link_refused(temp)));
            }
            std::fs::remove_file(temp)?;
            create()
        }
        Err(e) if e.raw_os_error() == Some(ELOOP) => Err(io::Error::other(link_refused(temp))),
        other => other,
    }
}

#[cfg(unix)]
const ELOOP: i32 = libc::ELOOP;
#[cfg(not(unix))]
const ELOOP: i32 = -1;

/// Writes `contents` to `temp` with the permissions of the file at `path` (not flushed yet: see
/// [`finish_temp`]). Needs no lock.
pub fn write_temp(path: &Path, temp: &Path, contents: &[u8]) -> io::Result<File> {
    let f = create_temp(temp)?;
    write_temp_bytes(&f, contents)?;
    if let Ok(old) = std::fs::metadata(path) {
        f.set_permissions(old.permissions())?;
    }
    Ok(f)
}

/// Bytes `from..to` of a file.
pub struct Tail<'a> {
    pub file: &'a File,
    pub from: u64,
    pub to: u64,
}

/// Appends `tail` to the temp file `f`, flushes it and renames it over `path`. Call it only
/// while holding the store-wide lock. Returns the new file, opened for reading and appending.
pub fn finish_temp(f: File, temp: &Path, path: &Path, tail: Option<Tail>) -> io::Result<File> {
    let result = (|| {
        if let Some(Tail { file, from, to }) = tail {
            let bytes = read_at(file, from, to.saturating_sub(from))?;
            if bytes.len() as u64 != to.saturating_sub(from) {
                return Err(io::Error::other("the file shrank during compaction"));
            }
            write_temp_bytes(&f, &bytes)?;
        }
        inject!(TempSync, temp, |fault| Err(fault.error()));
        f.sync_all()?;
        drop(f);
        inject!(Rename, temp, |fault| Err(fault.error()));
        std::fs::rename(temp, path)?;
        sync_parent(path)?;
        open_data(path)
    })();
    if result.is_err() {
        std::fs::remove_file(temp).ok();
    }
    result
}

/// Replaces the file at `path` with `contents` atomically: a crash leaves the old file or the
/// new one, whole. Returns the new file, opened for reading and appending. Call it only while
/// holding the store-wide lock.
pub fn replace(path: &Path, contents: &[u8]) -> io::Result<File> {
    remove_stale_temps(path);
    let temp = temp_path(path, false);
    // Keeps the file's permissions (a store may hold secrets: 0600).
    let f = write_temp(path, &temp, contents).inspect_err(|_| {
        std::fs::remove_file(&temp).ok();
    })?;
    finish_temp(f, &temp, path, None)
}
