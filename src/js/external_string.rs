//! Large values handed to V8 without a copy on its heap: an external Latin-1 string over a
//! buffer this module owns until V8 collects the string.
//!
//! Why: V8 puts a string of more than 128 KiB in its large-object space, which maps fresh
//! pages for every one and unmaps them when it dies; for a 1 MB value the page faults cost
//! several times the copy (a profile of `get` showed 85% of its time in the kernel). An
//! external string points at memory malloc already has at hand instead.
//!
//! `node_api_create_external_string_latin1` exists from Node 18.18 and 20.4; `engines` allows
//! older, so the function is looked up in the running process once (`dlsym`), and without it
//! (or off Unix) the caller copies as before. A value with any non-ASCII byte is copied too:
//! its UTF-8 is not Latin-1.
//!
//! Invariants: the buffer behind a string is never written after the string is made, and is
//! freed exactly once, by [`free_text`] — which N-API calls when V8 collects the string, at
//! env teardown, or at once when it copied the text after all (`copied`).

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::OnceLock;

use napi::sys;

/// The shortest text worth an external string: V8's largest object in its regular spaces
/// (shorter strings are bump-allocated there, cheaper than a malloc and a finalizer).
pub const MIN_BYTES: usize = 128 << 10;

type CreateExternalLatin1 = unsafe extern "C" fn(
    env: sys::napi_env,
    text: *mut c_char,
    length: isize,
    finalize: sys::napi_finalize,
    finalize_hint: *mut c_void,
    result: *mut sys::napi_value,
    copied: *mut bool,
) -> sys::napi_status;

/// Node's `node_api_create_external_string_latin1`, if the running Node has it.
fn create_fn() -> Option<CreateExternalLatin1> {
    static FOUND: OnceLock<Option<CreateExternalLatin1>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: dlsym with RTLD_DEFAULT searches the symbols already loaded (node's own,
            // which export N-API); the name is NUL-terminated.
            let symbol = unsafe {
                libc::dlsym(
                    libc::RTLD_DEFAULT,
                    c"node_api_create_external_string_latin1".as_ptr(),
                )
            };
            // SAFETY: a non-null result is that function, whose C signature (node_api.h)
            // `CreateExternalLatin1` spells.
            (!symbol.is_null()).then(|| unsafe {
                std::mem::transmute::<*mut c_void, CreateExternalLatin1>(symbol)
            })
        }
        #[cfg(not(unix))]
        {
            None
        }
    })
}

/// An external JS string of the ASCII text `s` (copied once, into a buffer of its own), or
/// `None` when this Node cannot make one or the call failed: the caller makes a plain string.
pub fn ascii(env: sys::napi_env, s: &str) -> Option<sys::napi_value> {
    debug_assert!(s.is_ascii());
    let create = create_fn()?;
    let text: Box<[u8]> = s.as_bytes().into();
    let len = text.len();
    let data = Box::into_raw(text).cast::<u8>();
    // V8 does not count an external string's buffer towards collecting garbage: without this,
    // a loop of gets holds gigabytes of dead values between collections (measured: 5 GB after
    // 5,000 gets of 1 MB). Counted before the call, since N-API frees a buffer it copied
    // (`free_text` takes the count back) before it returns.
    adjust_external_memory(env, len as i64);
    let mut out = ptr::null_mut();
    let mut copied = false;
    // SAFETY: a valid env on its thread; `data` holds `len` bytes of ASCII (valid Latin-1),
    // left unwritten from now on; `free_text` gets `data` and `len` back, once (module docs).
    let status = unsafe {
        create(
            env,
            data.cast::<c_char>(),
            len as isize,
            Some(free_text),
            len as *mut c_void,
            &mut out,
            &mut copied,
        )
    };
    if status != sys::Status::napi_ok {
        // Not taken: the buffer is still ours (N-API calls the finalizer only for a string it
        // made or copied).
        // SAFETY: `data` and `len` are the box leaked above, not handed to anyone.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(data, len)) });
        adjust_external_memory(env, -(len as i64));
        return None;
    }
    Some(out)
}

/// Tells V8 that `change` bytes more (or fewer) live outside its heap because of its objects.
fn adjust_external_memory(env: sys::napi_env, change: i64) {
    let mut total = 0;
    // SAFETY: a valid env; V8 only updates a counter (and may schedule a collection when it
    // grows), which is allowed also from a finalizer run by a collection.
    unsafe { sys::napi_adjust_external_memory(env, change, &mut total) };
}

/// Frees the buffer of an external string.
///
/// # Safety
/// `data` and `hint` (its length) are those [`ascii`] passed for one string, given once.
unsafe extern "C" fn free_text(env: sys::napi_env, data: *mut c_void, hint: *mut c_void) {
    let len = hint as usize;
    // A null env: the env is gone (teardown), and its counter with it.
    if !env.is_null() {
        adjust_external_memory(env, -(len as i64));
    }
    // SAFETY: the box `ascii` leaked, of `len` bytes (the contract); freeing runs no JS and
    // needs no env, so this is sound also during teardown.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(data.cast::<u8>(), len)) });
}
