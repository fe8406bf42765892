//! Table names for the SQL backends (README, Moving from reshuffle's adapters): validated, then quoted; never pasted raw.

use crate::core::{DatastoreError, Result};

/// A validated `table` or `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub table: String,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == '$' || c.is_ascii_alphanumeric())
        && s.len() <= 63
}

impl TableName {
    /// Accepts an SQL identifier (letters, digits, `_`, `$`; not starting with a digit; at most
    /// 63 bytes), optionally qualified as `schema.table`.
    pub fn parse(name: &str) -> Result<Self> {
        let parts: Vec<&str> = name.split('.').collect();
        let ok = match parts.as_slice() {
            [t] => is_identifier(t),
            [s, t] => is_identifier(s) && is_identifier(t),
            _ => false,
        };
        if !ok {
            return Err(DatastoreError::invalid_argument(format!(
                "table name {name:?} is not an SQL identifier (letters, digits, _ and $, \
                 not starting with a digit, at most 63 characters), optionally as schema.table"
            )));
        }
        Ok(match parts.as_slice() {
            [s, t] => TableName {
                schema: Some((*s).to_owned()),
                table: (*t).to_owned(),
            },
            _ => TableName {
                schema: None,
                table: name.to_owned(),
            },
        })
    }

    /// The name quoted for SQL: `"table"` or `"schema"."table"`. Identifiers hold no quotes
    /// (checked by `parse`), so quoting cannot be escaped. Unquoted names fold to lower case
    /// in PostgreSQL; reshuffle pastes names unquoted, so a name is quoted as it folds there.
    pub fn quoted_folded(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.to_ascii_lowercase());
        match &self.schema {
            Some(s) => format!("{}.{}", q(s), q(&self.table)),
            None => q(&self.table),
        }
    }

    /// The name quoted exactly as written (SQLite compares identifiers case-insensitively).
    pub fn quoted(&self) -> String {
        let q = |s: &str| format!("\"{s}\"");
        match &self.schema {
            Some(s) => format!("{}.{}", q(s), q(&self.table)),
            None => q(&self.table),
        }
    }

    /// As written, for messages and lock names.
    pub fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.table),
            None => self.table.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        assert_eq!(
            TableName::parse("reshuffledb").unwrap().quoted(),
            "\"reshuffledb\""
        );
        let t = TableName::parse("App.Store_1").unwrap();
        assert_eq!(t.quoted(), "\"App\".\"Store_1\"");
        assert_eq!(t.quoted_folded(), "\"app\".\"store_1\"");
    }

    #[test]
    fn injection_is_rejected() {
        for bad in [
            "x; DROP TABLE victim; --",
            "",
            "1abc",
            "a.b.c",
            "a\"b",
            "a b",
            "é",
        ] {
            assert_eq!(
                TableName::parse(bad).unwrap_err().code(),
                "ERR_DATASTORE_INVALID_ARGUMENT",
                "{bad}"
            );
        }
    }
}
