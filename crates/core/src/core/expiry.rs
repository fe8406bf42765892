//! Expiry of keys written with a time to live (`set(key, value, { ttl })`): from the expiry on,
//! a key reads as missing everywhere (`get`, lists, an updater's view), and the engine purges it
//! in the background. Engines on this machine count expiries on its wall clock, in
//! milliseconds since the Unix epoch, so every process sharing a store agrees; a database
//! server counts on its own clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When a value written now with `ttl` expires, in milliseconds since the Unix epoch (a
/// fraction of a millisecond counts as one).
pub fn expires_at(ttl: Duration) -> u64 {
    let ms = u64::try_from(ttl.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
    now_ms().saturating_add(ms)
}

/// Whether a value expiring at `at` (ms since the epoch) has expired at `now`.
pub fn is_expired(at: u64, now: u64) -> bool {
    at <= now
}

/// The instant of `at` (ms since the epoch), for scheduling a purge.
pub fn system_time(at: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_round_up_and_never_overflow() {
        let before = now_ms();
        let at = expires_at(Duration::from_micros(1500));
        assert!(at >= before + 2);
        assert_eq!(expires_at(Duration::MAX), u64::MAX);
        assert!(is_expired(10, 10));
        assert!(!is_expired(11, 10));
    }
}
