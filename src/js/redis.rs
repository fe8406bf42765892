//! The native half of `RedisStoreAdapter(target, options?)` (docs/redis.md; the public class is
//! in index.js, which turns an ioredis or node-redis client into a `redis://` URL of its
//! settings, and hands over its TLS CA as PEM text). `options`: `{ prefix, lockTimeout,
//! leaseMs, cluster }`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use std::rc::Rc;
use std::time::Duration;

use super::adapter::JsStore;
use super::boundary::{construct, enter};
use super::methods::{store_methods, NativeStoreMethods};
use super::options::{self, OptionKind, Spec, LOCK_TIMEOUT};
use super::raw::{Js, JsAny, Kind};
use crate::backends::redis::{parse_url, tls, RedisBackend};
use crate::core::key::MAX_KEY_BYTES;
use crate::core::DatastoreError;

/// The longest lease: a day.
const MAX_LEASE_MS: u64 = 86_400_000;

const REDIS_OPTIONS: [Spec; 4] = [
    Spec {
        name: "prefix",
        kind: OptionKind::Text {
            max_bytes: MAX_KEY_BYTES,
        },
    },
    LOCK_TIMEOUT,
    Spec {
        name: "leaseMs",
        kind: OptionKind::Whole {
            min: 10,
            max: MAX_LEASE_MS,
        },
    },
    Spec {
        name: "cluster",
        kind: OptionKind::Flag,
    },
];

#[napi]
pub struct NativeRedisStore {
    inner: Rc<JsStore<RedisBackend>>,
}

#[napi]
impl NativeRedisStore {
    /// `target`: a `redis://` or `rediss://` URL; `ca`: PEM certificates to check a TLS
    /// server's against (instead of Mozilla's roots). Throws `ERR_DATASTORE_INVALID_ARGUMENT`
    /// at once for bad arguments; the server is reached on first use.
    #[napi(
        constructor,
        ts_args_type = "makeError: (code: string, message: string, details: object) => Error, target: string, options?: { prefix?: string; lockTimeout?: number; leaseMs?: number; cluster?: boolean }, ca?: string"
    )]
    pub fn new(
        env: &Env,
        make_error: JsAny,
        target: JsAny,
        options: Option<JsAny>,
        ca: Option<JsAny>,
    ) -> Result<Self> {
        construct(
            env,
            make_error.value(),
            "RedisStoreAdapter",
            |js, errors| {
                let target = target.value();
                if js.kind(target) != Kind::String {
                    return Err(DatastoreError::invalid_argument(
                        "RedisStoreAdapter(target): the target must be a redis:// URL or an \
                     ioredis or node-redis client",
                    ));
                }
                let mut config = parse_url(&js.to_string(target).unwrap_or_default())?;
                let o = options::read(
                    js,
                    options.map(JsAny::value),
                    "RedisStoreAdapter(target, options)",
                    &REDIS_OPTIONS,
                )?;
                if let Some(prefix) = o.text("prefix") {
                    config.prefix = prefix.to_owned();
                }
                if let Some(ms) = o.whole("leaseMs") {
                    config.lease = Duration::from_millis(ms);
                }
                config.cluster = o.flag("cluster");
                if config.cluster && config.db != 0 {
                    return Err(DatastoreError::invalid_argument(
                        "RedisStoreAdapter: a Redis Cluster has only database 0; remove the \
                         database from the URL",
                    ));
                }
                if config.cluster && config.prefix.starts_with('}') {
                    // The names' hash tag `{prefix+key}` would be empty (see keys.rs).
                    return Err(DatastoreError::invalid_argument(
                        "RedisStoreAdapter(target, options): in a Redis Cluster the prefix cannot \
                         start with '}'",
                    ));
                }
                if let Some(ca) = ca.map(JsAny::value) {
                    if js.kind(ca) == Kind::String {
                        let Some(t) = config.tls.as_mut() else {
                            return Err(DatastoreError::invalid_argument(
                                "RedisStoreAdapter: a TLS CA was given for a connection without TLS",
                            ));
                        };
                        t.ca_pem = js.to_string(ca);
                    }
                }
                if let Some(t) = &config.tls {
                    // A CA that is not PEM is refused now, not at the first connection.
                    tls::client_config(t)?;
                }
                Ok(NativeRedisStore {
                    inner: Rc::new(JsStore::new(
                        RedisBackend::new(config),
                        o.store_options(),
                        errors,
                    )),
                })
            },
        )
    }

    /// The store's operations as plain functions (see `js::methods`).
    #[napi]
    pub fn methods(&self, env: &Env) -> Result<NativeStoreMethods> {
        // SAFETY: napi-rs hands `#[napi]` methods the env of the current call.
        let js = unsafe { Js::from_env(env.raw()) };
        enter(js, &self.inner.errors, "methods", || {
            store_methods(js, &self.inner)
        })
    }
}
