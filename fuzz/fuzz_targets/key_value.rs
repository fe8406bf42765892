//! Key validation and record encoding of JSON text: see
//! `reshuffle_datastore_core::fuzzing::check_key_and_value` (input: key, 0xFF, value).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reshuffle_datastore_core::fuzzing::check_key_and_value(data);
});
