//! The MySQL/MariaDB engine of `MySQLStoreAdapter` (docs/mysql.md): reshuffle's table layout
//! (plus `expires_at`), keys locked across servers with `GET_LOCK`, statements run by
//! mysql_async on a runtime thread of its own.

mod backend;
pub mod config;
mod error;
mod locked;
mod parked;
mod runtime;
mod shared;
mod sql;
mod table;

pub use backend::{MyBackend, MyHeld};
pub use config::{from_env, MyConfig, MySettings, MyTls};
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::with_test_table;
