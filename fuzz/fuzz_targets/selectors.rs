//! Series selectors as `/api/v1/series?match[]=` and PromQL take them: no panic, accepted
//! selectors print back to themselves, matcher limits hold (the check is
//! `query::fuzzing::check_selector`, replayed by query's tests).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    query::fuzzing::check_selector(data);
});
