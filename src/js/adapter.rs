//! The JS face of a [`Store`]: the functions of `js::methods` delegate here. Each method
//! returns its result when the operation finished at once, else a promise of it; bad
//! arguments throw (index.js turns both into promises, and throws into rejections). The
//! operation runs on the core executor and usually settles before the method returns.

use std::borrow::Cow;
use std::future::Future;
use std::rc::Rc;

use super::boundary::CatchPanic;
use super::error::{pending, Errors};
use super::raw::{Js, JsAny, Kind, TextBuf, Value};
use super::runtime::Runtime;
use super::updater::{JsUpdater, Thrown};
use crate::core::{Backend, DatastoreError, Store, StoreOptions, UpdateError};
use crate::runtime::executor::Outcome;

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
pub fn read_key(js: Js, v: Value, buf: &mut TextBuf) -> Result<Cow<'_, str>, DatastoreError> {
    let Some(key) = js.text(v, buf) else {
        return Err(DatastoreError::InvalidKey {
            reason: format!("a key must be a string, got {}", describe(js.kind(v))),
        });
    };
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
        Kind::Number => "a number",
        Kind::Boolean => "a boolean",
        Kind::Other => "a Symbol or BigInt",
    }
}

/// Runs `op` on the executor. A result that is ready at once is returned as is (`to_js` of it);
/// otherwise a promise is returned, settled with `to_js` of the result when it comes. Errors
/// of a ready result are thrown (the JS wrapper turns them into rejections). A panic inside
/// `op` is its error (`ERR_DATASTORE_INTERNAL`).
fn run<T: 'static, E: Into<Rejection> + From<DatastoreError> + 'static>(
    rt: &'static Runtime,
    errors: &Rc<Errors>,
    what: &'static str,
    op: impl Future<Output = Result<T, E>> + 'static,
    to_js: impl FnOnce(&'static Runtime, T) -> Value + 'static,
) -> napi::Result<JsAny> {
    let js = rt.js;
    match rt.exec.run(CatchPanic::new(what, op)) {
        Outcome::Ready(Ok(v)) => Ok(JsAny::new(to_js(rt, v))),
        Outcome::Ready(Err(e)) => Err(match e.into() {
            Rejection::Store(e) => errors.throw(js, &e),
            Rejection::Thrown(Thrown(r)) => {
                js.throw(r.value());
                pending()
            }
        }),
        Outcome::Later(later) => {
            let (deferred, promise) = js.create_promise();
            let errors = errors.clone();
            later.then(move |result| {
                js.scoped(|| match result.map_err(Into::into) {
                    Ok(v) => deferred.resolve(js, to_js(rt, v)),
                    Err(Rejection::Store(e)) => deferred.reject(js, errors.make(js, &e)),
                    Err(Rejection::Thrown(Thrown(r))) => deferred.reject(js, r.value()),
                })
            });
            Ok(JsAny::new(promise))
        }
    }
}

/// A JSON text, or `undefined` for a missing value.
fn text_or_undefined(js: Js, text: Option<&str>) -> Value {
    match text {
        Some(t) => js.string(t),
        None => js.undefined(),
    }
}

/// The native side of every adapter class. Values cross as JSON text: the JS wrapper
/// (index.js) stringifies and parses, with JSON's exact rules and V8's speed. Each method
/// returns its result directly when the operation finished at once, else a promise of it.
pub struct JsStore<B: Backend> {
    pub store: Store<B>,
    /// The error factory of the realm that made this store (see `js::error`).
    pub errors: Rc<Errors>,
}

impl<B: Backend> JsStore<B> {
    pub fn new(backend: B, options: StoreOptions, errors: Rc<Errors>) -> Self {
        JsStore {
            store: Store::with_options(backend, options),
            errors,
        }
    }

    fn throw(&self, js: Js, e: &DatastoreError) -> napi::Error {
        self.errors.throw(js, e)
    }

    fn key<'b>(&self, js: Js, key: Value, buf: &'b mut TextBuf) -> napi::Result<Cow<'b, str>> {
        read_key(js, key, buf).map_err(|e| self.throw(js, &e))
    }

    /// JSON text or `undefined`.
    /// The common case is answered at once, the JS string made straight from the backend's
    /// copy of the value (`Store::get_now`); otherwise the get is queued. Likewise `set` and
    /// `remove` write at once when they can (`Store::set_now`, `Store::remove_now`).
    pub fn get(&self, rt: &'static Runtime, key: Value) -> napi::Result<JsAny> {
        let js = rt.js;
        let mut buf = [0; 256];
        let key = self.key(js, key, &mut buf)?;
        match self.store.get_now(&key, |text| text_or_undefined(js, text)) {
            Some(Ok(v)) => Ok(JsAny::new(v)),
            Some(Err(e)) => Err(self.throw(js, &e)),
            None => run(rt, &self.errors, "get", self.store.get(&key), |rt, v| {
                text_or_undefined(rt.js, v.as_deref())
            }),
        }
    }

    /// Stores `json`, the JSON text made by the wrapper; when JSON has no text for the value,
    /// `json` is not a string and `reason` says why.
    pub fn set(
        &self,
        rt: &'static Runtime,
        key: Value,
        json: Value,
        reason: Value,
    ) -> napi::Result<JsAny> {
        let js = rt.js;
        let mut buf = [0; 256];
        let key = self.key(js, key, &mut buf)?;
        let mut text = [0; 256];
        let Some(json) = js.text(json, &mut text) else {
            let reason = js.to_string(reason).unwrap_or_else(|| {
                "JSON has no text for it (undefined, a function or a Symbol)".into()
            });
            return Err(self.throw(js, &DatastoreError::invalid_value(&key, reason)));
        };
        match self.store.set_now(&key, &json) {
            Some(done) => self.settled(js, done),
            None => run(
                rt,
                &self.errors,
                "set",
                self.store.set(&key, json.into_owned()),
                |rt, ()| rt.js.undefined(),
            ),
        }
    }

    pub fn remove(&self, rt: &'static Runtime, key: Value) -> napi::Result<JsAny> {
        let mut buf = [0; 256];
        let key = self.key(rt.js, key, &mut buf)?;
        match self.store.remove_now(&key) {
            Some(done) => self.settled(rt.js, done),
            None => run(
                rt,
                &self.errors,
                "remove",
                self.store.remove(&key),
                |rt, ()| rt.js.undefined(),
            ),
        }
    }

    /// The result of a write done synchronously: `undefined`, or the error thrown.
    fn settled(&self, js: Js, done: crate::core::Result<()>) -> napi::Result<JsAny> {
        match done {
            Ok(()) => Ok(JsAny::new(js.undefined())),
            Err(e) => Err(self.throw(js, &e)),
        }
    }

    /// `[oldJson, newJson]`, each JSON text or `undefined`.
    pub fn update(&self, rt: &'static Runtime, key: Value, updater: Value) -> napi::Result<JsAny> {
        let js = rt.js;
        let mut buf = [0; 256];
        let key = self.key(js, key, &mut buf)?;
        if js.kind(updater) != Kind::Function {
            return Err(self.throw(
                js,
                &DatastoreError::invalid_argument(format!(
                    "update({:?}, updater): the updater must be a function",
                    &*key
                )),
            ));
        }
        let updater = JsUpdater {
            rt,
            func: js.reference(updater),
            key: key.to_string(),
        };
        run(
            rt,
            &self.errors,
            "update",
            self.store.update(&key, updater),
            |rt, (old, new)| {
                let js = rt.js;
                js.array(&[
                    text_or_undefined(js, old.as_deref()),
                    text_or_undefined(js, new.as_deref()),
                ])
            },
        )
    }

    /// `prefix` may be `undefined` or `null` for every key.
    pub fn list(&self, rt: &'static Runtime, prefix: Value) -> napi::Result<JsAny> {
        let js = rt.js;
        let prefix = match js.kind(prefix) {
            Kind::Undefined | Kind::Null => String::new(),
            Kind::String => js.to_string(prefix).unwrap_or_default(),
            kind => {
                return Err(self.throw(
                    js,
                    &DatastoreError::invalid_argument(format!(
                        "list(prefix): the prefix must be a string, got {}",
                        describe(kind)
                    )),
                ))
            }
        };
        // One JSON text for the whole list: V8 parses it far faster than it takes one string
        // per key through N-API.
        run(
            rt,
            &self.errors,
            "list",
            self.store.list(&prefix),
            |rt, keys| {
                rt.js
                    .string(&serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into()))
            },
        )
    }

    /// Runs backend maintenance (`op`, such as a compaction) after every write called before.
    pub fn after_writes(
        &self,
        rt: &'static Runtime,
        op: impl Future<Output = crate::core::Result<()>> + 'static,
    ) -> napi::Result<JsAny> {
        run(
            rt,
            &self.errors,
            "compact",
            self.store.after_writes(op),
            |rt, ()| rt.js.undefined(),
        )
    }

    /// Keys whose in-process lock is held or awaited (for tests: 0 once the store is idle).
    pub fn held_keys(&self) -> u32 {
        u32::try_from(self.store.held_keys()).unwrap_or(u32::MAX)
    }

    pub fn close(&self, rt: &'static Runtime) -> napi::Result<JsAny> {
        run(rt, &self.errors, "close", self.store.close(), |rt, ()| {
            rt.js.undefined()
        })
    }
}
