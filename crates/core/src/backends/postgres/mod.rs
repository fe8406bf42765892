//! The PostgreSQL engine of `SQLStoreAdapter` (docs/postgres.md): reshuffle's table layout, keys
//! locked across servers with advisory locks, connections driven by tokio-postgres on the JS
//! thread (sockets watched by the reactor in Node's event loop). Design notes: docs/postgres.md.

mod backend;
pub mod config;
mod error;
mod keys;
mod lock_room;
mod pool;
mod runtime;
mod socket;
mod tls;

pub use backend::{PgBackend, PgHeld};
pub use config::{parse_url, process_env, PasswordSource, PgConfig, PgSettings, Tls};
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::with_test_table;
