//! Connection settings: what the caller gave (a node-postgres config, a URL), then the `PG*`
//! environment variables, then node-postgres's defaults — the order node-postgres itself uses,
//! so a store connects where the app's own `pg.Pool` would.

use std::collections::HashMap;
use std::time::Duration;

use crate::core::{DatastoreError, Result};

/// Where each new connection's password comes from when it is not a fixed string: the
/// `password` function node-postgres allows (RDS IAM or Azure AD tokens), called for every
/// new connection, as node-postgres does. Runs on the store's thread.
pub trait PasswordSource {
    fn password(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>>>>;
}

/// How TLS is used. See docs/postgres.md for the mapping from node-postgres and libpq settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain TCP (`ssl: false`, `sslmode=disable`).
    Disable,
    /// TLS when the server offers it, plain otherwise; certificates are not checked (libpq's
    /// `prefer`).
    Prefer,
    /// TLS or fail; certificates are not checked (libpq's `require`, node-postgres's
    /// `ssl: { rejectUnauthorized: false }`, `sslmode=no-verify`).
    RequireUnverified,
    /// TLS or fail, the certificate chain and host name checked against Mozilla's roots or the
    /// given PEM `ca` (`ssl: true`, `sslmode=verify-full`, `verify-ca`).
    Verified { ca_pem: Option<String> },
}

/// Settings as given; `None` means "not given, look further".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgSettings {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub tls: Option<Tls>,
    pub application_name: Option<String>,
    /// Server options, as in libpq's `options` (`-c search_path=app`).
    pub options: Option<String>,
    /// node-postgres's `connectionTimeoutMillis` (libpq's `connect_timeout`); `Some(None)`: no
    /// limit (0 given).
    pub connect_timeout: Option<Option<Duration>>,
    /// node-postgres's pool `max`, used when the store's `poolSize` option is not given.
    pub max: Option<usize>,
    /// node-postgres's `idleTimeoutMillis`; `Some(None)` = never close idle connections.
    pub idle_timeout: Option<Option<Duration>>,
}

/// Fully resolved settings of one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub tls: Tls,
    pub application_name: String,
    pub options: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub pool_size: usize,
    /// Connections unused this long are closed; `None`: kept until `close()`.
    pub idle_timeout: Option<Duration>,
    /// How long the event loop polls for a reply before it sleeps (`core::busy_poll`); zero:
    /// never.
    pub busy_poll: Duration,
}

/// Connections per store when neither `poolSize` nor the pool's `max` says otherwise
/// (node-postgres's default `max`).
pub const DEFAULT_POOL_SIZE: usize = 10;
/// `application_name` of our connections unless the caller sets one.
pub const APPLICATION_NAME: &str = "reshuffle-datastore";
/// node-postgres's default `idleTimeoutMillis`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The limit on one connection attempt when neither the target nor `PGCONNECT_TIMEOUT` sets
/// one. node-postgres and libpq wait for ever by default, which against a server that never
/// answers (packets dropped by a firewall) is TCP's own give-up, about two minutes on Linux,
/// for every operation; mysql2's default is this one.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default polling window for a reply (the store's `busyPollMicros` option): longer than
/// a loopback round trip with a commit on the machines measured (docs/postgres.md).
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(1000);

fn invalid(message: impl Into<String>) -> DatastoreError {
    DatastoreError::invalid_argument(message)
}

/// The TLS mode named by an `sslmode` (URL parameter or `PGSSLMODE`).
pub fn tls_from_sslmode(mode: &str) -> Result<Tls> {
    Ok(match mode {
        "disable" => Tls::Disable,
        "allow" | "prefer" => Tls::Prefer,
        "require" | "no-verify" => Tls::RequireUnverified,
        "verify-ca" | "verify-full" => Tls::Verified { ca_pem: None },
        other => {
            return Err(invalid(format!(
                "sslmode {other:?} is not one of disable, prefer, require, no-verify, verify-ca, \
                 verify-full"
            )))
        }
    })
}

fn parse_port(s: &str, origin: &str) -> Result<u16> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(invalid(format!(
            "{origin}: port {s:?} is not a number from 1 to 65535"
        ))),
    }
}

fn percent_decode(s: &str, what: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return Err(invalid(format!("the URL's {what} has a bad % escape"))),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| invalid(format!("the URL's {what} is not UTF-8")))
}

/// Parses a `postgres://` or `postgresql://` URL the way node-postgres's `pg-connection-string`
/// does: `postgres://user:password@host:port/database?sslmode=require&application_name=x`.
/// A host that starts with `/` (or `host=/dir` in the query) is a Unix socket directory.
pub fn parse_url(url: &str) -> Result<PgSettings> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| invalid("a PostgreSQL URL starts with postgres:// or postgresql://"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut s = PgSettings::default();
    let hostport = match authority.rfind('@') {
        Some(i) => {
            let userinfo = &authority[..i];
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                s.user = Some(percent_decode(user, "user")?);
            }
            if let Some(p) = password {
                s.password = Some(percent_decode(p, "password")?);
            }
            &authority[i + 1..]
        }
        None => authority,
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        // [IPv6]:port
        match h.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(invalid("the URL's IPv6 host lacks its closing ]")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if !host.is_empty() {
        s.host = Some(percent_decode(host, "host")?);
    }
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        s.port = Some(parse_port(p, "the URL")?);
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        s.database = Some(percent_decode(db, "database")?);
    }
    let mut ssl_flag = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v, k)?;
        match k {
            "sslmode" => s.tls = Some(tls_from_sslmode(&v)?),
            "ssl" => ssl_flag = Some(v == "true" || v == "1"),
            "host" => s.host = Some(v),
            "port" => s.port = Some(parse_port(&v, "the URL")?),
            "user" => s.user = Some(v),
            "password" => s.password = Some(v),
            "dbname" | "database" => s.database = Some(v),
            "application_name" => s.application_name = Some(v),
            "options" => s.options = Some(v),
            "connect_timeout" => {
                let secs: u64 = v.parse().map_err(|_| {
                    invalid(format!("the URL's connect_timeout {v:?} is not a number"))
                })?;
                s.connect_timeout = Some((secs > 0).then(|| Duration::from_secs(secs)));
            }
            "sslcert" | "sslkey" | "sslrootcert" | "sslpassword" => {
                return Err(invalid(format!(
                    "the URL parameter {k} (certificate files) is not supported: pass the CA \
                     certificate as text in a config object, {{ ssl: {{ ca }} }}"
                )))
            }
            // Other libpq/node-postgres parameters do not change what is stored.
            _ => {}
        }
    }
    if s.tls.is_none() {
        s.tls = ssl_flag.map(|on| {
            if on {
                Tls::Verified { ca_pem: None }
            } else {
                Tls::Disable
            }
        });
    }
    Ok(s)
}

impl PgSettings {
    /// Fills what `self` lacks from `env` (the `PG*` variables), then from node-postgres's
    /// defaults: host `localhost`, port 5432, user `$USER`, database = user, no TLS.
    pub fn resolve(
        self,
        env: &HashMap<String, String>,
        pool_size: Option<usize>,
    ) -> Result<PgConfig> {
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        let host = self
            .host
            .or_else(|| var("PGHOST"))
            .unwrap_or_else(|| "localhost".to_owned());
        let port = match self.port {
            Some(p) => p,
            None => match var("PGPORT") {
                Some(p) => parse_port(&p, "PGPORT")?,
                None => 5432,
            },
        };
        let user = self
            .user
            .or_else(|| var("PGUSER"))
            .or_else(|| var(if cfg!(windows) { "USERNAME" } else { "USER" }))
            .ok_or_else(|| invalid("no PostgreSQL user: pass { user }, or set PGUSER (or USER)"))?;
        let database = self
            .database
            .or_else(|| var("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let password = self.password.or_else(|| var("PGPASSWORD"));
        let tls = match self.tls {
            Some(t) => t,
            None => match var("PGSSLMODE") {
                Some(mode) => tls_from_sslmode(&mode)?,
                None => Tls::Disable,
            },
        };
        let pool_size = pool_size.or(self.max).unwrap_or(DEFAULT_POOL_SIZE);
        if pool_size == 0 {
            return Err(invalid("poolSize must be at least 1"));
        }
        Ok(PgConfig {
            host,
            port,
            user,
            password,
            database,
            tls,
            application_name: self
                .application_name
                .or_else(|| var("PGAPPNAME"))
                .unwrap_or_else(|| APPLICATION_NAME.to_owned()),
            options: self.options.or_else(|| var("PGOPTIONS")),
            connect_timeout: self
                .connect_timeout
                .or_else(|| {
                    // libpq: zero or a negative number waits for ever.
                    var("PGCONNECT_TIMEOUT")
                        .and_then(|v| v.trim().parse::<i64>().ok())
                        .map(|s| u64::try_from(s).ok().filter(|&s| s > 0))
                        .map(|s| s.map(Duration::from_secs))
                })
                .unwrap_or(Some(DEFAULT_CONNECT_TIMEOUT)),
            pool_size,
            idle_timeout: self.idle_timeout.unwrap_or(Some(DEFAULT_IDLE_TIMEOUT)),
            busy_poll: DEFAULT_BUSY_POLL,
        })
    }

    /// Overlays `other`'s given fields on `self` (node-postgres lets a `connectionString` win
    /// over the separate fields).
    pub fn overlay(mut self, other: PgSettings) -> PgSettings {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            host,
            port,
            user,
            password,
            database,
            tls,
            application_name,
            options,
            connect_timeout,
            max
        );
        self
    }
}

/// The process environment, for [`PgSettings::resolve`].
pub fn process_env() -> HashMap<String, String> {
    std::env::vars().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn url_fields_are_decoded() {
        let s =
            parse_url("postgres://us%40er:p%3Ass@db.example:6543/my%20db?sslmode=require").unwrap();
        assert_eq!(s.user.as_deref(), Some("us@er"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        assert_eq!(s.host.as_deref(), Some("db.example"));
        assert_eq!(s.port, Some(6543));
        assert_eq!(s.database.as_deref(), Some("my db"));
        assert_eq!(s.tls, Some(Tls::RequireUnverified));
    }

    #[test]
    fn url_variants() {
        let s = parse_url("postgresql://[::1]:5433/x").unwrap();
        assert_eq!((s.host.as_deref(), s.port), (Some("::1"), Some(5433)));
        let s = parse_url("postgres:///db?host=/var/run/postgresql").unwrap();
        assert_eq!(s.host.as_deref(), Some("/var/run/postgresql"));
        assert_eq!(s.database.as_deref(), Some("db"));
        let s = parse_url("postgres://%2Ftmp%2Fsock/db").unwrap();
        assert_eq!(s.host.as_deref(), Some("/tmp/sock"));
        let s = parse_url("postgres://h/d?ssl=true").unwrap();
        assert_eq!(s.tls, Some(Tls::Verified { ca_pem: None }));
        assert!(parse_url("mysql://h/d").is_err());
        assert!(parse_url("postgres://h:99999/d").is_err());
        assert!(parse_url("postgres://h/d?sslmode=bogus").is_err());
        assert!(parse_url("postgres://h/d?sslrootcert=/x").is_err());
    }

    #[test]
    fn given_then_env_then_defaults() {
        let e = env(&[("PGHOST", "envhost"), ("PGUSER", "envuser"), ("USER", "me")]);
        let c = PgSettings::default().resolve(&e, None).unwrap();
        assert_eq!(c.host, "envhost");
        assert_eq!(c.user, "envuser");
        assert_eq!(c.database, "envuser");
        assert_eq!(c.port, 5432);
        assert_eq!(c.tls, Tls::Disable);
        assert_eq!(c.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(c.application_name, APPLICATION_NAME);
        assert_eq!(c.connect_timeout, Some(DEFAULT_CONNECT_TIMEOUT));

        let given = PgSettings {
            host: Some("h".into()),
            database: Some("d".into()),
            max: Some(3),
            ..Default::default()
        };
        let c = given.resolve(&env(&[("USER", "me")]), None).unwrap();
        assert_eq!((c.host.as_str(), c.user.as_str()), ("h", "me"));
        assert_eq!((c.database.as_str(), c.pool_size), ("d", 3));

        let c = PgSettings::default()
            .resolve(
                &env(&[("USER", "me"), ("PGSSLMODE", "verify-full")]),
                Some(4),
            )
            .unwrap();
        assert_eq!(c.tls, Tls::Verified { ca_pem: None });
        assert_eq!((c.host.as_str(), c.pool_size), ("localhost", 4));
    }

    #[test]
    fn connect_timeout_given_then_env_then_default() {
        let me = env(&[("USER", "me")]);
        let resolve = |given: Option<Option<Duration>>, e: &HashMap<String, String>| {
            PgSettings {
                connect_timeout: given,
                ..Default::default()
            }
            .resolve(e, None)
            .unwrap()
            .connect_timeout
        };
        let ms = Duration::from_millis;
        assert_eq!(resolve(None, &me), Some(DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(resolve(Some(Some(ms(300))), &me), Some(ms(300)));
        assert_eq!(resolve(Some(None), &me), None); // 0 given: no limit
        let with_env = |v: &str| env(&[("USER", "me"), ("PGCONNECT_TIMEOUT", v)]);
        assert_eq!(resolve(None, &with_env("3")), Some(ms(3000)));
        assert_eq!(resolve(None, &with_env("0")), None);
        assert_eq!(resolve(None, &with_env("-1")), None);
        assert_eq!(
            resolve(None, &with_env("soon")),
            Some(DEFAULT_CONNECT_TIMEOUT)
        );
        assert_eq!(resolve(Some(Some(ms(300))), &with_env("0")), Some(ms(300)));
        let url = |q: &str| parse_url(&format!("postgres://h/d?connect_timeout={q}")).unwrap();
        assert_eq!(url("2").connect_timeout, Some(Some(ms(2000))));
        assert_eq!(url("0").connect_timeout, Some(None));
    }

    #[test]
    fn connection_string_wins() {
        let fields = PgSettings {
            host: Some("a".into()),
            user: Some("u".into()),
            ..Default::default()
        };
        let s = fields.overlay(parse_url("postgres://b/db").unwrap());
        assert_eq!(s.host.as_deref(), Some("b"));
        assert_eq!(s.user.as_deref(), Some("u"));
    }

    #[test]
    fn bad_settings_are_rejected() {
        let e = env(&[("USER", "me"), ("PGPORT", "x")]);
        assert!(PgSettings::default().resolve(&e, None).is_err());
        assert!(PgSettings::default()
            .resolve(&env(&[("USER", "me")]), Some(0))
            .is_err());
    }
}
