//! The core of reshuffle-datastore, with no napi (the compiler keeps it so: this crate does not
//! depend on it; the Node binding is the crate at the workspace root):
//! - [`core`]: the domain — keys, JSON values, errors, deadlines, per-key FIFO locks, the
//!   [`core::Backend`] trait with its contract, and the [`core::Store`] that implements
//!   `get`/`set`/`update`/`remove`/`list`/`close` once over any backend;
//! - [`runtime`]: where operations run — the single-threaded executor, deadlines, socket
//!   readiness and busy polling on the thread that calls the store;
//! - [`backends`]: the storage engines (SQLite and PostgreSQL behind features of their names).
//!
//! `cargo test` covers all of it without Node.

pub mod backends;
pub mod core;
pub mod runtime;
// The properties the fuzz targets (fuzz/) check.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
