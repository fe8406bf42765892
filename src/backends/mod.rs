//! Storage engines behind [`crate::core::Backend`].

pub mod memory;
pub mod postgres;
pub mod process_lock;
pub mod sql_identifier;
