//! The caller-supplied function of `update`, seen from the core.

use std::future::Future;

use super::error::DatastoreError;

/// Why an `update` failed: the store, or the updater itself (whose error passes through).
#[derive(Debug)]
pub enum UpdateError<E> {
    Store(DatastoreError),
    Updater(E),
}

impl<E> From<DatastoreError> for UpdateError<E> {
    fn from(e: DatastoreError) -> Self {
        UpdateError::Store(e)
    }
}

/// Computes a key's new value from its current one. Called exactly once per `update`, while
/// the key is locked in this process and, for shared backends, in every other one.
pub trait Updater: 'static {
    /// The updater's own failure (for JS: the thrown value, kept as is).
    type Error;

    /// `current` is the stored JSON text (`None` when missing). Resolves to the new JSON text,
    /// or `None` for "no change". A result that is not JSON resolves to
    /// `Err(UpdateError::Store(InvalidValue))`.
    fn call(
        self,
        current: Option<&str>,
    ) -> impl Future<Output = Result<Option<String>, UpdateError<Self::Error>>> + 'static;
}
