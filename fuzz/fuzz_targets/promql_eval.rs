//! PromQL text -> parse -> instant and range evaluation over a small fixed data set: no panic
//! (the check is `query::fuzzing::check_query`, replayed by query's tests).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static DB: OnceLock<query::MemoryStorage> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let db = DB.get_or_init(query::fuzzing::sample_storage);
    query::fuzzing::check_query(data, db);
});
