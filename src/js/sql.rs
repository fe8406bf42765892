//! The native half of `SQLStoreAdapter(target, table = 'reshuffledb', options?)` (SPEC §4.3;
//! the public class is in index.js). The target picks
//! the engine: a file path or `':memory:'` is SQLite; a pg `Pool`/`Client`/config object or a
//! `postgres://` / `postgresql://` URL is PostgreSQL ([`postgres_target`]). Each engine is one
//! variant of [`Engine`], whose store `methods()` hands to JS.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use std::rc::Rc;

use super::adapter::{read_store_options, JsStore, STORE_OPTION_NAMES};
use super::error::throw;
use super::methods::{store_methods, NativeStoreMethods};
use super::pg_target;
use super::raw::{Js, JsAny, Kind, Value};
use crate::backends::postgres::PgBackend;
use crate::backends::sql_identifier::TableName;
use crate::backends::sqlite::{Durability, SqliteBackend, Target};
use crate::core::DatastoreError;

/// The table reshuffle uses when none is given.
const DEFAULT_TABLE: &str = "reshuffledb";

/// The store behind an adapter; one variant per engine.
enum Engine {
    Sqlite(Rc<JsStore<SqliteBackend>>),
    Postgres(Rc<JsStore<PgBackend>>),
}

/// The PostgreSQL engine for a pg `Pool`, `Client` or config object, or a `postgres://` URL;
/// `options` is `{ poolSize, busyPollMicros, lockTimeout }`.
fn postgres_target(
    js: Js,
    target: Value,
    table: &TableName,
    options: Option<Value>,
) -> std::result::Result<Engine, DatastoreError> {
    let mut config = pg_target::postgres_target(js, target)?.ok_or_else(|| {
        DatastoreError::invalid_argument(
            "SQLStoreAdapter(target): not a PostgreSQL target: pass a pg Pool or Client, a \
             config object, or a postgres:// URL",
        )
    })?;
    pg_target::apply_pg_options(js, options, &mut config)?;
    let shared = read_store_options(js, options, "SQLStoreAdapter(target, table, options)")?;
    Ok(Engine::Postgres(Rc::new(JsStore::new(
        PgBackend::new(config, table),
        shared,
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
    match table.map(|t| (js.kind(t.0), t.0)) {
        None | Some((Kind::Undefined, _)) => TableName::parse(DEFAULT_TABLE),
        Some((Kind::String, v)) => TableName::parse(&js.to_string(v).unwrap_or_default()),
        Some(_) => Err(DatastoreError::invalid_argument(
            "SQLStoreAdapter(target, table): the table name must be a string",
        )),
    }
}

/// `{ durability?: 'normal' | 'fsync' }` for SQLite; anything else is refused.
fn sqlite_options(
    js: Js,
    options: Option<Value>,
) -> std::result::Result<Durability, DatastoreError> {
    let invalid = |m: String| Err(DatastoreError::invalid_argument(m));
    let Some(options) = options else {
        return Ok(Durability::Normal);
    };
    match js.kind(options) {
        Kind::Undefined | Kind::Null => return Ok(Durability::Normal),
        Kind::Object => {}
        _ => {
            return invalid(
                "SQLStoreAdapter(target, table, options): options must be an object".into(),
            )
        }
    }
    let mut durability = Durability::Normal;
    for name in js.property_names(options) {
        if STORE_OPTION_NAMES.contains(&name.as_str()) {
            continue;
        }
        if name != "durability" {
            return invalid(format!(
                "SQLStoreAdapter: unknown option {name:?} for SQLite (known: durability, \
                 lockTimeout)"
            ));
        }
        let v = js.get(options, c"durability");
        durability = match (js.kind(v), js.to_string(v).as_deref()) {
            (Kind::Undefined, _) => Durability::Normal,
            (Kind::String, Some("normal")) => Durability::Normal,
            (Kind::String, Some("fsync")) => Durability::Fsync,
            _ => return invalid("SQLStoreAdapter: durability must be 'normal' or 'fsync'".into()),
        };
    }
    Ok(durability)
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
) -> std::result::Result<Engine, DatastoreError> {
    let table = table_name(js, table)?;
    let options = options.map(|o| o.0);
    match js.kind(target.0) {
        Kind::Object => postgres_target(js, target.0, &table, options),
        Kind::String => {
            let s = js.to_string(target.0).unwrap_or_default();
            if is_postgres_url(&s) {
                return postgres_target(js, target.0, &table, options);
            }
            let durability = sqlite_options(js, options)?;
            let shared =
                read_store_options(js, options, "SQLStoreAdapter(target, table, options)")?;
            let backend = SqliteBackend::new(sqlite_target(&s)?, &table, durability);
            Ok(Engine::Sqlite(Rc::new(JsStore::new(backend, shared))))
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
        ts_args_type = "target: string | object, table?: string, options?: { durability?: 'normal' | 'fsync'; poolSize?: number; busyPollMicros?: number; lockTimeout?: number }"
    )]
    pub fn new(
        env: &Env,
        target: JsAny,
        table: Option<JsAny>,
        options: Option<JsAny>,
    ) -> Result<Self> {
        let js = Js(env.raw());
        match build(js, target, table, options) {
            Ok(engine) => Ok(NativeSqlStore { engine }),
            Err(e) => Err(throw(js, &e)),
        }
    }

    /// The store's operations as plain functions (see `js::methods`).
    #[napi]
    pub fn methods(&self, env: &Env) -> Result<NativeStoreMethods> {
        let js = Js(env.raw());
        match &self.engine {
            Engine::Sqlite(s) => store_methods(js, s),
            Engine::Postgres(s) => store_methods(js, s),
        }
    }
}
