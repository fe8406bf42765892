//! reshuffle-datastore: a key-value datastore for Reshuffle apps and Node services — the Node
//! binding. Everything that is not napi (the domain, the runtime, the engines) is the crate
//! `reshuffle-datastore-core` (crates/core), re-exported here under its module names; `js` is
//! the napi-rs binding, thin classes over it.

pub use reshuffle_datastore_core::{backends, core, runtime};

// napi-derive registers the exports only outside `cfg(test)`, so unit-test builds see them unused.
#[cfg_attr(test, allow(dead_code))]
mod js;
