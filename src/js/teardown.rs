//! The end of a thread's JS environment — a worker thread terminated, exiting or throwing, or
//! the main thread at exit — in one place. N-API calls [`env_ending`] (an env cleanup hook,
//! registered when the thread's runtime is made) before it finalizes the env's objects. Then,
//! in this order:
//! 1. the runtime stops: no JS is called from now on, and the threadsafe function that other
//!    threads wake this thread through is forgotten (Node frees it);
//! 2. Node's loop stops watching our sockets (libuv handles closed: a worker's loop must be
//!    empty to end);
//! 3. the executor drops every task, after waiting for critical work in progress on other
//!    threads (`core::executor`). A dropped task releases what it held: its keys' in-process
//!    locks, byte-range locks on lock files, database sessions (closing a PostgreSQL
//!    connection ends its advisory locks) — and an update whose updater had not finished
//!    writes nothing. Waiters in other threads and processes get the keys at once.
//!
//! The stores themselves are dropped by the finalizers of their JS objects, which N-API runs
//! right after, closing their files and connections.

use std::ffi::c_void;
use std::ptr;

use napi::sys;

use super::boundary::quietly;
use super::event_loop;
use super::raw::Js;
use super::runtime::Runtime;
use crate::runtime::executor::Executor;

/// Registers [`env_ending`] for the env of `js` (once per thread, when its runtime is made).
/// Hooks run in reverse order of registration, and N-API registered its own teardown of the
/// env's objects when the addon loaded, so ours runs first.
pub fn register(js: Js) {
    // SAFETY: a valid env on its thread; the hook takes no argument.
    unsafe { sys::napi_add_env_cleanup_hook(js.env(), Some(env_ending), ptr::null_mut()) };
}

unsafe extern "C" fn env_ending(_arg: *mut c_void) {
    quietly(|| {
        if let Some(rt) = Runtime::current() {
            rt.end();
        }
        event_loop::close();
        if let Some(exec) = Executor::current() {
            exec.shut_down();
        }
    });
}
