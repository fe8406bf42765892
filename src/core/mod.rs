//! The datastore core. It knows nothing of napi: keys, JSON text, errors, the per-key lock
//! table, the executor that runs operations, the [`backend::Backend`] trait and the [`store::Store`]
//! that implements every operation once over it.

pub mod backend;
pub mod busy_poll;
pub mod deadline;
pub mod error;
pub mod executor;
pub mod key;
pub mod lock_table;
pub mod reactor;
pub mod store;
pub mod timer;
pub mod updater;

#[cfg(test)]
mod reentry_tests;
#[cfg(test)]
mod store_tests;

pub use backend::{Backend, Change, HeldKey, Write};
pub use deadline::Deadline;
pub use error::{DatastoreError, Result};
pub use store::{Store, StoreOptions};
pub use updater::{UpdateError, Updater};
