//! The JS face of a [`Store`]: the functions of `js::methods` delegate here. Each method
//! returns its result when the operation finished at once, else a promise of it; bad
//! arguments throw (index.js turns both into promises, and throws into rejections). The
//! operation runs on the core executor and usually settles before the method returns.

use std::borrow::Cow;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use super::boundary::CatchPanic;
use super::error::{pending, Errors};
use super::raw::{Js, JsAny, Kind, TextBuf, Value};
use super::runtime::Runtime;
use super::updater::{JsUpdater, Thrown};
use crate::core::{
    Backend, Change, DatastoreError, KeyList, Store, StoreOptions, StoredText, UpdateError,
};
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
    // U+FFFD is EF BF BD in UTF-8: a byte search first (a substring search of a short key
    // costs a `memcmp` call per candidate), and the exact check only for a key that may hold it.
    if key.as_bytes().contains(&0xEF) && key.contains('\u{FFFD}') && js.has_lone_surrogate(v) {
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

/// The longest time to live: about 285,000 years, the most milliseconds a JS number holds
/// exactly.
const MAX_TTL_MS: f64 = 9_007_199_254_740_991.0;

/// The `ttl` option of a write (milliseconds; `undefined`: none), checked before any
/// conversion.
fn read_ttl(js: Js, v: Value) -> Result<Option<Duration>, DatastoreError> {
    if matches!(js.kind(v), Kind::Undefined | Kind::Null) {
        return Ok(None);
    }
    let invalid = || {
        DatastoreError::invalid_argument(format!(
            "the option ttl must be a number of milliseconds greater than 0 and at most \
             {MAX_TTL_MS}"
        ))
    };
    let ms = js.number_value(v).ok_or_else(invalid)?;
    if !(ms > 0.0 && ms <= MAX_TTL_MS) {
        return Err(invalid());
    }
    Duration::try_from_secs_f64(ms / 1000.0)
        .map(Some)
        .map_err(|_| invalid())
}

/// The most keys one bulk call takes.
const MAX_BULK: usize = 1_000_000;

/// The keys of the array `v`, each checked as a key.
fn read_keys(js: Js, v: Value) -> Result<Vec<String>, DatastoreError> {
    let items = js.array_items(v, MAX_BULK).ok_or_else(|| {
        DatastoreError::invalid_argument(format!(
            "the keys must be an array of at most {MAX_BULK} strings"
        ))
    })?;
    let mut buf = [0; 256];
    items
        .into_iter()
        .map(|item| read_key(js, item, &mut buf).map(Cow::into_owned))
        .collect()
}

/// `n` JSON texts from the array `v` (made by index.js).
fn read_texts(js: Js, v: Value, n: usize) -> Result<Vec<String>, DatastoreError> {
    let items = js
        .array_items(v, MAX_BULK)
        .filter(|items| items.len() == n)
        .ok_or_else(|| DatastoreError::invalid_argument("a value for every key"))?;
    items
        .into_iter()
        .map(|item| {
            js.to_string(item)
                .ok_or_else(|| DatastoreError::invalid_argument("values must be JSON text"))
        })
        .collect()
}

/// The most keys one page holds.
const MAX_PAGE: f64 = 1_000_000_000.0;

/// `prefix` (a string, or `undefined` for all), `after` (a key or `undefined`) and `limit`
/// (a whole number from 1; `undefined`: no limit) of a page.
fn read_page(
    js: Js,
    prefix: Value,
    after: Value,
    limit: Value,
) -> Result<(String, Option<String>, usize), DatastoreError> {
    let text = |v: Value, what: &str| match js.kind(v) {
        Kind::Undefined | Kind::Null => Ok(None),
        Kind::String => Ok(js.to_string(v)),
        kind => Err(DatastoreError::invalid_argument(format!(
            "{what} must be a string, got {}",
            describe(kind)
        ))),
    };
    let prefix = text(prefix, "prefix")?.unwrap_or_default();
    let after = text(after, "after")?;
    let limit = match js.kind(limit) {
        Kind::Undefined | Kind::Null => usize::MAX,
        _ => match js.number_value(limit) {
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= MAX_PAGE => n as usize,
            Some(n) if n == f64::INFINITY => usize::MAX,
            _ => {
                return Err(DatastoreError::invalid_argument(format!(
                    "limit must be a whole number from 1 to {MAX_PAGE}, or Infinity"
                )))
            }
        },
    };
    Ok((prefix, after, limit))
}

/// A JSON text, or `undefined` for a missing value.
fn text_or_undefined(js: Js, text: Option<&str>) -> Value {
    match text {
        Some(t) => js.string(t),
        None => js.undefined(),
    }
}

/// A value handed over by `Store::get_now` as a JS string, or `undefined`; a large value is
/// read straight into the buffer of its string (`Js::large_string`).
fn stored_or_undefined(js: Js, text: Option<StoredText<'_>>) -> Result<Value, DatastoreError> {
    match text {
        Some(StoredText::Borrowed(t)) => Ok(js.string(t)),
        Some(StoredText::Large(large)) => js.large_string(large.len(), |buf| large.read_into(buf)),
        None => Ok(js.undefined()),
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
        match self
            .store
            .get_now(&key, |text| stored_or_undefined(js, text))
        {
            Some(Ok(Ok(v))) => Ok(JsAny::new(v)),
            Some(Err(e) | Ok(Err(e))) => Err(self.throw(js, &e)),
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
        ttl: Value,
    ) -> napi::Result<JsAny> {
        let js = rt.js;
        let ttl = read_ttl(js, ttl).map_err(|e| self.throw(js, &e))?;
        let mut buf = [0; 256];
        let key = self.key(js, key, &mut buf)?;
        rt.with_text_scratch(|scratch| {
            let mut text = [0; 256];
            let Some(json) = js.text_in(json, &mut text, scratch) else {
                let reason = js.to_string(reason).unwrap_or_else(|| {
                    "JSON has no text for it (undefined, a function or a Symbol)".into()
                });
                return Err(self.throw(js, &DatastoreError::invalid_value(&key, reason)));
            };
            match self.store.set_now(&key, json, ttl) {
                Some(done) => self.settled(js, done),
                None => run(
                    rt,
                    &self.errors,
                    "set",
                    self.store.set_expiring(&key, json.to_owned(), ttl),
                    |rt, ()| rt.js.undefined(),
                ),
            }
        })
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
    pub fn update(
        &self,
        rt: &'static Runtime,
        key: Value,
        updater: Value,
        ttl: Value,
    ) -> napi::Result<JsAny> {
        let js = rt.js;
        let ttl = read_ttl(js, ttl).map_err(|e| self.throw(js, &e))?;
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
            self.store.update_expiring(&key, updater, ttl),
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
        run(
            rt,
            &self.errors,
            "list",
            self.store.list_keys(&prefix),
            |rt, keys| key_list(rt.js, &keys),
        )
    }

    /// The values of the keys of the array `keys`, in order: JSON text or `undefined` each.
    pub fn get_many(&self, rt: &'static Runtime, keys: Value) -> napi::Result<JsAny> {
        let js = rt.js;
        let keys = read_keys(js, keys).map_err(|e| self.throw(js, &e))?;
        run(
            rt,
            &self.errors,
            "getMany",
            self.store.get_many(keys),
            |rt, values| {
                let js = rt.js;
                let items: Vec<Value> = values
                    .iter()
                    .map(|v| text_or_undefined(js, v.as_deref()))
                    .collect();
                js.array(&items)
            },
        )
    }

    /// Sets each key of the array `keys` to the JSON text at its index in `jsons` (made by the
    /// wrapper, which has checked every value), all or nothing; with `ttl` they expire.
    pub fn set_many(
        &self,
        rt: &'static Runtime,
        keys: Value,
        jsons: Value,
        ttl: Value,
    ) -> napi::Result<JsAny> {
        let js = rt.js;
        let read = || -> Result<_, DatastoreError> {
            let ttl = read_ttl(js, ttl)?;
            let keys = read_keys(js, keys)?;
            let jsons = read_texts(js, jsons, keys.len())?;
            let changes = jsons.into_iter().map(|j| Change::put(j, ttl)).collect();
            Ok((keys, changes))
        };
        let (keys, changes) = read().map_err(|e| self.throw(js, &e))?;
        run(
            rt,
            &self.errors,
            "setMany",
            self.store.write_many(keys, changes, "setMany"),
            |rt, ()| rt.js.undefined(),
        )
    }

    /// Removes every key of the array `keys`, all or nothing.
    pub fn remove_many(&self, rt: &'static Runtime, keys: Value) -> napi::Result<JsAny> {
        let js = rt.js;
        let keys = read_keys(js, keys).map_err(|e| self.throw(js, &e))?;
        let changes = vec![Change::Delete; keys.len()];
        run(
            rt,
            &self.errors,
            "removeMany",
            self.store.write_many(keys, changes, "removeMany"),
            |rt, ()| rt.js.undefined(),
        )
    }

    /// One page of keys (see [`key_list`]), after every write called before.
    pub fn keys_page(
        &self,
        rt: &'static Runtime,
        prefix: Value,
        after: Value,
        limit: Value,
    ) -> napi::Result<JsAny> {
        let js = rt.js;
        let (prefix, after, limit) =
            read_page(js, prefix, after, limit).map_err(|e| self.throw(js, &e))?;
        let page = self.store.list_page(&prefix, after, limit);
        run(rt, &self.errors, "keys", page, |rt, keys| {
            key_list(rt.js, &keys.iter().collect())
        })
    }

    /// One page of entries as one JSON text: `[[key, value], …]`, the values as stored.
    pub fn entries_page(
        &self,
        rt: &'static Runtime,
        prefix: Value,
        after: Value,
        limit: Value,
    ) -> napi::Result<JsAny> {
        let js = rt.js;
        let (prefix, after, limit) =
            read_page(js, prefix, after, limit).map_err(|e| self.throw(js, &e))?;
        let page = self.store.entries_page(&prefix, after, limit);
        run(rt, &self.errors, "entries", page, |rt, entries| {
            let size: usize = entries.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
            let mut text = String::with_capacity(size + 2);
            text.push('[');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push('[');
                text.push_str(&serde_json::to_string(k).unwrap_or_default());
                text.push(',');
                text.push_str(v);
                text.push(']');
            }
            text.push(']');
            rt.js.string(&text)
        })
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

/// `keys` for the wrapper's `keyList`: one string of the keys joined by NUL, which the wrapper
/// splits, or — when a key itself contains NUL, or there are none — an array of strings.
///
/// One string and `String.prototype.split` cost V8 about half of what one N-API string and
/// one `napi_set_element` per key do (`list()` of 10,000 keys, release build: 0.6 ms against
/// 1.07 ms); a JSON text would be one crossing too, but `JSON.parse` interns every short
/// string it makes, which costs more than either.
fn key_list(js: Js, keys: &KeyList) -> Value {
    match keys {
        KeyList::Joined { text, count } if *count > 0 => js.string(text),
        KeyList::Joined { .. } => js.array(&[]),
        KeyList::Separate(keys) => {
            let items: Vec<Value> = keys.iter().map(|k| js.string(k)).collect();
            js.array(&items)
        }
    }
}
