//! The store-file reader on arbitrary bytes: see `reshuffle_datastore_core::fuzzing::check_store_file`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reshuffle_datastore_core::fuzzing::check_store_file(data);
});
