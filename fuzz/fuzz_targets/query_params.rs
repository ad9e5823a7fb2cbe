//! The query API's range parameters (`query`, `start`, `end`, `step`, one per line) converted
//! and evaluated: no panic or overflow for any time or step (the check is
//! `query::fuzzing::check_query_params`, replayed by query's tests).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static DB: OnceLock<query::MemoryStorage> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let db = DB.get_or_init(query::fuzzing::sample_storage);
    query::fuzzing::check_query_params(data, db);
});
