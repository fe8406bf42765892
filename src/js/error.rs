//! The one place where core errors become JS errors.
//!
//! A rejection must be an instance of the `DatastoreError` class of the realm that loaded
//! `index.js` (jest runs tests in a `vm` realm; an `Error` made here would be of Node's main
//! realm and fail `instanceof Error` there). So `index.js` hands every native store its
//! realm's error factory, `(code, message, details) => new DatastoreError(…)`; the store keeps
//! it as its [`Errors`] and makes every error through it. `details` carries what the error is
//! about (`key`, `path`, `position`, `operation`) as properties.

use super::raw::{Js, Ref, Value};
use crate::core::DatastoreError;

/// The error factory of the realm that made a store (see the module docs).
pub struct Errors {
    factory: Option<Ref>,
}

impl Errors {
    /// Keeps `factory` if it is a function; otherwise errors are made in the main realm.
    pub fn new(js: Js, factory: Value) -> Self {
        let is_fn = js.kind(factory) == super::raw::Kind::Function;
        Errors {
            factory: is_fn.then(|| js.reference(factory)),
        }
    }

    /// The JS error for `e`.
    pub fn make(&self, js: Js, e: &DatastoreError) -> Value {
        let details = js.object();
        match e {
            DatastoreError::InvalidValue { key, .. }
            | DatastoreError::LockTimeout { key, .. }
            | DatastoreError::UpdaterAbandoned { key }
            | DatastoreError::LeaseLost { key } => js.set(details, c"key", js.string(key)),
            DatastoreError::Reentrant { key, operation } => {
                js.set(details, c"key", js.string(key));
                js.set(details, c"operation", js.string(operation));
            }
            DatastoreError::Corrupt { path, position, .. } => {
                js.set(details, c"path", js.string(path));
                js.set(details, c"position", js.number(*position as f64));
            }
            DatastoreError::Io { path, .. } => js.set(details, c"path", js.string(path)),
            _ => {}
        }
        let (code, message) = (js.string(e.code()), js.string(&e.to_string()));
        if let Some(f) = &self.factory {
            if let Ok(err) = js.call(f.value(), js.undefined(), &[code, message, details]) {
                return err;
            }
        }
        // No factory (a native class used directly), or it threw: an Error of the main realm.
        let err = js.error(e.code(), &e.to_string());
        for name in [c"key", c"operation", c"path", c"position"] {
            if let Ok(v) = js.try_get(details, name) {
                if js.kind(v) != super::raw::Kind::Undefined {
                    js.set(err, name, v);
                }
            }
        }
        err
    }

    /// Throws `e` from a synchronous call; return the result to N-API (napi-rs sees a pending
    /// exception and leaves it as is).
    pub fn throw(&self, js: Js, e: &DatastoreError) -> napi::Error {
        js.throw(self.make(js, e));
        pending()
    }
}

/// The `napi::Error` that tells napi-rs an exception is already pending.
pub fn pending() -> napi::Error {
    napi::Error::new(napi::Status::PendingException, "")
}
