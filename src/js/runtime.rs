//! Per-thread state of the binding: the env, cached `JSON.stringify`/`JSON.parse`, the helper
//! that waits for an updater's promise, and the core executor wired to a threadsafe function
//! (referenced only while work runs on other threads, so an idle store never keeps Node alive).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr;

use napi::sys;

use super::raw::{Js, Kind, Ref, Value};
use crate::core::executor::Executor;

/// JS helpers, made once per thread:
/// - `attach(p, id)` calls `settle(id, ok, value)` once `p` (a promise or thenable) settles;
/// - `keysWithPrefix(p, prefix)` resolves the key list `p` to its keys starting with `prefix`,
///   sorted by code point (JS's default sort compares UTF-16 units instead).
const HELPERS_SOURCE: &str = "(function (settle) {
  function byCodePoint(a, b) {
    var n = Math.min(a.length, b.length)
    for (var i = 0; i < n; i++) {
      var x = a.codePointAt(i), y = b.codePointAt(i)
      if (x !== y) return x - y
    }
    return a.length - b.length
  }
  return {
    attach: function (p, id) {
      Promise.resolve(p).then(function (v) { settle(id, true, v) }, function (e) { settle(id, false, e) })
    },
    keysWithPrefix: function (p, prefix) {
      return Promise.resolve(p).then(function (keys) {
        return Array.from(keys).filter(function (k) { return typeof k === 'string' && k.startsWith(prefix) }).sort(byCodePoint)
      })
    }
  }
})";

/// The outcome of a JS promise, delivered to whoever waits on its settle id.
pub type Settled = Box<dyn FnOnce(Js, bool, Value)>;

pub struct Runtime {
    pub js: Js,
    json: Ref,
    stringify: Ref,
    parse: Ref,
    attach: Ref,
    keys_with_prefix: Ref,
    pub exec: &'static Executor,
    settles: RefCell<HashMap<u32, Settled>>,
    next_settle: Cell<u32>,
}

thread_local! {
    // Leaked on purpose: its references must not be freed after the env is gone.
    static RUNTIME: Cell<Option<&'static Runtime>> = const { Cell::new(None) };
}

struct Tsfn(sys::napi_threadsafe_function);
// SAFETY: napi_call_threadsafe_function may be called from any thread.
unsafe impl Send for Tsfn {}
unsafe impl Sync for Tsfn {}

impl Tsfn {
    /// Asks the JS thread to drain the executor (from any thread).
    fn wake_js_thread(&self) {
        unsafe {
            sys::napi_call_threadsafe_function(
                self.0,
                ptr::null_mut(),
                sys::ThreadsafeFunctionCallMode::nonblocking,
            );
        }
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
        let make_helpers = js
            .run_script(HELPERS_SOURCE)
            .unwrap_or_else(|_| js.undefined());
        let helpers = js
            .call(make_helpers, js.undefined(), &[settle_fn])
            .unwrap_or_else(|_| js.undefined());
        let attach = js.get(helpers, c"attach");
        let keys_with_prefix = js.get(helpers, c"keysWithPrefix");

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
            Tsfn(t)
        };
        let raw_tsfn = tsfn.0;
        let env = js.0;
        let exec = Executor::install(
            move || tsfn.wake_js_thread(),
            move |busy| unsafe {
                if busy {
                    sys::napi_ref_threadsafe_function(env, raw_tsfn);
                } else {
                    sys::napi_unref_threadsafe_function(env, raw_tsfn);
                }
            },
        );
        Runtime {
            js,
            json: js.reference(json),
            stringify: js.reference(stringify),
            parse: js.reference(parse),
            attach: js.reference(attach),
            keys_with_prefix: js.reference(keys_with_prefix),
            exec,
            settles: RefCell::new(HashMap::new()),
            next_settle: Cell::new(0),
        }
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

    /// A promise of the keys of the list promise `p` that start with `prefix`, sorted.
    pub fn keys_with_prefix(&self, p: Value, prefix: &str) -> Result<Value, Value> {
        let js = self.js;
        js.call(
            self.keys_with_prefix.value(),
            js.undefined(),
            &[p, js.string(prefix)],
        )
    }

    /// Calls `on_settled` on this thread once the promise or thenable `p` settles.
    pub fn when_settled(&self, p: Value, on_settled: Settled) {
        let id = self.next_settle.get();
        self.next_settle.set(id.wrapping_add(1));
        self.settles.borrow_mut().insert(id, on_settled);
        let js = self.js;
        if let Err(thrown) = js.call(
            self.attach.value(),
            js.undefined(),
            &[p, js.number(id.into())],
        ) {
            // A thenable whose `then` getter throws: that is its rejection.
            if let Some(cb) = self.settles.borrow_mut().remove(&id) {
                cb(js, false, thrown);
            }
        }
    }
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
    let mut id = 0u32;
    sys::napi_get_value_uint32(env, argv[0], &mut id);
    let mut ok = false;
    sys::napi_get_value_bool(env, argv[1], &mut ok);
    let cb = rt.settles.borrow_mut().remove(&id);
    if let Some(cb) = cb {
        cb(js, ok, argv[2]);
    }
    rt.exec.drain();
    js.undefined()
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
