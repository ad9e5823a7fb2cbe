//! cargo-fuzz target: `collectors::fuzzing::alerts` (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| collectors::fuzzing::alerts(data));
