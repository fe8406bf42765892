//! Reads the target of `MySQLStoreAdapter` (docs/mysql.md): a mysql2 pool (callback API: its
//! `config.connectionConfig`; promise API: the callback pool inside it, `pool`), a
//! mysql2-style config object, or a `mysql://` URL. mysql2 itself is never loaded.

use std::ffi::CStr;

use super::raw::{Js, Kind, Value};
use crate::backends::mysql::{MySettings, MyTls};
use crate::core::DatastoreError;

/// The most certificates an `ssl.ca` array may hold.
const MAX_CA_ITEMS: usize = 1000;

/// The largest `poolSize` (and `connectionLimit` taken from a pool).
pub const MAX_POOL_SIZE: usize = 1000;

fn invalid(message: impl Into<String>) -> DatastoreError {
    DatastoreError::invalid_argument(message)
}

fn is_missing(js: Js, v: Value) -> bool {
    matches!(js.kind(v), Kind::Undefined | Kind::Null)
}

fn opt_string(js: Js, o: Value, name: &CStr) -> Result<Option<String>, DatastoreError> {
    let v = js.get(o, name);
    match js.kind(v) {
        Kind::Undefined | Kind::Null => Ok(None),
        Kind::String => Ok(js.to_string(v).filter(|s| !s.is_empty())),
        _ => Err(invalid(format!(
            "the MySQL setting {} must be a string",
            name.to_string_lossy()
        ))),
    }
}

fn opt_whole(js: Js, o: Value, name: &CStr, max: f64) -> Result<Option<u64>, DatastoreError> {
    let v = js.get(o, name);
    let n = match js.kind(v) {
        Kind::Undefined | Kind::Null => return Ok(None),
        Kind::Number => js.number_value(v).unwrap_or(f64::NAN),
        Kind::String => js
            .to_string(v)
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN),
        _ => f64::NAN,
    };
    if n.fract() != 0.0 || !(0.0..=max).contains(&n) {
        return Err(invalid(format!(
            "the MySQL setting {} must be a whole number from 0 to {max}",
            name.to_string_lossy()
        )));
    }
    Ok(Some(n as u64))
}

/// mysql2's `ssl`: an object (`ca`, `rejectUnauthorized`), `true`, or a profile name.
fn ssl_setting(js: Js, v: Value) -> Result<Option<MyTls>, DatastoreError> {
    match js.kind(v) {
        Kind::Undefined | Kind::Null => Ok(None),
        Kind::Boolean => Ok(Some(if js.bool_value(v).unwrap_or(false) {
            MyTls::Verified { ca_pem: None }
        } else {
            MyTls::Off
        })),
        Kind::Object => {
            for name in [c"key", c"cert", c"pfx", c"passphrase"] {
                if !is_missing(js, js.get(v, name)) {
                    return Err(invalid(format!(
                        "ssl.{} (client certificates) is not supported: connect with a \
                         password, or use mysql2 directly",
                        name.to_string_lossy()
                    )));
                }
            }
            let reject = js.get(v, c"rejectUnauthorized");
            if js.kind(reject) == Kind::Boolean && !js.bool_value(reject).unwrap_or(true) {
                return Ok(Some(MyTls::Unverified));
            }
            let ca = js.get(v, c"ca");
            let ca_pem = match js.kind(ca) {
                Kind::Undefined | Kind::Null => None,
                Kind::String => js.to_string(ca),
                // mysql2's SSL profiles ('Amazon RDS') give an array of PEM certificates.
                Kind::Object if js.is_array(ca) => {
                    let items = js
                        .array_items(ca, MAX_CA_ITEMS)
                        .ok_or_else(|| invalid("ssl.ca holds too many certificates"))?;
                    let mut all = String::new();
                    for item in items {
                        let pem = js
                            .to_string(item)
                            .or_else(|| {
                                js.buffer_bytes(item)
                                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                            })
                            .ok_or_else(|| {
                                invalid("ssl.ca items must be PEM strings or Buffers")
                            })?;
                        all.push_str(&pem);
                        all.push('\n');
                    }
                    Some(all)
                }
                Kind::Object => Some(
                    js.buffer_bytes(ca)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or_else(|| invalid("ssl.ca must be a PEM string or Buffer"))?,
                ),
                _ => return Err(invalid("ssl.ca must be a PEM string or Buffer")),
            };
            Ok(Some(MyTls::Verified { ca_pem }))
        }
        Kind::String => Ok(Some(MyTls::Verified { ca_pem: None })),
        _ => Err(invalid(
            "ssl must be an object like { rejectUnauthorized: false }, true or false",
        )),
    }
}

/// Settings of a mysql2 config object (also a pool's `config.connectionConfig`).
fn settings_of(js: Js, o: Value, limit: Option<u64>) -> Result<MySettings, DatastoreError> {
    if !is_missing(js, js.get(o, c"stream")) {
        return Err(invalid(
            "a custom stream cannot be used: pass host and port, or a mysql:// URL",
        ));
    }
    let port = opt_whole(js, o, c"port", 65535.0)?
        .map(|p| p as u16)
        .filter(|&p| p > 0);
    let limit = match limit {
        Some(l) => Some(l),
        None => opt_whole(js, o, c"connectionLimit", f64::from(u32::MAX))?,
    };
    Ok(MySettings {
        url: opt_string(js, o, c"uri")?,
        host: opt_string(js, o, c"host")?,
        port,
        user: opt_string(js, o, c"user")?,
        password: opt_string(js, o, c"password")?,
        database: opt_string(js, o, c"database")?,
        socket_path: opt_string(js, o, c"socketPath")?,
        tls: ssl_setting(js, js.get(o, c"ssl"))?,
        pool_size: limit
            .map(|l| (l as usize).min(MAX_POOL_SIZE))
            .filter(|&l| l > 0),
        // The longest delay Node's setTimeout (which mysql2 uses) takes.
        connect_timeout_ms: opt_whole(js, o, c"connectTimeout", f64::from(i32::MAX))?,
    })
}

fn is_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("mysql://") || lower.starts_with("mariadb:")
}

/// The settings of `target`, a mysql2 pool, a config object or a `mysql://` URL.
pub fn mysql_target(js: Js, target: Value) -> Result<MySettings, DatastoreError> {
    match js.kind(target) {
        Kind::String => {
            let url = js.to_string(target).unwrap_or_default();
            if !is_url(&url) {
                return Err(invalid(
                    "MySQLStoreAdapter(target): a string target must be a mysql:// URL",
                ));
            }
            Ok(MySettings {
                url: Some(url.replacen("mariadb:", "mysql:", 1)),
                ..MySettings::default()
            })
        }
        Kind::Object => {
            // A promise pool wraps the callback pool as `pool`.
            let inner = js.get(target, c"pool");
            let pool = if js.kind(inner) == Kind::Object
                && js.kind(js.get(inner, c"config")) == Kind::Object
            {
                inner
            } else {
                target
            };
            let config = js.get(pool, c"config");
            let conn = if js.kind(config) == Kind::Object {
                js.get(config, c"connectionConfig")
            } else {
                js.undefined()
            };
            if js.kind(conn) == Kind::Object {
                let limit = opt_whole(js, config, c"connectionLimit", f64::from(u32::MAX))?;
                settings_of(js, conn, limit)
            } else {
                settings_of(js, target, None)
            }
        }
        _ => Err(invalid(
            "MySQLStoreAdapter(target): the target must be a mysql2 pool, a config object \
             or a mysql:// URL",
        )),
    }
}
