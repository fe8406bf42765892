//! [`KeyList`]: the keys of a `list()`, in order, gathered without an allocation per key.

/// The separator of the joined form: a character no key of a [`KeyList::Joined`] contains.
pub const SEPARATOR: char = '\0';

/// Keys in the order they were pushed, as every engine's `Backend::list_keys` returns them.
/// An engine that reads keys one at a time from borrowed memory (a SQLite row, the memory
/// engine's map) pushes them: a list of 10,000 keys as 10,000 `String`s spent a third of its
/// time in malloc and free (measured on SQLite). Network engines collect their drivers' keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyList {
    /// The keys joined by [`SEPARATOR`] (nothing after the last), `count` of them; no key
    /// contains the separator. The binding hands this text to JS as it is.
    Joined { text: String, count: usize },
    /// Once a key contains the separator: each key on its own.
    Separate(Vec<String>),
}

impl Default for KeyList {
    fn default() -> Self {
        KeyList::Joined {
            text: String::new(),
            count: 0,
        }
    }
}

impl KeyList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, key: &str) {
        match self {
            KeyList::Joined { text, count } if !key.contains(SEPARATOR) => {
                if *count > 0 {
                    text.push(SEPARATOR);
                }
                text.push_str(key);
                *count += 1;
            }
            KeyList::Joined { .. } => {
                let mut keys = self.to_vec();
                keys.push(key.to_owned());
                *self = KeyList::Separate(keys);
            }
            KeyList::Separate(keys) => keys.push(key.to_owned()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            KeyList::Joined { count, .. } => *count,
            KeyList::Separate(keys) => keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each key as a `String`.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            KeyList::Joined { count: 0, .. } => Vec::new(),
            KeyList::Joined { text, .. } => text.split(SEPARATOR).map(str::to_owned).collect(),
            KeyList::Separate(keys) => keys.clone(),
        }
    }
}

impl<S: AsRef<str>> FromIterator<S> for KeyList {
    fn from_iter<I: IntoIterator<Item = S>>(keys: I) -> Self {
        let mut list = KeyList::new();
        for key in keys {
            list.push(key.as_ref());
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_keys_until_one_holds_the_separator() {
        let empty = KeyList::new();
        assert!(empty.is_empty());
        assert_eq!(empty.to_vec(), Vec::<String>::new());

        let one_empty_text: KeyList = [""].into_iter().collect();
        assert_eq!(
            one_empty_text.len(),
            1,
            "one key, even if its text were empty"
        );
        assert_eq!(one_empty_text.to_vec(), [""]);

        let joined: KeyList = ["a", "b/c", "é"].into_iter().collect();
        assert_eq!(
            joined,
            KeyList::Joined {
                text: "a\0b/c\0é".into(),
                count: 3
            }
        );
        assert_eq!(joined.to_vec(), ["a", "b/c", "é"]);

        let mixed: KeyList = ["a", "nul\0byte", "z"].into_iter().collect();
        assert_eq!(
            mixed,
            KeyList::Separate(vec!["a".into(), "nul\0byte".into(), "z".into()])
        );
        assert_eq!(mixed.len(), 3);
    }
}
