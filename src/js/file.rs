//! The native half of `FileStoreAdapter(path, options?)`: a store in one JSON file (SPEC §4.2;
//! the public class is in index.js).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::adapter::JsStore;
use super::error::throw;
use super::raw::{Js, JsAny, Kind, Value};
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
    inner: JsStore<FileBackend>,
}

#[napi]
impl NativeFileStore {
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
            Ok(b) => Ok(NativeFileStore {
                inner: JsStore::new(b),
            }),
            Err(e) => Err(throw(js, &e)),
        }
    }

    #[napi(
        ts_args_type = "key: string",
        ts_return_type = "string | undefined | Promise<string | undefined>"
    )]
    pub fn get(&self, env: &Env, key: JsAny) -> Result<JsAny> {
        self.inner.get(env.raw(), key)
    }

    #[napi(
        ts_args_type = "key: string, json: string | undefined, reason?: string",
        ts_return_type = "void | Promise<void>"
    )]
    pub fn set(&self, env: &Env, key: JsAny, json: JsAny, reason: Option<JsAny>) -> Result<JsAny> {
        self.inner.set(env.raw(), key, json, reason)
    }

    #[napi(
        ts_args_type = "key: string, updater: (value: any) => any",
        ts_return_type = "[string | undefined, string | undefined] | Promise<[string | undefined, string | undefined]>"
    )]
    pub fn update(&self, env: &Env, key: JsAny, updater: JsAny) -> Result<JsAny> {
        self.inner.update(env.raw(), key, updater)
    }

    #[napi(ts_args_type = "key: string", ts_return_type = "void | Promise<void>")]
    pub fn remove(&self, env: &Env, key: JsAny) -> Result<JsAny> {
        self.inner.remove(env.raw(), key)
    }

    #[napi(
        ts_args_type = "prefix?: string",
        ts_return_type = "string[] | Promise<string[]>"
    )]
    pub fn list(&self, env: &Env, prefix: Option<JsAny>) -> Result<JsAny> {
        self.inner.list(env.raw(), prefix)
    }

    /// Leaves the file as one JSON object (compacting it if it holds records) and releases it.
    #[napi(ts_return_type = "void | Promise<void>")]
    pub fn close(&self, env: &Env) -> Result<JsAny> {
        self.inner.close(env.raw())
    }

    /// Rewrites the file as one JSON object (new file, flush, rename), after every write called
    /// before.
    #[napi(ts_return_type = "void | Promise<void>")]
    pub fn compact(&self, env: &Env) -> Result<JsAny> {
        self.inner
            .after_writes(env.raw(), self.inner.store.backend().compact())
    }

    /// Test-only: how many keys the in-process lock table holds or awaits (0 when idle).
    #[napi(js_name = "__heldKeys")]
    pub fn held_keys(&self) -> u32 {
        self.inner.held_keys()
    }
}
