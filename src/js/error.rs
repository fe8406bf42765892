//! The one place where core errors become JS errors: an `Error` whose `code` is
//! [`DatastoreError::code`], whose message names the key, path or table, and which carries the
//! details as properties (`key`, `path`, `position`).

use super::raw::{Js, Value};
use crate::core::DatastoreError;

pub fn to_js_error(js: Js, e: &DatastoreError) -> Value {
    let err = js.error(e.code(), &e.to_string());
    match e {
        DatastoreError::InvalidValue { key, .. }
        | DatastoreError::LockTimeout { key, .. }
        | DatastoreError::UpdaterAbandoned { key } => js.set(err, c"key", js.string(key)),
        DatastoreError::Reentrant { key, operation } => {
            js.set(err, c"key", js.string(key));
            js.set(err, c"operation", js.string(operation));
        }
        DatastoreError::Corrupt { path, position, .. } => {
            js.set(err, c"path", js.string(path));
            js.set(err, c"position", js.number(*position as f64));
        }
        DatastoreError::Io { path, .. } => js.set(err, c"path", js.string(path)),
        _ => {}
    }
    err
}

/// The `message` of a thrown value, for error texts; a non-Error throw gets `fallback`.
pub fn message_of(js: Js, thrown: Value, fallback: &str) -> String {
    let m = js.get(thrown, c"message");
    js.to_string(m).unwrap_or_else(|| fallback.to_owned())
}

/// Throws `e` as a coded JS error from a synchronous call (constructors); return the result.
pub fn throw(js: Js, e: &DatastoreError) -> napi::Error {
    let err = to_js_error(js, e);
    unsafe { napi::sys::napi_throw(js.0, err) };
    napi::Error::new(napi::Status::PendingException, e.to_string())
}
