//! Thin wrappers over the N-API C calls the binding needs on its hot paths. Everything here runs
//! on the JS thread, inside a callback from JS, where `env` is valid.

use std::borrow::Cow;
use std::ffi::{c_char, CStr};
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, ValueType};

/// A JS value passed through as is (no conversion).
#[derive(Clone, Copy)]
pub struct JsAny(pub sys::napi_value);

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

/// The env of the current callback.
#[derive(Clone, Copy)]
pub struct Js(pub sys::napi_env);

/// JS `typeof`, as far as the binding cares.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum Kind {
    Undefined,
    Null,
    String,
    Function,
    Object,
    Other,
}

impl Js {
    pub fn undefined(self) -> Value {
        let mut v = ptr::null_mut();
        unsafe { sys::napi_get_undefined(self.0, &mut v) };
        v
    }

    pub fn global(self) -> Value {
        let mut v = ptr::null_mut();
        unsafe { sys::napi_get_global(self.0, &mut v) };
        v
    }

    /// A JS string of `s`. ASCII text (most JSON) is handed over as Latin-1, which V8 copies
    /// as is instead of decoding it as UTF-8: the same string, made faster.
    pub fn string(self, s: &str) -> Value {
        let mut v = ptr::null_mut();
        let create = if s.is_ascii() {
            sys::napi_create_string_latin1
        } else {
            sys::napi_create_string_utf8
        };
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

    pub fn number(self, n: f64) -> Value {
        let mut v = ptr::null_mut();
        unsafe { sys::napi_create_double(self.0, n, &mut v) };
        v
    }

    /// The value of a JS number, or `None` for any other value.
    pub fn number_value(self, v: Value) -> Option<f64> {
        let mut out = 0f64;
        // A non-number only sets a status.
        let status = unsafe { sys::napi_get_value_double(self.0, v, &mut out) };
        (status == sys::Status::napi_ok).then_some(out)
    }

    pub fn kind(self, v: Value) -> Kind {
        let mut t = 0;
        unsafe { sys::napi_typeof(self.0, v, &mut t) };
        match t {
            sys::ValueType::napi_undefined => Kind::Undefined,
            sys::ValueType::napi_null => Kind::Null,
            sys::ValueType::napi_string => Kind::String,
            sys::ValueType::napi_function => Kind::Function,
            sys::ValueType::napi_object => Kind::Object,
            _ => Kind::Other,
        }
    }

    /// The UTF-8 text of a JS string, or `None` if `v` is not a string.
    pub fn to_string(self, v: Value) -> Option<String> {
        self.text(v, &mut [0; 256]).map(Cow::into_owned)
    }

    /// The UTF-8 text of a JS string (lone surrogates become U+FFFD), or `None` if `v` is not
    /// a string. A short string (a key) is read into `buf`: one N-API call, no allocation.
    pub fn text(self, v: Value, buf: &mut TextBuf) -> Option<Cow<'_, str>> {
        let mut written = 0usize;
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                self.0,
                v,
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len(),
                &mut written,
            )
        };
        if status != sys::Status::napi_ok {
            return None;
        }
        // A truncated copy stops at a character boundary, leaving up to 3 bytes unused besides
        // the NUL: only a copy with more room than that to spare is known to be whole.
        if written + 4 < buf.len() {
            return std::str::from_utf8(&buf[..written]).ok().map(Cow::Borrowed);
        }
        let mut len = 0usize;
        unsafe { sys::napi_get_value_string_utf8(self.0, v, ptr::null_mut(), 0, &mut len) };
        let mut buf = vec![0u8; len + 1];
        unsafe {
            sys::napi_get_value_string_utf8(
                self.0,
                v,
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len(),
                &mut written,
            )
        };
        buf.truncate(written);
        String::from_utf8(buf).ok().map(Cow::Owned)
    }

    /// Whether the JS string `v` holds a lone surrogate (which UTF-8 cannot keep).
    pub fn has_lone_surrogate(self, v: Value) -> bool {
        let mut len = 0usize;
        unsafe { sys::napi_get_value_string_utf16(self.0, v, ptr::null_mut(), 0, &mut len) };
        let mut buf = vec![0u16; len + 1];
        let mut written = 0usize;
        unsafe {
            sys::napi_get_value_string_utf16(self.0, v, buf.as_mut_ptr(), buf.len(), &mut written)
        };
        buf.truncate(written);
        char::decode_utf16(buf).any(|c| c.is_err())
    }

    pub fn get(self, obj: Value, name: &CStr) -> Value {
        let mut v = ptr::null_mut();
        let status = unsafe { sys::napi_get_named_property(self.0, obj, name.as_ptr(), &mut v) };
        if status != sys::Status::napi_ok {
            self.clear_exception();
            return self.undefined();
        }
        v
    }

    /// The own enumerable property names of `obj`.
    pub fn property_names(self, obj: Value) -> Vec<String> {
        let mut names = ptr::null_mut();
        let mut len = 0u32;
        // SAFETY: `obj` is a live value of the current callback's env.
        unsafe {
            if sys::napi_get_property_names(self.0, obj, &mut names) != sys::Status::napi_ok
                || sys::napi_get_array_length(self.0, names, &mut len) != sys::Status::napi_ok
            {
                self.clear_exception();
                return Vec::new();
            }
        }
        (0..len)
            .filter_map(|i| {
                let mut v = ptr::null_mut();
                // SAFETY: as above; `i` is below the array's length.
                unsafe { sys::napi_get_element(self.0, names, i, &mut v) };
                self.to_string(v)
            })
            .collect()
    }

    pub fn set(self, obj: Value, name: &CStr, value: Value) {
        unsafe { sys::napi_set_named_property(self.0, obj, name.as_ptr(), value) };
    }

    /// Calls `f` with `this` and `args`; `Err` holds the thrown value.
    pub fn call(self, f: Value, this: Value, args: &[Value]) -> Result<Value, Value> {
        let mut out = ptr::null_mut();
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
        let status = unsafe { sys::napi_get_and_clear_last_exception(self.0, &mut e) };
        if status != sys::Status::napi_ok || e.is_null() {
            return self.undefined();
        }
        e
    }

    fn clear_exception(self) {
        self.take_exception();
    }

    pub fn array(self, items: &[Value]) -> Value {
        let mut arr = ptr::null_mut();
        unsafe { sys::napi_create_array_with_length(self.0, items.len(), &mut arr) };
        for (i, item) in items.iter().enumerate() {
            unsafe { sys::napi_set_element(self.0, arr, i as u32, *item) };
        }
        arr
    }

    pub fn is_promise(self, v: Value) -> bool {
        let mut b = false;
        unsafe { sys::napi_is_promise(self.0, v, &mut b) };
        b
    }

    /// A new `Error` with `error.code` set.
    pub fn error(self, code: &str, message: &str) -> Value {
        let mut e = ptr::null_mut();
        unsafe { sys::napi_create_error(self.0, self.string(code), self.string(message), &mut e) };
        e
    }

    pub fn create_promise(self) -> (Deferred, Value) {
        let mut d = ptr::null_mut();
        let mut p = ptr::null_mut();
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
        unsafe { sys::napi_create_reference(self.0, v, 1, &mut r) };
        Ref {
            env: self.0,
            raw: r,
        }
    }

    /// Compiles and runs `source` (a constant of this crate).
    pub fn run_script(self, source: &str) -> Result<Value, Value> {
        let mut out = ptr::null_mut();
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
        unsafe { sys::napi_open_handle_scope(self.0, &mut scope) };
        let out = f();
        unsafe { sys::napi_close_handle_scope(self.0, scope) };
        out
    }
}

/// The resolver of a promise made by [`Js::create_promise`]; settle it exactly once.
pub struct Deferred(sys::napi_deferred);

impl Deferred {
    pub fn resolve(self, js: Js, v: Value) {
        unsafe { sys::napi_resolve_deferred(js.0, self.0, v) };
    }

    pub fn reject(self, js: Js, v: Value) {
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
        unsafe { sys::napi_get_reference_value(self.env, self.raw, &mut v) };
        v
    }
}

/// See [`Js::reference_any`].
pub struct AnyRef(Ref);

impl AnyRef {
    pub fn value(&self) -> Value {
        let mut v = ptr::null_mut();
        unsafe { sys::napi_get_element(self.0.env, self.0.value(), 0, &mut v) };
        v
    }
}

impl Drop for Ref {
    fn drop(&mut self) {
        unsafe { sys::napi_delete_reference(self.env, self.raw) };
    }
}
