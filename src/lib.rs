//! reshuffle-datastore: a key-value datastore for Reshuffle apps and Node services.
//!
//! - [`core`]: keys, JSON values, errors, per-key FIFO locks, the executor and the [`core::Store`]
//!   that implements `get`/`set`/`update`/`remove`/`list`/`close` once over any
//!   [`core::Backend`]. No napi in it; `cargo test` covers it without Node.
//! - [`backends`]: the storage engines.
//! - `js`: the napi-rs binding, thin classes over the core.

pub mod backends;
pub mod core;
// The properties the fuzz targets check; fuzz/ compiles this file with format.rs and key.rs.
#[cfg(test)]
mod fuzzing;
// napi-derive registers the exports only outside `cfg(test)`, so unit-test builds see them unused.
#[cfg_attr(test, allow(dead_code))]
mod js;
