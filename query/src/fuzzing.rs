//! What the fuzz target `promql_eval` checks, kept here so the normal test run replays every
//! input fuzzing found (`tests/fuzz_regressions.rs`): any text that parses as PromQL evaluates,
//! as an instant and as a range query over a small fixed data set, to a value or an error —
//! never a panic, and within the engine's limits.

use crate::{instant_eval, range_eval, EngineOptions, Labels, MemoryStorage};

/// A few series of the shapes queries meet: a counter with a reset, a gauge with a stale
/// marker, and classic histogram buckets.
pub fn sample_storage() -> MemoryStorage {
    let mut db = MemoryStorage::new();
    for (job, slope) in [("a", 1.0), ("b", 3.0)] {
        db.add(
            Labels::new([("__name__", "req_total"), ("job", job)]),
            (0..40).map(|i| (i * 15_000, if i == 20 { 2.0 } else { i as f64 * slope })),
        );
        db.add(
            Labels::new([("__name__", "depth"), ("job", job)]),
            (0..40).map(|i| {
                let v = if i == 30 {
                    f64::from_bits(crate::value::STALE_NAN_BITS)
                } else {
                    (i % 7) as f64 - 2.0
                };
                (i * 15_000, v)
            }),
        );
        for (le, frac) in [("0.1", 0.2), ("1", 0.7), ("+Inf", 1.0)] {
            db.add(
                Labels::new([("__name__", "lat_bucket"), ("job", job), ("le", le)]),
                (0..40).map(|i| (i * 15_000, (i as f64 * 10.0 * frac).floor())),
            );
        }
    }
    db
}

/// Parses `data` as PromQL and, when it parses, evaluates it; panics only on an engine bug.
pub fn check_query(data: &[u8], db: &MemoryStorage) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > 4096 {
        return;
    }
    let Ok(expr) = crate::parse(text) else {
        return;
    };
    let opts = EngineOptions {
        max_samples: 200_000,
        ..EngineOptions::default()
    };
    let _ = instant_eval(db, &expr, 600_000, &opts);
    let _ = range_eval(db, &expr, 0, 600_000, 30_000, &opts);
}
