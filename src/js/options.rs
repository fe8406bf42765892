//! The one reader of adapter options. Every adapter declares the options it knows as a list of
//! [`Spec`]s; [`read`] checks a JS options object against it and returns the values:
//! - `undefined` or `null` (for the object or any option) means "not given": the default;
//! - an unknown name, a value of the wrong type or out of range, or an option whose reading
//!   throws (a getter, a Proxy) is `ERR_DATASTORE_INVALID_ARGUMENT`, naming the option and
//!   listing the known ones;
//! - numbers are checked before any conversion, so no value can overflow a `Duration` or an
//!   `Instant` later (the ranges below are the ones the README and `index.d.ts` state).

use std::ffi::CString;
use std::time::Duration;

use super::raw::{Js, Kind, Value};
use crate::core::{DatastoreError, StoreOptions};

/// The longest `lockTimeout` other than `Infinity`: the largest delay `setTimeout` accepts
/// (about 24.8 days). Longer waits are "no limit".
pub const MAX_LOCK_TIMEOUT_MS: f64 = 2_147_483_647.0;

/// What an option holds.
#[derive(Clone, Copy, Debug)]
pub enum OptionKind {
    /// Milliseconds from 0 to [`MAX_LOCK_TIMEOUT_MS`] (fractions allowed), or `Infinity`.
    Millis,
    /// A whole number in `min..=max`.
    Whole { min: u64, max: u64 },
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// Any string of at most this many UTF-8 bytes.
    Text { max_bytes: usize },
    /// `true` or `false`.
    Flag,
}

/// One option an adapter knows.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub name: &'static str,
    pub kind: OptionKind,
}

/// `lockTimeout`, which every adapter accepts: how long an operation may wait for its key.
pub const LOCK_TIMEOUT: Spec = Spec {
    name: "lockTimeout",
    kind: OptionKind::Millis,
};

/// A value read by [`read`].
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// [`OptionKind::Millis`]: `None` for `Infinity`.
    Millis(Option<Duration>),
    Whole(u64),
    Choice(&'static str),
    Text(String),
    Flag(bool),
}

/// The options given, by name; options not given are absent.
#[derive(Debug, Default)]
pub struct Options {
    given: Vec<(&'static str, OptionValue)>,
}

impl Options {
    fn get(&self, name: &str) -> Option<&OptionValue> {
        self.given.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A [`OptionKind::Millis`] option: `None` when not given or `Infinity`.
    pub fn millis(&self, name: &str) -> Option<Duration> {
        match self.get(name) {
            Some(OptionValue::Millis(d)) => *d,
            _ => None,
        }
    }

    pub fn whole(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(OptionValue::Whole(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn choice(&self, name: &str) -> Option<&'static str> {
        match self.get(name) {
            Some(OptionValue::Choice(s)) => Some(*s),
            _ => None,
        }
    }

    /// A [`OptionKind::Text`] option, when given.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(OptionValue::Text(s)) => Some(s),
            _ => None,
        }
    }

    /// A [`OptionKind::Flag`] option: `false` when not given.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(OptionValue::Flag(true)))
    }

    /// The `lockTimeout` every adapter accepts.
    pub fn lock_timeout(&self) -> Option<Duration> {
        self.millis(LOCK_TIMEOUT.name)
    }

    /// The settings every store shares.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            lock_timeout: self.lock_timeout(),
        }
    }
}

fn known_names(specs: &[Spec]) -> String {
    specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// Reads `options` (the adapter's last argument) against `specs`. `who` names the
/// constructor in messages, e.g. `"FileStoreAdapter(path, options)"`.
pub fn read(
    js: Js,
    options: Option<Value>,
    who: &str,
    specs: &[Spec],
) -> Result<Options, DatastoreError> {
    let invalid = |m: String| DatastoreError::invalid_argument(format!("{who}: {m}"));
    let mut out = Options::default();
    let Some(options) = options else {
        return Ok(out);
    };
    match js.kind(options) {
        Kind::Undefined | Kind::Null => return Ok(out),
        Kind::Object if !js.is_array(options) => {}
        _ => {
            return Err(invalid(format!(
                "options must be an object like {{ {}: … }}",
                specs[0].name
            )))
        }
    }
    let names = js.try_property_names(options).map_err(|thrown| {
        invalid(format!(
            "reading the option names threw: {}",
            js.message_of(thrown)
        ))
    })?;
    if let Some(unknown) = names
        .iter()
        .find(|n| !specs.iter().any(|s| s.name == n.as_str()))
    {
        return Err(invalid(format!(
            "unknown option {unknown:?} (known: {})",
            known_names(specs)
        )));
    }
    for spec in specs {
        let name = CString::new(spec.name).unwrap_or_default();
        let v = js.try_get(options, &name).map_err(|thrown| {
            invalid(format!(
                "reading the option {} threw: {}",
                spec.name,
                js.message_of(thrown)
            ))
        })?;
        if matches!(js.kind(v), Kind::Undefined | Kind::Null) {
            continue;
        }
        let value = read_one(js, v, spec.kind)
            .map_err(|expected| invalid(format!("the option {} must be {expected}", spec.name)))?;
        out.given.push((spec.name, value));
    }
    Ok(out)
}

/// The value of one option, or what was expected instead.
fn read_one(js: Js, v: Value, kind: OptionKind) -> Result<OptionValue, String> {
    match kind {
        OptionKind::Millis => {
            let expected = || {
                format!(
                    "a number of milliseconds from 0 to {MAX_LOCK_TIMEOUT_MS} (fractions allowed), or \
                     Infinity for no limit"
                )
            };
            let ms = js.number_value(v).ok_or_else(expected)?;
            if ms == f64::INFINITY {
                return Ok(OptionValue::Millis(None));
            }
            if !(0.0..=MAX_LOCK_TIMEOUT_MS).contains(&ms) {
                return Err(expected());
            }
            // In range, so no panic and no overflow: at most ~24.8 days.
            Duration::try_from_secs_f64(ms / 1000.0)
                .map(|d| OptionValue::Millis(Some(d)))
                .map_err(|_| expected())
        }
        OptionKind::Whole { min, max } => {
            let expected = || format!("a whole number from {min} to {max}");
            let n = js.number_value(v).ok_or_else(expected)?;
            if n.fract() != 0.0 || !(min as f64..=max as f64).contains(&n) {
                return Err(expected());
            }
            Ok(OptionValue::Whole(n as u64))
        }
        OptionKind::OneOf(choices) => {
            let expected = || {
                let list: Vec<String> = choices.iter().map(|c| format!("'{c}'")).collect();
                format!("one of {}", list.join(", "))
            };
            if js.kind(v) != Kind::String {
                return Err(expected());
            }
            let s = js.to_string(v).unwrap_or_default();
            choices
                .iter()
                .find(|c| **c == s)
                .map(|c| OptionValue::Choice(c))
                .ok_or_else(expected)
        }
        OptionKind::Text { max_bytes } => {
            let expected = || format!("a string of at most {max_bytes} UTF-8 bytes");
            if js.kind(v) != Kind::String {
                return Err(expected());
            }
            let s = js.to_string(v).ok_or_else(expected)?;
            if s.len() > max_bytes {
                return Err(expected());
            }
            Ok(OptionValue::Text(s))
        }
        // N-API reads a boolean only from a boolean: anything else is refused.
        OptionKind::Flag => js
            .bool_value(v)
            .map(OptionValue::Flag)
            .ok_or_else(|| "true or false".to_owned()),
    }
}
