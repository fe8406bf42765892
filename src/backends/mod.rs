//! Storage engines behind [`crate::core::Backend`].

pub mod memory;
