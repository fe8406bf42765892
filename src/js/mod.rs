//! The napi-rs binding: thin JS classes over [`crate::core`]. Nothing here decides behaviour;
//! it converts arguments, runs core operations and settles promises.

mod adapter;
mod boundary;
mod error;
mod event_loop;
mod external_string;
mod file;
mod memory;
mod methods;
mod mysql;
mod mysql_target;
mod options;
mod pg_password;
mod pg_target;
mod promise;
mod raw;
mod redis;
mod runtime;
mod sql;
mod teardown;
mod updater;
