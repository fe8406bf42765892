//! The store's algorithms over the memory backend, without Node.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use super::{DatastoreError, Store, UpdateError, Updater};
use crate::backends::memory::MemoryBackend;
use crate::runtime::executor::{block_on, oneshot, Executor, Sender};

/// An updater made of a Rust closure; `gate` makes it wait until the test sends.
struct FnUpdater<F> {
    f: F,
    gate: Option<crate::runtime::executor::Receiver<()>>,
}

impl<F> Updater for FnUpdater<F>
where
    F: FnOnce(Option<&str>) -> Result<Option<String>, &'static str> + 'static,
{
    type Error = &'static str;

    fn call(
        self,
        current: Option<&str>,
    ) -> impl Future<Output = Result<Option<String>, UpdateError<&'static str>>> + 'static {
        let result = (self.f)(current).map_err(UpdateError::Updater);
        let gate = self.gate;
        async move {
            if let Some(g) = gate {
                g.await;
            }
            result
        }
    }
}

fn add_one(current: Option<&str>) -> Result<Option<String>, &'static str> {
    let n: i64 = current.map(|t| t.parse().unwrap_or(0)).unwrap_or(0);
    Ok(Some((n + 1).to_string()))
}

type Step = fn(Option<&str>) -> Result<Option<String>, &'static str>;

/// An updater that runs `f` at once but resolves only when the returned sender fires.
fn gated(f: Step) -> (FnUpdater<Step>, Sender<()>) {
    let (tx, rx) = oneshot();
    (FnUpdater { f, gate: Some(rx) }, tx)
}

#[test]
fn update_reads_calls_and_writes() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        let r = store
            .update(
                "n",
                FnUpdater {
                    f: add_one,
                    gate: None,
                },
            )
            .await;
        assert_eq!(r.ok(), Some((None, Some("1".into()))));
        let r = store
            .update(
                "n",
                FnUpdater {
                    f: add_one,
                    gate: None,
                },
            )
            .await;
        assert_eq!(r.ok(), Some((Some("1".into()), Some("2".into()))));
        let keep = FnUpdater {
            f: |_: Option<&str>| Ok(None),
            gate: None,
        };
        let r = store.update("n", keep).await;
        assert_eq!(r.ok(), Some((Some("2".into()), None)));
        assert_eq!(store.get("n").await, Ok(Some("2".into())));
    });
}

#[test]
fn updater_error_writes_nothing_and_releases_the_key() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        store.set("k", "1".into()).await.unwrap();
        let fail = FnUpdater {
            f: |_: Option<&str>| Err("boom"),
            gate: None,
        };
        match store.update("k", fail).await {
            Err(UpdateError::Updater(e)) => assert_eq!(e, "boom"),
            other => panic!("expected the updater's error, got {:?}", other.ok()),
        }
        assert_eq!(store.get("k").await, Ok(Some("1".into())));
        assert_eq!(store.held_keys(), 0);
    });
}

#[test]
fn fifo_per_key_and_other_keys_do_not_wait() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        let exec = Executor::current().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let (slow, release) = gated(add_one);
        let l = log.clone();
        let s = store.clone();
        exec.spawn(async move {
            s.update("a", slow).await.ok();
            l.borrow_mut().push("update a");
        });
        let l = log.clone();
        let s = store.clone();
        exec.spawn(async move {
            s.set("a", "10".into()).await.ok();
            l.borrow_mut().push("set a");
        });
        // Key b is not delayed by the running update of a.
        store.set("b", "1".into()).await.unwrap();
        log.borrow_mut().push("set b");
        assert_eq!(*log.borrow(), ["set b"]);
        release.send(());
        let a = store.get("a").await;
        assert_eq!(
            a,
            Ok(Some("10".into())),
            "the set called after the update wins"
        );
        assert_eq!(*log.borrow(), ["set b", "update a", "set a"]);
        assert_eq!(store.held_keys(), 0);
    });
}

#[test]
fn list_waits_for_earlier_writes_and_close_for_everything() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        let exec = Executor::current().unwrap();
        let (slow, release) = gated(add_one);
        let s = store.clone();
        exec.spawn(async move {
            s.update("k", slow).await.ok();
        });
        let listed = Rc::new(RefCell::new(None));
        let l = listed.clone();
        let s = store.clone();
        exec.spawn(async move {
            *l.borrow_mut() = Some(s.list("").await);
        });
        assert!(
            listed.borrow().is_none(),
            "list waits for the update called before it"
        );
        let closing = store.close();
        assert_eq!(store.get("k").await, Err(DatastoreError::Closed));
        release.send(());
        closing.await.unwrap();
        assert_eq!(listed.borrow_mut().take(), Some(Ok(vec!["k".to_string()])));
        assert_eq!(
            store.set("k", "1".into()).await,
            Err(DatastoreError::Closed)
        );
        assert_eq!(store.close().await, Ok(()));
    });
}

#[test]
fn bad_keys_are_rejected_before_anything_happens() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        let e = store.set("", "1".into()).await.unwrap_err();
        assert_eq!(e.code(), "ERR_DATASTORE_INVALID_KEY");
        assert_eq!(store.list("").await, Ok(vec![]));
    });
}

#[test]
fn many_queued_updates_on_one_key() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        let exec = Executor::current().unwrap();
        let (first, release) = gated(add_one);
        let s = store.clone();
        exec.spawn(async move {
            s.update("q", first).await.ok();
        });
        for _ in 0..10_000 {
            let s = store.clone();
            exec.spawn(async move {
                s.update(
                    "q",
                    FnUpdater {
                        f: add_one,
                        gate: None,
                    },
                )
                .await
                .ok();
            });
        }
        release.send(());
        assert_eq!(store.get("q").await, Ok(Some("10001".into())));
        assert_eq!(store.held_keys(), 0);
        assert_eq!(exec.pending_tasks(), 1, "only this test's own task is left");
    });
}

#[test]
fn get_now_answers_only_when_nothing_has_to_wait() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        let owned = crate::core::backend::owned;
        assert_eq!(store.get_now("k", owned), Some(Ok(None)));
        store.set("k", "1".into()).await.unwrap();
        assert_eq!(store.get_now("k", owned), Some(Ok(Some("1".into()))));
        // Invalid keys are left to `get`, which reports them.
        assert_eq!(store.get_now("", owned), None);
        // A key held or awaited by an operation: the read must queue behind it.
        let (upd, tx) = gated(add_one);
        let pending = store.update("k", upd);
        let exec = Executor::current().expect("executor");
        let done = Rc::new(RefCell::new(None));
        let out = done.clone();
        exec.spawn(async move { *out.borrow_mut() = Some(pending.await) });
        assert_eq!(store.get_now("k", owned), None);
        assert_eq!(store.get_now("other", owned), Some(Ok(None)));
        let queued = store.get("k");
        tx.send(());
        assert_eq!(queued.await, Ok(Some("2".into())));
        assert!(done.borrow().is_some());
        assert_eq!(store.get_now("k", owned), Some(Ok(Some("2".into()))));
        // While an updater runs, reentry is for `get` to detect.
        let inside = Rc::new(RefCell::new(None));
        let seen = inside.clone();
        let view = store.clone();
        let f = move |_: Option<&str>| {
            *seen.borrow_mut() = Some(view.get_now("other", crate::core::backend::owned));
            Ok(None)
        };
        store
            .update("k", FnUpdater { f, gate: None })
            .await
            .unwrap();
        assert_eq!(*inside.borrow(), Some(None));
        store.close().await.unwrap();
        assert_eq!(store.get_now("k", owned), None);
    });
}

#[test]
fn set_now_and_remove_now_write_only_when_nothing_has_to_wait() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        assert_eq!(store.set_now("k", "1", None), Some(Ok(())));
        assert_eq!(store.get("k").await, Ok(Some("1".into())));
        assert_eq!(
            store.set_now("", "1", None),
            None,
            "invalid keys are for `set` to report"
        );
        let (upd, tx) = gated(add_one);
        let pending = store.update("k", upd);
        let exec = Executor::current().expect("executor");
        exec.spawn(async move { pending.await.map(|_| ()).unwrap_or(()) });
        assert_eq!(
            store.set_now("k", "5", None),
            None,
            "held: the write must queue"
        );
        assert_eq!(store.remove_now("k"), None);
        let queued = store.set("k", "5".into());
        tx.send(());
        queued.await.unwrap();
        assert_eq!(store.get("k").await, Ok(Some("5".into())));
        assert_eq!(store.remove_now("k"), Some(Ok(())));
        assert_eq!(store.get("k").await, Ok(None));
        assert_eq!(store.held_keys(), 0);
        store.close().await.unwrap();
        assert_eq!(store.set_now("k", "1", None), None);
    });
}
