//! cargo-fuzz target: `collectors::fuzzing::remote_write` (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| collectors::fuzzing::remote_write(data));
