//! The SQL text of one table's statements. Names are validated identifiers quoted with
//! backticks, never pasted raw. Keys compare as bytes in tables this package creates
//! (`VARBINARY`); in reshuffle's table they compare by the column's collation, so the exact
//! key is checked again on every row read (see docs/mysql.md).

/// Milliseconds since the epoch by the server's clock.
pub const NOW_MS: &str = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)";

/// A row that has not expired.
pub fn live() -> String {
    format!("(expires_at IS NULL OR expires_at > {NOW_MS})")
}

/// Bytes of a statement besides its key and value.
const PACKET_SLACK: usize = 1024;

/// What the server is, for the statements that differ between MySQL and MariaDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    pub mariadb: bool,
    /// MySQL 8.0.19 or later: `INSERT … AS new` instead of the deprecated `VALUES()`.
    pub row_alias: bool,
    /// `@@max_allowed_packet`: a statement longer than this ends the session.
    pub max_packet: usize,
}

impl Server {
    /// From `SELECT VERSION()`, e.g. `10.11.6-MariaDB-0+deb12u1` or `8.0.36`.
    pub fn from_version(version: &str) -> Server {
        let mariadb = version.to_ascii_lowercase().contains("mariadb");
        let nums: Vec<u32> = version
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let v = (
            nums.first().copied().unwrap_or(0),
            nums.get(1).copied().unwrap_or(0),
            nums.get(2).copied().unwrap_or(0),
        );
        Server {
            mariadb,
            row_alias: !mariadb && v >= (8, 0, 19),
            max_packet: usize::MAX,
        }
    }
}

/// The statements of one table.
#[derive(Debug, Clone)]
pub struct Statements {
    /// `(id, value)` of a live row: `?` id.
    pub get: String,
    /// Live ids with `?` as a `LIKE` pattern (prefix escaped).
    pub list: String,
    /// Upsert with no expiry: `?` id, `?` value.
    pub put: String,
    /// Upsert expiring: `?` id, `?` value, `?` milliseconds to live.
    pub put_for: String,
    pub delete: String,
    /// A page of `(id, value)`: `?` pattern, `?` limit.
    pub page_first: String,
    /// A page after an id: `?` pattern, `?` after, `?` limit.
    pub page_after: String,
    pub purge: String,
    pub next_expiry: String,
    /// The table, quoted.
    pub table: String,
    /// The key column compares bytes (`VARBINARY`).
    binary_ids: bool,
    server: Server,
}

impl Statements {
    pub fn new(table: &str, binary_ids: bool, server: Server) -> Self {
        let t = table;
        let live = live();
        // In code point order (= UTF-8 byte order) whatever the column's collation.
        let col = if binary_ids {
            "id"
        } else {
            "CAST(id AS BINARY)"
        };
        let s = Statements {
            get: format!("SELECT id, value FROM {t} WHERE id = ? AND {live}"),
            list: format!(
                "SELECT id FROM {t} WHERE {col} LIKE ? ESCAPE '!' AND value IS NOT NULL AND {live}"
            ),
            put: String::new(),
            put_for: String::new(),
            delete: format!("DELETE FROM {t} WHERE id = ?"),
            page_first: format!(
                "SELECT id, value FROM {t} WHERE {col} LIKE ? ESCAPE '!' AND value IS NOT NULL \
                 AND {live} ORDER BY {col} LIMIT ?"
            ),
            page_after: format!(
                "SELECT id, value FROM {t} WHERE {col} LIKE ? ESCAPE '!' AND {col} > CAST(? AS BINARY) \
                 AND value IS NOT NULL AND {live} ORDER BY {col} LIMIT ?"
            ),
            purge: format!("DELETE FROM {t} WHERE expires_at <= {NOW_MS} LIMIT 10000"),
            next_expiry: format!("SELECT MIN(expires_at) FROM {t} WHERE expires_at IS NOT NULL"),
            table: t.to_owned(),
            binary_ids,
            server,
        };
        Statements {
            put: s.upsert(1, false),
            put_for: s.upsert(1, true),
            ..s
        }
    }

    /// The upsert of one row when the key's lock is free, taking it (it stays held: release it
    /// after): `?` id, `?` value, [`?` milliseconds to live,] `?` lock name. Affects no row
    /// when another session holds the lock (counted with `CLIENT_FOUND_ROWS`, so an unchanged
    /// row counts too). MySQL ≥ 8.0.19 deprecates `VALUES()` and allows no row alias on
    /// `INSERT … SELECT`, so there the values come from a derived table whose columns the
    /// update names; elsewhere (MariaDB, older MySQL) they are selected `FROM DUAL` and named
    /// with `VALUES()`, which spares the server the derived table (docs/mysql.md measures it).
    pub fn put_if_free(&self, ttl: bool) -> String {
        let expires = if ttl {
            format!("{NOW_MS} + ?")
        } else {
            "NULL".to_owned()
        };
        let t = &self.table;
        if self.server.row_alias {
            format!(
                "INSERT INTO {t} (id, value, expires_at) \
                 SELECT new.id, new.value, new.expires_at \
                 FROM (SELECT ? AS id, ? AS value, {expires} AS expires_at) AS new \
                 WHERE GET_LOCK(?, 0) = 1 \
                 ON DUPLICATE KEY UPDATE value = new.value, expires_at = new.expires_at"
            )
        } else {
            format!(
                "INSERT INTO {t} (id, value, expires_at) \
                 SELECT ?, ?, {expires} FROM DUAL WHERE GET_LOCK(?, 0) = 1 \
                 ON DUPLICATE KEY UPDATE value = VALUES(value), expires_at = VALUES(expires_at)"
            )
        }
    }

    /// An upsert of `rows` rows, each `(?, ?)` or, with `ttl`, `(?, ?, ?)` (milliseconds).
    pub fn upsert(&self, rows: usize, ttl: bool) -> String {
        let row = if ttl {
            format!("(?, ?, {NOW_MS} + ?)")
        } else {
            "(?, ?, NULL)".to_owned()
        };
        let values = vec![row; rows.max(1)].join(", ");
        let t = &self.table;
        if self.server.row_alias {
            format!(
                "INSERT INTO {t} (id, value, expires_at) VALUES {values} AS new \
                 ON DUPLICATE KEY UPDATE value = new.value, expires_at = new.expires_at"
            )
        } else {
            format!(
                "INSERT INTO {t} (id, value, expires_at) VALUES {values} \
                 ON DUPLICATE KEY UPDATE value = VALUES(value), expires_at = VALUES(expires_at)"
            )
        }
    }

    /// Two statements in one round trip (text protocol; the server runs them in order, so the
    /// read sees every write committed before the lock was taken): `GET_LOCK(name, 0)`, then
    /// `(id, value)` of `key`'s live row. Both go as literals: the lock name is `rds:` and
    /// hex digits, the key a hex literal (no quoting to get wrong).
    pub fn lock_and_get(&self, name: &str, key: &str) -> String {
        let mut hex = String::with_capacity(key.len() * 2);
        for b in key.bytes() {
            hex.push_str(&format!("{b:02x}"));
        }
        let id = if self.binary_ids {
            format!("X'{hex}'")
        } else {
            format!("CONVERT(X'{hex}' USING utf8mb4)")
        };
        debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':'));
        format!(
            "SELECT GET_LOCK('{name}', 0); SELECT id, value FROM {} WHERE id = {id} AND {}",
            self.table,
            live()
        )
    }

    /// Whether a row read back by key is the row written by that key: keys compare bytes. In
    /// reshuffle's table (a case-insensitive `VARCHAR` key) a write of `A` may land on the row
    /// of `a`, which a read of `A` then does not return.
    pub fn exact_keys(&self) -> bool {
        self.binary_ids
    }

    /// Refuses a write of `key` whose statement would not fit the server's packet limit (the
    /// server would end the session): the caller's error, with the fix.
    pub fn check_size(&self, key: &str, value: &str) -> crate::core::Result<()> {
        if key.len() + value.len() + PACKET_SLACK <= self.server.max_packet {
            return Ok(());
        }
        Err(crate::core::DatastoreError::invalid_value(
            key,
            format!(
                "MySQL table {}: the value ({} bytes) is larger than the server's \
                 max_allowed_packet ({} bytes); nothing was written. Raise it: SET GLOBAL \
                 max_allowed_packet = 268435456 (and in the server's configuration)",
                self.table,
                value.len(),
                self.server.max_packet
            ),
        ))
    }

    /// The most bytes of keys and values one multi-row statement carries.
    pub fn chunk_bytes(&self, wanted: usize) -> usize {
        wanted.min(self.server.max_packet / 2)
    }

    /// Whether the server is MariaDB (fractions of a second in lock waits).
    pub fn mariadb(&self) -> bool {
        self.server.mariadb
    }

    /// `SELECT id, value` of the live rows among `n` ids.
    pub fn get_many(&self, n: usize) -> String {
        let marks = vec!["?"; n.max(1)].join(", ");
        format!(
            "SELECT id, value FROM {} WHERE id IN ({marks}) AND {}",
            self.table,
            live()
        )
    }

    /// Deletes `n` ids.
    pub fn delete_many(&self, n: usize) -> String {
        let marks = vec!["?"; n.max(1)].join(", ");
        format!("DELETE FROM {} WHERE id IN ({marks})", self.table)
    }
}

/// `prefix` as a `LIKE` pattern matching the strings that start with it (`!` escapes).
pub fn prefix_pattern(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(Server::from_version("10.11.6-MariaDB-0+deb12u1").mariadb);
        assert!(!Server::from_version("10.11.6-MariaDB").row_alias);
        assert!(Server::from_version("8.0.36").row_alias);
        assert!(!Server::from_version("8.0.18").row_alias);
        assert!(!Server::from_version("5.7.44-log").row_alias);
    }

    #[test]
    fn patterns() {
        assert_eq!(prefix_pattern("a_b%c!"), "a!_b!%c!!%");
        assert_eq!(prefix_pattern(""), "%");
    }
}
