//! Storage engines behind [`crate::core::Backend`].

#[cfg(test)]
mod contract_tests;
pub mod file;
pub mod lock_hash;
pub mod memory;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod process_lock;
pub mod sql_identifier;
#[cfg(feature = "sqlite")]
pub mod sqlite;
