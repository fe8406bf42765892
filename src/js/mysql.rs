//! The native half of `MySQLStoreAdapter(target, table = 'reshuffledb', options?)`
//! (docs/mysql.md; the public class is in index.js). `options`: `{ poolSize, lockTimeout }`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use std::rc::Rc;

use super::adapter::JsStore;
use super::boundary::{construct, enter};
use super::methods::{store_methods, NativeStoreMethods};
use super::mysql_target::{mysql_target, MAX_POOL_SIZE};
use super::options::{self, OptionKind, Spec, LOCK_TIMEOUT};
use super::raw::{Js, JsAny, Kind};
use crate::backends::mysql::MyBackend;
use crate::backends::sql_identifier::TableName;
use crate::core::DatastoreError;

/// The table reshuffle uses when none is given.
const DEFAULT_TABLE: &str = "reshuffledb";

const MYSQL_OPTIONS: [Spec; 2] = [
    Spec {
        name: "poolSize",
        kind: OptionKind::Whole {
            min: 1,
            max: MAX_POOL_SIZE as u64,
        },
    },
    LOCK_TIMEOUT,
];

/// Key-value store in a MySQL or MariaDB table `(id primary key, value)` of JSON text, the
/// layout of reshuffle's `MySQLStoreAdapter`.
#[napi]
pub struct NativeMySqlStore {
    inner: Rc<JsStore<MyBackend>>,
}

fn table_name(js: Js, table: Option<JsAny>) -> std::result::Result<TableName, DatastoreError> {
    match table.map(|t| (js.kind(t.value()), t.value())) {
        None | Some((Kind::Undefined, _)) => TableName::parse(DEFAULT_TABLE),
        Some((Kind::String, v)) => TableName::parse(&js.to_string(v).unwrap_or_default()),
        Some(_) => Err(DatastoreError::invalid_argument(
            "MySQLStoreAdapter(target, table): the table name must be a string",
        )),
    }
}

#[napi]
impl NativeMySqlStore {
    /// `target`: a mysql2 pool (promise or callback API), a mysql2-style config object or a
    /// `mysql://` URL. `table` is an SQL identifier, optionally `database.table`. Throws
    /// `ERR_DATASTORE_INVALID_ARGUMENT` at once for bad arguments; connects on first use.
    #[napi(
        constructor,
        ts_args_type = "makeError: (code: string, message: string, details: object) => Error, target: string | object, table?: string, options?: { poolSize?: number; lockTimeout?: number }"
    )]
    pub fn new(
        env: &Env,
        make_error: JsAny,
        target: JsAny,
        table: Option<JsAny>,
        options: Option<JsAny>,
    ) -> Result<Self> {
        construct(
            env,
            make_error.value(),
            "MySQLStoreAdapter",
            |js, errors| {
                let table = table_name(js, table)?;
                let mut settings = mysql_target(js, target.value())?;
                let o = options::read(
                    js,
                    options.map(JsAny::value),
                    "MySQLStoreAdapter(target, table, options)",
                    &MYSQL_OPTIONS,
                )?;
                if let Some(n) = o.whole("poolSize") {
                    settings.pool_size = Some(n as usize);
                }
                let config = settings.resolve()?;
                Ok(NativeMySqlStore {
                    inner: Rc::new(JsStore::new(
                        MyBackend::new(config, &table),
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
