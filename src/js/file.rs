//! `FileStoreAdapter(path, options?)`: a store in one JSON file (SPEC §4.2).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::adapter::JsStore;
use super::error::{throw, to_js_error};
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
pub struct FileStoreAdapter {
    inner: JsStore<FileBackend>,
}

#[napi]
impl FileStoreAdapter {
    /// `durability: 'write'` (default) resolves writes once the OS has them (they survive the
    /// process being killed); `'fsync'` once they are on disk. The file is compacted in the
    /// background once it is larger than both `compactThreshold` bytes (default 1 MiB) and
    /// twice the live data. Nothing is opened until first use.
    #[napi(
        constructor,
        ts_args_type = "path: string, options?: { durability?: 'write' | 'fsync'; compactThreshold?: number }"
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
        let backend = read_options(js, options).and_then(|o| FileBackend::new(&path, o));
        match backend {
            Ok(b) => Ok(FileStoreAdapter {
                inner: JsStore::new(b),
            }),
            Err(e) => Err(throw(js, &e)),
        }
    }

    /// The value of `key`, or `undefined` when it is missing.
    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string",
        ts_return_type = "Promise<T | undefined>"
    )]
    pub fn get(&self, env: &Env, key: JsAny) -> JsAny {
        self.inner.get(env.raw(), key)
    }

    /// Stores a copy of `value`; resolves to a copy of it.
    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string, value: T",
        ts_return_type = "Promise<T>"
    )]
    pub fn set(&self, env: &Env, key: JsAny, value: JsAny) -> JsAny {
        self.inner.set(env.raw(), key, value)
    }

    /// Atomically replaces the value of `key` with what `updater` returns (`undefined`: no change).
    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string, updater: (value: T | undefined) => T | undefined | Promise<T | undefined>",
        ts_return_type = "Promise<[T | undefined, T | undefined]>"
    )]
    pub fn update(&self, env: &Env, key: JsAny, updater: JsAny) -> JsAny {
        self.inner.update(env.raw(), key, updater)
    }

    /// Removes `key`; a missing key is not an error.
    #[napi(ts_args_type = "key: string", ts_return_type = "Promise<void>")]
    pub fn remove(&self, env: &Env, key: JsAny) -> JsAny {
        self.inner.remove(env.raw(), key)
    }

    /// Alias of `remove`, the name reshuffle's connectors call.
    #[napi(ts_args_type = "key: string", ts_return_type = "Promise<void>")]
    pub fn del(&self, env: &Env, key: JsAny) -> JsAny {
        self.inner.remove(env.raw(), key)
    }

    /// Keys (starting with `prefix`, if given), sorted by Unicode code point.
    #[napi(ts_args_type = "prefix?: string", ts_return_type = "Promise<string[]>")]
    pub fn list(&self, env: &Env, prefix: Option<JsAny>) -> JsAny {
        self.inner.list(env.raw(), prefix)
    }

    /// Waits for pending operations, leaves the file as one JSON object (compacting it if it
    /// holds records) and releases the file and its locks; later calls reject with
    /// `ERR_DATASTORE_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: &Env) -> JsAny {
        self.inner.close(env.raw())
    }

    /// Rewrites the file as one JSON object (new file, flush, rename), after every write called
    /// before; reshuffle 1.0.9 can read it then.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn compact(&self, env: &Env) -> JsAny {
        let rt = Runtime::get(env.raw());
        let js = rt.js;
        let (deferred, promise) = js.create_promise();
        let store = &self.inner.store;
        let op = store.after_writes(store.backend().compact());
        rt.exec.spawn(async move {
            let result = op.await;
            js.scoped(|| match result {
                Ok(()) => deferred.resolve(js, js.undefined()),
                Err(e) => deferred.reject(js, to_js_error(js, &e)),
            });
        });
        JsAny(promise)
    }
}
