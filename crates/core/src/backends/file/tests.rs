use std::future::Future;
use std::path::PathBuf;

use super::*;
use crate::core::{Store, UpdateError, Updater};
use crate::runtime::executor::block_on;

/// A fresh folder for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rd-file-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn store(path: &str) -> Store<FileBackend> {
    Store::new(FileBackend::new(path, FileOptions::default()).unwrap())
}

fn small_log(path: &str) -> Store<FileBackend> {
    let options = FileOptions {
        compact_min_bytes: Some(256),
        ..FileOptions::default()
    };
    Store::new(FileBackend::new(path, options).unwrap())
}

struct Add(i64);

impl Updater for Add {
    type Error = ();
    fn call(
        self,
        current: Option<&str>,
    ) -> impl Future<Output = std::result::Result<Option<String>, UpdateError<()>>> + 'static {
        let n: i64 = current.and_then(|c| c.parse().ok()).unwrap_or(0);
        let add = self.0;
        async move { Ok(Some((n + add).to_string())) }
    }
}

fn is_one_object(path: &str) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(m)) => m,
        other => panic!("not one JSON object: {other:?}\n{text}"),
    }
}

#[test]
fn writes_append_and_close_compacts_to_one_object() {
    let dir = TempDir::new("basic");
    let path = dir.file("s.json");
    block_on({
        let path = path.clone();
        async move {
            let s = store(&path);
            assert_eq!(s.get("a").await.unwrap(), None);
            assert!(
                !std::path::Path::new(&path).exists(),
                "created on first write"
            );
            s.set("a", "{\"x\":1}".into()).await.unwrap();
            s.set("b", "[1,2]".into()).await.unwrap();
            s.remove("a").await.unwrap();
            s.update("n", Add(5)).await.unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("{}\n") && text.lines().count() == 5,
                "{text}"
            );
            s.close().await.unwrap();
        }
    });
    let m = is_one_object(&path);
    assert_eq!(m.len(), 2);
    assert_eq!(m["b"], serde_json::json!([1, 2]));
    assert_eq!(m["n"], serde_json::json!(5));
    block_on(async move {
        let s = store(&path);
        assert_eq!(s.list("").await.unwrap(), vec!["b", "n"]);
        s.close().await.unwrap();
    });
}

/// Writes `base`, the record `b = 2`, then the record `c = 3` cut short as a killed writer
/// leaves it. Returns the bytes and the length of the part that is whole.
fn write_with_torn_tail(path: &str, base: &[u8]) -> (Vec<u8>, u64) {
    let mut bytes = base.to_vec();
    bytes.extend(format::encode_put("b", "2"));
    let good = bytes.len() as u64;
    let torn = format::encode_put("c", "3");
    bytes.extend_from_slice(&torn[..torn.len() - 3]);
    std::fs::write(path, &bytes).unwrap();
    (bytes, good)
}

#[test]
fn a_torn_last_record_is_dropped_quietly() {
    let dir = TempDir::new("torn");
    let path = dir.file("s.json");
    let (bytes, good) = write_with_torn_tail(&path, b"{\"a\":1}");
    block_on({
        let path = path.clone();
        async move {
            let s = store(&path);
            assert_eq!(s.get("b").await.unwrap().as_deref(), Some("2"));
            assert_eq!(s.get("c").await.unwrap(), None);
            // A reader leaves the file alone; the next writer cuts the torn record off.
            assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes.len() as u64);
            s.set("d", "4".into()).await.unwrap();
            let text = std::fs::read(&path).unwrap();
            assert_eq!(&text[..good as usize], &bytes[..good as usize]);
            assert_eq!(&text[good as usize..], &format::encode_put("d", "4")[..]);
            s.close().await.unwrap();
        }
    });
    let m = is_one_object(&path);
    assert_eq!(m.keys().collect::<Vec<_>>(), vec!["a", "b", "d"]);
}

/// A process whose first look at the file is a read under a key lock (an `update`) sees a torn
/// record of a killed writer without cutting it. Its append must still come after a cut, not
/// after the torn bytes: merged with them it would be a bad last line, dropped on reading.
#[test]
fn an_update_after_a_torn_record_is_not_lost() {
    let dir = TempDir::new("torn-update");
    let path = dir.file("s.json");
    write_with_torn_tail(&path, b"{\"a\":1}\n");
    block_on({
        let path = path.clone();
        async move {
            let s = store(&path);
            assert_eq!(
                s.update("n", Add(1)).await.unwrap(),
                (None, Some("1".into()))
            );
            s.update("n", Add(1)).await.unwrap();
        }
    });
    block_on(async move {
        // A fresh store (no close: a crash), reading what the file holds.
        let s = store(&path);
        assert_eq!(s.get("n").await.unwrap().as_deref(), Some("2"));
        assert_eq!(s.get("b").await.unwrap().as_deref(), Some("2"));
        assert_eq!(s.get("c").await.unwrap(), None);
        s.close().await.unwrap();
    });
}

#[test]
fn damage_before_the_end_is_corrupt_and_the_file_is_left_alone() {
    let dir = TempDir::new("damage");
    let path = dir.file("s.json");
    let mut bytes = b"{\"a\":1}\n".to_vec();
    let at = bytes.len() as u64;
    let mut bad = format::encode_put("b", "2");
    bad[14] = b'9';
    bytes.extend(bad);
    bytes.extend(format::encode_put("c", "3"));
    std::fs::write(&path, &bytes).unwrap();
    block_on({
        let path = path.clone();
        async move {
            let s = store(&path);
            match s.get("a").await {
                Err(DatastoreError::Corrupt {
                    path: p, position, ..
                }) => {
                    assert_eq!(p, path);
                    assert_eq!(position, at);
                }
                other => panic!("expected Corrupt, got {other:?}"),
            }
            for _ in 0..2 {
                assert_eq!(
                    s.set("x", "1".into()).await.unwrap_err().code(),
                    "ERR_DATASTORE_CORRUPT"
                );
                assert_eq!(
                    s.list("").await.unwrap_err().code(),
                    "ERR_DATASTORE_CORRUPT"
                );
            }
            s.close().await.unwrap();
        }
    });
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is unchanged"
    );
}

#[test]
fn a_base_that_is_not_an_object_is_corrupt_not_empty() {
    let dir = TempDir::new("base");
    for (i, content) in ["null", "[]", "", "{\"a\":", "{\"a\":1"].iter().enumerate() {
        let path = dir.file(&format!("s{i}.json"));
        std::fs::write(&path, content).unwrap();
        let p = path.clone();
        block_on(async move {
            let s = store(&p);
            assert_eq!(
                s.get("a").await.unwrap_err().code(),
                "ERR_DATASTORE_CORRUPT"
            );
            assert!(s.set("a", "1".into()).await.is_err());
            s.close().await.unwrap();
        });
        assert_eq!(std::fs::read_to_string(&path).unwrap(), *content);
    }
}

#[test]
fn a_crash_during_compaction_leaves_a_store_with_all_data() {
    let dir = TempDir::new("crash-compact");
    let path = dir.file("s.json");
    block_on({
        let path = path.clone();
        async move {
            let s = store(&path);
            for i in 0..20 {
                s.set(&format!("k{i}"), i.to_string()).await.unwrap();
            }
            // Not closed: the file is a base plus records, as after a crash.
        }
    });
    // Crash before the rename: a whole temp file, and a partial one of another process.
    let whole = format::encode_base(&BTreeMap::from([("k0".to_owned(), "99".to_owned())]));
    std::fs::write(format!("{path}.tmp-{}", std::process::id()), &whole).unwrap();
    std::fs::write(format!("{path}.tmp-999999"), &whole[..5]).unwrap();
    std::fs::write(format!("{path}.tmp-999999-7-bg"), &whole[..5]).unwrap();
    block_on({
        let path = path.clone();
        async move {
            let s = store(&path);
            for i in 0..20 {
                assert_eq!(s.get(&format!("k{i}")).await.unwrap(), Some(i.to_string()));
            }
            s.backend().compact().await.unwrap();
            assert_eq!(s.list("").await.unwrap().len(), 20);
            // The compaction cleared what the crashed ones left.
            assert!(!std::path::Path::new(&format!("{path}.tmp-999999")).exists());
            assert!(!std::path::Path::new(&format!("{path}.tmp-999999-7-bg")).exists());
            assert!(!std::path::Path::new(&format!("{path}.tmp-{}", std::process::id())).exists());
            s.close().await.unwrap();
        }
    });
    let m = is_one_object(&path);
    assert_eq!(m.len(), 20);
    assert_eq!(m["k0"], serde_json::json!(0));
}

#[test]
fn two_handles_see_each_others_writes_and_compactions() {
    let dir = TempDir::new("two");
    let path = dir.file("s.json");
    block_on(async move {
        // Each handle has its own lock file description: they behave as two processes.
        let a = small_log(&path);
        let b = small_log(&path);
        a.set("x", "1".into()).await.unwrap();
        assert_eq!(b.get("x").await.unwrap().as_deref(), Some("1"));
        for _ in 0..100 {
            a.update("n", Add(1)).await.unwrap();
            b.update("n", Add(1)).await.unwrap();
        }
        // Compactions ran (small threshold) and replaced the file under the other handle.
        a.backend().shared.background_done().await;
        b.backend().shared.background_done().await;
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 2048, "{size} bytes");
        assert_eq!(a.get("n").await.unwrap().as_deref(), Some("200"));
        assert_eq!(b.get("n").await.unwrap().as_deref(), Some("200"));
        b.remove("x").await.unwrap();
        assert_eq!(a.list("").await.unwrap(), vec!["n"]);
        a.close().await.unwrap();
        b.set("y", "2".into()).await.unwrap();
        b.close().await.unwrap();
        let m = is_one_object(&path);
        assert_eq!(m.len(), 2);
    });
}

#[test]
fn fsync_durability_groups_writes() {
    let dir = TempDir::new("fsync");
    let path = dir.file("s.json");
    block_on(async move {
        let options = FileOptions {
            durability: Durability::Fsync,
            ..FileOptions::default()
        };
        let s = Store::new(FileBackend::new(&path, options).unwrap());
        // Started together, as JS calls would be.
        let exec = crate::runtime::executor::Executor::current().unwrap();
        let done = std::rc::Rc::new(Cell::new(0));
        for i in 0..50 {
            let (w, done) = (s.set(&format!("k{i}"), "true".into()), done.clone());
            exec.spawn(async move {
                w.await.unwrap();
                done.set(done.get() + 1);
            });
        }
        assert_eq!(s.list("k").await.unwrap().len(), 50);
        s.close().await.unwrap();
        assert_eq!(done.get(), 50);
        let flushes = s.backend().shared.syncer.flushes();
        assert!(
            (1..=10).contains(&flushes),
            "{flushes} flushes for 50 writes"
        );
    });
}

#[test]
fn bad_paths_fail_on_first_use_naming_the_path() {
    let dir = TempDir::new("paths");
    let missing_parent = dir.file("nope/s.json");
    let folder = dir.0.to_string_lossy().into_owned();
    for path in [missing_parent, folder] {
        let p = path.clone();
        block_on(async move {
            let s = store(&p);
            let e = s.set("a", "1".into()).await.unwrap_err();
            assert_eq!(e.code(), "ERR_DATASTORE_IO");
            assert!(e.to_string().contains(&p), "{e}");
            s.close().await.unwrap();
        });
    }
    assert!(FileBackend::new("", FileOptions::default()).is_err());
    assert!(Durability::parse("sometimes").is_err());
}

#[test]
fn a_file_written_by_reshuffle_is_read() {
    let dir = TempDir::new("reshuffle");
    let path = dir.file("s.json");
    std::fs::write(&path, r#"{"a":{"n":1},"b":[1,"x"],"c":null,"d":"s"}"#).unwrap();
    block_on(async move {
        let s = store(&path);
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some(r#"{"n":1}"#));
        assert_eq!(s.get("c").await.unwrap().as_deref(), Some("null"));
        assert_eq!(s.list("").await.unwrap(), vec!["a", "b", "c", "d"]);
        s.set("e", "5".into()).await.unwrap();
        // The record follows the base directly (reshuffle writes no newline after it).
        let other = store(&path);
        assert_eq!(other.get("e").await.unwrap().as_deref(), Some("5"));
        assert_eq!(other.list("").await.unwrap().len(), 5);
        other.close().await.unwrap();
        s.close().await.unwrap();
        let m = is_one_object(&path);
        assert_eq!(m.len(), 5);
        assert_eq!(m["b"], serde_json::json!([1, "x"]));
    });
}

#[test]
fn compaction_keeps_permissions_and_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("perms");
    let target = dir.file("real.json");
    let link = dir.file("link.json");
    std::fs::write(&target, "{\"a\":1}").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    block_on({
        let link = link.clone();
        async move {
            let s = store(&link);
            s.set("b", "2".into()).await.unwrap();
            s.close().await.unwrap();
        }
    });
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let m = is_one_object(&target);
    assert_eq!(m.len(), 2);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn changes_that_change_nothing_append_nothing() {
    let dir = TempDir::new("noop");
    let path = dir.file("s.json");
    block_on(async move {
        let s = store(&path);
        s.set("a", "1".into()).await.unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        s.set("a", "1".into()).await.unwrap();
        s.remove("missing").await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        s.set("a", "2".into()).await.unwrap();
        s.remove("a").await.unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > size);
        assert_eq!(s.get("a").await.unwrap(), None);
        s.close().await.unwrap();
    });
}

#[test]
fn get_now_answers_from_memory_only_while_the_file_is_known_unchanged() {
    let dir = TempDir::new("get-now");
    let path = dir.file("s.json");
    let a = store(&path);
    let b = store(&path);
    let owned = crate::core::backend::owned;
    assert_eq!(
        a.get_now("k", owned),
        None,
        "not opened yet: the store queues"
    );
    // A write moves the change count, its own too: the next read compares with the file once.
    block_on({
        let a = a.clone();
        async move {
            a.set("k", "1".into()).await.unwrap();
            assert_eq!(a.get("k").await.unwrap().as_deref(), Some("1"));
        }
    });
    assert_eq!(a.get_now("k", owned), Some(Ok(Some("1".into()))));
    assert_eq!(a.get_now("missing", owned), Some(Ok(None)));

    // Another writer of the file moves the change count: `a` must look at the file again.
    block_on({
        let b = b.clone();
        async move { b.set("k", "2".into()).await.unwrap() }
    });
    assert_eq!(a.get_now("k", owned), None, "the file may have changed");
    let seen = block_on({
        let a = a.clone();
        async move { a.get("k").await.unwrap() }
    });
    assert_eq!(seen.as_deref(), Some("2"));
    assert_eq!(
        a.get_now("k", owned),
        Some(Ok(Some("2".into()))),
        "current again"
    );

    block_on(async move {
        a.close().await.unwrap();
        b.close().await.unwrap();
    });
    let closed = store(&path);
    assert_eq!(closed.get_now("k", owned), None);
}

/// A file big enough to load on another thread ([`Shared::load_ahead`]): concurrent first
/// reads share the load and see every key, a first write loads it under the lock, and a read
/// after another handle compacted the file (a new file at the path) sees the new data.
#[test]
fn big_files_load_off_the_js_thread_and_reload_after_a_compaction() {
    let dir = TempDir::new("big-load");
    let path = dir.file("big.json");
    let base: serde_json::Map<String, serde_json::Value> = (0..40_000)
        .map(|i| (format!("key-{i:06}"), serde_json::Value::from(i)))
        .collect();
    std::fs::write(&path, serde_json::Value::Object(base).to_string()).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() >= LOAD_OFF_THREAD_MIN);
    block_on(async move {
        let a = store(&path);
        let b = store(&path);
        let (first, keys) = futures_util::future::join(a.get("key-012345"), a.list("key-01")).await;
        assert_eq!(first.unwrap().as_deref(), Some("12345"));
        assert_eq!(keys.unwrap().len(), 10_000);

        b.set("key-000000", "\"changed\"".into()).await.unwrap();
        assert_eq!(
            a.get("key-000000").await.unwrap().as_deref(),
            Some("\"changed\"")
        );
        b.backend().compact().await.unwrap();
        b.set("key-000001", "\"after\"".into()).await.unwrap();
        assert_eq!(
            a.get("key-000001").await.unwrap().as_deref(),
            Some("\"after\"")
        );
        assert_eq!(
            a.get("key-000000").await.unwrap().as_deref(),
            Some("\"changed\"")
        );
        assert_eq!(a.list("").await.unwrap().len(), 40_000);
        a.close().await.unwrap();
        b.close().await.unwrap();
    });
}
