//! A JS function as the core's [`Updater`]: called on the JS thread while the core holds the
//! key's lock; a returned promise (or thenable) is awaited; a throw or rejection passes through
//! as the same value. A promise that is garbage-collected unsettled fails the update with
//! `UpdaterAbandoned`, which releases the key (see `Runtime::when_settled`).

use std::future::{ready, Future};

use futures_util::future::Either;

use super::promise::awaited;
use super::raw::{AnyRef, Kind, Ref, Value};
use super::runtime::Runtime;
use crate::core::{DatastoreError, UpdateError, Updater};

/// What the updater threw or rejected with, kept alive until the caller's promise rejects.
pub struct Thrown(pub AnyRef);

type Outcome = Result<Option<String>, UpdateError<Thrown>>;

pub struct JsUpdater {
    pub rt: &'static Runtime,
    pub func: Ref,
    pub key: String,
}

/// Turns the updater's (awaited) result into JSON text: `undefined` is "no change".
fn to_json(rt: &Runtime, key: &str, v: Value) -> Outcome {
    let js = rt.js;
    if js.kind(v) == Kind::Undefined {
        return Ok(None);
    }
    match rt.stringify(v) {
        Ok(Some(json)) => Ok(Some(json)),
        Ok(None) => Err(UpdateError::Store(DatastoreError::invalid_value(
            key,
            "the updater returned something JSON cannot store (a function or a Symbol)",
        ))),
        Err(thrown) => Err(UpdateError::Store(DatastoreError::invalid_value(
            key,
            format!(
                "the updater's result is not JSON: {}",
                js.message_of(thrown)
            ),
        ))),
    }
}

impl Updater for JsUpdater {
    type Error = Thrown;

    fn call(self, current: Option<&str>) -> impl Future<Output = Outcome> + 'static {
        let rt = self.rt;
        let js = rt.js;
        let key = self.key;
        js.scoped(|| {
            let arg = match current {
                None => js.undefined(),
                Some(text) => match rt.parse(text) {
                    Ok(v) => v,
                    Err(_) => {
                        let corrupt = DatastoreError::value_not_json(&key);
                        return Either::Left(ready(Err(UpdateError::Store(corrupt))));
                    }
                },
            };
            let ret = match js.call(self.func.value(), js.undefined(), &[arg]) {
                Ok(v) => v,
                Err(thrown) => {
                    let thrown = Thrown(js.reference_any(thrown));
                    return Either::Left(ready(Err(UpdateError::Updater(thrown))));
                }
            };
            Either::Right(awaited(rt, ret, move |js, settled| match settled {
                Some((true, v)) => to_json(rt, &key, v),
                Some((false, v)) => Err(UpdateError::Updater(Thrown(js.reference_any(v)))),
                None => Err(UpdateError::Store(DatastoreError::UpdaterAbandoned { key })),
            }))
        })
    }
}
