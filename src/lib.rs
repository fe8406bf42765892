//! reshuffle-datastore: a key-value datastore for Reshuffle apps and Node services.
//!
//! - [`core`]: keys, JSON values, errors, per-key FIFO locks, the executor and the [`core::Store`]
//!   that implements `get`/`set`/`update`/`remove`/`list`/`close` once over any
//!   [`core::Backend`]. No napi in it; `cargo test` covers it without Node.
//! - [`backends`]: the storage engines.
//! - `js`: the napi-rs binding, thin classes over the core.

pub mod backends;
pub mod core;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
// napi-derive registers the exports only outside `cfg(test)`, so unit-test builds see them unused.
#[cfg_attr(test, allow(dead_code))]
// The fuzz targets are executables without Node: they cannot link the N-API calls.
#[cfg(not(feature = "fuzzing"))]
mod js;
