//! `PersistentStore(backend, prefix)`: a namespaced view over any adapter, compatible with
//! reshuffle's class of that name. Like reshuffle's, wrapping another `PersistentStore` uses
//! that store's adapter with the new prefix (prefixes do not nest), so keys land where
//! reshuffle puts them.

use std::ffi::CStr;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::adapter::read_key;
use super::error::{throw, to_js_error};
use super::raw::{Js, JsAny, Kind, Ref, Value};
use super::runtime::Runtime;
use crate::core::DatastoreError;

#[napi]
pub struct PersistentStore {
    adapter: Ref,
    prefix: String,
}

fn invalid(js: Js, message: String) -> Value {
    to_js_error(js, &DatastoreError::invalid_argument(message))
}

fn rejected(js: Js, reason: Value) -> JsAny {
    let (d, p) = js.create_promise();
    d.reject(js, reason);
    JsAny(p)
}

#[napi]
impl PersistentStore {
    /// `backend` is an adapter or another `PersistentStore` (whose adapter is then used).
    #[napi(
        constructor,
        ts_args_type = "backend: { get(key: string): Promise<any>; set(key: string, value: any): Promise<any>; update(key: string, updater: (value: any) => any): Promise<any[]>; list(prefix?: string): Promise<string[]>; del?(key: string): Promise<void>; remove?(key: string): Promise<void> } | PersistentStore, prefix?: string"
    )]
    pub fn new(env: &Env, backend: JsAny, prefix: Option<JsAny>) -> Result<Self> {
        let js = Js(env.raw());
        let prefix = match prefix.map(|p| (js.kind(p.0), p.0)) {
            None | Some((Kind::Undefined, _)) => String::new(),
            Some((Kind::String, v)) => js.to_string(v).unwrap_or_default(),
            Some(_) => {
                return Err(throw(
                    js,
                    &DatastoreError::invalid_argument(
                        "PersistentStore(backend, prefix): the prefix must be a string",
                    ),
                ))
            }
        };
        if let Ok(inner) =
            unsafe { ClassInstance::<PersistentStore>::from_napi_value(env.raw(), backend.0) }
        {
            return Ok(PersistentStore {
                adapter: js.reference(inner.adapter.value()),
                prefix,
            });
        }
        if js.kind(backend.0) != Kind::Object
            || ["get", "set", "update", "list"]
                .iter()
                .any(|m| js.kind(js.get(backend.0, &method_name(m))) != Kind::Function)
        {
            return Err(throw(
                js,
                &DatastoreError::invalid_argument(
                    "PersistentStore(backend, prefix): the backend must be a store adapter \
                     (an object with get, set, update, list and del or remove) or a PersistentStore",
                ),
            ));
        }
        Ok(PersistentStore {
            adapter: js.reference(backend.0),
            prefix,
        })
    }

    /// The adapter this namespace stores in.
    #[napi(
        getter,
        ts_return_type = "{ get(key: string): Promise<any>; set(key: string, value: any): Promise<any>; update(key: string, updater: (value: any) => any): Promise<any[]>; list(prefix?: string): Promise<string[]>; del?(key: string): Promise<void>; remove?(key: string): Promise<void> }"
    )]
    pub fn adapter(&self) -> JsAny {
        JsAny(self.adapter.value())
    }

    /// Prepended to every key of this namespace.
    #[napi(getter)]
    pub fn prefix(&self) -> String {
        self.prefix.clone()
    }

    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string",
        ts_return_type = "Promise<T | undefined>"
    )]
    pub fn get(&self, env: &Env, key: JsAny) -> JsAny {
        self.forward(env, c"get", key, None)
    }

    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string, value: T",
        ts_return_type = "Promise<T>"
    )]
    pub fn set(&self, env: &Env, key: JsAny, value: JsAny) -> JsAny {
        self.forward(env, c"set", key, Some(value))
    }

    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string, updater: (value: T | undefined) => T | undefined | Promise<T | undefined>",
        ts_return_type = "Promise<[T | undefined, T | undefined]>"
    )]
    pub fn update(&self, env: &Env, key: JsAny, updater: JsAny) -> JsAny {
        self.forward(env, c"update", key, Some(updater))
    }

    #[napi(ts_args_type = "key: string", ts_return_type = "Promise<void>")]
    pub fn remove(&self, env: &Env, key: JsAny) -> JsAny {
        self.forward(env, self.remove_name(env), key, None)
    }

    #[napi(ts_args_type = "key: string", ts_return_type = "Promise<void>")]
    pub fn del(&self, env: &Env, key: JsAny) -> JsAny {
        self.forward(env, self.remove_name(env), key, None)
    }

    /// Keys of this namespace (full keys, prefix included, as reshuffle returns them),
    /// starting with `prefix` after the namespace's own, sorted by code point.
    #[napi(ts_args_type = "prefix?: string", ts_return_type = "Promise<string[]>")]
    pub fn list(&self, env: &Env, prefix: Option<JsAny>) -> JsAny {
        let rt = Runtime::get(env.raw());
        let js = rt.js;
        let mut full = self.prefix.clone();
        match prefix.map(|p| (js.kind(p.0), p.0)) {
            None | Some((Kind::Undefined, _)) => {}
            Some((Kind::String, v)) => full.push_str(&js.to_string(v).unwrap_or_default()),
            Some(_) => {
                return rejected(
                    js,
                    invalid(js, "list(prefix): the prefix must be a string".into()),
                )
            }
        }
        let adapter = self.adapter.value();
        let listed = js.call(js.get(adapter, c"list"), adapter, &[js.string(&full)]);
        match listed.and_then(|p| rt.keys_with_prefix(p, &full)) {
            Ok(p) => JsAny(p),
            Err(thrown) => rejected(js, thrown),
        }
    }

    /// Closes the adapter (shared by every namespace over it), if it can be closed.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: &Env) -> JsAny {
        let js = Js(env.raw());
        let adapter = self.adapter.value();
        let close = js.get(adapter, c"close");
        if js.kind(close) != Kind::Function {
            let (d, p) = js.create_promise();
            d.resolve(js, js.undefined());
            return JsAny(p);
        }
        match js.call(close, adapter, &[]) {
            Ok(v) => JsAny(v),
            Err(thrown) => rejected(js, thrown),
        }
    }
}

impl PersistentStore {
    fn remove_name(&self, env: &Env) -> &'static CStr {
        let js = Js(env.raw());
        if js.kind(js.get(self.adapter.value(), c"remove")) == Kind::Function {
            c"remove"
        } else {
            c"del"
        }
    }

    /// Calls `adapter[method](prefix + key, extra?)`; a bad key or a throw becomes a rejection.
    fn forward(&self, env: &Env, method: &CStr, key: JsAny, extra: Option<JsAny>) -> JsAny {
        let js = Js(env.raw());
        let key = match read_key(js, key.0) {
            Ok(k) if !k.is_empty() => k,
            Ok(_) => {
                return rejected(
                    js,
                    to_js_error(
                        js,
                        &DatastoreError::InvalidKey {
                            reason: "a key must be a non-empty string, got ''".into(),
                        },
                    ),
                )
            }
            Err(e) => return rejected(js, to_js_error(js, &e)),
        };
        let adapter = self.adapter.value();
        let full = js.string(&format!("{}{}", self.prefix, key));
        let args: Vec<Value> = match extra {
            Some(v) => vec![full, v.0],
            None => vec![full],
        };
        match js.call(js.get(adapter, method), adapter, &args) {
            Ok(v) => JsAny(v),
            Err(thrown) => rejected(js, thrown),
        }
    }
}

fn method_name(m: &str) -> std::ffi::CString {
    std::ffi::CString::new(m).unwrap_or_default()
}
