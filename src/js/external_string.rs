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
//! given back exactly once, by [`free_text`] — which N-API calls when V8 collects the string,
//! at env teardown, or at once when it copied the text after all (`copied`) — to the thread's
//! spare buffers (`spare`) or to malloc; only a buffer no string points into is reused.

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
    create_fn()?;
    let mut text = buffer(s.len());
    text.extend_from_slice(s.as_bytes());
    from_buffer(env, text).map_err(give_back).ok()
}

/// An empty buffer with room for `len` bytes, for a text to be written into and then handed
/// to [`from_buffer`] (or back with [`give_back`]): a spare one when there is one.
pub fn buffer(len: usize) -> Vec<u8> {
    let mut text = spare::take(len).unwrap_or_else(|| Vec::with_capacity(len));
    text.clear();
    text
}

/// Keeps `text`, which no string points into, for a later [`buffer`].
pub fn give_back(text: Vec<u8>) {
    spare::give(text);
}

/// An external JS string over `text`, which holds ASCII only: the string owns it from now on.
/// `Err` gives `text` back when this Node cannot make one or the call failed: the caller
/// makes a plain string of it.
pub fn from_buffer(env: sys::napi_env, text: Vec<u8>) -> Result<sys::napi_value, Vec<u8>> {
    debug_assert!(text.is_ascii());
    let Some(create) = create_fn() else {
        return Err(text);
    };
    let (data, len, size) = (text.as_ptr(), text.len(), text.capacity());
    let lent = Box::into_raw(Box::new(text));
    // V8 does not count an external string's buffer towards collecting garbage: without this,
    // a loop of gets holds gigabytes of dead values between collections (measured: 5 GB after
    // 5,000 gets of 1 MB). Counted before the call, since N-API frees a buffer it copied
    // (`free_text` takes the count back) before it returns.
    adjust_external_memory(env, size as i64);
    let mut out = ptr::null_mut();
    let mut copied = false;
    // SAFETY: a valid env on its thread; `data` holds `len` bytes of ASCII (valid Latin-1),
    // owned by the vector behind `lent`, which nothing touches again until `free_text` gets
    // `lent` back, once (module docs).
    let status = unsafe {
        create(
            env,
            data.cast_mut().cast::<c_char>(),
            len as isize,
            Some(free_text),
            lent.cast::<c_void>(),
            &mut out,
            &mut copied,
        )
    };
    if status != sys::Status::napi_ok {
        // Not taken: the buffer is still ours (N-API calls the finalizer only for a string it
        // made or copied).
        adjust_external_memory(env, -(size as i64));
        // SAFETY: `lent` is the box leaked above, not handed to anyone.
        return Err(unsafe { *Box::from_raw(lent) });
    }
    Ok(out)
}

/// Tells V8 that `change` bytes more (or fewer) live outside its heap because of its objects.
fn adjust_external_memory(env: sys::napi_env, change: i64) {
    let mut total = 0;
    // SAFETY: a valid env; V8 only updates a counter (and may schedule a collection when it
    // grows), which is allowed also from a finalizer run by a collection.
    unsafe { sys::napi_adjust_external_memory(env, change, &mut total) };
}

/// Takes back the buffer of an external string, for the next one (`spare`) or to free.
///
/// # Safety
/// `hint` is a `lent` box [`from_buffer`] passed for one string, given once.
unsafe extern "C" fn free_text(env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: the box `from_buffer` leaked (the contract); nothing else holds it.
    let text = unsafe { *Box::from_raw(hint.cast::<Vec<u8>>()) };
    // A null env: the env is gone (teardown), and its counter with it; so is, maybe, this
    // thread's spare list, so the buffer is freed. Freeing runs no JS and needs no env.
    if !env.is_null() {
        adjust_external_memory(env, -(text.capacity() as i64));
        spare::give(text);
    }
}

/// Buffers of collected strings, kept for the next large value of this thread.
///
/// Why: a loop that reads large values makes one external string per value, and V8 collects
/// them in batches. A buffer freed to malloc goes back to the kernel (glibc maps a large
/// block anew or trims its heap), and the next value pays a page fault per page touched —
/// more than the copy itself. A buffer kept here is filled again in pages already mapped.
///
/// Invariants: at most `MAX_BUFFERS` buffers of at most `MAX_BYTES` together, each of them
/// owned by this list alone (no string points into it); a buffer is handed out only for a
/// text that fills at least half of it, so a reused buffer wastes less than the text's size.
mod spare {
    use std::cell::RefCell;

    /// Most buffers kept: a collection frees a batch, the next values take them.
    const MAX_BUFFERS: usize = 8;
    /// Most bytes kept, together: what a thread that once read large values holds idle.
    const MAX_BYTES: usize = 16 << 20;

    thread_local! {
        static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// A kept buffer that holds `len` bytes with no more than as much again to spare.
    pub fn take(len: usize) -> Option<Vec<u8>> {
        SPARE
            .try_with(|spare| {
                let mut spare = spare.try_borrow_mut().ok()?;
                let at = spare
                    .iter()
                    .position(|b| b.capacity() >= len && b.capacity() / 2 <= len)?;
                Some(spare.swap_remove(at))
            })
            .ok()
            .flatten()
    }

    /// Keeps `buf` if there is room (else it is freed).
    pub fn give(buf: Vec<u8>) {
        let _ = SPARE.try_with(|spare| {
            let Ok(mut spare) = spare.try_borrow_mut() else {
                return;
            };
            let kept: usize = spare.iter().map(Vec::capacity).sum();
            if spare.len() < MAX_BUFFERS && kept + buf.capacity() <= MAX_BYTES {
                spare.push(buf);
            }
        });
    }
}
