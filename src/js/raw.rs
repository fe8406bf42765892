//! Thin wrappers over the N-API C calls the binding needs on its hot paths.
//!
//! Invariant: a [`Js`] exists only on its env's thread while that env is alive (inside a call
//! from JS, a finalizer or a libuv callback of that thread), which is what its `unsafe`
//! constructor promises. Every other type here is made through a `Js` and used on the same
//! thread, so the N-API calls below get a valid env and values of it.

use std::borrow::Cow;
use std::ffi::{c_char, CStr};
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, ValueType};

use super::external_string;

/// A JS value passed through napi-rs as is (no conversion).
#[derive(Clone, Copy)]
pub struct JsAny(Value);

impl JsAny {
    pub fn new(v: Value) -> Self {
        JsAny(v)
    }

    pub fn value(self) -> Value {
        self.0
    }
}

impl FromNapiValue for JsAny {
    unsafe fn from_napi_value(_env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        Ok(JsAny(v))
    }
}

impl ToNapiValue for JsAny {
    unsafe fn to_napi_value(_env: sys::napi_env, v: Self) -> napi::Result<sys::napi_value> {
        Ok(v.0)
    }
}

impl TypeName for JsAny {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for JsAny {}

pub type Value = sys::napi_value;

/// Room for the text of a short JS string (a key), see [`Js::text`].
pub type TextBuf = [u8; 256];

/// The buffer for reading long JSON texts, kept between calls (see [`Js::text_in`]): a fresh
/// megabyte costs a page fault per 4 KiB written, several times the cost of the copy itself.
#[derive(Default)]
pub struct TextScratch(Vec<u8>);

impl TextScratch {
    /// The most memory a scratch that is kept may hold; one that grew past it (for a value of
    /// more than about 2.7 MiB of text) is dropped after use.
    const KEEP_BYTES: usize = 8 << 20;

    /// Whether keeping it for the next call is worth the memory it holds.
    pub fn worth_keeping(&self) -> bool {
        self.0.capacity() <= Self::KEEP_BYTES
    }
}

/// The env of the current callback. See the module docs for when one may exist.
#[derive(Clone, Copy)]
pub struct Js(sys::napi_env);

/// JS `typeof`, as far as the binding cares.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum Kind {
    Undefined,
    Null,
    Number,
    Boolean,
    String,
    Function,
    Object,
    /// A Symbol, a BigInt or an external.
    Other,
}

impl Js {
    /// # Safety
    /// `env` is the env of the thread calling this, alive for as long as the `Js` (and every
    /// value, reference and deferred made through it) is used.
    pub unsafe fn from_env(env: sys::napi_env) -> Js {
        Js(env)
    }

    pub fn env(self) -> sys::napi_env {
        self.0
    }

    pub fn undefined(self) -> Value {
        let mut v = ptr::null_mut();
        // SAFETY: a valid env (type invariant); `v` is a live out-pointer.
        unsafe { sys::napi_get_undefined(self.0, &mut v) };
        v
    }

    pub fn global(self) -> Value {
        let mut v = ptr::null_mut();
        // SAFETY: as in `undefined`.
        unsafe { sys::napi_get_global(self.0, &mut v) };
        v
    }

    /// A JS string of `s`. ASCII text (most JSON) is handed over as Latin-1, which V8 copies
    /// as is instead of decoding it as UTF-8: the same string, made faster. A large ASCII text
    /// (a value) becomes an external string where Node can make one (see
    /// `js::external_string`).
    pub fn string(self, s: &str) -> Value {
        let ascii = s.is_ascii();
        if ascii && s.len() >= external_string::MIN_BYTES {
            if let Some(v) = external_string::ascii(self.0, s) {
                return v;
            }
        }
        let mut v = ptr::null_mut();
        let create = if ascii {
            sys::napi_create_string_latin1
        } else {
            sys::napi_create_string_utf8
        };
        // SAFETY: a valid env; `s` is valid for `s.len()` bytes (ASCII is valid Latin-1).
        unsafe {
            create(
                self.0,
                s.as_ptr().cast::<c_char>(),
                s.len() as isize,
                &mut v,
            )
        };
        v
    }

    /// A JS string of a large text that `fill` appends to an empty buffer of `len` bytes,
    /// returning whether it is all ASCII (it is valid UTF-8 either way). An ASCII text becomes
    /// an external string over that very buffer where Node can make one, so the text is
    /// copied once, by `fill`; otherwise it is copied to V8 and the buffer kept for the next.
    pub fn large_string<E>(
        self,
        len: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<bool, E>,
    ) -> Result<Value, E> {
        let mut text = external_string::buffer(len);
        let ascii = match fill(&mut text) {
            Ok(ascii) => ascii,
            Err(e) => {
                external_string::give_back(text);
                return Err(e);
            }
        };
        let text = if ascii {
            match external_string::from_buffer(self.0, text) {
                Ok(v) => return Ok(v),
                Err(text) => text,
            }
        } else {
            text
        };
        // `fill` wrote valid UTF-8 (its contract); a text it broke reads as U+FFFD here.
        let v = self.string(&String::from_utf8_lossy(&text));
        external_string::give_back(text);
        Ok(v)
    }

    pub fn number(self, n: f64) -> Value {
        let mut v = ptr::null_mut();
        // SAFETY: as in `undefined`.
        unsafe { sys::napi_create_double(self.0, n, &mut v) };
        v
    }

    /// The value of a JS number, or `None` for any other value.
    pub fn number_value(self, v: Value) -> Option<f64> {
        let mut out = 0f64;
        // SAFETY: a valid env and value; a non-number only sets a status.
        let status = unsafe { sys::napi_get_value_double(self.0, v, &mut out) };
        (status == sys::Status::napi_ok).then_some(out)
    }

    /// The value of a JS boolean, or `None` for any other value.
    pub fn bool_value(self, v: Value) -> Option<bool> {
        let mut out = false;
        // SAFETY: as in `number_value`.
        let status = unsafe { sys::napi_get_value_bool(self.0, v, &mut out) };
        (status == sys::Status::napi_ok).then_some(out)
    }

    pub fn kind(self, v: Value) -> Kind {
        let mut t = 0;
        // SAFETY: a valid env and value.
        unsafe { sys::napi_typeof(self.0, v, &mut t) };
        match t {
            sys::ValueType::napi_undefined => Kind::Undefined,
            sys::ValueType::napi_null => Kind::Null,
            sys::ValueType::napi_number => Kind::Number,
            sys::ValueType::napi_boolean => Kind::Boolean,
            sys::ValueType::napi_string => Kind::String,
            sys::ValueType::napi_function => Kind::Function,
            sys::ValueType::napi_object => Kind::Object,
            _ => Kind::Other,
        }
    }

    /// The bytes of a Node `Buffer` (or any `Uint8Array`), or `None` if `v` is not one.
    pub fn buffer_bytes(self, v: Value) -> Option<Vec<u8>> {
        let mut is = false;
        // SAFETY: a valid env and value.
        unsafe { sys::napi_is_buffer(self.0, v, &mut is) };
        if !is {
            return None;
        }
        let mut data = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: `v` is a buffer; its data stays valid while `v` is (this call's scope).
        unsafe { sys::napi_get_buffer_info(self.0, v, &mut data, &mut len) };
        if data.is_null() || len == 0 {
            return Some(Vec::new());
        }
        // SAFETY: N-API reported `len` readable bytes at `data`.
        Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }.to_vec())
    }

    /// The items of an array, or `None` if it has more than `max` (or `v` is not one).
    pub fn array_items(self, v: Value, max: usize) -> Option<Vec<Value>> {
        if !self.is_array(v) {
            return None;
        }
        let mut len = 0u32;
        // SAFETY: a valid env and array.
        unsafe { sys::napi_get_array_length(self.0, v, &mut len) };
        if len as usize > max {
            return None;
        }
        let mut items = Vec::with_capacity(len as usize);
        for i in 0..len {
            let mut item = ptr::null_mut();
            // SAFETY: as above; `i` is below the length. A getter that throws leaves an
            // exception, cleared, and the item reads as `undefined`.
            if unsafe { sys::napi_get_element(self.0, v, i, &mut item) } != sys::Status::napi_ok {
                self.take_exception();
                item = self.undefined();
            }
            items.push(item);
        }
        Some(items)
    }

    pub fn is_array(self, v: Value) -> bool {
        let mut is = false;
        // SAFETY: a valid env and value.
        unsafe { sys::napi_is_array(self.0, v, &mut is) };
        is
    }

    /// The UTF-8 text of a JS string, or `None` if `v` is not a string.
    pub fn to_string(self, v: Value) -> Option<String> {
        self.text(v, &mut [0; 256]).map(Cow::into_owned)
    }

    /// The UTF-8 text of a JS string (lone surrogates become U+FFFD), or `None` if `v` is not
    /// a string. A short string (a key) is read into `buf`: one N-API call, no allocation.
    pub fn text(self, v: Value, buf: &mut TextBuf) -> Option<Cow<'_, str>> {
        let written = self.short_text(v, buf)?;
        // A truncated copy stops at a character boundary, leaving up to 3 bytes unused besides
        // the NUL: only a copy with more room than that to spare is known to be whole.
        if written + 4 < buf.len() {
            return std::str::from_utf8(&buf[..written]).ok().map(Cow::Borrowed);
        }
        self.long_text(v).map(Cow::Owned)
    }

    /// [`Js::text`] of a value's JSON text, a long one read into `scratch` rather than into a
    /// fresh allocation (the caller copies what it keeps).
    pub fn text_in<'a>(
        self,
        v: Value,
        buf: &'a mut TextBuf,
        scratch: &'a mut TextScratch,
    ) -> Option<&'a str> {
        let written = self.short_text(v, buf)?;
        if written + 4 < buf.len() {
            return std::str::from_utf8(&buf[..written]).ok();
        }
        self.read_long(v, &mut scratch.0)?;
        std::str::from_utf8(&scratch.0).ok()
    }

    /// The UTF-8 text of a JS string too long for a [`TextBuf`].
    fn long_text(self, v: Value) -> Option<String> {
        let mut utf8 = Vec::new();
        self.read_long(v, &mut utf8)?;
        // The room left over is given back in place (or by `mremap`), without a copy.
        utf8.shrink_to_fit();
        String::from_utf8(utf8).ok()
    }

    /// Copies the UTF-8 of the JS string `v` into `buf`, as much as fits; the bytes written
    /// (a truncated copy stops at a character boundary). `None` if `v` is not a string.
    fn short_text(self, v: Value, buf: &mut TextBuf) -> Option<usize> {
        let mut written = 0usize;
        // SAFETY: a valid env and value; `buf` is writable for its length.
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                self.0,
                v,
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len(),
                &mut written,
            )
        };
        (status == sys::Status::napi_ok).then_some(written)
    }

    /// Replaces the contents of `utf8` with the UTF-8 of the JS string `v`, in one pass: the
    /// room is reserved from the UTF-16 length, which V8 knows without reading the text, at 3
    /// bytes a code unit, the most UTF-8 needs for one (a surrogate pair takes 4 for 2). Asking
    /// N-API for the UTF-8 length instead would read the whole text once more.
    fn read_long(self, v: Value, utf8: &mut Vec<u8>) -> Option<()> {
        let mut units = 0usize;
        // SAFETY: a null buffer asks for the length only.
        let status =
            unsafe { sys::napi_get_value_string_utf16(self.0, v, ptr::null_mut(), 0, &mut units) };
        if status != sys::Status::napi_ok {
            return None;
        }
        let room = units.checked_mul(3)?.checked_add(1)?;
        utf8.clear();
        utf8.reserve(room);
        let mut written = 0usize;
        // SAFETY: `utf8` has room for `room` bytes, written (not read) by N-API: the whole
        // text (see above) and its NUL.
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                self.0,
                v,
                utf8.as_mut_ptr().cast::<c_char>(),
                room,
                &mut written,
            )
        };
        if status != sys::Status::napi_ok || written >= room {
            return None;
        }
        // SAFETY: N-API wrote `written` bytes (the NUL after them is not counted).
        unsafe { utf8.set_len(written) };
        Some(())
    }

    /// Whether the JS string `v` holds a lone surrogate (which UTF-8 cannot keep).
    pub fn has_lone_surrogate(self, v: Value) -> bool {
        let mut len = 0usize;
        // SAFETY: a null buffer asks for the length only.
        unsafe { sys::napi_get_value_string_utf16(self.0, v, ptr::null_mut(), 0, &mut len) };
        let mut buf = vec![0u16; len + 1];
        let mut written = 0usize;
        // SAFETY: `buf` is writable for `len + 1` code units.
        unsafe {
            sys::napi_get_value_string_utf16(self.0, v, buf.as_mut_ptr(), buf.len(), &mut written)
        };
        buf.truncate(written);
        char::decode_utf16(buf).any(|c| c.is_err())
    }

    /// `obj[name]`; `undefined` when reading it throws (the exception is cleared).
    pub fn get(self, obj: Value, name: &CStr) -> Value {
        self.try_get(obj, name).unwrap_or_else(|_| self.undefined())
    }

    /// `obj[name]`, or what reading it threw (a getter, a Proxy trap).
    pub fn try_get(self, obj: Value, name: &CStr) -> Result<Value, Value> {
        let mut v = ptr::null_mut();
        // SAFETY: a valid env and value; `name` is NUL-terminated.
        let status = unsafe { sys::napi_get_named_property(self.0, obj, name.as_ptr(), &mut v) };
        if status != sys::Status::napi_ok {
            return Err(self.take_exception());
        }
        Ok(v)
    }

    /// The enumerable string-named property names of `obj` (as `for…in` lists them), or what
    /// listing them threw (a Proxy trap).
    pub fn try_property_names(self, obj: Value) -> Result<Vec<String>, Value> {
        let mut names = ptr::null_mut();
        let mut len = 0u32;
        // SAFETY: a valid env and value; out-pointers are live.
        unsafe {
            if sys::napi_get_property_names(self.0, obj, &mut names) != sys::Status::napi_ok
                || sys::napi_get_array_length(self.0, names, &mut len) != sys::Status::napi_ok
            {
                return Err(self.take_exception());
            }
        }
        let mut out = Vec::with_capacity(len as usize);
        for i in 0..len {
            let mut v = ptr::null_mut();
            // SAFETY: as above; `i` is below the array's length.
            if unsafe { sys::napi_get_element(self.0, names, i, &mut v) } != sys::Status::napi_ok {
                return Err(self.take_exception());
            }
            out.extend(self.to_string(v));
        }
        Ok(out)
    }

    pub fn set(self, obj: Value, name: &CStr, value: Value) {
        // SAFETY: a valid env and values; `name` is NUL-terminated. A failure (a frozen
        // object) leaves an exception, cleared here: setting is best effort.
        let status = unsafe { sys::napi_set_named_property(self.0, obj, name.as_ptr(), value) };
        if status != sys::Status::napi_ok {
            self.take_exception();
        }
    }

    /// Calls `f` with `this` and `args`; `Err` holds the thrown value.
    pub fn call(self, f: Value, this: Value, args: &[Value]) -> Result<Value, Value> {
        let mut out = ptr::null_mut();
        // SAFETY: a valid env and values; `args` is valid for `args.len()` values.
        let status = unsafe {
            sys::napi_call_function(self.0, this, f, args.len(), args.as_ptr(), &mut out)
        };
        if status == sys::Status::napi_ok {
            Ok(out)
        } else {
            Err(self.take_exception())
        }
    }

    /// Clears and returns the pending exception (`undefined` if none).
    pub fn take_exception(self) -> Value {
        let mut e = ptr::null_mut();
        // SAFETY: a valid env; with no exception pending this yields `undefined`.
        let status = unsafe { sys::napi_get_and_clear_last_exception(self.0, &mut e) };
        if status != sys::Status::napi_ok || e.is_null() {
            return self.undefined();
        }
        e
    }

    /// Whether an exception is pending.
    pub fn exception_pending(self) -> bool {
        let mut pending = false;
        // SAFETY: a valid env.
        unsafe { sys::napi_is_exception_pending(self.0, &mut pending) };
        pending
    }

    /// Throws `v` (an exception is pending afterwards).
    pub fn throw(self, v: Value) {
        // SAFETY: a valid env and value.
        unsafe { sys::napi_throw(self.0, v) };
    }

    /// The `message` of a thrown value, or its string form, for error texts.
    pub fn message_of(self, thrown: Value) -> String {
        if let Ok(m) = self.try_get_message(thrown) {
            return m;
        }
        let mut s = ptr::null_mut();
        // SAFETY: a valid env and value; `String(v)` may throw (a Symbol), then cleared.
        let status = unsafe { sys::napi_coerce_to_string(self.0, thrown, &mut s) };
        if status != sys::Status::napi_ok {
            self.take_exception();
            return "a value that cannot be shown".to_owned();
        }
        self.to_string(s)
            .unwrap_or_else(|| "a value that cannot be shown".to_owned())
    }

    fn try_get_message(self, thrown: Value) -> Result<String, ()> {
        if !matches!(self.kind(thrown), Kind::Object | Kind::Function) {
            return Err(());
        }
        let m = self.try_get(thrown, c"message").map_err(|_| ())?;
        self.to_string(m).ok_or(())
    }

    pub fn array(self, items: &[Value]) -> Value {
        let mut arr = ptr::null_mut();
        // SAFETY: a valid env and values; indices are within the array made here.
        unsafe {
            sys::napi_create_array_with_length(self.0, items.len(), &mut arr);
            for (i, item) in items.iter().enumerate() {
                sys::napi_set_element(self.0, arr, i as u32, *item);
            }
        }
        arr
    }

    pub fn object(self) -> Value {
        let mut o = ptr::null_mut();
        // SAFETY: a valid env.
        unsafe { sys::napi_create_object(self.0, &mut o) };
        o
    }

    pub fn is_promise(self, v: Value) -> bool {
        let mut b = false;
        // SAFETY: a valid env and value.
        unsafe { sys::napi_is_promise(self.0, v, &mut b) };
        b
    }

    /// A new `Error` of the main realm with `error.code` set: the fallback when no realm's
    /// error class is known (see `js::error`).
    pub fn error(self, code: &str, message: &str) -> Value {
        let mut e = ptr::null_mut();
        // SAFETY: a valid env and two strings made here.
        unsafe { sys::napi_create_error(self.0, self.string(code), self.string(message), &mut e) };
        e
    }

    pub fn create_promise(self) -> (Deferred, Value) {
        let mut d = ptr::null_mut();
        let mut p = ptr::null_mut();
        // SAFETY: a valid env; out-pointers are live.
        unsafe { sys::napi_create_promise(self.0, &mut d, &mut p) };
        (Deferred(d), p)
    }

    /// A reference to any value, primitives included (N-API before version 10 refers to objects
    /// only, so the value is kept in a one-element array).
    pub fn reference_any(self, v: Value) -> AnyRef {
        AnyRef(self.reference(self.array(&[v])))
    }

    /// A reference to an object or function.
    pub fn reference(self, v: Value) -> Ref {
        let mut r = ptr::null_mut();
        // SAFETY: a valid env and value.
        unsafe { sys::napi_create_reference(self.0, v, 1, &mut r) };
        Ref {
            env: self.0,
            raw: r,
        }
    }

    /// Compiles and runs `source` (a constant of this crate).
    pub fn run_script(self, source: &str) -> Result<Value, Value> {
        let mut out = ptr::null_mut();
        // SAFETY: a valid env and a string made here.
        let status = unsafe { sys::napi_run_script(self.0, self.string(source), &mut out) };
        if status == sys::Status::napi_ok {
            Ok(out)
        } else {
            Err(self.take_exception())
        }
    }

    /// Runs `f` inside a fresh handle scope, so handles made for one task do not pile up.
    pub fn scoped<T>(self, f: impl FnOnce() -> T) -> T {
        let mut scope = ptr::null_mut();
        // SAFETY: a valid env; the scope is closed below, after `f`, in nesting order.
        unsafe { sys::napi_open_handle_scope(self.0, &mut scope) };
        let out = f();
        // SAFETY: closes the scope opened above.
        unsafe { sys::napi_close_handle_scope(self.0, scope) };
        out
    }
}

/// The resolver of a promise made by [`Js::create_promise`]; settle it exactly once.
pub struct Deferred(sys::napi_deferred);

impl Deferred {
    pub fn resolve(self, js: Js, v: Value) {
        // SAFETY: made by `create_promise` on this env, settled once (it is consumed).
        unsafe { sys::napi_resolve_deferred(js.0, self.0, v) };
    }

    pub fn reject(self, js: Js, v: Value) {
        // SAFETY: as in `resolve`.
        unsafe { sys::napi_reject_deferred(js.0, self.0, v) };
    }
}

/// A strong reference that keeps a JS value alive across awaits; freed on drop.
pub struct Ref {
    env: sys::napi_env,
    raw: sys::napi_ref,
}

impl Ref {
    pub fn value(&self) -> Value {
        let mut v = ptr::null_mut();
        // SAFETY: a reference of this env, alive until dropped.
        unsafe { sys::napi_get_reference_value(self.env, self.raw, &mut v) };
        v
    }
}

/// See [`Js::reference_any`].
pub struct AnyRef(Ref);

impl AnyRef {
    pub fn value(&self) -> Value {
        let mut v = ptr::null_mut();
        // SAFETY: the referenced array was made with one element by `reference_any`.
        unsafe { sys::napi_get_element(self.0.env, self.0.value(), 0, &mut v) };
        v
    }
}

impl Drop for Ref {
    fn drop(&mut self) {
        // SAFETY: a reference of this env, deleted once. References are dropped on the env's
        // thread while it lives (see the module docs).
        unsafe { sys::napi_delete_reference(self.env, self.raw) };
    }
}
