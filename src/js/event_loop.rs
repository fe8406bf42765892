//! Node's event loop watches the core [`Reactor`] of the JS thread: one libuv poll handle on
//! the reactor's descriptor. When it is readable the reactor wakes the tasks whose sockets are
//! ready and the executor is drained in a callback scope, so promise reactions run right after.
//!
//! While a reply is due soon ([`busy_poll`]), an idle handle keeps the loop polling instead of
//! sleeping: libuv polls with a zero timeout while an idle handle is active, so timers and
//! every other descriptor are served as usual, only the thread does not halt.
//!
//! Both handles are unreferenced: sockets alone never keep Node alive (an operation in flight
//! holds a `BusyGuard` for that). They are closed when the env ends (`js::teardown`), before
//! the loop of a worker thread must be empty.
//!
//! This module knows nothing of the runtime: what to do when sockets are ready is handed to
//! [`install`].

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::io;
use std::ptr;
use std::time::Duration;

use napi::sys;

use super::boundary::quietly;
use crate::runtime::busy_poll;
use crate::runtime::reactor::{self, Reactor};

// libuv, as exported by the Node binary (uv.h).
const UV_IDLE: c_int = 6;
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;
type PollCb = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
type IdleCb = unsafe extern "C" fn(handle: *mut c_void);
type CloseCb = unsafe extern "C" fn(handle: *mut c_void);
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init(event_loop: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut c_void, events: c_int, cb: PollCb) -> c_int;
    fn uv_poll_stop(handle: *mut c_void) -> c_int;
    fn uv_idle_init(event_loop: *mut c_void, handle: *mut c_void) -> c_int;
    fn uv_idle_start(handle: *mut c_void, cb: IdleCb) -> c_int;
    fn uv_idle_stop(handle: *mut c_void) -> c_int;
    fn uv_unref(handle: *mut c_void);
    fn uv_close(handle: *mut c_void, cb: CloseCb);
    fn uv_strerror(err: c_int) -> *const std::ffi::c_char;
}

/// What runs, on the JS thread, once the reactor has woken the tasks whose sockets are ready.
pub type OnReady = fn();

thread_local! {
    /// See [`OnReady`]; set by [`install`].
    static ON_READY: Cell<Option<OnReady>> = const { Cell::new(None) };
    /// The poll handle of this thread's reactor, while it is open.
    static HANDLE: Cell<*mut c_void> = const { Cell::new(ptr::null_mut()) };
    /// The idle handle that keeps the loop polling, made on first use.
    static IDLE: Cell<*mut c_void> = const { Cell::new(ptr::null_mut()) };
}

/// Makes Node's loop watch this thread's reactor once it starts (calling `on_ready` when
/// sockets are ready), and poll while replies are due (call when the runtime of the thread is
/// made).
pub fn install(env: sys::napi_env, on_ready: OnReady) {
    ON_READY.with(|r| r.set(Some(on_ready)));
    reactor::set_host(move |fd| watch(env, fd));
    busy_poll::set_host(move || start_polling(env));
}

/// A zeroed, 8-byte aligned block for a libuv handle of `kind`; freed by [`free_handle`].
fn alloc_handle(kind: c_int) -> *mut c_void {
    // SAFETY: uv_handle_size only reads its argument.
    let words = unsafe { uv_handle_size(kind) }.div_ceil(8);
    Box::into_raw(vec![0u64; words].into_boxed_slice()).cast::<c_void>()
}

fn event_loop(env: sys::napi_env) -> io::Result<*mut c_void> {
    let mut event_loop = ptr::null_mut();
    // SAFETY: a valid env on its own thread.
    let status = unsafe { sys::napi_get_uv_event_loop(env, &mut event_loop) };
    if status != sys::Status::napi_ok || event_loop.is_null() {
        return Err(io::Error::other("Node's event loop is not available"));
    }
    Ok(event_loop.cast())
}

/// Starts the idle handle (making it on first use). Without it the loop just sleeps as usual,
/// so failures are not errors.
fn start_polling(env: sys::napi_env) {
    let mut handle = IDLE.with(|h| h.get());
    if handle.is_null() {
        let Ok(event_loop) = event_loop(env) else {
            return;
        };
        handle = alloc_handle(UV_IDLE);
        // SAFETY: a fresh handle block for this thread's loop; freed by `closed_idle` after
        // uv_close, or here when init failed.
        unsafe {
            if uv_idle_init(event_loop, handle) != 0 {
                free_handle(handle, UV_IDLE);
                return;
            }
            uv_unref(handle);
        }
        IDLE.with(|h| h.set(handle));
    }
    // SAFETY: an initialised idle handle of this thread; starting an active one is a no-op.
    unsafe { uv_idle_start(handle, poll_again) };
}

unsafe extern "C" fn poll_again(handle: *mut c_void) {
    quietly(|| {
        if busy_poll::keep_polling() {
            // Gives the CPU to another thread that is ready to run on it, if any: the thread
            // that brings the reply (MySQL's runtime thread, the server itself) may be waiting
            // for this very CPU (a process confined to one CPU, a 1-CPU machine). With nothing
            // else ready it returns at once.
            std::thread::yield_now();
        } else {
            // SAFETY: libuv passes the idle handle started by `start_polling`.
            unsafe { uv_idle_stop(handle) };
        }
    });
}

fn uv_error(what: &str, code: c_int) -> io::Error {
    // SAFETY: uv_strerror returns a static NUL-terminated string for any code.
    let text = unsafe { std::ffi::CStr::from_ptr(uv_strerror(code)) };
    io::Error::other(format!("{what}: {}", text.to_string_lossy()))
}

fn watch(env: sys::napi_env, fd: i32) -> io::Result<()> {
    let event_loop = event_loop(env)?;
    // The handle is a uv_poll_t of the size libuv reports, 8-byte aligned. Freed by
    // `closed_poll` after uv_close.
    // SAFETY: libuv initialises the handle before any other use; the memory stays valid until
    // its close callback runs.
    unsafe {
        let handle = alloc_handle(UV_POLL);
        let rc = uv_poll_init(event_loop, handle, fd);
        if rc != 0 {
            free_handle(handle, UV_POLL);
            return Err(uv_error("cannot watch the socket reactor", rc));
        }
        let rc = uv_poll_start(handle, UV_READABLE, readable);
        if rc != 0 {
            uv_close(handle, closed_poll);
            return Err(uv_error("cannot watch the socket reactor", rc));
        }
        uv_unref(handle);
        HANDLE.with(|h| h.set(handle));
    }
    Ok(())
}

unsafe extern "C" fn readable(_handle: *mut c_void, _status: c_int, _events: c_int) {
    quietly(|| {
        if let Some(r) = Reactor::started() {
            r.turn(Some(Duration::ZERO));
        }
        if let Some(on_ready) = ON_READY.with(|r| r.get()) {
            on_ready();
        }
    });
}

/// Frees a block made by [`alloc_handle`] for `kind`.
///
/// # Safety
/// `handle` came from `alloc_handle(kind)` and libuv no longer uses it.
unsafe fn free_handle(handle: *mut c_void, kind: c_int) {
    // SAFETY: uv_handle_size only reads its argument.
    let words = unsafe { uv_handle_size(kind) }.div_ceil(8);
    // SAFETY: `alloc_handle(kind)` made this block as a boxed slice of `words` u64s, and libuv
    // is done with it (the contract).
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(handle.cast::<u64>(), words)) });
}

unsafe extern "C" fn closed_poll(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle `alloc_handle(UV_POLL)` made.
    unsafe { free_handle(handle, UV_POLL) };
}

unsafe extern "C" fn closed_idle(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle `alloc_handle(UV_IDLE)` made.
    unsafe { free_handle(handle, UV_IDLE) };
}

/// Stops watching and polling (env teardown): an open handle would keep a worker's loop from
/// closing.
pub fn close() {
    ON_READY.with(|r| r.set(None));
    busy_poll::remove_host();
    let handle = HANDLE.with(|h| h.replace(ptr::null_mut()));
    if !handle.is_null() {
        // SAFETY: the handle was initialised by `watch` and is closed once.
        unsafe {
            uv_poll_stop(handle);
            uv_close(handle, closed_poll);
        }
    }
    let idle = IDLE.with(|h| h.replace(ptr::null_mut()));
    if !idle.is_null() {
        // SAFETY: initialised by `start_polling` and closed once; no new one is made after
        // this (the host was removed above).
        unsafe {
            uv_idle_stop(idle);
            uv_close(idle, closed_idle);
        }
    }
}
