//! cargo-fuzz target: `collectors::fuzzing::dq` (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| collectors::fuzzing::dq(data));
