//! The Lua scripts that make leases safe: each runs atomically on the server, so checking a
//! lease's token and acting on it is one step that no other client can split.
//!
//! Writes are encoded as `op, value, ms`: `op` is `put` (no expiry), `px` (expires after `ms`
//! milliseconds), `del`, or `keep` (nothing to write).

/// KEYS: lease, data. ARGV: token, lease ms, `1` to read the value.
/// `{1, value}` when the lease was free and is now ours; `{0, ms left}` when another holds it.
pub const ACQUIRE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  if ARGV[3] == '1' then return {1, redis.call('GET', KEYS[2])} end
  return {1, false}
end
return {0, redis.call('PTTL', KEYS[1])}
"#;

/// KEYS: lease. ARGV: token, lease ms. 1 when the lease was still ours and is extended.
pub const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// KEYS: lease. ARGV: token. Deletes the lease if it is still ours.
pub const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The write of one key: `write(data, op, value, ms)`.
const WRITE: &str = r#"
local function write(key, op, value, ms)
  if op == 'put' then redis.call('SET', key, value)
  elseif op == 'px' then redis.call('SET', key, value, 'PX', ms)
  elseif op == 'del' then redis.call('DEL', key) end
end
"#;

use std::sync::LazyLock;

/// KEYS: data, lease. ARGV: token, op, value, ms. 1: written and the lease released; 0: the
/// lease is no longer ours, nothing written.
pub static FINISH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{WRITE}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
write(KEYS[1], ARGV[2], ARGV[3], ARGV[4])
redis.call('DEL', KEYS[2])
return 1"
    )
});

/// KEYS: data, lease. ARGV: op, value, ms. 1: written (nobody held a lease); 0: a lease is
/// held, nothing written.
pub static WRITE_IF_FREE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{WRITE}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
write(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1"
    )
});

/// KEYS: data1, lease1, data2, lease2, … ARGV: per key token, op, value, ms. 1: every lease
/// was ours, all written and released; 0: some lease was lost, nothing written.
pub static FINISH_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{WRITE}
local n = #KEYS / 2
for i = 1, n do
  if redis.call('GET', KEYS[2 * i]) ~= ARGV[4 * i - 3] then return 0 end
end
for i = 1, n do
  write(KEYS[2 * i - 1], ARGV[4 * i - 2], ARGV[4 * i - 1], ARGV[4 * i])
  redis.call('DEL', KEYS[2 * i])
end
return 1"
    )
});
