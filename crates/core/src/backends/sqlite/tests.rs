//! The SQLite backend against plain rusqlite connections standing in for other programs and
//! processes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::*;
use crate::backends::contract_tests::AddOne;
use crate::core::Store;
use crate::runtime::executor::block_on;

/// A fresh folder under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("rd-sqlite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn db(&self) -> PathBuf {
        self.0.join("db.sqlite")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store(path: &Path, table: &str, durability: Durability) -> Store<SqliteBackend> {
    let table = TableName::parse(table).unwrap();
    Store::new(SqliteBackend::new(
        Target::File(path.to_owned()),
        &table,
        durability,
    ))
}

const RESHUFFLE_DDL: &str =
    "CREATE TABLE IF NOT EXISTS reshuffledb (id varchar primary key, value varchar)";

/// SQLite is built without `SQLITE_DIRECT_OVERFLOW_READ` (`.cargo/config.toml`): a large
/// value is copied from the page cache, not read again from the file with a system call per
/// 4 KiB page on every `get`.
#[test]
fn large_values_are_read_through_the_page_cache() {
    // SAFETY: the name is a NUL-terminated string; the call only reads SQLite's static list.
    let used =
        unsafe { rusqlite::ffi::sqlite3_compileoption_used(c"DIRECT_OVERFLOW_READ".as_ptr()) };
    assert_eq!(used, 0, "SQLite was built with SQLITE_DIRECT_OVERFLOW_READ");
}

#[test]
fn reads_a_table_made_by_another_program() {
    let dir = TempDir::new("foreign");
    let path = dir.db();
    let other = Connection::open(&path).unwrap();
    other.execute(RESHUFFLE_DDL, []).unwrap();
    other
        .execute(
            "INSERT INTO reshuffledb VALUES ('a', '{\"x\":[1,2]}'), ('b', '\"text\"'), ('n', NULL)",
            [],
        )
        .unwrap();
    let s = store(&path, "reshuffledb", Durability::Normal);
    let (a, b, n, keys) = block_on({
        let s = s.clone();
        async move {
            (
                s.get("a").await.unwrap(),
                s.get("b").await.unwrap(),
                s.get("n").await.unwrap(),
                s.list("").await.unwrap(),
            )
        }
    });
    assert_eq!(a.as_deref(), Some("{\"x\":[1,2]}"));
    assert_eq!(b.as_deref(), Some("\"text\""));
    assert_eq!(n, None, "a NULL value reads as missing");
    assert_eq!(keys, ["a", "b", "n"]);

    // And what we write is plain JSON text in the same table.
    block_on({
        let s = s.clone();
        async move {
            s.set("c", "{\"y\":true}".into()).await.unwrap();
            s.update("counter", AddOne).await.unwrap();
            s.close().await.unwrap();
        }
    });
    let (ty, text): (String, String) = other
        .query_row(
            "SELECT typeof(value), value FROM reshuffledb WHERE id = 'c'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((ty.as_str(), text.as_str()), ("text", "{\"y\":true}"));
    let counter: String = other
        .query_row(
            "SELECT value FROM reshuffledb WHERE id = 'counter'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(counter, "1");
}

#[test]
fn keys_sort_by_code_point_whatever_the_declared_collation() {
    let dir = TempDir::new("collate");
    let path = dir.db();
    let other = Connection::open(&path).unwrap();
    other
        .execute(
            "CREATE TABLE t (id varchar COLLATE NOCASE primary key, value varchar)",
            [],
        )
        .unwrap();
    let s = store(&path, "t", Durability::Normal);
    let (all, c) = block_on(async move {
        // Distinct under NOCASE too, ordered differently by it ("a" < "b" < "C").
        for k in ["b", "C", "a", "é", "🎉", "\u{FFFD}"] {
            s.set(k, "1".into()).await.unwrap();
        }
        let r = (s.list("").await.unwrap(), s.list("C").await.unwrap());
        s.close().await.unwrap();
        r
    });
    assert_eq!(all, ["C", "a", "b", "é", "\u{FFFD}", "🎉"]);
    assert_eq!(c, ["C"]);
}

#[test]
fn list_is_a_range_scan_of_the_primary_key() {
    let conn = Connection::open_in_memory().unwrap();
    let sql = Statements::new(&TableName::parse("reshuffledb").unwrap());
    conn.execute(&sql.create, []).unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.list_range))
        .unwrap()
        .query_map(("a", "b"), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let plan = plan.join("; ");
    assert!(
        plan.contains("USING COVERING INDEX") && plan.contains("id>? AND id<?"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "no sort step: {plan}");
    // With expiring rows: the same range, reading each row's expiry.
    let live: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.list_range_live))
        .unwrap()
        .query_map(("a", "b"), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let live = live.join("; ");
    assert!(live.contains("id>? AND id<?"), "{live}");
    assert!(!live.contains("TEMP B-TREE"), "no sort step: {live}");
}

#[test]
fn the_purge_and_the_expiry_check_read_the_partial_index() {
    let conn = Connection::open_in_memory().unwrap();
    let sql = Statements::new(&TableName::parse("reshuffledb").unwrap());
    conn.execute(&sql.create, []).unwrap();
    conn.execute(&sql.expiry_index, []).unwrap();
    for statement in [&sql.purge, &sql.next_expiry, &sql.any_expiring] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(
            plan.contains("reshuffledb_expires_at"),
            "{statement}: {plan}"
        );
    }
}

#[test]
fn a_write_waits_out_another_connections_transaction_on_the_worker() {
    let dir = TempDir::new("busy");
    let path = dir.db();
    let s = store(&path, "reshuffledb", Durability::Normal);
    block_on({
        let s = s.clone();
        async move { s.set("first", "1".into()).await.unwrap() }
    });
    // Another process holds the write lock for longer than the JS thread ever waits.
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    other
        .execute(
            "INSERT INTO reshuffledb (id, value) VALUES ('other', '2')",
            [],
        )
        .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        other.execute_batch("COMMIT").unwrap();
    });
    let (keys, n) = block_on(async move {
        s.set("mine", "3".into()).await.unwrap();
        let n = s.update("n", AddOne).await.unwrap();
        let keys = s.list("").await.unwrap();
        s.close().await.unwrap();
        (keys, n)
    });
    release.join().unwrap();
    assert_eq!(keys, ["first", "mine", "n", "other"]);
    assert_eq!(n, (None, Some("1".into())));
}

#[test]
fn fsync_writes_queued_together_all_commit() {
    let dir = TempDir::new("fsync");
    let path = dir.db();
    let s = store(&path, "reshuffledb", Durability::Fsync);
    let keys = block_on({
        let s = s.clone();
        async move {
            let mut pending = Vec::new();
            for i in 0..100 {
                pending.push(s.set(&format!("k{i:03}"), i.to_string()));
            }
            for p in pending {
                p.await.unwrap();
            }
            let keys = s.list("k").await.unwrap();
            s.close().await.unwrap();
            keys
        }
    });
    assert_eq!(keys.len(), 100);
    let other = Connection::open(&path).unwrap();
    let n: i64 = other
        .query_row("SELECT count(*) FROM reshuffledb", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 100);
}

#[test]
fn a_foreign_table_without_a_primary_key_is_a_backend_error_naming_it() {
    let dir = TempDir::new("nopk");
    let path = dir.db();
    Connection::open(&path)
        .unwrap()
        .execute("CREATE TABLE loose (id varchar, value varchar)", [])
        .unwrap();
    let s = store(&path, "loose", Durability::Normal);
    let err = block_on(async move {
        let e = s.set("k", "1".into()).await.unwrap_err();
        s.close().await.unwrap();
        e
    });
    assert_eq!(err.code(), "ERR_DATASTORE_BACKEND");
    assert!(err.to_string().contains("loose"), "{err}");
}

#[test]
fn a_missing_folder_is_an_io_error_with_the_path_and_the_next_use_tries_again() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("later").join("db.sqlite");
    let s = store(&path, "reshuffledb", Durability::Normal);
    let (first, second) = block_on({
        let s = s.clone();
        let dir = dir.0.clone();
        async move {
            let first = s.get("k").await.unwrap_err();
            std::fs::create_dir_all(dir.join("later")).unwrap();
            let second = s.set("k", "1".into()).await;
            s.close().await.unwrap();
            (first, second)
        }
    });
    assert_eq!(first.code(), "ERR_DATASTORE_IO");
    assert!(first.to_string().contains(&path.display().to_string()));
    assert_eq!(second, Ok(()));
}

#[test]
fn memory_databases_are_private() {
    let table = TableName::parse("reshuffledb").unwrap();
    let a = Store::new(SqliteBackend::new(
        Target::Memory,
        &table,
        Durability::Normal,
    ));
    let b = Store::new(SqliteBackend::new(
        Target::Memory,
        &table,
        Durability::Normal,
    ));
    let got = block_on(async move {
        a.set("k", "1".into()).await.unwrap();
        let got = (a.get("k").await.unwrap(), b.get("k").await.unwrap());
        a.close().await.unwrap();
        b.close().await.unwrap();
        got
    });
    assert_eq!(got, (Some("1".into()), None));
}

#[test]
fn connections_use_wal_and_the_configured_sync_level() {
    let dir = TempDir::new("pragmas");
    let path = dir.db();
    let sql = Statements::new(&TableName::parse("reshuffledb").unwrap());
    for (durability, level) in [(Durability::Normal, 1), (Durability::Fsync, 2)] {
        let worker = conn::open_worker(&path, durability, &sql).unwrap();
        let inline = conn::open_inline(&path, durability).unwrap();
        for c in [&worker, &inline] {
            let mode: String = c
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
            assert_eq!((mode.as_str(), sync), ("wal", level));
        }
        let auto: i64 = inline
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(auto, 0, "the JS thread's connection never checkpoints");
    }
}

#[test]
fn key_locks_are_per_table_and_follow_sqlite_name_folding() {
    let names = |table: &str| {
        let t = TableName::parse(table).unwrap();
        SqliteBackend::new(Target::Memory, &t, Durability::Normal).lock_name("k")
    };
    assert_eq!(names("Items"), names("main.items"));
    assert_ne!(names("items"), names("other"));
    assert_ne!(names("items"), names("aux.items"));
}

#[test]
fn get_now_answers_once_open_and_borrows_the_stored_text() {
    let dir = TempDir::new("get-now");
    let path = dir.db();
    let s = store(&path, "reshuffledb", Durability::Normal);
    let owned = crate::core::backend::owned;
    assert_eq!(
        s.get_now("a", owned),
        None,
        "not opened yet: the store queues"
    );
    block_on({
        let s = s.clone();
        async move { s.set("a", "{\"x\":1}".into()).await.unwrap() }
    });
    assert_eq!(s.get_now("a", owned), Some(Ok(Some("{\"x\":1}".into()))));
    assert_eq!(s.get_now("b", owned), Some(Ok(None)));
    let other = Connection::open(&path).unwrap();
    other
        .execute(
            "INSERT INTO reshuffledb (id, value) VALUES ('n', NULL), ('i', 7)",
            [],
        )
        .unwrap();
    assert_eq!(s.get_now("n", owned), Some(Ok(None)));
    assert_eq!(s.get_now("i", owned), Some(Ok(Some("7".into()))));
    block_on(async move { s.close().await.unwrap() });
}

#[test]
fn get_now_hands_a_large_value_to_be_read_once_and_get_reads_it_whole() {
    let dir = TempDir::new("get-now-large");
    let s = store(&dir.db(), "reshuffledb", Durability::Normal);
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(1 << 20));
    block_on({
        let (s, big) = (s.clone(), big.clone());
        async move { s.set("big", big).await.unwrap() }
    });
    let kind = |v: Option<StoredText<'_>>| match v {
        Some(StoredText::Large(l)) => format!("large {}", l.len()),
        Some(StoredText::Borrowed(_)) => "borrowed".into(),
        None => "none".into(),
    };
    assert_eq!(
        s.get_now("big", kind),
        Some(Ok(format!("large {}", big.len())))
    );
    assert_eq!(
        s.get_now("big", crate::core::backend::owned),
        Some(Ok(Some(big.clone())))
    );
    let got = block_on({
        let s = s.clone();
        async move { s.get("big").await.unwrap() }
    });
    assert_eq!(got, Some(big));
    block_on(async move { s.close().await.unwrap() });
}

#[test]
fn set_now_leaves_a_key_held_by_another_process_to_the_queued_path() {
    let dir = TempDir::new("set-now");
    let path = dir.db();
    let s = store(&path, "reshuffledb", Durability::Normal);
    assert_eq!(s.set_now("k", "1", None), None, "not opened yet");
    block_on({
        let s = s.clone();
        async move { s.set("k", "1".into()).await.unwrap() }
    });
    assert_eq!(s.set_now("k", "2", None), Some(Ok(())));
    // Another open file description of the lock file stands for another process.
    let other = ProcessLocks::open(&lock_path(&path)).unwrap();
    let held = other
        .try_lock_key(&s.backend().lock_name("k"))
        .unwrap()
        .expect("free");
    assert_eq!(s.set_now("k", "3", None), None);
    assert_eq!(s.remove_now("k"), None);
    assert_eq!(s.set_now("other", "4", None), Some(Ok(())));
    let got = block_on({
        let s = s.clone();
        async move {
            // The queued set waits for the other process on a thread, until it lets go.
            let queued = s.set("k", "3".into());
            let (tx, rx) = crate::runtime::executor::oneshot();
            let exec = crate::runtime::executor::Executor::current().expect("executor");
            exec.spawn(async move { tx.send(queued.await) });
            drop(held);
            rx.await.expect("sent").unwrap();
            s.get("k").await.unwrap()
        }
    });
    assert_eq!(got.as_deref(), Some("3"));
    let fsync = store(&path, "reshuffledb", Durability::Fsync);
    block_on({
        let f = fsync.clone();
        async move { f.get("k").await.unwrap() }
    });
    assert_eq!(
        fsync.set_now("k", "5", None),
        None,
        "fsync writes go to the worker"
    );
    block_on(async move {
        s.close().await.unwrap();
        fsync.close().await.unwrap();
    });
}
