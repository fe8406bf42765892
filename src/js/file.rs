//! The native half of `FileStoreAdapter(path, options?)`: a store in one JSON file (SPEC §4.2;
//! the public class is in index.js).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use std::rc::Rc;

use super::adapter::{read_store_options, JsStore};
use super::error::throw;
use super::methods::{store_methods, NativeStoreMethods};
use super::raw::{Js, JsAny, Kind, Value};
use super::runtime::Runtime;
use crate::backends::file::{Durability, FileBackend, FileOptions};
use crate::core::DatastoreError;

/// A JS number, or `None` for any other value.
fn number(js: Js, v: Value) -> Option<f64> {
    let mut out = 0f64;
    // SAFETY: valid env and value of the current callback; a non-number only sets a status.
    let status = unsafe { napi::sys::napi_get_value_double(js.0, v, &mut out) };
    (status == napi::sys::Status::napi_ok).then_some(out)
}

/// Reads `{ durability?: 'write' | 'fsync', compactThreshold?: number }`.
fn read_options(
    js: Js,
    options: Option<JsAny>,
) -> std::result::Result<FileOptions, DatastoreError> {
    let mut out = FileOptions::default();
    let Some(options) = options else {
        return Ok(out);
    };
    match js.kind(options.0) {
        Kind::Undefined | Kind::Null => return Ok(out),
        Kind::Object => {}
        _ => {
            return Err(DatastoreError::invalid_argument(
                "FileStoreAdapter(path, options): options must be an object",
            ))
        }
    }
    let durability = js.get(options.0, c"durability");
    match js.kind(durability) {
        Kind::Undefined => {}
        Kind::String => {
            out.durability = Durability::parse(&js.to_string(durability).unwrap_or_default())?
        }
        _ => {
            return Err(DatastoreError::invalid_argument(
                "FileStoreAdapter: durability must be 'write' or 'fsync'",
            ))
        }
    }
    let threshold = js.get(options.0, c"compactThreshold");
    if js.kind(threshold) != Kind::Undefined {
        match number(js, threshold) {
            Some(n) if n.is_finite() && n >= 0.0 => out.compact_min_bytes = Some(n as u64),
            _ => {
                return Err(DatastoreError::invalid_argument(
                    "FileStoreAdapter: compactThreshold must be a number of bytes (>= 0)",
                ))
            }
        }
    }
    Ok(out)
}

/// A store in one JSON file, readable by reshuffle 1.0.9's FileStoreAdapter after `close()` or
/// `compact()`. Writes append a record; several processes may share the file.
#[napi]
pub struct NativeFileStore {
    inner: Rc<JsStore<FileBackend>>,
}

#[napi]
impl NativeFileStore {
    /// `durability: 'write'` (default) resolves writes once the OS has them (they survive the
    /// process being killed); `'fsync'` once they are on disk. The file is compacted in the
    /// background once it is larger than both `compactThreshold` bytes (default 1 MiB) and
    /// twice the live data. Nothing is opened until first use.
    #[napi(
        constructor,
        ts_args_type = "path: string, options?: { durability?: 'write' | 'fsync'; compactThreshold?: number; lockTimeout?: number }"
    )]
    pub fn new(env: &Env, path: JsAny, options: Option<JsAny>) -> Result<Self> {
        let js = Js(env.raw());
        let path = match js.kind(path.0) {
            Kind::String => js.to_string(path.0).unwrap_or_default(),
            _ => {
                return Err(throw(
                    js,
                    &DatastoreError::invalid_argument(
                        "FileStoreAdapter(path): the path must be a string",
                    ),
                ))
            }
        };
        let store_options =
            read_store_options(js, options.map(|o| o.0), "FileStoreAdapter(path, options)");
        let backend = store_options.and_then(|s| {
            let b = read_options(js, options).and_then(|o| FileBackend::new(&path, o))?;
            Ok((b, s))
        });
        match backend {
            Ok((b, s)) => Ok(NativeFileStore {
                inner: Rc::new(JsStore::new(b, s)),
            }),
            Err(e) => Err(throw(js, &e)),
        }
    }

    /// Rewrites the file as one JSON object (new file, flush, rename), after every write called
    /// before.
    #[napi(ts_return_type = "void | Promise<void>")]
    pub fn compact(&self, env: &Env) -> Result<JsAny> {
        self.inner.after_writes(
            Runtime::get(env.raw()),
            self.inner.store.backend().compact(),
        )
    }

    /// The store's operations as plain functions (see `js::methods`).
    #[napi]
    pub fn methods(&self, env: &Env) -> Result<NativeStoreMethods> {
        store_methods(Js(env.raw()), &self.inner)
    }
}
