//! Where the Redis server is and how the store uses it: read from a `redis://` URL (the binding
//! turns an ioredis or node-redis client's settings into one), plus the store's options.

use std::time::Duration;

use super::tls::RedisTls;
use crate::core::{DatastoreError, Result};

/// The lease an `update` takes on its key, unless `leaseMs` says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The logical database (`SELECT`).
    pub db: u32,
    /// Put before every key (`options.prefix`).
    pub prefix: String,
    /// How long a lease lives unless renewed (`options.leaseMs`).
    pub lease: Duration,
    /// `Some` for TLS (`rediss://`).
    pub tls: Option<RedisTls>,
    /// The server is a node of a Redis Cluster (`options.cluster`): keys are sent to the node
    /// serving their hash slot (`slots.rs`).
    pub cluster: bool,
}

fn invalid(message: impl Into<String>) -> DatastoreError {
    DatastoreError::invalid_argument(message)
}

fn percent_decode(s: &str, what: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let b = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    invalid(format!("the Redis URL has a bad %-escape in its {what}"))
                })?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(format!("the Redis URL's {what} is not UTF-8")))
}

/// Reads `redis://[[username]:password@]host[:port][/db]`, or `rediss://…` for TLS (the
/// server's certificate checked against Mozilla's roots).
pub fn parse_url(url: &str) -> Result<RedisConfig> {
    let lower = url.get(..9).unwrap_or(url).to_ascii_lowercase();
    let (rest, tls) = if lower.starts_with("rediss://") {
        (&url[9..], Some(RedisTls { ca_pem: None }))
    } else if lower.starts_with("redis://") {
        (&url[8..], None)
    } else {
        return Err(invalid(
            "RedisStoreAdapter(target): the URL must start with redis:// or rediss://",
        ));
    };
    if rest.contains(['?', '#']) {
        return Err(invalid(
            "RedisStoreAdapter(target): the Redis URL has query parameters or a fragment, \
             which are not supported",
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (
                Some(percent_decode(user, "user name")?).filter(|s| !s.is_empty()),
                Some(percent_decode(pass, "password")?),
            ),
            None => (
                Some(percent_decode(u, "user name")?).filter(|s| !s.is_empty()),
                None,
            ),
        },
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid("RedisStoreAdapter(target): the URL's IPv6 host lacks ']'"))?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let host = if host.is_empty() {
        "127.0.0.1".to_owned()
    } else {
        percent_decode(&host, "host")?
    };
    let port = match port {
        None | Some("") => 6379,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| invalid(format!("RedisStoreAdapter(target): bad port {p:?}")))?,
    };
    let db = match path {
        "" => 0,
        p => p.parse::<u32>().map_err(|_| {
            invalid(format!(
                "RedisStoreAdapter(target): the database in the URL must be a number, got {p:?}"
            ))
        })?,
    };
    Ok(RedisConfig {
        host,
        port,
        username,
        password,
        db,
        prefix: String::new(),
        lease: DEFAULT_LEASE,
        tls,
        cluster: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_urls() {
        let c = parse_url("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("127.0.0.1", 6380, 2));
        assert_eq!((c.username, c.password), (None, None));
        let c = parse_url("redis://al%40x:p%3As@cache").unwrap();
        assert_eq!(c.username.as_deref(), Some("al@x"));
        assert_eq!(c.password.as_deref(), Some("p:s"));
        assert_eq!((c.host.as_str(), c.port, c.db), ("cache", 6379, 0));
        let c = parse_url("redis://:secret@[::1]:7000").unwrap();
        assert_eq!((c.username, c.password.as_deref()), (None, Some("secret")));
        assert_eq!((c.host.as_str(), c.port), ("::1", 7000));
        assert_eq!(parse_url("REDIS://").unwrap().host, "127.0.0.1");
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        assert!(parse_url("rediss://x").unwrap().tls.is_some());
        assert!(parse_url("redis://x").unwrap().tls.is_none());
        for bad in [
            "http://x",
            "redis://x:0",
            "redis://x:99999",
            "redis://x/db",
            "redis://x?timeout=1",
            "redis://%zz@x",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.code(), "ERR_DATASTORE_INVALID_ARGUMENT", "{bad}");
        }
    }
}
