//! The native half of `SQLStoreAdapter(target, table = 'reshuffledb', options?)` (docs/sqlite.md, docs/postgres.md;
//! the public class is in index.js). The target picks
//! the engine: a file path or `':memory:'` is SQLite; a pg `Pool`/`Client`/config object or a
//! `postgres://` / `postgresql://` URL is PostgreSQL ([`postgres_target`]). Each engine is one
//! variant of [`Engine`], whose store `methods()` hands to JS.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use std::rc::Rc;

use super::adapter::JsStore;
use super::boundary::{construct, enter};
use super::error::Errors;
use super::methods::{store_methods, NativeStoreMethods};
use super::options::{self, OptionKind, Spec, LOCK_TIMEOUT};
use super::pg_password::JsPassword;
use super::pg_target;
use super::raw::{Js, JsAny, Kind, Value};
use super::runtime::Runtime;
use crate::backends::postgres::{PasswordSource, PgBackend};
use crate::backends::sql_identifier::TableName;
use crate::backends::sqlite::{Durability, SqliteBackend, Target};
use crate::core::DatastoreError;

/// The table reshuffle uses when none is given.
const DEFAULT_TABLE: &str = "reshuffledb";

/// The options of a SQLite store.
const SQLITE_OPTIONS: [Spec; 2] = [
    Spec {
        name: "durability",
        kind: OptionKind::OneOf(&["normal", "fsync"]),
    },
    LOCK_TIMEOUT,
];

/// The store behind an adapter; one variant per engine.
enum Engine {
    Sqlite(Rc<JsStore<SqliteBackend>>),
    Postgres(Rc<JsStore<PgBackend>>),
}

impl Engine {
    fn errors(&self) -> &Errors {
        match self {
            Engine::Sqlite(s) => &s.errors,
            Engine::Postgres(s) => &s.errors,
        }
    }
}

/// The PostgreSQL engine for a pg `Pool`, `Client` or config object, or a `postgres://` URL;
/// `options` is `{ poolSize, busyPollMicros, lockTimeout }`.
fn postgres_target(
    js: Js,
    target: Value,
    table: &TableName,
    options: Option<Value>,
    errors: Rc<Errors>,
) -> std::result::Result<Engine, DatastoreError> {
    let pg_target::PgTarget {
        mut config,
        password_fn,
    } = pg_target::postgres_target(js, target)?.ok_or_else(|| {
        DatastoreError::invalid_argument(
            "SQLStoreAdapter(target): not a PostgreSQL target: pass a pg Pool or Client, a \
             config object, or a postgres:// URL",
        )
    })?;
    let o = options::read(
        js,
        options,
        "SQLStoreAdapter(target, table, options) on PostgreSQL",
        &pg_target::PG_OPTIONS,
    )?;
    pg_target::apply_pg_options(&o, &mut config);
    let password = password_fn.map(|p| {
        let rt = Runtime::get(js.env());
        Rc::new(JsPassword::new(rt, p.func, p.this)) as Rc<dyn PasswordSource>
    });
    Ok(Engine::Postgres(Rc::new(JsStore::new(
        PgBackend::new(config, password, table),
        o.store_options(),
        errors,
    ))))
}

/// Key-value store in an SQL table `(id varchar primary key, value varchar)` of JSON text,
/// the layout of reshuffle's `SQLStoreAdapter`.
#[napi]
pub struct NativeSqlStore {
    engine: Engine,
}

fn is_postgres_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn table_name(js: Js, table: Option<JsAny>) -> std::result::Result<TableName, DatastoreError> {
    match table.map(|t| (js.kind(t.value()), t.value())) {
        None | Some((Kind::Undefined, _)) => TableName::parse(DEFAULT_TABLE),
        Some((Kind::String, v)) => TableName::parse(&js.to_string(v).unwrap_or_default()),
        Some(_) => Err(DatastoreError::invalid_argument(
            "SQLStoreAdapter(target, table): the table name must be a string",
        )),
    }
}

fn sqlite_target(path: &str) -> std::result::Result<Target, DatastoreError> {
    if path == ":memory:" {
        return Ok(Target::Memory);
    }
    if path.is_empty() {
        return Err(DatastoreError::invalid_argument(
            "SQLStoreAdapter(target): the SQLite path is empty (use a file path or ':memory:')",
        ));
    }
    if path.contains('\0') {
        return Err(DatastoreError::invalid_argument(
            "SQLStoreAdapter(target): the SQLite path contains NUL",
        ));
    }
    // Resolved now, so that a later chdir does not move the database.
    std::path::absolute(path)
        .map(Target::File)
        .map_err(|e| DatastoreError::io(path, e))
}

fn build(
    js: Js,
    target: JsAny,
    table: Option<JsAny>,
    options: Option<JsAny>,
    errors: Rc<Errors>,
) -> std::result::Result<Engine, DatastoreError> {
    let table = table_name(js, table)?;
    let options = options.map(JsAny::value);
    let target = target.value();
    match js.kind(target) {
        Kind::Object => postgres_target(js, target, &table, options, errors),
        Kind::String => {
            let s = js.to_string(target).unwrap_or_default();
            if is_postgres_url(&s) {
                return postgres_target(js, target, &table, options, errors);
            }
            let o = options::read(
                js,
                options,
                "SQLStoreAdapter(target, table, options) on SQLite",
                &SQLITE_OPTIONS,
            )?;
            let durability = match o.choice("durability") {
                Some("fsync") => Durability::Fsync,
                _ => Durability::Normal,
            };
            let backend = SqliteBackend::new(sqlite_target(&s)?, &table, durability);
            Ok(Engine::Sqlite(Rc::new(JsStore::new(
                backend,
                o.store_options(),
                errors,
            ))))
        }
        _ => Err(DatastoreError::invalid_argument(
            "SQLStoreAdapter(target): the target must be a SQLite file path, ':memory:', \
             a postgres:// URL, or a pg Pool, Client or config object",
        )),
    }
}

#[napi]
impl NativeSqlStore {
    /// `target`: a SQLite file path (created if missing), `':memory:'`, a `postgres://` URL,
    /// or a pg `Pool`, `Client` or config object. `table` is an SQL identifier, optionally
    /// `schema.table`. Throws `ERR_DATASTORE_INVALID_ARGUMENT` at once for bad arguments;
    /// the database is opened on first use.
    #[napi(
        constructor,
        ts_args_type = "makeError: (code: string, message: string, details: object) => Error, target: string | object, table?: string, options?: { durability?: 'normal' | 'fsync'; poolSize?: number; busyPollMicros?: number; lockTimeout?: number }"
    )]
    pub fn new(
        env: &Env,
        make_error: JsAny,
        target: JsAny,
        table: Option<JsAny>,
        options: Option<JsAny>,
    ) -> Result<Self> {
        construct(env, make_error.value(), "SQLStoreAdapter", |js, errors| {
            Ok(NativeSqlStore {
                engine: build(js, target, table, options, errors)?,
            })
        })
    }

    /// The store's operations as plain functions (see `js::methods`).
    #[napi]
    pub fn methods(&self, env: &Env) -> Result<NativeStoreMethods> {
        // SAFETY: napi-rs hands `#[napi]` methods the env of the current call.
        let js = unsafe { Js::from_env(env.raw()) };
        enter(js, self.engine.errors(), "methods", || match &self.engine {
            Engine::Sqlite(s) => store_methods(js, s),
            Engine::Postgres(s) => store_methods(js, s),
        })
    }
}
