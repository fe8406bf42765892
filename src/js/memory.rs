//! `MemoryStoreAdapter`: in-process, not persistent (SPEC §4.1). The public class is the JS
//! wrapper in index.js; this is its native half (see `JsStore`).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use std::rc::Rc;

use super::adapter::{read_store_options, JsStore};
use super::error::throw;
use super::methods::{store_methods, NativeStoreMethods};
use super::raw::{Js, JsAny};
use crate::backends::memory::MemoryBackend;

#[napi]
pub struct NativeMemoryStore {
    inner: Rc<JsStore<MemoryBackend>>,
}

#[napi]
impl NativeMemoryStore {
    /// `options`: `{ lockTimeout?: number }` (see `read_store_options`).
    #[napi(constructor, ts_args_type = "options?: { lockTimeout?: number }")]
    pub fn new(env: &Env, options: Option<JsAny>) -> Result<Self> {
        let js = Js(env.raw());
        match read_store_options(js, options.map(|o| o.0), "MemoryStoreAdapter(options)") {
            Ok(o) => Ok(NativeMemoryStore {
                inner: Rc::new(JsStore::new(MemoryBackend::new(), o)),
            }),
            Err(e) => Err(throw(js, &e)),
        }
    }

    /// The store's operations as plain functions (see `js::methods`).
    #[napi]
    pub fn methods(&self, env: &Env) -> Result<NativeStoreMethods> {
        store_methods(Js(env.raw()), &self.inner)
    }
}
