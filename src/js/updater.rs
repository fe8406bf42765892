//! A JS function as the core's [`Updater`]: called on the JS thread while the core holds the
//! key's lock; a returned promise (or thenable) is awaited; a throw or rejection passes through
//! as the same value. A promise that is garbage-collected unsettled fails the update with
//! `UpdaterAbandoned`, which releases the key (see `Runtime::when_settled`).

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::raw::{AnyRef, Js, Kind, Ref, Value};
use super::runtime::Runtime;
use crate::core::{DatastoreError, UpdateError, Updater};

/// What the updater threw or rejected with, kept alive until the caller's promise rejects.
pub struct Thrown(pub AnyRef);

type Outcome = Result<Option<String>, UpdateError<Thrown>>;

pub struct JsUpdater {
    pub rt: &'static Runtime,
    pub func: Ref,
    pub key: String,
}

/// Turns the updater's (awaited) result into JSON text: `undefined` is "no change".
fn to_json(rt: &Runtime, key: &str, v: Value) -> Outcome {
    let js = rt.js;
    if js.kind(v) == Kind::Undefined {
        return Ok(None);
    }
    match rt.stringify(v) {
        Ok(Some(json)) => Ok(Some(json)),
        Ok(None) => Err(UpdateError::Store(DatastoreError::invalid_value(
            key,
            "the updater returned something JSON cannot store (a function or a Symbol)",
        ))),
        Err(thrown) => Err(UpdateError::Store(DatastoreError::invalid_value(
            key,
            format!(
                "the updater's result is not JSON: {}",
                js.message_of(thrown)
            ),
        ))),
    }
}

#[derive(Default)]
struct Slot {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
}

impl Updater for JsUpdater {
    type Error = Thrown;

    fn call(self, current: Option<&str>) -> impl Future<Output = Outcome> + 'static {
        let rt = self.rt;
        let js = rt.js;
        let immediate: Result<Outcome, Rc<RefCell<Slot>>> = js.scoped(|| {
            let arg = match current {
                None => js.undefined(),
                Some(text) => match rt.parse(text) {
                    Ok(v) => v,
                    Err(_) => {
                        return Ok(Err(UpdateError::Store(DatastoreError::Corrupt {
                            path: self.key.clone(),
                            position: 0,
                            reason: "the stored value is not JSON".into(),
                        })))
                    }
                },
            };
            let ret = match js.call(self.func.value(), js.undefined(), &[arg]) {
                Ok(v) => v,
                Err(thrown) => {
                    return Ok(Err(UpdateError::Updater(Thrown(js.reference_any(thrown)))))
                }
            };
            if !is_thenable(js, ret) {
                return Ok(to_json(rt, &self.key, ret));
            }
            let slot = Rc::new(RefCell::new(Slot::default()));
            let filled = slot.clone();
            let key = self.key;
            rt.when_settled(
                ret,
                Box::new(move |js, settled| {
                    let outcome = match settled {
                        Some((true, v)) => js.scoped(|| to_json(rt, &key, v)),
                        Some((false, v)) => Err(UpdateError::Updater(Thrown(js.reference_any(v)))),
                        None => Err(UpdateError::Store(DatastoreError::UpdaterAbandoned { key })),
                    };
                    let mut s = filled.borrow_mut();
                    s.outcome = Some(outcome);
                    if let Some(w) = s.waker.take() {
                        w.wake();
                    }
                }),
            );
            Err(slot)
        });
        async move {
            match immediate {
                Ok(outcome) => outcome,
                Err(slot) => {
                    poll_fn(|cx| {
                        let mut s = slot.borrow_mut();
                        match s.outcome.take() {
                            Some(o) => Poll::Ready(o),
                            None => {
                                s.waker = Some(cx.waker().clone());
                                Poll::Pending
                            }
                        }
                    })
                    .await
                }
            }
        }
    }
}

/// A native promise, or any object or function with a callable `then`.
fn is_thenable(js: Js, v: Value) -> bool {
    if js.is_promise(v) {
        return true;
    }
    matches!(js.kind(v), Kind::Object | Kind::Function)
        && js.kind(js.get(v, c"then")) == Kind::Function
}
