//! Key rules (README, Semantics: keys): a non-empty string of at most 2,048 UTF-8 bytes, any characters.

use super::error::{DatastoreError, Result};

/// The longest key, in UTF-8 bytes: safely under PostgreSQL's index-entry limit.
pub const MAX_KEY_BYTES: usize = 2048;

/// Checks a key that is already a string.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(DatastoreError::InvalidKey {
            reason: "a key must be a non-empty string, got ''".into(),
        });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(DatastoreError::InvalidKey {
            reason: format!(
                "a key is at most {MAX_KEY_BYTES} UTF-8 bytes, got {} bytes (starting {:?})",
                key.len(),
                key.chars().take(32).collect::<String>()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_characters() {
        for k in ["a", "quo'te\"", "%_/", "emoji 🎉", "nul\0byte"] {
            validate_key(k).unwrap();
        }
        validate_key(&"x".repeat(MAX_KEY_BYTES)).unwrap();
    }

    #[test]
    fn rejects_empty_and_long() {
        assert_eq!(
            validate_key("").unwrap_err().code(),
            "ERR_DATASTORE_INVALID_KEY"
        );
        let long = "é".repeat(MAX_KEY_BYTES / 2 + 1);
        assert_eq!(
            validate_key(&long).unwrap_err().code(),
            "ERR_DATASTORE_INVALID_KEY"
        );
    }
}
