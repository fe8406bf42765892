//! `MemoryStoreAdapter`: in-process, not persistent (README, Quick start by backend). The public class is the JS
//! wrapper in index.js; this is its native half (see `JsStore`).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use std::rc::Rc;

use super::adapter::JsStore;
use super::boundary::{construct, enter};
use super::methods::{store_methods, NativeStoreMethods};
use super::options::{self, LOCK_TIMEOUT};
use super::raw::{Js, JsAny};
use crate::backends::memory::MemoryBackend;

#[napi]
pub struct NativeMemoryStore {
    inner: Rc<JsStore<MemoryBackend>>,
}

#[napi]
impl NativeMemoryStore {
    /// `makeError` builds the caller's realm's errors (see `js::error`); `options`:
    /// `{ lockTimeout?: number }`.
    #[napi(
        constructor,
        ts_args_type = "makeError: (code: string, message: string, details: object) => Error, options?: { lockTimeout?: number }"
    )]
    pub fn new(env: &Env, make_error: JsAny, options: Option<JsAny>) -> Result<Self> {
        construct(
            env,
            make_error.value(),
            "MemoryStoreAdapter",
            |js, errors| {
                let o = options::read(
                    js,
                    options.map(JsAny::value),
                    "MemoryStoreAdapter(options)",
                    &[LOCK_TIMEOUT],
                )?;
                Ok(NativeMemoryStore {
                    inner: Rc::new(JsStore::new(
                        MemoryBackend::new(),
                        o.store_options(),
                        errors,
                    )),
                })
            },
        )
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
