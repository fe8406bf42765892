//! Per-thread state of the binding: the env, cached `JSON.stringify`/`JSON.parse`, the helper
//! that waits for an updater's promise, and the core executor wired to a threadsafe function
//! (referenced only while work runs on other threads, so an idle store never keeps Node alive).
//!
//! Waiting for a promise keeps nothing alive either: the promise's reactions hold a small
//! token object, and the token's finalizer reports the promise as abandoned when the garbage
//! collector finds that nothing can settle it any more (the promise, its resolvers and the
//! reactions are all unreachable).
//!
//! Async hooks see two resources of ours per thread, the threadsafe function and the context
//! in which the event loop drains the executor. Both carry [`RESOURCE_SOURCE`]'s object, whose
//! `hasRef()` says whether they keep the loop alive right now (only while work is pending), as
//! Node's own timers do; so tools that list open handles (`jest --detectOpenHandles`) do not
//! report an idle or closed store.
//!
//! When the thread's env ends, `js::teardown` stops everything here first.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use napi::sys;
use parking_lot::Mutex;

use super::boundary::quietly;
use super::raw::{Js, Kind, Ref, TextScratch, Value};
use crate::runtime::executor::Executor;

/// Made once per thread: `attach(p, token)` calls `settle(token, ok, value)` once `p` (a promise
/// or thenable) settles. Only these two reactions reference `token`.
const ATTACH_SOURCE: &str = "(function (settle) {
  return function attach(p, token) {
    Promise.resolve(p).then(function (v) { settle(token, true, v) }, function (e) { settle(token, false, e) })
  }
})";

/// Made once per thread: the resource object of our async resources (see the module docs).
const RESOURCE_SOURCE: &str = "(function (busy) {
  return { hasRef: function hasRef() { return busy() } }
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
    /// Set when the env is being torn down: JS may no longer be called.
    ended: Cell<bool>,
    /// Kept warm for the next long value (see [`Runtime::with_text_scratch`]).
    text_scratch: Cell<Option<TextScratch>>,
}

thread_local! {
    // Leaked on purpose: its references must not be freed after the env is gone.
    static RUNTIME: Cell<Option<&'static Runtime>> = const { Cell::new(None) };
}

struct RawTsfn(sys::napi_threadsafe_function);
// SAFETY: napi_call_threadsafe_function may be called from any thread.
unsafe impl Send for RawTsfn {}

/// The thread's threadsafe function while its env lives. Node frees it during env teardown,
/// after `js::teardown` has emptied this; a thread of ours that wakes the executor later (a
/// timer firing while the process exits) then finds nothing to call. The lock makes a call
/// and the emptying exclusive, so no call can use it once freed.
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

    /// The env is ending: no call from now on.
    fn forget(&self) {
        *self.0.lock() = None;
    }
}

impl Runtime {
    /// The runtime of this thread, created on first use.
    pub fn get(env: sys::napi_env) -> &'static Runtime {
        if let Some(rt) = Self::current() {
            return rt;
        }
        // SAFETY: called with the env of the current call, on its thread.
        let js = unsafe { Js::from_env(env) };
        let rt: &'static Runtime = Box::leak(Box::new(Runtime::create(js)));
        RUNTIME.with(|r| r.set(Some(rt)));
        super::teardown::register(js);
        rt
    }

    /// The runtime of this thread, if one was made.
    pub fn current() -> Option<&'static Runtime> {
        RUNTIME.with(|r| r.get())
    }

    fn create(js: Js) -> Runtime {
        let json = js.get(js.global(), c"JSON");
        let stringify = js.get(json, c"stringify");
        let parse = js.get(json, c"parse");
        let attach = make_with_callback(js, ATTACH_SOURCE, c"settle", settle_callback);
        let resource = make_with_callback(js, RESOURCE_SOURCE, c"busy", busy_callback);
        let resource = if js.kind(resource) == Kind::Object {
            resource
        } else {
            js.object()
        };
        let name = js.string("reshuffle-datastore");

        let mut raw_tsfn = ptr::null_mut();
        // SAFETY: a valid env on its thread; the callback and finalizer-less setup follow
        // N-API's contract (max queue 0 = unlimited, one initial thread).
        unsafe {
            sys::napi_create_threadsafe_function(
                js.env(),
                ptr::null_mut(),
                resource,
                name,
                0,
                1,
                ptr::null_mut(),
                None,
                ptr::null_mut(),
                Some(drain_callback),
                &mut raw_tsfn,
            );
            sys::napi_unref_threadsafe_function(js.env(), raw_tsfn);
        }
        let tsfn = Tsfn(Arc::new(Mutex::new(Some(RawTsfn(raw_tsfn)))));
        let env = js.env();
        let (waker, busy) = (tsfn.clone(), tsfn.clone());
        let exec = Executor::install(
            move || waker.wake_js_thread(),
            move |on| busy.set_busy(env, on),
        );
        let mut async_context = ptr::null_mut();
        // SAFETY: a valid env on its thread; the context lives as long as the env.
        unsafe { sys::napi_async_init(js.env(), resource, name, &mut async_context) };
        super::event_loop::install(js.env(), drain_ready);
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
            ended: Cell::new(false),
            text_scratch: Cell::new(None),
        }
    }

    /// Drains the executor from a libuv callback (not a call from JS), inside a callback
    /// scope so that the promise reactions it queues run as soon as it ends.
    pub fn drain_from_event_loop(&self) {
        if self.ended.get() {
            return;
        }
        let env = self.js.env();
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
            }
            self.exec.drain();
            // SAFETY: closes the scope opened above.
            unsafe { sys::napi_close_callback_scope(env, scope) };
        });
    }

    /// Runs `f` with the buffers for reading a long value ([`Js::text_in`]): the last call's,
    /// if they were not too large to keep. A nested call gets fresh ones.
    pub fn with_text_scratch<R>(&self, f: impl FnOnce(&mut TextScratch) -> R) -> R {
        let mut scratch = self.text_scratch.take().unwrap_or_default();
        let out = f(&mut scratch);
        if scratch.worth_keeping() {
            self.text_scratch.set(Some(scratch));
        }
        out
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
        let token = js.object();
        // SAFETY: valid env on its own thread; the token's data is the id, not a pointer, and
        // `abandoned` only reads it back.
        unsafe {
            sys::napi_wrap(
                js.env(),
                token,
                id as usize as *mut c_void,
                Some(abandoned),
                ptr::null_mut(),
                ptr::null_mut(),
            );
        }
        if let Err(thrown) = js.call(self.attach.value(), js.undefined(), &[p, token]) {
            // A thenable whose `then` getter throws: that is its rejection.
            take_id(js, token);
            if let Some(cb) = self.settles.borrow_mut().remove(&id) {
                cb(js, Some((false, thrown)));
            }
        }
    }

    /// The env is ending (called by `js::teardown`): no JS from now on, no wake-ups through
    /// the threadsafe function (Node frees it), and the promises still awaited are dropped
    /// with what waits on them.
    pub fn end(&self) {
        self.ended.set(true);
        self.tsfn.forget();
        let settles = std::mem::take(&mut *self.settles.borrow_mut());
        drop(settles);
    }
}

/// Runs `source` (a function of one callback) with a native function `name` calling `cb`, and
/// returns what it returns (`undefined` if that fails, which only happens when the env is out
/// of memory).
fn make_with_callback(
    js: Js,
    source: &str,
    name: &std::ffi::CStr,
    cb: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> Value,
) -> Value {
    let mut f = ptr::null_mut();
    // SAFETY: a valid env; `name` is NUL-terminated; `cb` has N-API's callback signature.
    unsafe {
        sys::napi_create_function(
            js.env(),
            name.as_ptr(),
            name.to_bytes().len() as isize,
            Some(cb),
            ptr::null_mut(),
            &mut f,
        )
    };
    js.run_script(source)
        .and_then(|make| js.call(make, js.undefined(), &[f]))
        .unwrap_or_else(|_| js.undefined())
}

/// What the event loop runs once sockets of this thread are ready (see `js::event_loop`).
fn drain_ready() {
    if let Some(rt) = Runtime::current() {
        rt.drain_from_event_loop();
    }
}

/// The settle id of a token, removing its finalizer (it settled: it is not abandoned).
fn take_id(js: Js, token: Value) -> Option<u32> {
    let mut data = ptr::null_mut();
    // SAFETY: a valid env and value; a token that was never wrapped only yields an error.
    let status = unsafe { sys::napi_remove_wrap(js.env(), token, &mut data) };
    (status == sys::Status::napi_ok).then_some(data as usize as u32)
}

/// `settle(token, ok, value)` of [`ATTACH_SOURCE`].
unsafe extern "C" fn settle_callback(env: sys::napi_env, info: sys::napi_callback_info) -> Value {
    // SAFETY: N-API calls this on the env's thread, inside a call from JS.
    let js = unsafe { Js::from_env(env) };
    quietly(|| {
        let mut argc = 3usize;
        let mut argv = [ptr::null_mut(); 3];
        // SAFETY: valid env and callback info; `argv` has room for 3 values.
        unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut argc,
                argv.as_mut_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let rt = Runtime::get(env);
        let Some(id) = take_id(js, argv[0]) else {
            return;
        };
        let ok = js.bool_value(argv[1]).unwrap_or(false);
        let cb = rt.settles.borrow_mut().remove(&id);
        if let Some(cb) = cb {
            cb(js, Some((ok, argv[2])));
        }
        rt.exec.drain();
    });
    js.undefined()
}

/// `busy()` of [`RESOURCE_SOURCE`]: whether our resources keep the loop alive now.
unsafe extern "C" fn busy_callback(env: sys::napi_env, _info: sys::napi_callback_info) -> Value {
    // SAFETY: N-API calls this on the env's thread, inside a call from JS.
    let js = unsafe { Js::from_env(env) };
    let busy = Executor::current().is_some_and(|e| e.is_busy());
    let mut v = ptr::null_mut();
    // SAFETY: a valid env.
    unsafe { sys::napi_get_boolean(env, busy, &mut v) };
    if v.is_null() {
        return js.undefined();
    }
    v
}

/// Finalizer of a token: its promise can never settle. Node runs it outside the garbage
/// collector (from its finalizer queue), where JS may be called.
unsafe extern "C" fn abandoned(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    quietly(|| {
        let Some(rt) = Runtime::current() else {
            return;
        };
        let cb = rt.settles.borrow_mut().remove(&(data as usize as u32));
        let Some(cb) = cb else {
            return;
        };
        if rt.ended.get() || env.is_null() {
            std::mem::forget(cb); // the env is going away: nothing may run any more
            return;
        }
        // SAFETY: a finalizer of this thread's env, run while the env lives.
        let js = unsafe { Js::from_env(env) };
        js.scoped(|| cb(js, None));
        rt.exec.drain();
    });
}

/// The threadsafe function's call: drain the executor (work on another thread finished).
unsafe extern "C" fn drain_callback(
    env: sys::napi_env,
    _js_callback: Value,
    _context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        return; // the environment is being torn down
    }
    quietly(|| Runtime::get(env).exec.drain());
}
