//! Storage engines behind [`crate::core::Backend`].

#[cfg(test)]
mod contract_tests;
pub mod file;
pub mod lock_hash;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub mod loop_socket;
pub mod memory;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod process_lock;
#[cfg(feature = "redis")]
pub mod redis;
pub mod sql_identifier;
#[cfg(feature = "sqlite")]
pub mod sqlite;
