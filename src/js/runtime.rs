//! Per-thread state of the binding: the env, cached `JSON.stringify`/`JSON.parse`, the helper
//! that waits for an updater's promise, and the core executor wired to a threadsafe function
//! (referenced only while work runs on other threads, so an idle store never keeps Node alive).
//!
//! Waiting for a promise keeps nothing alive either: the promise's reactions hold a small
//! token object, and the token's finalizer reports the promise as abandoned when the garbage
//! collector finds that nothing can settle it any more (the promise, its resolvers and the
//! reactions are all unreachable).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use napi::sys;
use parking_lot::Mutex;

use super::raw::{Js, Kind, Ref, Value};
use crate::core::executor::Executor;

/// Made once per thread: `attach(p, token)` calls `settle(token, ok, value)` once `p` (a promise
/// or thenable) settles. Only these two reactions reference `token`.
const ATTACH_SOURCE: &str = "(function (settle) {
  return function attach(p, token) {
    Promise.resolve(p).then(function (v) { settle(token, true, v) }, function (e) { settle(token, false, e) })
  }
})";

/// The outcome of a JS promise, delivered to whoever waits on its settle id: `Some((ok,
/// value))` when it settled, `None` when it was garbage-collected unsettled (it never will).
pub type Settled = Box<dyn FnOnce(Js, Option<(bool, Value)>)>;

pub struct Runtime {
    pub js: Js,
    /// For draining from a libuv callback (see [`Runtime::drain_from_event_loop`]).
    async_context: sys::napi_async_context,
    resource: Ref,
    json: Ref,
    stringify: Ref,
    parse: Ref,
    attach: Ref,
    pub exec: &'static Executor,
    tsfn: Tsfn,
    settles: RefCell<HashMap<u32, Settled>>,
    next_settle: Cell<u32>,
    /// Set by an env cleanup hook: the env is being torn down, JS may no longer be called.
    closing: Cell<bool>,
}

thread_local! {
    // Leaked on purpose: its references must not be freed after the env is gone.
    static RUNTIME: Cell<Option<&'static Runtime>> = const { Cell::new(None) };
}

struct RawTsfn(sys::napi_threadsafe_function);
// SAFETY: napi_call_threadsafe_function may be called from any thread.
unsafe impl Send for RawTsfn {}

/// The thread's threadsafe function while its env lives. Node frees it during env teardown,
/// after our cleanup hook ([`env_closing`]) has emptied this; a thread of ours that wakes the
/// executor later (a timer firing while the process exits) then finds nothing to call. The
/// lock makes a call and the emptying exclusive, so no call can use it once freed.
#[derive(Clone)]
struct Tsfn(Arc<Mutex<Option<RawTsfn>>>);

impl Tsfn {
    /// Asks the JS thread to drain the executor (from any thread).
    fn wake_js_thread(&self) {
        if let Some(t) = &*self.0.lock() {
            // SAFETY: still alive: emptied (under this lock) before Node frees it.
            unsafe {
                sys::napi_call_threadsafe_function(
                    t.0,
                    ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                );
            }
        }
    }

    /// Keeps the loop alive (`busy`) or lets it exit; on the JS thread.
    fn set_busy(&self, env: sys::napi_env, busy: bool) {
        if let Some(t) = &*self.0.lock() {
            // SAFETY: alive (see `wake_js_thread`), and called on its env's thread.
            unsafe {
                if busy {
                    sys::napi_ref_threadsafe_function(env, t.0);
                } else {
                    sys::napi_unref_threadsafe_function(env, t.0);
                }
            }
        }
    }

    /// The env is closing: no call from now on.
    fn forget(&self) {
        *self.0.lock() = None;
    }
}

impl Runtime {
    /// The runtime of this thread, created on first use.
    pub fn get(env: sys::napi_env) -> &'static Runtime {
        if let Some(rt) = RUNTIME.with(|r| r.get()) {
            return rt;
        }
        let rt: &'static Runtime = Box::leak(Box::new(Runtime::create(Js(env))));
        RUNTIME.with(|r| r.set(Some(rt)));
        // Runs before the finalizers of the env's remaining objects (hooks run in reverse
        // order of registration, and the env's own teardown was registered first).
        unsafe {
            sys::napi_add_env_cleanup_hook(env, Some(env_closing), ptr::null_mut());
        }
        rt
    }

    fn create(js: Js) -> Runtime {
        let json = js.get(js.global(), c"JSON");
        let stringify = js.get(json, c"stringify");
        let parse = js.get(json, c"parse");
        let settle_fn = {
            let mut f = ptr::null_mut();
            unsafe {
                sys::napi_create_function(
                    js.0,
                    c"settle".as_ptr(),
                    6,
                    Some(settle_callback),
                    ptr::null_mut(),
                    &mut f,
                )
            };
            f
        };
        let make_attach = js
            .run_script(ATTACH_SOURCE)
            .unwrap_or_else(|_| js.undefined());
        let attach = js
            .call(make_attach, js.undefined(), &[settle_fn])
            .unwrap_or_else(|_| js.undefined());

        let tsfn = {
            let mut t = ptr::null_mut();
            unsafe {
                sys::napi_create_threadsafe_function(
                    js.0,
                    ptr::null_mut(),
                    ptr::null_mut(),
                    js.string("reshuffle-datastore"),
                    0,
                    1,
                    ptr::null_mut(),
                    None,
                    ptr::null_mut(),
                    Some(drain_callback),
                    &mut t,
                );
                sys::napi_unref_threadsafe_function(js.0, t);
            }
            Tsfn(Arc::new(Mutex::new(Some(RawTsfn(t)))))
        };
        let env = js.0;
        let (waker, busy) = (tsfn.clone(), tsfn.clone());
        let exec = Executor::install(
            move || waker.wake_js_thread(),
            move |on| busy.set_busy(env, on),
        );
        let async_context = {
            let mut c = ptr::null_mut();
            unsafe {
                sys::napi_async_init(
                    js.0,
                    ptr::null_mut(),
                    js.string("reshuffle-datastore"),
                    &mut c,
                )
            };
            c
        };
        let mut resource = ptr::null_mut();
        unsafe { sys::napi_create_object(js.0, &mut resource) };
        super::event_loop::install(js.0);
        Runtime {
            js,
            async_context,
            resource: js.reference(resource),
            json: js.reference(json),
            stringify: js.reference(stringify),
            parse: js.reference(parse),
            attach: js.reference(attach),
            exec,
            tsfn,
            settles: RefCell::new(HashMap::new()),
            next_settle: Cell::new(0),
            closing: Cell::new(false),
        }
    }

    /// Drains the executor from a libuv callback (not a call from JS), inside a callback
    /// scope so that the promise reactions it queues run as soon as it ends.
    pub fn drain_from_event_loop(&self) {
        if self.closing.get() {
            return;
        }
        let env = self.js.0;
        self.js.scoped(|| {
            let mut scope = ptr::null_mut();
            // SAFETY: a valid env on its own thread, outside any JS call; the scope is closed
            // below.
            unsafe {
                sys::napi_open_callback_scope(
                    env,
                    self.resource.value(),
                    self.async_context,
                    &mut scope,
                );
                self.exec.drain();
                sys::napi_close_callback_scope(env, scope);
            }
        });
    }

    /// `JSON.stringify(v)`: `Ok(None)` when JSON has no text for it (undefined, a function, a
    /// Symbol), `Err(thrown)` when it throws (BigInt, circular, a throwing getter or toJSON).
    pub fn stringify(&self, v: Value) -> Result<Option<String>, Value> {
        let js = self.js;
        let out = js.call(self.stringify.value(), self.json.value(), &[v])?;
        Ok(match js.kind(out) {
            Kind::String => js.to_string(out),
            _ => None,
        })
    }

    /// `JSON.parse(text)`: a fresh copy of a stored value.
    pub fn parse(&self, text: &str) -> Result<Value, Value> {
        let js = self.js;
        js.call(self.parse.value(), self.json.value(), &[js.string(text)])
    }

    /// Calls `on_settled` on this thread once the promise or thenable `p` settles, or with
    /// `None` once it is garbage-collected unsettled.
    pub fn when_settled(&self, p: Value, on_settled: Settled) {
        let id = self.next_settle.get();
        self.next_settle.set(id.wrapping_add(1));
        self.settles.borrow_mut().insert(id, on_settled);
        let js = self.js;
        let mut token = ptr::null_mut();
        // SAFETY: valid env on its own thread; the token's data is the id, not a pointer.
        unsafe {
            sys::napi_create_object(js.0, &mut token);
            sys::napi_wrap(
                js.0,
                token,
                id as usize as *mut c_void,
                Some(abandoned),
                ptr::null_mut(),
                ptr::null_mut(),
            );
        }
        if let Err(thrown) = js.call(self.attach.value(), js.undefined(), &[p, token]) {
            // A thenable whose `then` getter throws: that is its rejection.
            unsafe { take_id(js, token) };
            if let Some(cb) = self.settles.borrow_mut().remove(&id) {
                cb(js, Some((false, thrown)));
            }
        }
    }
}

/// The settle id of a token, removing its finalizer (it settled: it is not abandoned).
unsafe fn take_id(js: Js, token: Value) -> Option<u32> {
    let mut data = ptr::null_mut();
    let status = sys::napi_remove_wrap(js.0, token, &mut data);
    (status == sys::Status::napi_ok).then_some(data as usize as u32)
}

unsafe extern "C" fn settle_callback(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    let js = Js(env);
    let mut argc = 3usize;
    let mut argv = [ptr::null_mut(); 3];
    sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    let rt = Runtime::get(env);
    let Some(id) = take_id(js, argv[0]) else {
        return js.undefined();
    };
    let mut ok = false;
    sys::napi_get_value_bool(env, argv[1], &mut ok);
    let cb = rt.settles.borrow_mut().remove(&id);
    if let Some(cb) = cb {
        cb(js, Some((ok, argv[2])));
    }
    rt.exec.drain();
    js.undefined()
}

/// Finalizer of a token: its promise can never settle. Node runs it outside the garbage
/// collector (from its finalizer queue), where JS may be called.
unsafe extern "C" fn abandoned(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let Some(rt) = RUNTIME.with(|r| r.get()) else {
        return;
    };
    let cb = rt.settles.borrow_mut().remove(&(data as usize as u32));
    let Some(cb) = cb else {
        return;
    };
    if rt.closing.get() || env.is_null() {
        std::mem::forget(cb); // the env is going away: nothing may run any more
        return;
    }
    let js = Js(env);
    js.scoped(|| cb(js, None));
    rt.exec.drain();
}

unsafe extern "C" fn env_closing(_arg: *mut c_void) {
    if let Some(rt) = RUNTIME.with(|r| r.get()) {
        rt.closing.set(true);
        rt.tsfn.forget();
    }
    super::event_loop::close();
}

unsafe extern "C" fn drain_callback(
    env: sys::napi_env,
    _js_callback: Value,
    _context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        return; // the environment is being torn down
    }
    Runtime::get(env).exec.drain();
}
