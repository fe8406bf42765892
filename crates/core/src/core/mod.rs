//! The datastore's domain. It knows nothing of napi, nor where operations run (that is
//! `runtime`): keys, JSON text, errors, deadlines, the per-key lock table, the
//! [`backend::Backend`] trait with its contract, the updater, and the [`store::Store`] that
//! implements every operation once over any backend.

pub mod backend;
pub mod deadline;
pub mod error;
pub mod expiry;
pub mod json;
pub mod key;
pub mod key_list;
pub mod lock_table;
pub mod store;
pub mod updater;

#[cfg(test)]
mod reentry_tests;
#[cfg(test)]
mod store_tests;

pub use backend::{Backend, Change, HeldKey, LargeText, StoredText, Write};
pub use deadline::Deadline;
pub use error::{DatastoreError, Result};
pub use key_list::KeyList;
pub use store::{Store, StoreOptions};
pub use updater::{UpdateError, Updater};
