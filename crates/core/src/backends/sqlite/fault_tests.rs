//! I/O failures of the SQLite backend that need no VFS: a database in a missing folder, at a
//! folder, in a file that is not a database, and in a folder removed while the store is open.
//! Each surfaces as `ERR_DATASTORE_IO` or `ERR_DATASTORE_BACKEND`, never as a panic.

use std::path::{Path, PathBuf};

use super::*;
use crate::core::Store;
use crate::runtime::executor::block_on;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("rd-sqlite-fault-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store(path: &Path, durability: Durability) -> Store<SqliteBackend> {
    let table = TableName::parse("kv").unwrap();
    Store::new(SqliteBackend::new(
        Target::File(path.to_owned()),
        &table,
        durability,
    ))
}

#[track_caller]
fn assert_io_or_backend(e: &DatastoreError) {
    assert!(
        matches!(e.code(), "ERR_DATASTORE_IO" | "ERR_DATASTORE_BACKEND"),
        "{e:?}"
    );
}

#[test]
fn a_database_in_a_missing_folder_is_an_io_error_naming_the_path() {
    let dir = TempDir::new("missing");
    let db = dir.0.join("no-such-folder").join("db.sqlite");
    block_on(async move {
        for durability in [Durability::Normal, Durability::Fsync] {
            let s = store(&db, durability);
            let e = s.set("a", "1".into()).await.unwrap_err();
            assert_eq!(e.code(), "ERR_DATASTORE_IO", "{e}");
            assert!(e.to_string().contains(&*db.to_string_lossy()), "{e}");
            // Not opened: every operation reports the same way, and close works.
            assert_eq!(s.get("a").await.unwrap_err().code(), "ERR_DATASTORE_IO");
            s.close().await.unwrap();
        }
    });
    assert!(!dir.0.join("no-such-folder").exists());
}

#[test]
fn a_database_path_that_is_a_folder_is_an_io_error() {
    let dir = TempDir::new("folder");
    let db = dir.0.clone();
    block_on(async move {
        let s = store(&db, Durability::Normal);
        let e = s.get("a").await.unwrap_err();
        assert_eq!(e.code(), "ERR_DATASTORE_IO", "{e}");
        s.close().await.unwrap();
    });
}

#[test]
fn a_file_that_is_not_a_database_is_reported_and_left_alone() {
    let dir = TempDir::new("garbage");
    let db = dir.0.join("db.sqlite");
    let garbage = b"this is not an SQLite database, just some bytes".repeat(100);
    std::fs::write(&db, &garbage).unwrap();
    block_on({
        let db = db.clone();
        async move {
            let s = store(&db, Durability::Normal);
            assert_io_or_backend(&s.set("a", "1".into()).await.unwrap_err());
            assert_io_or_backend(&s.get("a").await.unwrap_err());
            s.close().await.unwrap();
        }
    });
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
}

#[test]
fn a_folder_removed_while_open_fails_or_works_without_panics() {
    for durability in [Durability::Normal, Durability::Fsync] {
        let dir = TempDir::new(&format!("removed-{durability:?}"));
        let db = dir.0.join("db.sqlite");
        block_on(async move {
            let s = store(&db, durability);
            s.set("a", "1".into()).await.unwrap();
            std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
            // The open files were unlinked: SQLite may keep using them (Linux does) or fail;
            // either way an answer is consistent with the writes acknowledged, an error is a
            // datastore error, and the store closes.
            match s.set("b", "2".into()).await {
                Ok(()) => assert_eq!(s.get("b").await.unwrap().as_deref(), Some("2")),
                Err(e) => assert_io_or_backend(&e),
            }
            match s.get("a").await {
                Ok(v) => assert_eq!(v.as_deref(), Some("1")),
                Err(e) => assert_io_or_backend(&e),
            }
            if let Err(e) = s.close().await {
                assert_io_or_backend(&e);
            }
        });
    }
}
