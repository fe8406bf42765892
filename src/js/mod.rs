//! The napi-rs binding: thin JS classes over [`crate::core`]. Nothing here decides behaviour;
//! it converts arguments, runs core operations and settles promises.

mod adapter;
mod error;
mod file;
mod memory;
mod persistent_store;
mod raw;
mod runtime;
mod updater;
