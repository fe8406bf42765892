//! Awaiting a JS value from Rust: a promise or thenable is awaited (through
//! `Runtime::when_settled`), anything else is ready at once.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::raw::{Js, Kind, Value};
use super::runtime::Runtime;

/// A native promise, or any object or function with a callable `then`.
pub fn is_thenable(js: Js, v: Value) -> bool {
    if js.is_promise(v) {
        return true;
    }
    matches!(js.kind(v), Kind::Object | Kind::Function)
        && js.kind(js.get(v, c"then")) == Kind::Function
}

struct Slot<T> {
    outcome: Option<T>,
    waker: Option<Waker>,
}

/// Awaits `v` and hands its outcome to `convert` on the JS thread, inside a handle scope:
/// `Some((true, value))` when it is (or resolved to) a value, `Some((false, reason))` when it
/// rejected, `None` when its promise was garbage-collected unsettled (it never will settle).
/// A value that is not a thenable is converted at once.
pub fn awaited<T: 'static>(
    rt: &'static Runtime,
    v: Value,
    convert: impl FnOnce(Js, Option<(bool, Value)>) -> T + 'static,
) -> impl Future<Output = T> + 'static {
    let js = rt.js;
    let (ready, slot) = if is_thenable(js, v) {
        let slot = Rc::new(RefCell::new(Slot {
            outcome: None,
            waker: None,
        }));
        let filled = slot.clone();
        rt.when_settled(
            v,
            Box::new(move |js, settled| {
                let outcome = js.scoped(|| convert(js, settled));
                let mut s = filled.borrow_mut();
                s.outcome = Some(outcome);
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }),
        );
        (None, Some(slot))
    } else {
        (Some(convert(js, Some((true, v)))), None)
    };
    let mut ready = ready;
    poll_fn(move |cx| {
        if let Some(v) = ready.take() {
            return Poll::Ready(v);
        }
        let Some(slot) = &slot else {
            return Poll::Pending; // polled after completion
        };
        let mut s = slot.borrow_mut();
        match s.outcome.take() {
            Some(o) => Poll::Ready(o),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
}
