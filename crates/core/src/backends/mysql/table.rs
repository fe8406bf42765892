//! Makes the table ready on first use: creates it when missing (`CREATE TABLE IF NOT
//! EXISTS`, retried when concurrent DDL of other processes deadlocks or times out on the
//! metadata lock), adds `expires_at` to a table that lacks it (reshuffle's), and learns what
//! the server is and how the table compares keys.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::error::{self, my_error, server_code};
use super::locked::{lock_all, Waits};
use super::sql::{Server, Statements};
use crate::core::{DatastoreError, Result};

/// The table this package creates: keys of up to 2,048 bytes compared as bytes (within
/// InnoDB's 3,072-byte index limit), values of up to 4 GiB (64 MiB by the default packet
/// size), and the expiry in milliseconds since the epoch, indexed for the purge.
fn create_sql(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\
         id VARBINARY(2048) NOT NULL, \
         value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, \
         expires_at BIGINT NULL, \
         PRIMARY KEY (id), \
         KEY reshuffle_expiry (expires_at)\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

/// Where the table is and what it is called, for `information_schema`.
pub struct Place<'a> {
    pub database: &'a str,
    pub table: &'a str,
    /// Quoted for SQL.
    pub quoted: &'a str,
    /// As written, for messages.
    pub display: &'a str,
}

/// `(column, data type)` of the table's `id` and `expires_at` columns; empty: no table.
async fn columns(conn: &mut Conn, p: &Place<'_>) -> Result<Vec<(String, String)>> {
    conn.exec(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(LOWER(DATA_TYPE) AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
         AND COLUMN_NAME IN ('id', 'expires_at')",
        (p.database, p.table),
    )
    .await
    .map_err(|e| my_error(p.display, None, &e))
}

fn is_retryable(e: &mysql_async::Error) -> bool {
    matches!(
        server_code(e),
        Some(error::ER_LOCK_DEADLOCK | error::ER_LOCK_WAIT_TIMEOUT | error::ER_TABLE_EXISTS_ERROR)
    )
}

/// Readies the table on `conn`; returns its statements.
pub async fn ready(conn: &mut Conn, pool: &mysql_async::Pool, p: &Place<'_>) -> Result<Statements> {
    let about: Option<(String, u64)> = conn
        .query_first("SELECT VERSION(), @@max_allowed_packet")
        .await
        .map_err(|e| my_error(p.display, None, &e))?;
    let (version, max_packet) = about.unwrap_or_default();
    let mut server = Server::from_version(&version);
    server.max_packet = usize::try_from(max_packet).unwrap_or(usize::MAX);
    let mut cols = columns(conn, p).await?;
    let mut attempt = 0;
    while cols.is_empty() {
        match conn.query_drop(create_sql(p.quoted)).await {
            Ok(()) => {}
            Err(e) if attempt < 5 && is_retryable(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                continue;
            }
            Err(e) => return Err(my_error(p.display, None, &e)),
        }
        cols = columns(conn, p).await?;
        if cols.is_empty() {
            return Err(DatastoreError::backend(format!(
                "MySQL table {}: created, but information_schema does not show it",
                p.display
            )));
        }
    }
    if !cols.iter().any(|(c, _)| c == "expires_at") {
        add_expiry(
            pool,
            p,
            Waits {
                fractional: server.mariadb,
            },
        )
        .await?;
    }
    let binary_ids = cols
        .iter()
        .any(|(c, t)| c == "id" && matches!(t.as_str(), "varbinary"));
    Ok(Statements::new(p.quoted, binary_ids, server))
}

/// Adds `expires_at` and its index to a table without them (one reshuffle made), once across
/// processes (under a server lock named for the table). Reshuffle's statements name their
/// columns, so they go on working.
async fn add_expiry(pool: &mysql_async::Pool, p: &Place<'_>, waits: Waits) -> Result<()> {
    let name = super::locked::lock_name(p.database, p.table, "\0create");
    let deadline = Some(std::time::Instant::now() + Duration::from_secs(60));
    let mut locked = lock_all(pool, vec![name], deadline, waits, p.display).await?;
    let conn = locked.conn()?;
    if columns(conn, p)
        .await?
        .iter()
        .any(|(c, _)| c == "expires_at")
    {
        locked.unlock().await;
        return Ok(());
    }
    let sql = format!(
        "ALTER TABLE {} ADD COLUMN expires_at BIGINT NULL, ADD KEY reshuffle_expiry (expires_at)",
        p.quoted
    );
    let altered = conn.query_drop(sql).await;
    locked.unlock().await;
    match altered {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                server_code(&e),
                Some(error::ER_DUP_FIELDNAME | error::ER_DUP_KEYNAME)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(DatastoreError::backend(format!(
            "MySQL table {}: it has no expires_at column (for values with a time to live) \
             and this user cannot add it ({e}); run: ALTER TABLE {} ADD COLUMN expires_at \
             BIGINT NULL, ADD KEY reshuffle_expiry (expires_at)",
            p.display, p.quoted
        ))),
    }
}
