//! The package's own sources that the fuzz targets exercise, compiled here without the rest of
//! the package (N-API, SQLite, PostgreSQL, TLS), so the fuzz build stays small. The re-exports
//! mirror the package's module paths, so `fuzzing.rs` compiles unchanged.

#[path = "../../src/core/error.rs"]
pub mod error;
#[path = "../../src/backends/file/format.rs"]
pub mod format;
#[path = "../../src/fuzzing.rs"]
pub mod fuzzing;
#[path = "../../src/core/key.rs"]
pub mod key;

pub mod core {
    pub use crate::{error, key};
}

pub mod backends {
    pub mod file {
        pub use crate::format;
    }
}
