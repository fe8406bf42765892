//! reshuffle-datastore: a key-value datastore for Reshuffle apps and Node services.
//!
//! - [`core`]: the domain — keys, JSON values, errors, deadlines, per-key FIFO locks, the
//!   [`core::Backend`] trait with its contract, and the [`core::Store`] that implements
//!   `get`/`set`/`update`/`remove`/`list`/`close` once over any backend.
//! - [`runtime`]: where operations run — the single-threaded executor, deadlines, socket
//!   readiness and busy polling on the JS thread.
//! - [`backends`]: the storage engines.
//! - `js`: the napi-rs binding, thin classes over the core.
//!
//! Only `js` knows napi; `cargo test` covers the rest without Node.

pub mod backends;
pub mod core;
pub mod runtime;
// The properties the fuzz targets check; fuzz/ compiles this file with format.rs and key.rs.
#[cfg(test)]
mod fuzzing;
// napi-derive registers the exports only outside `cfg(test)`, so unit-test builds see them unused.
#[cfg_attr(test, allow(dead_code))]
mod js;
