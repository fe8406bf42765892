//! The napi-rs binding: thin JS classes over [`crate::core`]. Nothing here decides behaviour;
//! it converts arguments, runs core operations and settles promises.

mod adapter;
mod error;
mod memory;
mod persistent_store;
mod pg_target;
mod postgres;
mod raw;
mod runtime;
mod updater;
