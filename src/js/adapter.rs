//! The JS face of a [`Store`]: every adapter class delegates here. Each method returns a
//! promise at once; bad arguments reject it (never throw); the operation runs on the core
//! executor and usually settles before the method returns.

use std::future::Future;

use super::error::{throw, to_js_error};
use super::raw::{Js, JsAny, Kind, Value};
use super::runtime::Runtime;
use super::updater::{JsUpdater, Thrown};
use crate::core::executor::Outcome;
use crate::core::{Backend, DatastoreError, Store, UpdateError};

/// Why a promise rejects: a store error, or an updater's own throw.
enum Rejection {
    Store(DatastoreError),
    Thrown(Thrown),
}

impl From<DatastoreError> for Rejection {
    fn from(e: DatastoreError) -> Self {
        Rejection::Store(e)
    }
}

impl From<UpdateError<Thrown>> for Rejection {
    fn from(e: UpdateError<Thrown>) -> Self {
        match e {
            UpdateError::Store(e) => Rejection::Store(e),
            UpdateError::Updater(t) => Rejection::Thrown(t),
        }
    }
}

/// A key from JS: a string that UTF-8 can hold exactly (length is checked by the core).
pub fn read_key(js: Js, v: Value) -> Result<String, DatastoreError> {
    let kind = js.kind(v);
    if kind != Kind::String {
        return Err(DatastoreError::InvalidKey {
            reason: format!("a key must be a string, got {}", describe(kind)),
        });
    }
    let key = js.to_string(v).unwrap_or_default();
    if key.contains('\u{FFFD}') && js.has_lone_surrogate(v) {
        return Err(DatastoreError::InvalidKey {
            reason: "a key may not contain a lone UTF-16 surrogate".into(),
        });
    }
    Ok(key)
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Undefined => "undefined",
        Kind::Null => "null",
        Kind::String => "a string",
        Kind::Function => "a function",
        Kind::Object => "an object",
        Kind::Other => "a number, boolean, Symbol or BigInt",
    }
}

/// Runs `op` on the executor. A result that is ready at once is returned as is (`to_js` of it);
/// otherwise a promise is returned, settled with `to_js` of the result when it comes. Errors
/// of a ready result are thrown (the JS wrapper turns them into rejections).
fn run<T: 'static, E: Into<Rejection> + 'static>(
    rt: &'static Runtime,
    op: impl Future<Output = Result<T, E>> + 'static,
    to_js: impl FnOnce(&'static Runtime, T) -> Value + 'static,
) -> napi::Result<JsAny> {
    let js = rt.js;
    match rt.exec.run(op) {
        Outcome::Ready(Ok(v)) => Ok(JsAny(to_js(rt, v))),
        Outcome::Ready(Err(e)) => Err(match e.into() {
            Rejection::Store(e) => throw(js, &e),
            Rejection::Thrown(Thrown(r)) => {
                unsafe { napi::sys::napi_throw(js.0, r.value()) };
                napi::Error::new(napi::Status::PendingException, "the updater threw")
            }
        }),
        Outcome::Later(later) => {
            let (deferred, promise) = js.create_promise();
            later.then(move |result| {
                js.scoped(|| match result.map_err(Into::into) {
                    Ok(v) => deferred.resolve(js, to_js(rt, v)),
                    Err(Rejection::Store(e)) => deferred.reject(js, to_js_error(js, &e)),
                    Err(Rejection::Thrown(Thrown(r))) => deferred.reject(js, r.value()),
                })
            });
            Ok(JsAny(promise))
        }
    }
}

/// A JSON text, or `undefined` for a missing value.
fn text_or_undefined(js: Js, text: Option<String>) -> Value {
    match text {
        Some(t) => js.string(&t),
        None => js.undefined(),
    }
}

/// The native side of every adapter class. Values cross as JSON text: the JS wrapper
/// (index.js) stringifies and parses, with JSON's exact rules and V8's speed. Each method
/// returns its result directly when the operation finished at once, else a promise of it.
pub struct JsStore<B: Backend> {
    pub store: Store<B>,
}

impl<B: Backend> JsStore<B> {
    pub fn new(backend: B) -> Self {
        JsStore {
            store: Store::new(backend),
        }
    }

    fn key(rt: &Runtime, key: JsAny) -> napi::Result<String> {
        read_key(rt.js, key.0).map_err(|e| throw(rt.js, &e))
    }

    /// JSON text or `undefined`.
    pub fn get(&self, env: napi::sys::napi_env, key: JsAny) -> napi::Result<JsAny> {
        let rt = Runtime::get(env);
        let key = Self::key(rt, key)?;
        run(rt, self.store.get(&key), |rt, v| {
            text_or_undefined(rt.js, v)
        })
    }

    /// Stores `json`, the JSON text made by the wrapper; when JSON has no text for the value,
    /// `json` is not a string and `reason` says why.
    pub fn set(
        &self,
        env: napi::sys::napi_env,
        key: JsAny,
        json: JsAny,
        reason: Option<JsAny>,
    ) -> napi::Result<JsAny> {
        let rt = Runtime::get(env);
        let js = rt.js;
        let key = Self::key(rt, key)?;
        let json = match js.kind(json.0) {
            Kind::String => js.to_string(json.0).unwrap_or_default(),
            _ => {
                let reason = reason.and_then(|r| js.to_string(r.0)).unwrap_or_else(|| {
                    "JSON has no text for it (undefined, a function or a Symbol)".into()
                });
                return Err(throw(js, &DatastoreError::invalid_value(&key, reason)));
            }
        };
        run(rt, self.store.set(&key, json), |rt, ()| rt.js.undefined())
    }

    pub fn remove(&self, env: napi::sys::napi_env, key: JsAny) -> napi::Result<JsAny> {
        let rt = Runtime::get(env);
        let key = Self::key(rt, key)?;
        run(rt, self.store.remove(&key), |rt, ()| rt.js.undefined())
    }

    /// `[oldJson, newJson]`, each JSON text or `undefined`.
    pub fn update(
        &self,
        env: napi::sys::napi_env,
        key: JsAny,
        updater: JsAny,
    ) -> napi::Result<JsAny> {
        let rt = Runtime::get(env);
        let js = rt.js;
        let key = Self::key(rt, key)?;
        if js.kind(updater.0) != Kind::Function {
            return Err(throw(
                js,
                &DatastoreError::invalid_argument(format!(
                    "update({key:?}, updater): the updater must be a function"
                )),
            ));
        }
        let updater = JsUpdater {
            rt,
            func: js.reference(updater.0),
            key: key.clone(),
        };
        run(rt, self.store.update(&key, updater), |rt, (old, new)| {
            let js = rt.js;
            js.array(&[text_or_undefined(js, old), text_or_undefined(js, new)])
        })
    }

    pub fn list(&self, env: napi::sys::napi_env, prefix: Option<JsAny>) -> napi::Result<JsAny> {
        let rt = Runtime::get(env);
        let js = rt.js;
        let prefix = match prefix.map(|p| (js.kind(p.0), p.0)) {
            None | Some((Kind::Undefined, _)) => String::new(),
            Some((Kind::String, v)) => js.to_string(v).unwrap_or_default(),
            Some((kind, _)) => {
                return Err(throw(
                    js,
                    &DatastoreError::invalid_argument(format!(
                        "list(prefix): the prefix must be a string, got {}",
                        describe(kind)
                    )),
                ))
            }
        };
        run(rt, self.store.list(&prefix), |rt, keys| {
            let js = rt.js;
            let items: Vec<Value> = keys.iter().map(|k| js.string(k)).collect();
            js.array(&items)
        })
    }

    /// Runs backend maintenance (`op`, such as a compaction) after every write called before.
    pub fn after_writes(
        &self,
        env: napi::sys::napi_env,
        op: impl Future<Output = crate::core::Result<()>> + 'static,
    ) -> napi::Result<JsAny> {
        let rt = Runtime::get(env);
        run(rt, self.store.after_writes(op), |rt, ()| rt.js.undefined())
    }

    /// Keys whose in-process lock is held or awaited (for tests: 0 once the store is idle).
    pub fn held_keys(&self) -> u32 {
        u32::try_from(self.store.held_keys()).unwrap_or(u32::MAX)
    }

    pub fn close(&self, env: napi::sys::napi_env) -> napi::Result<JsAny> {
        let rt = Runtime::get(env);
        run(rt, self.store.close(), |rt, ()| rt.js.undefined())
    }
}
