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
use super::raw::{Js, JsAny, Value};
use super::runtime::Runtime;
use crate::core::Backend;

/// What `methods()` of every native class returns. Values cross as JSON text; each method
/// returns its result at once when the operation finished, else a promise of it (index.js
/// turns both into promises).
#[napi(object, object_from_js = false)]
pub struct NativeStoreMethods {
    #[napi(ts_type = "(key: string) => string | undefined | Promise<string | undefined>")]
    pub get: JsAny,
    #[napi(
        ts_type = "(key: string, json: string | undefined, reason?: string) => void | Promise<void>"
    )]
    pub set: JsAny,
    #[napi(
        ts_type = "(key: string, updater: (value: any) => any) => [string | undefined, string | undefined] | Promise<[string | undefined, string | undefined]>"
    )]
    pub update: JsAny,
    #[napi(ts_type = "(key: string) => void | Promise<void>")]
    pub remove: JsAny,
    /// The keys as one JSON text (an array of strings).
    #[napi(ts_type = "(prefix?: string) => string | Promise<string>")]
    pub list: JsAny,
    #[napi(ts_type = "() => void | Promise<void>")]
    pub close: JsAny,
    /// Keys whose lock is held or awaited (0 when idle); for leak checks in tests.
    #[napi(js_name = "__heldKeys", ts_type = "() => number")]
    pub held_keys: JsAny,
}

/// The functions of `store`.
pub fn store_methods<B: Backend>(
    js: Js,
    store: &Rc<JsStore<B>>,
) -> napi::Result<NativeStoreMethods> {
    Ok(NativeStoreMethods {
        get: bind(js, c"get", store, get::<B>)?,
        set: bind(js, c"set", store, set::<B>)?,
        update: bind(js, c"update", store, update::<B>)?,
        remove: bind(js, c"remove", store, remove::<B>)?,
        list: bind(js, c"list", store, list::<B>)?,
        close: bind(js, c"close", store, close::<B>)?,
        held_keys: bind(js, c"__heldKeys", store, held_keys::<B>)?,
    })
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> Value;

/// A JS function calling `cb` with a strong reference to `store` as its data.
fn bind<B: Backend>(
    js: Js,
    name: &CStr,
    store: &Rc<JsStore<B>>,
    cb: Callback,
) -> napi::Result<JsAny> {
    let data = Rc::into_raw(store.clone()).cast_mut().cast::<c_void>();
    let mut f = ptr::null_mut();
    // SAFETY: valid env on the JS thread. The finalizer given to `napi_wrap` owns `data` from
    // the moment the wrap succeeds; until then it is released here.
    unsafe {
        let made = sys::napi_create_function(js.0, name.as_ptr(), -1, Some(cb), data, &mut f);
        if made != sys::Status::napi_ok
            || sys::napi_wrap(
                js.0,
                f,
                data,
                Some(release::<B>),
                ptr::null_mut(),
                ptr::null_mut(),
            ) != sys::Status::napi_ok
        {
            release::<B>(js.0, data, ptr::null_mut());
            return Err(napi::Error::from_reason("cannot create a store method"));
        }
    }
    Ok(JsAny(f))
}

/// Finalizer of a method: drops its reference to the store.
unsafe extern "C" fn release<B: Backend>(_env: sys::napi_env, data: *mut c_void, _: *mut c_void) {
    drop(Rc::from_raw(data.cast_const().cast::<JsStore<B>>()));
}

/// Reads `N` arguments (missing ones are `undefined`) and the store, then runs `f`.
///
/// # Safety
/// `info` is the callback info of a function made by [`bind`] for a `JsStore<B>`.
unsafe fn call<B: Backend, const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    f: impl FnOnce(&JsStore<B>, &'static Runtime, [Value; N]) -> napi::Result<JsAny>,
) -> Value {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data = ptr::null_mut();
    let status = sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        ptr::null_mut(),
        &mut data,
    );
    let result = if status == sys::Status::napi_ok && !data.is_null() {
        // SAFETY: `data` is the store this function holds a reference to (see `bind`).
        let store = &*data.cast_const().cast::<JsStore<B>>();
        f(store, Runtime::get(env), argv)
    } else {
        Err(napi::Error::from_reason("invalid call of a store method"))
    };
    match result {
        Ok(v) => v.0,
        Err(e) => {
            let mut pending = false;
            sys::napi_is_exception_pending(env, &mut pending);
            if !pending {
                let js = Js(env);
                sys::napi_throw(js.0, js.error("ERR_DATASTORE_BACKEND", &e.reason));
            }
            ptr::null_mut()
        }
    }
}

unsafe extern "C" fn get<B: Backend>(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    call::<B, 1>(env, info, |s, rt, [key]| s.get(rt, key))
}

unsafe extern "C" fn set<B: Backend>(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    call::<B, 3>(env, info, |s, rt, [key, json, reason]| {
        s.set(rt, key, json, reason)
    })
}

unsafe extern "C" fn update<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    call::<B, 2>(env, info, |s, rt, [key, updater]| {
        s.update(rt, key, updater)
    })
}

unsafe extern "C" fn remove<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    call::<B, 1>(env, info, |s, rt, [key]| s.remove(rt, key))
}

unsafe extern "C" fn list<B: Backend>(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    call::<B, 1>(env, info, |s, rt, [prefix]| s.list(rt, prefix))
}

unsafe extern "C" fn close<B: Backend>(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    call::<B, 0>(env, info, |s, rt, []| s.close(rt))
}

unsafe extern "C" fn held_keys<B: Backend>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> Value {
    call::<B, 0>(env, info, |s, rt, []| {
        Ok(JsAny(rt.js.number(f64::from(s.held_keys()))))
    })
}
