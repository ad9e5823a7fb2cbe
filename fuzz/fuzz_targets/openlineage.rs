//! cargo-fuzz target: `collectors::fuzzing::openlineage` (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| collectors::fuzzing::openlineage(data));
