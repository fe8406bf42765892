//! The Redis engine of `RedisStoreAdapter` (docs/redis.md): values as Redis strings of JSON
//! text, keys locked across servers with leases checked by the final write, expiry by Redis
//! itself. It speaks RESP over a socket of the JS thread's reactor (`resp.rs`, `conn.rs`), so
//! a command costs no thread hop.

mod backend;
mod client;
pub mod config;
mod conn;
mod keys;
mod lease;
mod resp;
mod scripts;
mod slots;
pub mod tls;

pub use backend::{RedisBackend, RedisHeld};
pub use config::{parse_url, RedisConfig, DEFAULT_LEASE};
pub use tls::RedisTls;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::with_test_prefix;
