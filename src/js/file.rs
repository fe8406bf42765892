//! The native half of `FileStoreAdapter(path, options?)`: a store in one JSON file (docs/file-format.md;
//! the public class is in index.js).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use std::rc::Rc;

use super::adapter::JsStore;
use super::boundary::{construct, enter};
use super::methods::{store_methods, NativeStoreMethods};
use super::options::{self, OptionKind, Spec, LOCK_TIMEOUT};
use super::raw::{Js, JsAny, Kind};
use super::runtime::Runtime;
use crate::backends::file::{Durability, FileBackend, FileOptions};
use crate::core::DatastoreError;

/// The options of a file store.
const FILE_OPTIONS: [Spec; 3] = [
    Spec {
        name: "durability",
        kind: OptionKind::OneOf(&["write", "fsync"]),
    },
    Spec {
        name: "compactThreshold",
        // Up to 2^53, the largest whole number a JS number holds exactly.
        kind: OptionKind::Whole {
            min: 0,
            max: 1 << 53,
        },
    },
    LOCK_TIMEOUT,
];

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
        ts_args_type = "makeError: (code: string, message: string, details: object) => Error, path: string, options?: { durability?: 'write' | 'fsync'; compactThreshold?: number; lockTimeout?: number }"
    )]
    pub fn new(env: &Env, make_error: JsAny, path: JsAny, options: Option<JsAny>) -> Result<Self> {
        construct(env, make_error.value(), "FileStoreAdapter", |js, errors| {
            let path = match js.kind(path.value()) {
                Kind::String => js.to_string(path.value()).unwrap_or_default(),
                _ => {
                    return Err(DatastoreError::invalid_argument(
                        "FileStoreAdapter(path): the path must be a string",
                    ))
                }
            };
            let o = options::read(
                js,
                options.map(JsAny::value),
                "FileStoreAdapter(path, options)",
                &FILE_OPTIONS,
            )?;
            let file_options = FileOptions {
                durability: match o.choice("durability") {
                    Some("fsync") => Durability::Fsync,
                    _ => Durability::Write,
                },
                compact_min_bytes: o.whole("compactThreshold"),
            };
            let backend = FileBackend::new(&path, file_options)?;
            Ok(NativeFileStore {
                inner: Rc::new(JsStore::new(backend, o.store_options(), errors)),
            })
        })
    }

    /// Rewrites the file as one JSON object (new file, flush, rename), after every write called
    /// before.
    #[napi(ts_return_type = "void | Promise<void>")]
    pub fn compact(&self, env: &Env) -> Result<JsAny> {
        let rt = Runtime::get(env.raw());
        let store = &self.inner;
        enter(rt.js, &store.errors, "compact", || {
            Ok(store.after_writes(rt, store.store.backend().compact()))
        })?
    }

    /// The store's operations as plain functions (see `js::methods`).
    #[napi]
    pub fn methods(&self, env: &Env) -> Result<NativeStoreMethods> {
        // SAFETY: napi-rs hands `#[napi]` methods the env of the current call.
        let js = unsafe { Js::from_env(env.raw()) };
        enter(js, &self.inner.errors, "methods", || {
            store_methods(js, &self.inner)
        })
    }
}
