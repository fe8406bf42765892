//! Checks on JSON text that may not be the store's own: a file's records as it loads them, and
//! the values of a page of entries before the binding splices them into one JSON text (a
//! table or Redis database may hold what other programs wrote). Values this process wrote
//! are `JSON.stringify`'s output.

use serde_json::value::RawValue;

/// Whether `text` is exactly one JSON value (whitespace around it allowed). Values nested
/// deeper than serde_json's default limit are checked on a thread with a large stack.
pub fn is_json(text: &str) -> bool {
    /// `Some(true)` for one value, `None` where the nesting limit was reached.
    fn one_value(text: &str, unbounded: bool) -> Option<bool> {
        let mut de = serde_json::Deserializer::from_str(text);
        if unbounded {
            de.disable_recursion_limit();
        }
        let mut values = de.into_iter::<&RawValue>();
        match (values.next(), values.next()) {
            (Some(Ok(_)), None) => Some(true),
            (Some(Err(e)), _) if e.to_string().starts_with("recursion limit exceeded") => None,
            _ => Some(false),
        }
    }
    one_value(text, false)
        .or_else(|| on_big_stack(|| one_value(text, true) == Some(true)))
        .unwrap_or(false)
}

/// Stacks to try for parsing deeply nested JSON: serde_json recurses once per level.
const PARSE_STACKS: [usize; 2] = [256 << 20, 16 << 20];

/// Runs `f` on a thread with a large stack (reserved, not committed), so deeply nested values
/// cannot overflow the caller's stack; where no such thread can be made, on this one. `None`
/// if `f` panicked.
pub fn on_big_stack<T: Send>(f: impl Fn() -> T + Send + Sync) -> Option<T> {
    for stack in PARSE_STACKS {
        let done = std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(stack)
                .spawn_scoped(s, &f)
                .ok()
                .map(|handle| handle.join())
        });
        match done {
            Some(result) => return result.ok(),
            None => continue,
        }
    }
    Some(f())
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn one_value_only() {
        for ok in ["1", " {\"a\":[1,2]} ", "\"\\ud800\"", "1e400", "null"] {
            assert!(is_json(ok), "{ok}");
        }
        // The second is what would splice a made-up entry into a page of entries.
        for bad in ["", "1 2", "1],[\"x\",2", "{oops", "undefined", "'a'"] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_json() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(is_json(&deep));
        assert!(!is_json(&deep[1..]));
    }
}
