//! Recognises a PostgreSQL target of `SQLStoreAdapter` (docs/postgres.md) and reads its settings:
//! a node-postgres `Pool` (its `options`) or `Client` (its `connectionParameters`), a pg-style
//! config object, or a `postgres://` / `postgresql://` URL. Anything else is not PostgreSQL
//! (an SQLite path). `pg` itself is never loaded.

use std::collections::HashMap;
use std::ffi::CStr;
use std::time::Duration;

use super::options::{OptionKind, Options, Spec, LOCK_TIMEOUT};
use super::raw::{Js, Kind, Value};
use crate::backends::postgres::{parse_url, process_env, PgConfig, PgSettings, Tls};
use crate::core::DatastoreError;

/// The largest `poolSize`.
const MAX_POOL_SIZE: usize = 1000;

fn invalid(message: impl Into<String>) -> DatastoreError {
    DatastoreError::invalid_argument(message)
}

#[derive(PartialEq, Eq)]
enum Type {
    Missing,
    Number,
    Boolean,
    String,
    Function,
    Object,
    Other,
}

fn type_of(js: Js, v: Value) -> Type {
    match js.kind(v) {
        Kind::Undefined | Kind::Null => Type::Missing,
        Kind::Number => Type::Number,
        Kind::Boolean => Type::Boolean,
        Kind::String => Type::String,
        Kind::Function => Type::Function,
        Kind::Object => Type::Object,
        Kind::Other => Type::Other,
    }
}

fn number(js: Js, v: Value) -> f64 {
    js.number_value(v).unwrap_or(f64::NAN)
}

fn boolean(js: Js, v: Value) -> bool {
    js.bool_value(v).unwrap_or(false)
}

/// The text of a Node `Buffer`, or `None` if `v` is not one.
fn buffer_text(js: Js, v: Value) -> Option<String> {
    js.buffer_bytes(v)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The most certificates an `ssl.ca` array may hold.
const MAX_CA_ITEMS: usize = 1000;

fn field_name(name: &CStr) -> String {
    name.to_string_lossy().into_owned()
}

fn opt_string(js: Js, obj: Value, name: &CStr) -> Result<Option<String>, DatastoreError> {
    let v = js.get(obj, name);
    match type_of(js, v) {
        Type::Missing => Ok(None),
        Type::String => Ok(js.to_string(v)),
        _ => Err(invalid(format!(
            "the PostgreSQL setting {} must be a string",
            field_name(name)
        ))),
    }
}

fn opt_count(js: Js, v: Value, what: &str, max: f64) -> Result<Option<f64>, DatastoreError> {
    let n = match type_of(js, v) {
        Type::Missing => return Ok(None),
        Type::Number => number(js, v),
        Type::String => js
            .to_string(v)
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN),
        _ => f64::NAN,
    };
    if n.fract() != 0.0 || !(0.0..=max).contains(&n) {
        return Err(invalid(format!(
            "{what} must be a whole number from 0 to {max}"
        )));
    }
    Ok(Some(n))
}

/// node-postgres's `ssl` setting.
fn ssl_setting(js: Js, v: Value) -> Result<Option<Tls>, DatastoreError> {
    match type_of(js, v) {
        Type::Missing => Ok(None),
        Type::Boolean => Ok(Some(if boolean(js, v) {
            Tls::Verified { ca_pem: None }
        } else {
            Tls::Disable
        })),
        Type::Object => {
            for name in [c"key", c"cert", c"pfx", c"passphrase"] {
                if type_of(js, js.get(v, name)) != Type::Missing {
                    return Err(invalid(format!(
                        "ssl.{} (client certificates) is not supported: connect with a \
                         password, or use node-postgres directly",
                        field_name(name)
                    )));
                }
            }
            let reject = js.get(v, c"rejectUnauthorized");
            if type_of(js, reject) == Type::Boolean && !boolean(js, reject) {
                return Ok(Some(Tls::RequireUnverified));
            }
            let ca = js.get(v, c"ca");
            let ca_pem = match type_of(js, ca) {
                Type::Missing => None,
                Type::String => js.to_string(ca),
                Type::Object if js.is_array(ca) => {
                    let mut all = String::new();
                    let items = js.array_items(ca, MAX_CA_ITEMS).ok_or_else(|| {
                        invalid(format!(
                            "ssl.ca holds more than {MAX_CA_ITEMS} certificates"
                        ))
                    })?;
                    for item in items {
                        let text = js
                            .to_string(item)
                            .or_else(|| buffer_text(js, item))
                            .ok_or_else(|| {
                                invalid("ssl.ca items must be PEM strings or Buffers")
                            })?;
                        all.push_str(&text);
                        all.push('\n');
                    }
                    Some(all)
                }
                Type::Object => Some(
                    buffer_text(js, ca)
                        .ok_or_else(|| invalid("ssl.ca must be a PEM string or Buffer"))?,
                ),
                _ => return Err(invalid("ssl.ca must be a PEM string or Buffer")),
            };
            Ok(Some(Tls::Verified { ca_pem }))
        }
        Type::String => {
            let mode = js.to_string(v).unwrap_or_default();
            crate::backends::postgres::config::tls_from_sslmode(&mode).map(Some)
        }
        _ => Err(invalid(
            "ssl must be true, false or an object like { rejectUnauthorized: false }",
        )),
    }
}

/// Settings of a pg config object (also a Pool's `options` or a Client's
/// `connectionParameters`).
fn settings_of(js: Js, o: Value) -> Result<(PgSettings, Option<PasswordFn>), DatastoreError> {
    let password_value = js.get(o, c"password");
    let mut password_fn = None;
    let password = match type_of(js, password_value) {
        Type::Missing => None,
        Type::String => js.to_string(password_value),
        Type::Function => {
            password_fn = Some(PasswordFn {
                func: password_value,
                this: o,
            });
            None
        }
        _ => {
            return Err(invalid(
                "the PostgreSQL setting password must be a string or a function",
            ))
        }
    };
    if type_of(js, js.get(o, c"stream")) != Type::Missing {
        return Err(invalid(
            "a custom stream cannot be used: pass host and port, or a postgres:// URL",
        ));
    }
    let port = opt_count(js, js.get(o, c"port"), "port", 65535.0)?
        .map(|p| p as u16)
        .filter(|&p| p > 0);
    let timeout = opt_count(
        js,
        js.get(o, c"connectionTimeoutMillis"),
        "connectionTimeoutMillis",
        f64::from(u32::MAX),
    )?
    .map(|ms| (ms > 0.0).then(|| Duration::from_millis(ms as u64)));
    // A pool's `max` sizes ours too, up to the `poolSize` limit.
    let max = opt_count(js, js.get(o, c"max"), "max", f64::from(u32::MAX))?
        .map(|m| (m as usize).min(MAX_POOL_SIZE))
        .filter(|&m| m > 0);
    let idle_timeout = opt_count(
        js,
        js.get(o, c"idleTimeoutMillis"),
        "idleTimeoutMillis",
        f64::from(u32::MAX),
    )?
    .map(|ms| (ms > 0.0).then(|| Duration::from_millis(ms as u64)));
    let fields = PgSettings {
        host: opt_string(js, o, c"host")?,
        port,
        user: opt_string(js, o, c"user")?,
        password,
        database: opt_string(js, o, c"database")?,
        tls: ssl_setting(js, js.get(o, c"ssl"))?,
        application_name: opt_string(js, o, c"application_name")?,
        options: opt_string(js, o, c"options")?,
        connect_timeout: timeout,
        max,
        idle_timeout,
    };
    let settings = match opt_string(js, o, c"connectionString")? {
        Some(url) => fields.overlay(parse_url(&url)?),
        None => fields,
    };
    Ok((settings, password_fn))
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// node-postgres's `password` given as a function, and the settings object it belongs to
/// (its `this` when called; see `js::pg_password`).
pub struct PasswordFn {
    pub func: Value,
    pub this: Value,
}

/// A PostgreSQL target, read.
pub struct PgTarget {
    pub config: PgConfig,
    /// When the password is a function, it is called for each new connection instead.
    pub password_fn: Option<PasswordFn>,
}

/// The settings of a PostgreSQL `target`, or `None` when `target` is not one. Missing
/// settings are filled from `PG*` variables and node-postgres's defaults; the pool size is the
/// target's `max` or 10 (see [`apply_pg_options`] for `poolSize`).
pub fn postgres_target(js: Js, target: Value) -> Result<Option<PgTarget>, DatastoreError> {
    let (settings, password_fn) = match type_of(js, target) {
        Type::String => {
            let s = js.to_string(target).unwrap_or_default();
            if !is_url(&s) {
                return Ok(None);
            }
            (parse_url(&s)?, None)
        }
        Type::Object if js.kind(target) == Kind::Object => {
            let params = js.get(target, c"connectionParameters");
            let options = js.get(target, c"options");
            if type_of(js, params) == Type::Object {
                settings_of(js, params)? // a pg Client
            } else if type_of(js, options) == Type::Object
                && type_of(js, js.get(target, c"connect")) == Type::Function
            {
                settings_of(js, options)? // a pg Pool
            } else {
                settings_of(js, target)? // a config object
            }
        }
        _ => return Ok(None),
    };
    let config = settings.resolve(&js_env(js), None)?;
    Ok(Some(PgTarget {
        config,
        password_fn,
    }))
}

/// The variables node-postgres reads, from JS's `process.env` (what the app and node-postgres
/// see, even where it differs from the C environment, as under jest); the C environment when
/// there is no `process`.
fn js_env(js: Js) -> HashMap<String, String> {
    let env = js.get(js.get(js.global(), c"process"), c"env");
    if type_of(js, env) != Type::Object {
        return process_env();
    }
    let names: [&CStr; 11] = [
        c"PGHOST",
        c"PGPORT",
        c"PGUSER",
        c"PGPASSWORD",
        c"PGDATABASE",
        c"PGSSLMODE",
        c"PGAPPNAME",
        c"PGOPTIONS",
        c"PGCONNECT_TIMEOUT",
        c"USER",
        c"USERNAME",
    ];
    names
        .iter()
        .filter_map(|name| {
            let v = js.get(env, name);
            let text = (type_of(js, v) == Type::String).then(|| js.to_string(v))??;
            Some((field_name(name), text))
        })
        .collect()
}

/// The longest `busyPollMicros`.
const MAX_BUSY_POLL_MICROS: u64 = 10_000;

/// The store's own options on PostgreSQL.
pub const PG_OPTIONS: [Spec; 3] = [
    Spec {
        name: "poolSize",
        kind: OptionKind::Whole {
            min: 1,
            max: MAX_POOL_SIZE as u64,
        },
    },
    Spec {
        name: "busyPollMicros",
        kind: OptionKind::Whole {
            min: 0,
            max: MAX_BUSY_POLL_MICROS,
        },
    },
    LOCK_TIMEOUT,
];

/// Applies the store's own options (`{ poolSize, busyPollMicros }`, read with
/// [`PG_OPTIONS`]) to `config`.
pub fn apply_pg_options(options: &Options, config: &mut PgConfig) {
    if let Some(n) = options.whole("poolSize") {
        config.pool_size = n as usize;
    }
    if let Some(n) = options.whole("busyPollMicros") {
        config.busy_poll = Duration::from_micros(n);
    }
}
