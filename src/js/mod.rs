//! The napi-rs binding: thin JS classes over [`crate::core`]. Nothing here decides behaviour;
//! it converts arguments, runs core operations and settles promises.

mod adapter;
mod error;
mod errors_api;
mod event_loop;
mod file;
mod memory;
mod methods;
mod pg_target;
mod raw;
mod runtime;
mod sql;
mod updater;
