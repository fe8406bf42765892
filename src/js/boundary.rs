//! No Rust panic crosses into JS: every entry point of the binding — a store method, a
//! constructor, a callback from N-API or libuv — runs its body through [`catch`] (or
//! [`quietly`] where nobody could be told), and every operation's future through
//! [`CatchPanic`]. A panic is a bug of this package; the caller sees it as
//! `ERR_DATASTORE_INTERNAL` instead of Node aborting.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::error::Errors;
use super::raw::{Js, Value};
use crate::core::DatastoreError;

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

fn internal(what: &str, payload: &(dyn Any + Send)) -> DatastoreError {
    DatastoreError::Internal {
        message: format!("{what} panicked: {}", panic_message(payload)),
    }
}

/// Runs `f`; a panic becomes `Err(Internal)`. `what` names the entry point in the message.
pub fn catch<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, DatastoreError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| internal(what, &*p))
}

/// Runs `f` where a panic could not be reported to anyone (a finalizer, a libuv callback):
/// it is swallowed (the default hook has printed it already).
pub fn quietly(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// A future whose panics become `Err(Internal)` results: wraps each operation, so a panic
/// inside a store operation rejects that operation's promise instead of unwinding through the
/// executor.
pub struct CatchPanic<F> {
    inner: F,
    what: &'static str,
}

impl<F> CatchPanic<F> {
    pub fn new(what: &'static str, inner: F) -> Self {
        CatchPanic { inner, what }
    }
}

impl<T, E, F> Future for CatchPanic<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<DatastoreError>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = self.what;
        // SAFETY: structural pinning: `inner` is never moved out of a pinned `CatchPanic`
        // (no `Unpin` impl, no method hands it out by value, no `Drop` impl moves it).
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.inner) };
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p,
            Err(payload) => Poll::Ready(Err(internal(what, &*payload).into())),
        }
    }
}

/// The body of a native constructor: `f` runs with the env and the error factory of the
/// caller's realm (`make_error`, see `js::error`), which the store keeps; its error, or a
/// panic, is thrown as that realm's `DatastoreError`.
pub fn construct<T>(
    env: &napi::Env,
    make_error: Value,
    what: &str,
    f: impl FnOnce(Js, Rc<Errors>) -> Result<T, DatastoreError>,
) -> napi::Result<T> {
    // SAFETY: napi-rs hands `#[napi]` functions the env of the current call.
    let js = unsafe { Js::from_env(env.raw()) };
    let errors = Rc::new(Errors::new(js, make_error));
    enter(js, &errors, what, || f(js, errors.clone()))
}

/// The body of any other native entry point: `f`'s error, or a panic, is thrown through
/// `errors`.
pub fn enter<T>(
    js: Js,
    errors: &Errors,
    what: &str,
    f: impl FnOnce() -> Result<T, DatastoreError>,
) -> napi::Result<T> {
    catch(what, f).and_then(|r| r).map_err(|e| {
        if js.exception_pending() {
            super::error::pending()
        } else {
            errors.throw(js, &e)
        }
    })
}
