//! Waits that would never end: an updater using its own key, and the `lock_timeout` option.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use super::{DatastoreError, Store, StoreOptions, UpdateError, Updater};
use crate::backends::memory::MemoryBackend;
use crate::runtime::executor::{block_on, oneshot, Executor, Outcome, Receiver};

/// Runs `f` synchronously when called (like a JS updater's synchronous part), then resolves
/// to `"1"` once `gate` fires (at once without a gate).
struct Probe<F> {
    f: F,
    gate: Option<Receiver<()>>,
}

impl<F: FnOnce() + 'static> Updater for Probe<F> {
    type Error = ();

    fn call(
        self,
        _: Option<&str>,
    ) -> impl Future<Output = Result<Option<String>, UpdateError<()>>> + 'static {
        (self.f)();
        let gate = self.gate;
        async move {
            if let Some(g) = gate {
                g.await;
            }
            Ok(Some("1".to_owned()))
        }
    }
}

/// The result of `fut` if it is ready on its first poll (what a JS caller gets at once).
fn now<T: 'static>(fut: impl Future<Output = T> + 'static) -> Option<T> {
    match Executor::current()?.run(fut) {
        Outcome::Ready(v) => Some(v),
        Outcome::Later(_) => None,
    }
}

fn code<T>(r: &Option<Result<T, DatastoreError>>) -> &'static str {
    match r {
        Some(Ok(_)) => "ok",
        Some(Err(e)) => e.code(),
        None => "pending",
    }
}

#[test]
fn an_updater_using_its_own_key_is_rejected_at_once_and_other_keys_work() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (s, out) = (store.clone(), seen.clone());
        let f = move || {
            let mut out = out.borrow_mut();
            out.push(code(&now(s.get("k"))));
            out.push(code(&now(s.set("k", "2".into()))));
            out.push(code(&now(s.remove("k"))));
            let inner = Probe {
                f: || {},
                gate: None,
            };
            out.push(match now(s.update("k", inner)) {
                Some(Err(UpdateError::Store(e))) => e.code(),
                _ => "other",
            });
            out.push(code(&now(s.list(""))));
            out.push(code(&now(s.close())));
            // Other keys of the same store are free.
            out.push(code(&now(s.set("other", "3".into()))));
            out.push(code(&now(s.get("other"))));
        };
        let r = store.update("k", Probe { f, gate: None }).await;
        assert!(r.is_ok(), "the update itself succeeds");
        let reentrant = "ERR_DATASTORE_REENTRANT";
        assert_eq!(
            *seen.borrow(),
            [reentrant, reentrant, reentrant, reentrant, reentrant, reentrant, "ok", "ok"]
        );
        assert!(!store.is_closed(), "a rejected close changes nothing");
        assert_eq!(store.get("k").await, Ok(Some("1".into())));
        assert_eq!(store.get("other").await, Ok(Some("3".into())));
        assert_eq!(store.held_keys(), 0);
        store.close().await.expect("close");
    });
}

#[test]
fn nested_updates_of_other_keys_work_and_the_outer_key_stays_guarded() {
    block_on(async {
        let store = Store::new(MemoryBackend::new());
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (s, out) = (store.clone(), seen.clone());
        let outer = move || {
            let (s2, out2) = (s.clone(), out.clone());
            let inner = move || {
                // Inside b's updater, called from a's: both keys are busy.
                out2.borrow_mut().push(code(&now(s2.get("a"))));
                out2.borrow_mut().push(code(&now(s2.get("b"))));
                out2.borrow_mut().push(code(&now(s2.get("c"))));
            };
            let r = now(s.update(
                "b",
                Probe {
                    f: inner,
                    gate: None,
                },
            ));
            out.borrow_mut().push(if matches!(r, Some(Ok(_))) {
                "b ok"
            } else {
                "b failed"
            });
            // b's updater has returned: b is free again for a's updater.
            out.borrow_mut().push(code(&now(s.get("b"))));
        };
        assert!(store
            .update(
                "a",
                Probe {
                    f: outer,
                    gate: None
                }
            )
            .await
            .is_ok());
        assert_eq!(
            *seen.borrow(),
            [
                "ERR_DATASTORE_REENTRANT",
                "ERR_DATASTORE_REENTRANT",
                "ok",
                "b ok",
                "ok"
            ]
        );
        assert_eq!(store.get("b").await, Ok(Some("1".into())));
    });
}

#[test]
fn lock_timeout_rejects_a_waiter_and_keeps_the_queue_in_order() {
    block_on(async {
        let options = StoreOptions {
            lock_timeout: Some(Duration::from_millis(150)),
        };
        let store = Store::with_options(MemoryBackend::new(), options);
        let exec = Executor::current().expect("executor");
        let (release, gate) = oneshot();
        let slow = store.update(
            "k",
            Probe {
                f: || {},
                gate: Some(gate),
            },
        );
        let done = Rc::new(RefCell::new(Vec::new()));
        let d = done.clone();
        exec.spawn(async move {
            let r = slow.await;
            d.borrow_mut()
                .push(if r.is_ok() { "slow ok" } else { "slow failed" });
        });
        // Waits behind the slow updater and gives up.
        let waited = store.get("k").await;
        assert!(matches!(
            waited,
            Err(DatastoreError::LockTimeout { ref key, waited_ms: 150 }) if key == "k"
        ));
        // The timed-out waiter left the queue: later callers run in call order once it is free.
        let (s1, s2, d1, d2) = (store.clone(), store.clone(), done.clone(), done.clone());
        let set = s1.set("k", "\"c\"".into());
        let get = s2.get("k");
        exec.spawn(async move {
            set.await.expect("set");
            d1.borrow_mut().push("set");
        });
        exec.spawn(async move {
            let v = get.await.expect("get");
            d2.borrow_mut().push(if v.as_deref() == Some("\"c\"") {
                "get saw set"
            } else {
                "get"
            });
        });
        release.send(());
        store.close().await.expect("close");
        assert_eq!(*done.borrow(), ["slow ok", "set", "get saw set"]);
        assert_eq!(store.held_keys(), 0);
    });
}

#[test]
fn without_contention_no_timeout_applies() {
    block_on(async {
        let options = StoreOptions {
            lock_timeout: Some(Duration::from_millis(1)),
        };
        let store = Store::with_options(MemoryBackend::new(), options);
        for i in 0..100 {
            store.set("k", i.to_string()).await.expect("set");
            assert_eq!(store.get("k").await, Ok(Some(i.to_string())));
        }
    });
}

#[test]
fn lock_timeout_bounds_list_waiting_for_a_stuck_update() {
    block_on(async {
        let options = StoreOptions {
            lock_timeout: Some(Duration::from_millis(50)),
        };
        let store = Store::with_options(MemoryBackend::new(), options);
        let (release, gate) = oneshot();
        let slow = store.update(
            "k",
            Probe {
                f: || {},
                gate: Some(gate),
            },
        );
        Executor::current().expect("executor").spawn(async move {
            let _ = slow.await;
        });
        let listed = store.list("").await;
        assert!(
            matches!(listed, Err(DatastoreError::LockTimeout { ref key, .. }) if key.is_empty())
        );
        release.send(());
        assert_eq!(store.list("").await, Ok(vec!["k".to_owned()]));
        store.close().await.expect("close");
    });
}
