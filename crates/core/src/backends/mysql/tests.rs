//! The engine under the core store, against a live server (MYSQL_* variables; defaults for the
//! local test server). Skipped with a message when no server answers, unless
//! RESHUFFLE_DATASTORE_REQUIRE_MYSQL=1.

use std::future::Future;

use super::config::{from_env, MySettings};
use super::runtime::hop;
use super::MyBackend;
use crate::backends::contract_tests::server_answers;
use crate::backends::sql_identifier::TableName;
use crate::core::Store;
use crate::runtime::executor::block_on;

fn settings() -> MySettings {
    from_env(|k| std::env::var(k).ok())
}

fn backend(table: &str, pool_size: usize) -> MyBackend {
    let mut s = settings();
    s.pool_size = Some(pool_size);
    MyBackend::new(s.resolve().unwrap(), &TableName::parse(table).unwrap())
}

fn store(table: &str) -> Store<MyBackend> {
    Store::new(backend(table, 4))
}

/// For the backend contract suite: runs `test` with a way to open backends on one fresh
/// table.
pub(crate) fn with_test_table<F: Future<Output = ()> + 'static>(
    name: &str,
    test: impl FnOnce(Box<dyn Fn() -> MyBackend>) -> F,
) {
    with_table(name, |table| test(Box::new(move || backend(&table, 4))));
}

/// Runs `sql` on a connection of its own; `Err` when the server cannot be reached.
fn admin(sql: String) -> Result<(), String> {
    use mysql_async::prelude::Queryable;
    let opts = settings().resolve().map_err(|e| e.to_string())?.opts;
    block_on(async move {
        hop(async move {
            let mut conn = mysql_async::Conn::new(opts)
                .await
                .map_err(|e| crate::core::DatastoreError::backend(e.to_string()))?;
            let r = conn.query_drop(sql).await;
            let _ = conn.disconnect().await;
            r.map_err(|e| crate::core::DatastoreError::backend(e.to_string()))
        })
        .await
        .map_err(|e| e.to_string())
    })
}

/// Runs `test` with a fresh table name, dropping the table afterwards.
fn with_table<F: Future<Output = ()> + 'static>(name: &str, test: impl FnOnce(String) -> F) {
    if !server_answers(
        "MySQL",
        "RESHUFFLE_DATASTORE_REQUIRE_MYSQL",
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
        let s = store(&table);
        assert_eq!(s.get("k").await.unwrap(), None);
        s.set("k", "\"v\"".into()).await.unwrap();
        s.set("K", "\"upper\"".into()).await.unwrap();
        s.set("nul\0key", "1".into()).await.unwrap();
        s.set("\u{FFFF}x", "2".into()).await.unwrap();
        assert_eq!(s.get("k").await.unwrap().as_deref(), Some("\"v\""));
        assert_eq!(s.get("K").await.unwrap().as_deref(), Some("\"upper\""));
        assert_eq!(s.get("nul\0key").await.unwrap().as_deref(), Some("1"));
        assert_eq!(
            s.list("").await.unwrap(),
            vec!["K", "k", "nul\0key", "\u{FFFF}x"]
        );
        assert_eq!(s.list("n").await.unwrap(), vec!["nul\0key"]);
        s.remove("k").await.unwrap();
        assert_eq!(s.get("k").await.unwrap(), None);
        s.close().await.unwrap();
    });
}

#[test]
fn reshuffle_table_as_is() {
    with_table("legacy", |table| async move {
        admin(format!(
            "CREATE TABLE {table} (id varchar(250) primary key, value varchar(500))"
        ))
        .unwrap();
        admin(format!("INSERT INTO {table} VALUES ('old', '{{\"a\":1}}')")).unwrap();
        let s = store(&table);
        assert_eq!(s.get("old").await.unwrap().as_deref(), Some("{\"a\":1}"));
        s.set("new", "2".into()).await.unwrap();
        assert_eq!(s.list("").await.unwrap(), vec!["new", "old"]);
        let long = format!("\"{}\"", "x".repeat(600));
        let e = s.set("big", long).await.unwrap_err();
        assert_eq!(e.code(), "ERR_DATASTORE_INVALID_VALUE");
        assert!(e.to_string().contains("ALTER TABLE"), "{e}");
        assert_eq!(s.get("big").await.unwrap(), None);
        s.close().await.unwrap();
    });
}
