//! `PgStoreAdapter`: the PostgreSQL engine of `SQLStoreAdapter` (SPEC §4.3) as a class of its
//! own, until the two engines share one class.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::adapter::JsStore;
use super::error::throw;
use super::pg_target::{apply_pg_options, postgres_target};
use super::raw::{Js, JsAny, Kind};
use crate::backends::postgres::PgBackend;
use crate::backends::sql_identifier::TableName;
use crate::core::DatastoreError;

/// A store in a PostgreSQL table laid out as reshuffle's SQLStoreAdapter lays it out.
#[napi]
pub struct PgStoreAdapter {
    inner: JsStore<PgBackend>,
}

fn table_name(js: Js, table: Option<JsAny>) -> std::result::Result<TableName, DatastoreError> {
    match table.map(|t| (js.kind(t.0), t.0)) {
        None | Some((Kind::Undefined, _)) => TableName::parse("reshuffledb"),
        Some((Kind::String, v)) => TableName::parse(&js.to_string(v).unwrap_or_default()),
        Some(_) => Err(DatastoreError::invalid_argument(
            "the table name must be a string",
        )),
    }
}

#[napi]
impl PgStoreAdapter {
    /// `target`: a node-postgres Pool or Client, a pg config object, or a postgres:// URL.
    #[napi(
        constructor,
        ts_args_type = "target: string | object, table?: string, options?: { poolSize?: number }"
    )]
    pub fn new(
        env: Env,
        target: JsAny,
        table: Option<JsAny>,
        options: Option<JsAny>,
    ) -> Result<Self> {
        let js = Js(env.raw());
        let build = || -> std::result::Result<PgBackend, DatastoreError> {
            let table = table_name(js, table)?;
            let mut config = postgres_target(js, target.0)?.ok_or_else(|| {
                DatastoreError::invalid_argument(
                    "not a PostgreSQL target: pass a pg Pool or Client, a config object, or a \
                     postgres:// URL",
                )
            })?;
            apply_pg_options(js, options.map(|o| o.0), &mut config)?;
            Ok(PgBackend::new(config, &table))
        };
        match build() {
            Ok(backend) => Ok(PgStoreAdapter {
                inner: JsStore::new(backend),
            }),
            Err(e) => Err(throw(js, &e)),
        }
    }

    /// The value of `key`, or `undefined` when it is missing.
    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string",
        ts_return_type = "Promise<T | undefined>"
    )]
    pub fn get(&self, env: &Env, key: JsAny) -> JsAny {
        self.inner.get(env.raw(), key)
    }

    /// Stores a copy of `value`; resolves to a copy of it.
    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string, value: T",
        ts_return_type = "Promise<T>"
    )]
    pub fn set(&self, env: &Env, key: JsAny, value: JsAny) -> JsAny {
        self.inner.set(env.raw(), key, value)
    }

    /// Atomically replaces the value of `key` with what `updater` returns (`undefined`: no change).
    #[napi(
        ts_generic_types = "T = any",
        ts_args_type = "key: string, updater: (value: T | undefined) => T | undefined | Promise<T | undefined>",
        ts_return_type = "Promise<[T | undefined, T | undefined]>"
    )]
    pub fn update(&self, env: &Env, key: JsAny, updater: JsAny) -> JsAny {
        self.inner.update(env.raw(), key, updater)
    }

    /// Removes `key`; a missing key is not an error.
    #[napi(ts_args_type = "key: string", ts_return_type = "Promise<void>")]
    pub fn remove(&self, env: &Env, key: JsAny) -> JsAny {
        self.inner.remove(env.raw(), key)
    }

    /// Alias of `remove`, the name reshuffle's connectors call.
    #[napi(ts_args_type = "key: string", ts_return_type = "Promise<void>")]
    pub fn del(&self, env: &Env, key: JsAny) -> JsAny {
        self.inner.remove(env.raw(), key)
    }

    /// Keys (starting with `prefix`, if given), sorted by Unicode code point.
    #[napi(ts_args_type = "prefix?: string", ts_return_type = "Promise<string[]>")]
    pub fn list(&self, env: &Env, prefix: Option<JsAny>) -> JsAny {
        self.inner.list(env.raw(), prefix)
    }

    /// Waits for pending operations and closes the connections; later calls reject with
    /// `ERR_DATASTORE_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, env: &Env) -> JsAny {
        self.inner.close(env.raw())
    }
}
