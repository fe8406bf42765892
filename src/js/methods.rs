//! The methods of every native store, declared to JS here and nowhere else: plain functions
//! made with `napi_create_function` whose `data` is the store, so a call costs one
//! `napi_get_cb_info` (arguments and store together) instead of napi-rs's class-method
//! plumbing (unwrap, borrow registry, class identity check). `index.js` calls them through
//! the object that a native class's `methods()` returns.
//!
//! Invariants:
//! - Each function owns one strong `Rc` of its store (its `data`), dropped by the finalizer of
//!   the function object: the store outlives every call, whoever keeps a function. After
//!   `close` the store still exists and its operations reject with `ERR_DATASTORE_CLOSED`.
//! - Everything runs on the JS thread (functions are called there, and N-API runs finalizers
//!   there), so `Rc` is enough.
//! - A callback never unwinds into N-API: an error is a pending JS exception, and returning
//!   NULL makes N-API throw it.

use std::ffi::{c_void, CStr};
use std::ptr;
use std::rc::Rc;

use napi::sys;
use napi_derive::napi;

use super::adapter::JsStore;
use super::boundary::catch;
use super::raw::{Js, JsAny, Value};
use super::runtime::Runtime;
use crate::core::{Backend, DatastoreError};

/// What `methods()` of every native class returns. Values cross as JSON text; each method
/// returns its result at once when the operation finished, else a promise of it (index.js
/// turns both into promises).
#[napi(object, object_from_js = false)]
pub struct NativeStoreMethods {
    #[napi(ts_type = "(key: string) => string | undefined | Promise<string | undefined>")]
    pub get: JsAny,
    #[napi(
        ts_type = "(key: string, json: string | undefined, reason?: string, ttl?: number) => void | Promise<void>"
    )]
    pub set: JsAny,
    #[napi(
        ts_type = "(key: string, updater: (value: any) => any, ttl?: number) => [string | undefined, string | undefined] | Promise<[string | undefined, string | undefined]>"
    )]
    pub update: JsAny,
    #[napi(ts_type = "(key: string) => void | Promise<void>")]
    pub remove: JsAny,
    /// The keys, sorted: joined by NUL in one string, or an array when a key contains NUL or
    /// there are none.
    #[napi(ts_type = "(prefix?: string) => string | string[] | Promise<string | string[]>")]
    pub list: JsAny,
    #[napi(ts_type = "() => void | Promise<void>")]
    pub close: JsAny,
    /// Values as JSON text (`undefined`: missing), in the order of the keys.
    #[napi(
        js_name = "getMany",
        ts_type = "(keys: string[]) => Array<string | undefined> | Promise<Array<string | undefined>>"
    )]
    pub get_many: JsAny,
    #[napi(
        js_name = "setMany",
        ts_type = "(keys: string[], jsons: string[], ttl?: number) => void | Promise<void>"
    )]
    pub set_many: JsAny,
    #[napi(
        js_name = "removeMany",
        ts_type = "(keys: string[]) => void | Promise<void>"
    )]
    pub remove_many: JsAny,
    /// One page of keys, sorted, in the form `list` returns.
    #[napi(
        js_name = "keysPage",
        ts_type = "(prefix?: string, after?: string, limit?: number) => string | string[] | Promise<string | string[]>"
    )]
    pub keys_page: JsAny,
    /// One page of entries as one JSON text: `[[key, value], …]`.
    #[napi(
        js_name = "entriesPage",
        ts_type = "(prefix?: string, after?: string, limit?: number) => string | Promise<string>"
    )]
    pub entries_page: JsAny,
    /// Keys whose lock is held or awaited (0 when idle); for leak checks in tests.
    #[napi(js_name = "__heldKeys", ts_type = "() => number")]
    pub held_keys: JsAny,
    /// Every page of a listing walks all the engine's keys (Redis): `entries()` lists the
    /// names once with `keysPage` and reads them a batch at a time with `getMany`.
    #[napi(js_name = "pagesWalkEveryKey")]
    pub pages_walk_every_key: bool,
}

/// The functions of `store`.
pub fn store_methods<B: Backend>(
    js: Js,
    store: &Rc<JsStore<B>>,
) -> Result<NativeStoreMethods, DatastoreError> {
    Ok(NativeStoreMethods {
        get: bind(js, c"get", store, get::<B>)?,
        set: bind(js, c"set", store, set::<B>)?,
        update: bind(js, c"update", store, update::<B>)?,
        remove: bind(js, c"remove", store, remove::<B>)?,
        list: bind(js, c"list", store, list::<B>)?,
        close: bind(js, c"close", store, close::<B>)?,
        get_many: bind(js, c"getMany", store, get_many::<B>)?,
        set_many: bind(js, c"setMany", store, set_many::<B>)?,
        remove_many: bind(js, c"removeMany", store, remove_many::<B>)?,
        keys_page: bind(js, c"keysPage", store, keys_page::<B>)?,
        entries_page: bind(js, c"entriesPage", store, entries_page::<B>)?,
        held_keys: bind(js, c"__heldKeys", store, held_keys::<B>)?,
        pages_walk_every_key: store.store.pages_walk_every_key(),
    })
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> Value;

/// A JS function calling `cb` with a strong reference to `store` as its data.
fn bind<B: Backend>(
    js: Js,
    name: &CStr,
    store: &Rc<JsStore<B>>,
    cb: Callback,
) -> Result<JsAny, DatastoreError> {
    let data = Rc::into_raw(store.clone()).cast_mut().cast::<c_void>();
    let mut f = ptr::null_mut();
    // SAFETY: valid env on the JS thread. The finalizer given to `napi_wrap` owns `data` from
    // the moment the wrap succeeds; until then it is released here.
    unsafe {
        let env = js.env();
        let made = sys::napi_create_function(env, name.as_ptr(), -1, Some(cb), data, &mut f);
        if made != sys::Status::napi_ok
            || sys::napi_wrap(
                env,
                f,
                data,
                Some(release::<B>),
                ptr::null_mut(),
                ptr::null_mut(),
            ) != sys::Status::napi_ok
        {
            js.take_exception();
            release::<B>(env, data, ptr::null_mut());
            return Err(DatastoreError::Internal {
                message: format!("cannot create the store method {}", name.to_string_lossy()),
            });
        }
    }
    Ok(JsAny::new(f))
}

/// Finalizer of a method: drops its reference to the store.
///
/// # Safety
/// `data` is the strong reference [`bind`] made, released once.
unsafe extern "C" fn release<B: Backend>(_env: sys::napi_env, data: *mut c_void, _: *mut c_void) {
    super::boundary::quietly(|| {
        // SAFETY: `data` is the strong reference `bind` made, released once (the contract).
        let store = unsafe { Rc::from_raw(data.cast_const().cast::<JsStore<B>>()) };
        drop(store)
    });
}

/// Reads `N` arguments (missing ones are `undefined`) and the store, then runs `f`. Its
/// error, or a panic, is thrown through the store's realm (see `js::error`).
///
/// # Safety
/// `env` and `info` are those of a call of a function made by [`bind`] for a `JsStore<B>`.
unsafe fn call<B: Backend, const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    what: &str,
    f: impl FnOnce(&JsStore<B>, &'static Runtime, [Value; N]) -> napi::Result<JsAny>,
) -> Value {
    // SAFETY: N-API calls this on the env's thread, inside a call from JS.
    let js = unsafe { Js::from_env(env) };
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data = ptr::null_mut();
    // SAFETY: valid env and callback info; `argv` has room for `argc` values.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    if status != sys::Status::napi_ok || data.is_null() {
        js.throw(js.error("ERR_DATASTORE_INTERNAL", "invalid call of a store method"));
        return ptr::null_mut();
    }
    // SAFETY: `data` is the store this function holds a reference to (see `bind`).
    let store = unsafe { &*data.cast_const().cast::<JsStore<B>>() };
    let error = match catch(what, || f(store, Runtime::get(env), argv)) {
        Ok(Ok(v)) => return v.value(),
        Ok(Err(_)) if js.exception_pending() => return ptr::null_mut(),
        // An error with no exception pending is not one of ours: a bug.
        Ok(Err(e)) => DatastoreError::Internal {
            message: format!("{what}: {}", e.reason),
        },
        Err(panicked) => {
            js.take_exception();
            panicked
        }
    };
    store.errors.throw(js, &error);
    ptr::null_mut()
}

unsafe extern "C" fn get<B: Backend>(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe { call::<B, 1>(env, info, "get", |s, rt, [key]| s.get(rt, key)) }
}

unsafe extern "C" fn set<B: Backend>(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe {
        call::<B, 4>(env, info, "set", |s, rt, [key, json, reason, ttl]| {
            s.set(rt, key, json, reason, ttl)
        })
    }
}

unsafe extern "C" fn update<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe {
        call::<B, 3>(env, info, "update", |s, rt, [key, updater, ttl]| {
            s.update(rt, key, updater, ttl)
        })
    }
}

unsafe extern "C" fn remove<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe { call::<B, 1>(env, info, "remove", |s, rt, [key]| s.remove(rt, key)) }
}

unsafe extern "C" fn list<B: Backend>(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe { call::<B, 1>(env, info, "list", |s, rt, [prefix]| s.list(rt, prefix)) }
}

unsafe extern "C" fn close<B: Backend>(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe { call::<B, 0>(env, info, "close", |s, rt, []| s.close(rt)) }
}

unsafe extern "C" fn held_keys<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe {
        call::<B, 0>(env, info, "__heldKeys", |s, rt, []| {
            Ok(JsAny::new(rt.js.number(f64::from(s.held_keys()))))
        })
    }
}

unsafe extern "C" fn get_many<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe { call::<B, 1>(env, info, "getMany", |s, rt, [keys]| s.get_many(rt, keys)) }
}

unsafe extern "C" fn set_many<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe {
        call::<B, 3>(env, info, "setMany", |s, rt, [keys, jsons, ttl]| {
            s.set_many(rt, keys, jsons, ttl)
        })
    }
}

unsafe extern "C" fn remove_many<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe {
        call::<B, 1>(env, info, "removeMany", |s, rt, [keys]| {
            s.remove_many(rt, keys)
        })
    }
}

unsafe extern "C" fn keys_page<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe {
        call::<B, 3>(env, info, "keys", |s, rt, [prefix, after, limit]| {
            s.keys_page(rt, prefix, after, limit)
        })
    }
}

unsafe extern "C" fn entries_page<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    // SAFETY: N-API calls this for a function `bind` made for a `JsStore<B>`.
    unsafe {
        call::<B, 3>(env, info, "entries", |s, rt, [prefix, after, limit]| {
            s.entries_page(rt, prefix, after, limit)
        })
    }
}
