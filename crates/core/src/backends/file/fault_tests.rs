//! I/O failures injected (`faults.rs`) at every point where the file backend writes: the
//! append of a record, its `fdatasync`, and a compaction's temp write, temp `fsync`, rename and
//! folder `fsync`. Each test checks that the operation rejects with `ERR_DATASTORE_IO` naming
//! the path and the OS error, that it was not acknowledged, that every acknowledged write is
//! still there after reopening, and whether the store keeps working once the fault clears.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::future::join;

use super::faults::{self, Fault, Point};
use super::*;
use crate::core::Store;
use crate::runtime::executor::block_on;

/// A fresh folder for one test (fault plans are per folder), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rd-fault-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self) -> String {
        self.0.join("s.json").to_string_lossy().into_owned()
    }
    /// Names in the folder other than the data and lock files: leftover temp files.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "s.json" && n != "s.json.lock")
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        faults::clear(&self.0);
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn open(path: &str, durability: Durability) -> Store<FileBackend> {
    let options = FileOptions {
        durability,
        ..FileOptions::default()
    };
    Store::new(FileBackend::new(path, options).unwrap())
}

/// Acknowledged writes made before a fault; returns what the store must hold.
async fn seed(s: &Store<FileBackend>) -> BTreeMap<String, String> {
    s.set("a", "1".into()).await.unwrap();
    s.set("b", r#"{"x":[1,2]}"#.into()).await.unwrap();
    s.set("gone", "true".into()).await.unwrap();
    s.remove("gone").await.unwrap();
    s.set("a", "2".into()).await.unwrap();
    BTreeMap::from([
        ("a".into(), "2".into()),
        ("b".into(), r#"{"x":[1,2]}"#.into()),
    ])
}

fn os_text(fault: Fault) -> &'static str {
    match fault {
        Fault::Short(_) | Fault::NoSpace => "No space left on device",
        Fault::Eio => "Input/output error",
    }
}

#[track_caller]
fn assert_io(e: &DatastoreError, path: &str, fault: Fault) {
    assert_eq!(e.code(), "ERR_DATASTORE_IO", "{e}");
    let message = e.to_string();
    assert!(message.contains(path), "no path in {message:?}");
    assert!(
        message.contains(os_text(fault)),
        "no OS error in {message:?}"
    );
}

/// Opens the file afresh: it parses (not corrupt), holds every acknowledged write, and no key
/// other than those and `maybe` (writes that failed after reaching the file).
fn assert_reopened(path: &str, acked: &BTreeMap<String, String>, maybe: &[&str]) {
    block_on({
        let (path, acked) = (path.to_owned(), acked.clone());
        let maybe: Vec<String> = maybe.iter().map(|k| k.to_string()).collect();
        async move {
            let s = open(&path, Durability::Write);
            for (k, v) in &acked {
                assert_eq!(s.get(k).await.unwrap().as_ref(), Some(v), "key {k}");
            }
            for k in s.list("").await.unwrap() {
                assert!(acked.contains_key(&k) || maybe.contains(&k), "stray {k}");
            }
            s.close().await.unwrap();
        }
    });
}

const WRITE_FAULTS: [Fault; 4] = [
    Fault::Short(1),
    Fault::Short(12),
    Fault::NoSpace,
    Fault::Eio,
];
const OTHER_FAULTS: [Fault; 2] = [Fault::NoSpace, Fault::Eio];

#[test]
fn a_failed_append_is_not_acknowledged_and_leaves_the_file_as_it_was() {
    for (i, fault) in WRITE_FAULTS.into_iter().enumerate() {
        let dir = TempDir::new(&format!("append-{i}"));
        let path = dir.file();
        let acked = block_on({
            let (path, folder) = (path.clone(), dir.0.clone());
            async move {
                let s = open(&path, Durability::Write);
                let mut acked = seed(&s).await;
                let before = std::fs::read(&path).unwrap();
                faults::arm(&folder, Point::Append, fault, 1);
                let e = s.set("c", "3".into()).await.unwrap_err();
                assert_io(&e, &path, fault);
                assert_eq!(s.get("c").await.unwrap(), None, "{fault:?}");
                // A short write was cut off again: the file is byte for byte what it was.
                assert_eq!(std::fs::read(&path).unwrap(), before, "{fault:?}");
                // The fault was transient: the store keeps working.
                s.set("d", "4".into()).await.unwrap();
                s.update("a", Add).await.unwrap();
                acked.insert("d".into(), "4".into());
                acked.insert("a".into(), "3".into());
                assert_eq!(s.get("a").await.unwrap().as_deref(), Some("3"));
                s.close().await.unwrap();
                acked
            }
        });
        assert_reopened(&path, &acked, &[]);
    }
}

#[test]
fn a_short_append_that_cannot_be_cut_off_is_a_torn_tail_dropped_on_reopen() {
    for (i, n) in [1usize, 9, 14].into_iter().enumerate() {
        let dir = TempDir::new(&format!("torn-{i}"));
        let path = dir.file();
        let (acked, before) = block_on({
            let (path, folder) = (path.clone(), dir.0.clone());
            async move {
                let s = open(&path, Durability::Write);
                let acked = seed(&s).await;
                let before = std::fs::read(&path).unwrap();
                faults::arm(&folder, Point::Append, Fault::Short(n), 1);
                faults::arm(&folder, Point::Cut, Fault::Eio, 1);
                let e = s.set("c", "3".into()).await.unwrap_err();
                assert_io(&e, &path, Fault::Short(n));
                let after = std::fs::read(&path).unwrap();
                assert_eq!(after.len(), before.len() + n);
                assert_eq!(&after[..before.len()], &before[..]);
                assert_eq!(&after[before.len()..], &format::encode_put("c", "3")[..n]);
                // Left as it is, this process's view ignores the torn record too.
                assert_eq!(s.get("c").await.unwrap(), None);
                (acked, before)
            }
        });
        faults::clear(&dir.0);
        // Another store reads the file: the torn tail is dropped, the rest is there; its
        // first write cuts the torn tail off before appending.
        block_on({
            let (path, acked) = (path.clone(), acked.clone());
            async move {
                let s = open(&path, Durability::Write);
                for (k, v) in &acked {
                    assert_eq!(s.get(k).await.unwrap().as_ref(), Some(v));
                }
                assert_eq!(s.get("c").await.unwrap(), None);
                assert_eq!(
                    std::fs::metadata(&path).unwrap().len(),
                    (before.len() + n) as u64
                );
                s.set("d", "4".into()).await.unwrap();
                let mut expected = before.clone();
                expected.extend(format::encode_put("d", "4"));
                assert_eq!(std::fs::read(&path).unwrap(), expected);
                s.close().await.unwrap();
            }
        });
        let mut acked = acked;
        acked.insert("d".into(), "4".into());
        assert_reopened(&path, &acked, &[]);
    }
}

#[test]
fn a_failed_fsync_rejects_every_waiting_write_and_the_store_refuses_cleanly() {
    for (i, fault) in OTHER_FAULTS.into_iter().enumerate() {
        let dir = TempDir::new(&format!("fsync-{i}"));
        let path = dir.file();
        let acked = block_on({
            let (path, folder) = (path.clone(), dir.0.clone());
            async move {
                let s = open(&path, Durability::Fsync);
                let acked = seed(&s).await;
                faults::arm(&folder, Point::Sync, fault, 1);
                // Two writes share the failing flush (group commit): neither is acknowledged,
                // though the fault fired once and a retried fdatasync would succeed.
                let (c, e) = join(s.set("c", "3".into()), s.set("e", "5".into())).await;
                assert_eq!(faults::fired(&folder, Point::Sync), 1);
                for r in [c, e] {
                    let err = r.unwrap_err();
                    assert_io(&err, &path, fault);
                    assert!(err.to_string().contains("fdatasync"), "{err}");
                }
                faults::clear(&folder);
                // Refuses cleanly: reads and writes reject with the same error, nothing more
                // is written.
                let len = std::fs::metadata(&path).unwrap().len();
                assert_io(&s.get("a").await.unwrap_err(), &path, fault);
                assert_io(&s.set("d", "4".into()).await.unwrap_err(), &path, fault);
                assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
                s.close().await.ok();
                acked
            }
        });
        // The records whose flush failed may or may not have reached the disk.
        assert_reopened(&path, &acked, &["c", "e"]);
        block_on({
            let path = path.clone();
            async move {
                let s = open(&path, Durability::Fsync);
                s.set("d", "4".into()).await.unwrap();
                assert_eq!(s.get("d").await.unwrap().as_deref(), Some("4"));
                s.close().await.unwrap();
            }
        });
    }
}

/// `compact()` failing at `point`: rejected, the data file untouched (before the rename), no
/// temp file left, and the store keeps working.
fn compaction_fails_at(point: Point, faults_to_try: &[Fault]) {
    for (i, &fault) in faults_to_try.iter().enumerate() {
        let dir = TempDir::new(&format!("compact-{point:?}-{i}"));
        let path = dir.file();
        let acked = block_on({
            let (path, folder) = (path.clone(), dir.0.clone());
            async move {
                let s = open(&path, Durability::Write);
                let mut acked = seed(&s).await;
                let before = std::fs::read(&path).unwrap();
                faults::arm(&folder, point, fault, 1);
                let e = s.backend().compact().await.unwrap_err();
                assert_eq!(faults::fired(&folder, point), 1);
                assert_io(&e, &path, fault);
                if point != Point::DirSync {
                    assert_eq!(std::fs::read(&path).unwrap(), before, "{point:?} {fault:?}");
                }
                for (k, v) in &acked {
                    assert_eq!(s.get(k).await.unwrap().as_ref(), Some(v));
                }
                s.set("d", "4".into()).await.unwrap();
                acked.insert("d".into(), "4".into());
                s.backend().compact().await.unwrap();
                let text = std::fs::read(&path).unwrap();
                let parsed = format::parse_file(&text).unwrap();
                assert!(parsed.log.ops.is_empty() && parsed.map == acked);
                s.close().await.unwrap();
                acked
            }
        });
        assert_eq!(dir.leftovers(), Vec::<String>::new(), "{point:?} {fault:?}");
        assert_reopened(&path, &acked, &[]);
    }
}

#[test]
fn a_failed_compaction_temp_write_leaves_the_store_as_it_was() {
    compaction_fails_at(Point::TempWrite, &WRITE_FAULTS);
}

#[test]
fn a_failed_compaction_fsync_leaves_the_store_as_it_was() {
    compaction_fails_at(Point::TempSync, &OTHER_FAULTS);
}

#[test]
fn a_failed_rename_leaves_the_store_as_it_was() {
    compaction_fails_at(Point::Rename, &OTHER_FAULTS);
}

#[test]
fn a_failed_folder_fsync_after_the_rename_reports_and_the_store_keeps_working() {
    compaction_fails_at(Point::DirSync, &OTHER_FAULTS);
}

#[test]
fn close_reports_a_failed_compaction_and_keeps_the_records() {
    for point in [Point::TempWrite, Point::TempSync, Point::Rename] {
        let dir = TempDir::new(&format!("close-{point:?}"));
        let path = dir.file();
        let acked = block_on({
            let (path, folder) = (path.clone(), dir.0.clone());
            async move {
                let s = open(&path, Durability::Fsync);
                let acked = seed(&s).await;
                let before = std::fs::read(&path).unwrap();
                faults::arm(&folder, point, Fault::NoSpace, u32::MAX);
                assert_io(&s.close().await.unwrap_err(), &path, Fault::NoSpace);
                assert_eq!(std::fs::read(&path).unwrap(), before);
                acked
            }
        });
        faults::clear(&dir.0);
        assert_eq!(dir.leftovers(), Vec::<String>::new());
        assert_reopened(&path, &acked, &[]);
    }
}

#[test]
fn the_first_write_fails_cleanly_when_the_file_cannot_be_created() {
    for (i, point) in [Point::TempWrite, Point::TempSync, Point::Rename]
        .into_iter()
        .enumerate()
    {
        let dir = TempDir::new(&format!("create-{i}"));
        let path = dir.file();
        block_on({
            let (path, folder) = (path.clone(), dir.0.clone());
            async move {
                let s = open(&path, Durability::Write);
                faults::arm(&folder, point, Fault::Eio, 1);
                assert_io(
                    &s.set("a", "1".into()).await.unwrap_err(),
                    &path,
                    Fault::Eio,
                );
                assert!(!Path::new(&path).exists());
                assert_eq!(s.get("a").await.unwrap(), None);
                s.set("a", "1".into()).await.unwrap();
                s.close().await.unwrap();
            }
        });
        assert_eq!(dir.leftovers(), Vec::<String>::new());
        assert_reopened(&path, &BTreeMap::from([("a".into(), "1".into())]), &[]);
    }
}

#[test]
fn failing_background_compactions_never_fail_writes() {
    let dir = TempDir::new("background");
    let path = dir.file();
    let acked = block_on({
        let (path, folder) = (path.clone(), dir.0.clone());
        async move {
            let options = FileOptions {
                compact_min_bytes: Some(256),
                ..FileOptions::default()
            };
            let s = Store::new(FileBackend::new(&path, options).unwrap());
            s.set("first", "0".into()).await.unwrap();
            faults::arm(&folder, Point::TempWrite, Fault::NoSpace, u32::MAX);
            let mut acked = BTreeMap::from([("first".to_owned(), "0".to_owned())]);
            // Background compactions run on a thread, which a loaded machine may start late:
            // keep writing (pausing now and then) until one has met the fault.
            let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let mut i = 0;
            while i < 200 || faults::fired(&folder, Point::TempWrite) == 0 {
                assert!(
                    std::time::Instant::now() < give_up,
                    "no background compaction ran"
                );
                let (k, v) = (format!("k{}", i % 7), i.to_string());
                s.set(&k, v.clone()).await.unwrap();
                acked.insert(k, v);
                i += 1;
                if i >= 200 {
                    let pause = std::time::Instant::now() + std::time::Duration::from_millis(1);
                    crate::runtime::timer::Sleep::until(pause).await;
                }
            }
            faults::clear(&folder);
            s.close().await.unwrap();
            acked
        }
    });
    assert_eq!(dir.leftovers(), Vec::<String>::new());
    let text = std::fs::read(&path).unwrap();
    let parsed = format::parse_file(&text).unwrap();
    assert!(parsed.log.ops.is_empty() && parsed.map == acked);
    assert_reopened(&path, &acked, &[]);
}

/// `+1` on a JSON number (missing = 0).
struct Add;

impl crate::core::Updater for Add {
    type Error = ();
    fn call(
        self,
        current: Option<&str>,
    ) -> impl std::future::Future<
        Output = std::result::Result<Option<String>, crate::core::UpdateError<()>>,
    > + 'static {
        let n: i64 = current.and_then(|c| c.parse().ok()).unwrap_or(0);
        async move { Ok(Some((n + 1).to_string())) }
    }
}
