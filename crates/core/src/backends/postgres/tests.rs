//! The engine under the core store, against a live server (PG* variables; defaults for the
//! local test server). Skipped with a message when no server answers, unless
//! RESHUFFLE_DATASTORE_REQUIRE_PG=1.

use std::collections::HashMap;
use std::future::Future;

use super::config::PgSettings;
use super::PgBackend;
use crate::backends::contract_tests::server_answers;
use crate::backends::sql_identifier::TableName;
use crate::core::Store;
use crate::runtime::executor::{block_on, Executor};

fn settings() -> HashMap<String, String> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    for (k, v) in [
        ("PGHOST", "127.0.0.1"),
        ("PGUSER", "root"),
        ("PGDATABASE", "test"),
    ] {
        env.entry(k.to_owned()).or_insert_with(|| v.to_owned());
    }
    env
}

fn backend(table: &str, pool_size: usize) -> PgBackend {
    let config = PgSettings::default()
        .resolve(&settings(), Some(pool_size))
        .unwrap();
    PgBackend::new(config, None, &TableName::parse(table).unwrap())
}

fn store(table: &str, pool_size: usize) -> Store<PgBackend> {
    Store::new(backend(table, pool_size))
}

/// For the backend contract suite: runs `test` with a way to open backends on one fresh
/// table (see [`with_table`]).
pub(crate) fn with_test_table<F: Future<Output = ()> + 'static>(
    name: &str,
    test: impl FnOnce(Box<dyn Fn() -> PgBackend>) -> F,
) {
    with_table(name, |table| test(Box::new(move || backend(&table, 4))));
}

/// Runs `sql` on a connection of its own; `Err` when the server cannot be reached.
fn admin(sql: String) -> Result<(), String> {
    let env = settings();
    let host = env["PGHOST"].clone();
    let port: u16 = env
        .get("PGPORT")
        .map_or(Ok(5432), |p| p.parse())
        .map_err(|e| format!("PGPORT: {e}"))?;
    let mut config = tokio_postgres::Config::new();
    config.user(&env["PGUSER"]).dbname(&env["PGDATABASE"]);
    block_on(async move {
        let socket = super::socket::connect(&host, port)
            .await
            .map_err(|e| e.to_string())?;
        let (client, connection) = config
            .connect_raw(socket, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let exec = Executor::current().ok_or("no executor")?;
        exec.start(async move {
            let _ = connection.await;
        });
        client.batch_execute(&sql).await.map_err(|e| e.to_string())
    })
}

/// Runs `test` with a fresh table name, dropping the table afterwards.
fn with_table<F: Future<Output = ()> + 'static>(name: &str, test: impl FnOnce(String) -> F) {
    if !server_answers(
        "PostgreSQL",
        "RESHUFFLE_DATASTORE_REQUIRE_PG",
        admin("SELECT 1".into()),
    ) {
        return;
    }
    let table = format!("rds_rust_{name}_{}", std::process::id());
    let _ = admin(format!("DROP TABLE IF EXISTS {table}"));
    block_on(test(table.clone()));
    let _ = admin(format!("DROP TABLE IF EXISTS {table}"));
}

#[test]
fn get_set_list_remove() {
    with_table("basic", |table| async move {
        let s = store(&table, 4);
        assert_eq!(s.get("k").await.unwrap(), None);
        s.set("k", "\"v\"".into()).await.unwrap();
        s.set("nul key", "1".into()).await.unwrap();
        s.set("\u{FFFF}x", "2".into()).await.unwrap();
        // NUL cannot be held: refused, never escaped.
        let refused = s.set("nul\0key", "1".into()).await.unwrap_err();
        assert_eq!(refused.code(), "ERR_DATASTORE_INVALID_KEY");
        assert_eq!(s.get("k").await.unwrap().as_deref(), Some("\"v\""));
        assert_eq!(s.get("nul key").await.unwrap().as_deref(), Some("1"));
        assert_eq!(s.list("").await.unwrap(), vec!["k", "nul key", "\u{FFFF}x"]);
        assert_eq!(s.list("n").await.unwrap(), vec!["nul key"]);
        assert_eq!(s.list("\u{FFFF}").await.unwrap(), vec!["\u{FFFF}x"]);
        s.remove("k").await.unwrap();
        assert_eq!(s.get("k").await.unwrap(), None);
        s.close().await.unwrap();
    });
}
