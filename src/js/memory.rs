//! `MemoryStoreAdapter`: in-process, not persistent (SPEC §4.1). The public class is the JS
//! wrapper in index.js; this is its native half (see `JsStore`).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::adapter::JsStore;
use super::raw::JsAny;
use crate::backends::memory::MemoryBackend;

#[napi]
pub struct NativeMemoryStore {
    inner: JsStore<MemoryBackend>,
}

#[napi]
impl NativeMemoryStore {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NativeMemoryStore {
            inner: JsStore::new(MemoryBackend::new()),
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

    #[napi(ts_return_type = "void | Promise<void>")]
    pub fn close(&self, env: &Env) -> Result<JsAny> {
        self.inner.close(env.raw())
    }

    /// Test-only: how many keys the in-process lock table holds or awaits (0 when idle).
    #[napi(js_name = "__heldKeys")]
    pub fn held_keys(&self) -> u32 {
        self.inner.held_keys()
    }
}
