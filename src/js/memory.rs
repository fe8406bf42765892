//! `MemoryStoreAdapter`: in-process, not persistent (SPEC §4.1).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::adapter::JsStore;
use super::raw::JsAny;
use crate::backends::memory::MemoryBackend;

/// In-process store: values are kept as JSON text, so every read is a fresh copy.
#[napi]
pub struct MemoryStoreAdapter {
    inner: JsStore<MemoryBackend>,
}

#[napi]
impl MemoryStoreAdapter {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        MemoryStoreAdapter {
            inner: JsStore::new(MemoryBackend::new()),
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

    /// Waits for pending operations and releases the store; later calls reject with
    /// `ERR_DATASTORE_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: &Env) -> JsAny {
        self.inner.close(env.raw())
    }
}
