//! The backend contract (`core/backend.rs`), written once and checked for every engine:
//! memory, file, SQLite and — when a server answers — PostgreSQL, MySQL and Redis. Each engine gives a way to
//! open a backend; engines whose data other instances can share open two on the same data,
//! standing in for two processes.

use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::backends::file::{FileBackend, FileOptions};
use crate::backends::memory::MemoryBackend;
#[cfg(feature = "sqlite")]
use crate::backends::sql_identifier::TableName;
#[cfg(feature = "sqlite")]
use crate::backends::sqlite::{Durability, SqliteBackend, Target};
use crate::core::{
    Backend, Change, DatastoreError, Deadline, HeldKey, Store, UpdateError, Updater, Write,
};
use crate::runtime::executor::{block_on, Executor};

/// Whether the server a test needs answers (`probe`). When it does not, the test fails where
/// `require_var` is `1` (as in CI), and otherwise says loudly that it was skipped.
pub(crate) fn server_answers(what: &str, require_var: &str, probe: Result<(), String>) -> bool {
    let Err(e) = probe else { return true };
    assert!(
        std::env::var(require_var).as_deref() != Ok("1"),
        "no {what} server: {e}"
    );
    eprintln!("SKIPPED: no {what} server ({e})");
    false
}

/// `+1` on a JSON number (missing = 0).
pub(crate) struct AddOne;

impl Updater for AddOne {
    type Error = ();
    fn call(
        self,
        current: Option<&str>,
    ) -> impl Future<Output = Result<Option<String>, UpdateError<()>>> + 'static {
        let n: i64 = current.map_or(0, |t| t.parse().unwrap_or(-1_000_000));
        async move { Ok(Some((n + 1).to_string())) }
    }
}

/// A deadline `ms` from now.
fn within(ms: u64) -> Deadline {
    Deadline::after(Some(Duration::from_millis(ms)))
}

async fn put<B: Backend>(b: &B, key: &str, json: &str) {
    let held = b.lock(key, &Deadline::never()).await.expect("lock");
    held.finish(key, Change::Put(json.into()))
        .await
        .expect("finish");
}

/// The checks every engine passes. `second` opens another backend on the same data, for
/// engines whose data is shared between processes.
async fn check<B: Backend>(a: B, second: Option<B>) {
    // Reads, writes, removals, prefix lists in code point order.
    assert_eq!(a.get("k").await.unwrap(), None);
    put(&a, "k", "1").await;
    put(&a, "k/2", "\"two\"").await;
    put(&a, "\u{FFFF}", "3").await;
    put(&a, "j", "0").await;
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some("1"));
    assert_eq!(a.list("k").await.unwrap(), ["k", "k/2"]);
    assert_eq!(a.list("").await.unwrap(), ["j", "k", "k/2", "\u{FFFF}"]);
    let held = a.lock("j", &Deadline::never()).await.unwrap();
    held.finish("j", Change::Delete).await.unwrap();
    assert_eq!(a.get("j").await.unwrap(), None);

    // A held key dropped without finish writes nothing and is free again at once.
    let mut held = a.lock("k", &Deadline::never()).await.unwrap();
    assert_eq!(held.read("k").await.unwrap().as_deref(), Some("1"));
    drop(held);
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some("1"));
    let mut again = a.lock("k", &within(2000)).await.expect("free again");
    assert_eq!(again.read("k").await.unwrap().as_deref(), Some("1"));
    again.finish("k", Change::Keep).await.unwrap();

    // The fast paths do all of the queued operation at once, or nothing.
    if let Some(done) = a.write_now("k", Write::Put("5")) {
        done.unwrap();
        assert_eq!(a.get("k").await.unwrap().as_deref(), Some("5"));
    }
    if let Some(v) = a.get_now("k", crate::core::backend::owned) {
        assert_eq!(v.unwrap(), a.get("k").await.unwrap());
    }

    if let Some(b) = second {
        check_shared(&a, &b).await;
        b.close().await.unwrap();
    }
    a.close().await.unwrap();
}

/// Two backends on the same data, as two processes.
async fn check_shared<B: Backend>(a: &B, b: &B) {
    // What one holder commits, the next reads under the lock, and both get.
    put(a, "c", "10").await;
    let mut held = b.lock("c", &Deadline::never()).await.unwrap();
    assert_eq!(held.read("c").await.unwrap().as_deref(), Some("10"));
    held.finish("c", Change::Put("11".into())).await.unwrap();
    assert_eq!(a.get("c").await.unwrap().as_deref(), Some("11"));

    // A key one holds, the other cannot take: its wait gives up at the deadline, with
    // LockTimeout, holding nothing; the fast path declines without writing.
    let mut holder = a.lock("c", &Deadline::never()).await.unwrap();
    holder.read("c").await.unwrap(); // an engine that defers locking locks here
    let started = Instant::now();
    let waited = async {
        let mut h = b.lock("c", &within(300)).await?;
        h.read("c").await?;
        Ok::<_, DatastoreError>(h)
    }
    .await;
    assert!(
        matches!(waited, Err(DatastoreError::LockTimeout { .. })),
        "a held key cannot be taken: {:?}",
        waited.err()
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(b.write_now("c", Write::Put("99")), None);
    holder.finish("c", Change::Put("12".into())).await.unwrap();
    // The waiter that gave up holds nothing: the key is free at once.
    let mut next = b
        .lock("c", &within(2000))
        .await
        .expect("free after the holder");
    assert_eq!(next.read("c").await.unwrap().as_deref(), Some("12"));
    next.finish("c", Change::Delete).await.unwrap();
    assert_eq!(a.get("c").await.unwrap(), None);
}

/// Two stores on the same data, as two processes, take turns at 100 concurrent increments of
/// one key: every increment lands once.
async fn count_exactly<B: Backend + 'static>(a: B, b: B) {
    let a = Rc::new(Store::new(a));
    let b = Rc::new(Store::new(b));
    let (tx, rx) = std::sync::mpsc::channel();
    let exec = Executor::current().unwrap();
    for i in 0..100 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let tx = tx.clone();
        exec.spawn(async move {
            let r = s.update("n", AddOne).await;
            let _ = tx.send(r.is_ok());
        });
    }
    drop(tx);
    // Updates of one key finish in call order on each store: these end after the others.
    let _ = a.update("n", AddOne).await;
    let _ = b.update("n", AddOne).await;
    assert_eq!(rx.try_iter().filter(|ok| *ok).count(), 100);
    assert_eq!(a.get("n").await.unwrap().as_deref(), Some("102"));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Every check, for an engine whose data `open` opens again and again.
async fn check_all<B: Backend + 'static>(open: impl Fn() -> B) {
    check(open(), Some(open())).await;
    count_exactly(open(), open()).await;
}

/// A fresh folder, removed at the end.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("rd-contract-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Folder(p)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run<F: Future<Output = ()> + 'static>(f: F) {
    block_on(f);
}

#[test]
fn memory() {
    run(check(MemoryBackend::new(), None));
}

#[test]
fn file() {
    let dir = Folder::new("file");
    let path = dir.0.join("store.json");
    let path = path.to_str().unwrap().to_owned();
    run(check_all(move || {
        FileBackend::new(&path, FileOptions::default()).unwrap()
    }));
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite() {
    let dir = Folder::new("sqlite");
    let path = dir.0.join("store.db");
    run(check_all(move || {
        SqliteBackend::new(
            Target::File(path.clone()),
            &TableName::parse("kv").unwrap(),
            Durability::Normal,
        )
    }));
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_in_memory() {
    let open = || {
        SqliteBackend::new(
            Target::Memory,
            &TableName::parse("kv").unwrap(),
            Durability::Normal,
        )
    };
    run(check(open(), None));
}

#[cfg(feature = "postgres")]
#[test]
fn postgres() {
    crate::backends::postgres::with_test_table("contract", check_all);
}

#[cfg(feature = "mysql")]
#[test]
fn mysql() {
    crate::backends::mysql::with_test_table("contract", check_all);
}

#[cfg(feature = "redis")]
#[test]
fn redis() {
    crate::backends::redis::with_test_prefix("contract", check_all);
}
