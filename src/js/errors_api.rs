//! Coded errors for the checks the JS wrapper makes itself (index.js), built by the one
//! mapping in `error.rs`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::error::to_js_error;
use super::raw::{Js, JsAny};
use crate::core::DatastoreError;

/// `ERR_DATASTORE_INVALID_KEY`.
#[napi(ts_return_type = "Error")]
pub fn invalid_key_error(env: &Env, reason: String) -> JsAny {
    JsAny(to_js_error(
        Js(env.raw()),
        &DatastoreError::InvalidKey { reason },
    ))
}

/// `ERR_DATASTORE_INVALID_ARGUMENT`.
#[napi(ts_return_type = "Error")]
pub fn invalid_argument_error(env: &Env, message: String) -> JsAny {
    JsAny(to_js_error(
        Js(env.raw()),
        &DatastoreError::invalid_argument(message),
    ))
}

/// `ERR_DATASTORE_CORRUPT` for a stored value that is not JSON (written by another program).
#[napi(ts_return_type = "Error")]
pub fn corrupt_value_error(env: &Env, key: String, reason: String) -> JsAny {
    JsAny(to_js_error(
        Js(env.raw()),
        &DatastoreError::Corrupt {
            path: format!("the value of key {key:?}"),
            position: 0,
            reason,
        },
    ))
}
