//! `MemoryStoreAdapter`: in-process, not persistent (SPEC §4.1). The public class is the JS
//! wrapper in index.js; this is its native half (see `JsStore`).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::adapter::{read_store_options, JsStore};
use super::error::throw;
use super::raw::{Js, JsAny};
use crate::backends::memory::MemoryBackend;

#[napi]
pub struct NativeMemoryStore {
    inner: JsStore<MemoryBackend>,
}

#[napi]
impl NativeMemoryStore {
    /// `options`: `{ lockTimeout?: number }` (see `read_store_options`).
    #[napi(constructor, ts_args_type = "options?: { lockTimeout?: number }")]
    pub fn new(env: &Env, options: Option<JsAny>) -> Result<Self> {
        let js = Js(env.raw());
        match read_store_options(js, options.map(|o| o.0), "MemoryStoreAdapter(options)") {
            Ok(o) => Ok(NativeMemoryStore {
                inner: JsStore::new(MemoryBackend::new(), o),
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
        ts_return_type = "string | Promise<string>"
    )]
    pub fn list(&self, env: &Env, prefix: Option<JsAny>) -> Result<JsAny> {
        self.inner.list(env.raw(), prefix)
    }

    #[napi(ts_return_type = "void | Promise<void>")]
    pub fn close(&self, env: &Env) -> Result<JsAny> {
        self.inner.close(env.raw())
    }
}
