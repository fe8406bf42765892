//! Storage engines behind [`crate::core::Backend`].

#[cfg(test)]
mod contract_tests;
pub mod file;
pub mod lock_hash;
pub mod memory;
pub mod postgres;
pub mod process_lock;
pub mod sql_identifier;
pub mod sqlite;
