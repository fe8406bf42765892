//! node-postgres's `password` given as a function (sync or async, e.g. RDS IAM or Azure AD
//! tokens): called for each new connection of the store, as node-postgres calls it for each
//! new client, with the target's settings object as `this`.

use std::future::Future;
use std::pin::Pin;

use super::promise::awaited;
use super::raw::{Js, Kind, Ref, Value};
use super::runtime::Runtime;
use crate::backends::postgres::PasswordSource;
use crate::core::{DatastoreError, Result};

pub struct JsPassword {
    rt: &'static Runtime,
    func: Ref,
    this: Ref,
}

impl JsPassword {
    pub fn new(rt: &'static Runtime, func: Value, this: Value) -> Self {
        JsPassword {
            rt,
            func: rt.js.reference(func),
            this: rt.js.reference(this),
        }
    }
}

fn text(js: Js, v: Value) -> Result<String> {
    match js.kind(v) {
        Kind::String => Ok(js.to_string(v).unwrap_or_default()),
        _ => Err(DatastoreError::backend(
            "the password function must return (or resolve to) a string",
        )),
    }
}

impl PasswordSource for JsPassword {
    fn password(&self) -> Pin<Box<dyn Future<Output = Result<String>>>> {
        let rt = self.rt;
        let js = rt.js;
        js.scoped(
            || match js.call(self.func.value(), self.this.value(), &[]) {
                Err(thrown) => {
                    let e = DatastoreError::backend(format!("it threw: {}", js.message_of(thrown)));
                    Box::pin(std::future::ready(Err(e))) as Pin<Box<dyn Future<Output = _>>>
                }
                Ok(v) => Box::pin(awaited(rt, v, |js, settled| match settled {
                    Some((true, v)) => text(js, v),
                    Some((false, e)) => Err(DatastoreError::backend(format!(
                        "it rejected: {}",
                        js.message_of(e)
                    ))),
                    None => Err(DatastoreError::backend(
                        "its promise was garbage-collected without settling",
                    )),
                })),
            },
        )
    }
}
