//! Connection settings of a MySQL store: a `mysql://` URL and/or mysql2-style fields (the
//! fields win), resolved once into the driver's options. Every session runs in strict mode
//! (a value that does not fit its column is an error, never a truncation) with utf8mb4.

use std::time::Duration;

use mysql_async::{Opts, OptsBuilder, PoolConstraints, PoolOpts, SslOpts};

use crate::core::{DatastoreError, Result};

/// Connections a store opens at most for held keys (mysql2's `connectionLimit` default); as
/// many again serve reads.
pub const DEFAULT_POOL_SIZE: usize = 10;
/// Idle connections are closed after this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a store's first connection may take (mysql2's `connectTimeout` default).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a session is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MyTls {
    /// Plain TCP (mysql2's default).
    Off,
    /// TLS with the server's certificate checked against Mozilla's roots or `ca_pem`.
    Verified { ca_pem: Option<String> },
    /// TLS without checking the certificate (`rejectUnauthorized: false`).
    Unverified,
}

/// Settings as the caller gave them; `None`: not given.
#[derive(Debug, Clone, Default)]
pub struct MySettings {
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub socket_path: Option<String>,
    pub tls: Option<MyTls>,
    pub pool_size: Option<usize>,
    /// mysql2's `connectTimeout`, in ms; 0: none.
    pub connect_timeout_ms: Option<u64>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct MyConfig {
    pub opts: Opts,
    /// The database the table lives in (unless the table name says another).
    pub database: String,
    pub pool_size: usize,
    /// How long the store's first connection may take (`None`: as long as TCP tries). Only
    /// the first: later connections are asked of a pool that may also be waiting for a free
    /// connection, which can rightly take longer, and `lockTimeout` bounds those waits.
    pub connect_timeout: Option<Duration>,
}

/// What every session runs first: strict mode (MariaDB truncates in its default mode), no
/// `ANSI_QUOTES` (names are quoted with backticks), and utf8mb4 text. The three modes after
/// strict mode change nothing for our statements (no dates, no division); MySQL ≥ 8 warns
/// (3135) on every session that sets strict mode without them.
pub const SESSION_SETUP: &str = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,\
     ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,NO_ZERO_IN_DATE', \
     NAMES utf8mb4 COLLATE utf8mb4_bin";

fn tls_opts(tls: &MyTls) -> Option<SslOpts> {
    match tls {
        MyTls::Off => None,
        MyTls::Verified { ca_pem: None } => Some(SslOpts::default()),
        MyTls::Verified { ca_pem: Some(pem) } => {
            Some(SslOpts::default().with_root_certs(vec![pem.clone().into_bytes().into()]))
        }
        MyTls::Unverified => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
    }
}

impl MySettings {
    /// The driver's options for connections of one pool of `size`.
    pub fn resolve(&self) -> Result<MyConfig> {
        let mut b = match &self.url {
            Some(url) => OptsBuilder::from_opts(Opts::from_url(url).map_err(|e| {
                DatastoreError::invalid_argument(format!("the MySQL URL is not valid: {e}"))
            })?),
            None => OptsBuilder::default().ip_or_hostname("localhost"),
        };
        if let Some(h) = &self.host {
            b = b.ip_or_hostname(h.clone());
        }
        if let Some(p) = self.port {
            b = b.tcp_port(p);
        }
        if let Some(u) = &self.user {
            b = b.user(Some(u.clone()));
        }
        if let Some(p) = &self.password {
            b = b.pass(Some(p.clone()));
        }
        if let Some(s) = &self.socket_path {
            b = b.socket(Some(s.clone()));
        }
        if let Some(tls) = &self.tls {
            b = b.ssl_opts(tls_opts(tls));
        }
        let database = match &self.database {
            Some(d) => Some(d.clone()),
            None => Opts::from(b.clone()).db_name().map(str::to_owned),
        };
        let Some(database) = database.filter(|d| !d.is_empty()) else {
            return Err(DatastoreError::invalid_argument(
                "MySQLStoreAdapter(target): no database: give `database` (or a URL path)",
            ));
        };
        let pool_size = self.pool_size.unwrap_or(DEFAULT_POOL_SIZE).max(1);
        let b = b
            .db_name(Some(database.clone()))
            .init(vec![SESSION_SETUP])
            .client_found_rows(true)
            .stmt_cache_size(64)
            .pool_opts(pool_opts(pool_size));
        let connect_timeout = match self.connect_timeout_ms {
            None => Some(DEFAULT_CONNECT_TIMEOUT),
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
        };
        Ok(MyConfig {
            opts: b.into(),
            database,
            pool_size,
            connect_timeout,
        })
    }
}

/// A pool of at most `max` connections, idle ones closed after [`IDLE_TIMEOUT`].
pub fn pool_opts(max: usize) -> PoolOpts {
    let constraints = PoolConstraints::new(0, max.max(1)).unwrap_or_default();
    PoolOpts::default()
        .with_constraints(constraints)
        .with_inactive_connection_ttl(IDLE_TIMEOUT)
        .with_ttl_check_interval(Duration::from_secs(1))
        .with_reset_connection(false)
}

/// Settings from the environment for tests and tools: `MYSQL_URL`, or `MYSQL_HOST`,
/// `MYSQL_PORT`, `MYSQL_USER`, `MYSQL_PASSWORD`, `MYSQL_DATABASE` with the local test server's
/// defaults (127.0.0.1:3306, root, no password, database `test`).
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> MySettings {
    if let Some(url) = get("MYSQL_URL").filter(|u| !u.is_empty()) {
        return MySettings {
            url: Some(url),
            ..MySettings::default()
        };
    }
    MySettings {
        host: Some(get("MYSQL_HOST").unwrap_or_else(|| "127.0.0.1".into())),
        port: Some(
            get("MYSQL_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(3306),
        ),
        user: Some(get("MYSQL_USER").unwrap_or_else(|| "root".into())),
        password: get("MYSQL_PASSWORD").filter(|p| !p.is_empty()),
        database: Some(get("MYSQL_DATABASE").unwrap_or_else(|| "test".into())),
        ..MySettings::default()
    }
}
