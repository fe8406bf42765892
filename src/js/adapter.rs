//! The JS face of a [`Store`]: every adapter class delegates here. Each method returns a
//! promise at once; bad arguments reject it (never throw); the operation runs on the core
//! executor and usually settles before the method returns.

use std::future::Future;

use super::error::{message_of, to_js_error};
use super::raw::{Deferred, Js, JsAny, Kind, Value};
use super::runtime::Runtime;
use super::updater::{JsUpdater, Thrown};
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

/// The JSON text of a value to store, with JSON's own rules.
pub fn value_to_json(rt: &Runtime, key: &str, v: Value) -> Result<String, DatastoreError> {
    match rt.stringify(v) {
        Ok(Some(json)) => Ok(json),
        Ok(None) => Err(DatastoreError::invalid_value(
            key,
            "JSON has no text for it (undefined, a function or a Symbol)",
        )),
        Err(thrown) => Err(DatastoreError::invalid_value(
            key,
            message_of(rt.js, thrown, "JSON.stringify threw"),
        )),
    }
}

/// A fresh JS copy of stored JSON text.
fn parse(rt: &Runtime, key: &str, text: &str) -> Result<Value, DatastoreError> {
    rt.parse(text).map_err(|thrown| DatastoreError::Corrupt {
        path: format!("value of key {key:?}"),
        position: 0,
        reason: message_of(rt.js, thrown, "not JSON"),
    })
}

/// Runs `op` on the executor and settles the promise with `to_js` of its result.
fn run<T: 'static, E: Into<Rejection> + 'static>(
    rt: &'static Runtime,
    deferred: Deferred,
    op: impl Future<Output = Result<T, E>> + 'static,
    to_js: impl FnOnce(&'static Runtime, T) -> Result<Value, DatastoreError> + 'static,
) {
    rt.exec.spawn(async move {
        let result = op.await;
        let js = rt.js;
        js.scoped(|| {
            match result
                .map_err(Into::into)
                .and_then(|v| to_js(rt, v).map_err(Rejection::Store))
            {
                Ok(v) => deferred.resolve(js, v),
                Err(Rejection::Store(e)) => deferred.reject(js, to_js_error(js, &e)),
                Err(Rejection::Thrown(Thrown(r))) => deferred.reject(js, r.value()),
            }
        });
    });
}

pub struct JsStore<B: Backend> {
    pub store: Store<B>,
}

impl<B: Backend> JsStore<B> {
    pub fn new(backend: B) -> Self {
        JsStore {
            store: Store::new(backend),
        }
    }

    /// Creates the promise; `start` either starts the operation or returns why it cannot.
    fn promise(
        env: napi::sys::napi_env,
        start: impl FnOnce(&'static Runtime, Deferred) -> Result<(), (Deferred, DatastoreError)>,
    ) -> JsAny {
        let rt = Runtime::get(env);
        let js = rt.js;
        let (deferred, promise) = js.create_promise();
        if let Err((deferred, e)) = start(rt, deferred) {
            deferred.reject(js, to_js_error(js, &e));
        }
        JsAny(promise)
    }

    pub fn get(&self, env: napi::sys::napi_env, key: JsAny) -> JsAny {
        Self::promise(env, |rt, d| {
            let key = match read_key(rt.js, key.0) {
                Ok(k) => k,
                Err(e) => return Err((d, e)),
            };
            let op = self.store.get(&key);
            run(rt, d, op, move |rt, v| match v {
                None => Ok(rt.js.undefined()),
                Some(text) => parse(rt, &key, &text),
            });
            Ok(())
        })
    }

    pub fn set(&self, env: napi::sys::napi_env, key: JsAny, value: JsAny) -> JsAny {
        Self::promise(env, |rt, d| {
            let key = match read_key(rt.js, key.0) {
                Ok(k) => k,
                Err(e) => return Err((d, e)),
            };
            let json = match value_to_json(rt, &key, value.0) {
                Ok(j) => j,
                Err(e) => return Err((d, e)),
            };
            let op = self.store.set(&key, json.clone());
            run(rt, d, op, move |rt, ()| parse(rt, &key, &json));
            Ok(())
        })
    }

    pub fn remove(&self, env: napi::sys::napi_env, key: JsAny) -> JsAny {
        Self::promise(env, |rt, d| {
            let key = match read_key(rt.js, key.0) {
                Ok(k) => k,
                Err(e) => return Err((d, e)),
            };
            run(rt, d, self.store.remove(&key), |rt, ()| {
                Ok(rt.js.undefined())
            });
            Ok(())
        })
    }

    pub fn update(&self, env: napi::sys::napi_env, key: JsAny, updater: JsAny) -> JsAny {
        Self::promise(env, |rt, d| {
            let js = rt.js;
            let key = match read_key(js, key.0) {
                Ok(k) => k,
                Err(e) => return Err((d, e)),
            };
            if js.kind(updater.0) != Kind::Function {
                return Err((
                    d,
                    DatastoreError::invalid_argument(format!(
                        "update({key:?}, updater): the updater must be a function"
                    )),
                ));
            }
            let updater = JsUpdater {
                rt,
                func: js.reference(updater.0),
                key: key.clone(),
            };
            let op = self.store.update(&key, updater);
            run(rt, d, op, move |rt, (old, new)| {
                let to_value = |text: Option<String>| match text {
                    None => Ok(rt.js.undefined()),
                    Some(t) => parse(rt, &key, &t),
                };
                let old = to_value(old)?;
                let new = to_value(new)?;
                Ok(rt.js.array(&[old, new]))
            });
            Ok(())
        })
    }

    pub fn list(&self, env: napi::sys::napi_env, prefix: Option<JsAny>) -> JsAny {
        Self::promise(env, |rt, d| {
            let js = rt.js;
            let prefix = match prefix.map(|p| (js.kind(p.0), p.0)) {
                None | Some((Kind::Undefined, _)) => String::new(),
                Some((Kind::String, v)) => js.to_string(v).unwrap_or_default(),
                Some((kind, _)) => {
                    return Err((
                        d,
                        DatastoreError::invalid_argument(format!(
                            "list(prefix): the prefix must be a string, got {}",
                            describe(kind)
                        )),
                    ))
                }
            };
            run(rt, d, self.store.list(&prefix), |rt, keys| {
                let js = rt.js;
                let items: Vec<Value> = keys.iter().map(|k| js.string(k)).collect();
                Ok(js.array(&items))
            });
            Ok(())
        })
    }

    pub fn close(&self, env: napi::sys::napi_env) -> JsAny {
        Self::promise(env, |rt, d| {
            run(rt, d, self.store.close(), |rt, ()| Ok(rt.js.undefined()));
            Ok(())
        })
    }
}
