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

/// What the fuzz target `selectors` checks: a series selector as `/api/v1/series?match[]=`
/// takes it ([`model::Selector::parse`]) and as PromQL takes it ([`crate::parse`], behind the
/// matcher limits) never panics; an accepted selector prints as text that parses back to the
/// same selector and holds at most [`model::selector::MAX_MATCHERS_PER_SELECTOR`] matchers;
/// an accepted PromQL query has no selector over that limit either.
pub fn check_selector(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > 16 << 10 {
        return;
    }
    if let Ok(sel) = model::Selector::parse(text) {
        assert!(sel.matchers.len() <= model::selector::MAX_MATCHERS_PER_SELECTOR);
        let printed = sel.to_string();
        let again = model::Selector::parse(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
        assert_eq!(again, sel, "{printed:?} from {text:?}");
    }
    if let Ok(expr) = crate::parse(text) {
        let opts = EngineOptions::default();
        for s in crate::plan::selectors(&expr, 0, 600_000, &opts) {
            assert!(
                s.matchers.len() <= model::selector::MAX_MATCHERS_PER_SELECTOR + 1,
                "{} matchers in {text:?}",
                s.matchers.len()
            );
        }
    }
}

/// What the fuzz target `query_params` checks: a range query's parameters as the query API
/// gets them (`query`, `start`, `end`, `step` on separate lines; times as Unix seconds, the
/// step as seconds or a PromQL duration), converted to milliseconds the way Prometheus does
/// and evaluated over [`sample_storage`]: no panic and no overflow for any value, and an
/// answer never holds more points per series than [`crate::MAX_POINTS_PER_SERIES`] + 1.
pub fn check_query_params(data: &[u8], db: &MemoryStorage) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(4, '\n');
    let (Some(q), Some(start), Some(end), Some(step)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    if q.len() > 4096 {
        return;
    }
    let seconds_to_ms = |s: &str| -> Option<i64> {
        let v: f64 = s.trim().parse().ok()?;
        // `as` saturates (NaN -> 0), which is what a clamp to representable times wants.
        v.is_finite().then(|| (v * 1000.0).round() as i64)
    };
    let step_ms = seconds_to_ms(step).or_else(|| {
        promql_parser::util::parse_duration(step.trim())
            .ok()
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    let (Some(start), Some(end), Some(step)) = (seconds_to_ms(start), seconds_to_ms(end), step_ms)
    else {
        return;
    };
    let Ok(expr) = crate::parse(q) else {
        return;
    };
    let opts = EngineOptions {
        max_samples: 200_000,
        ..EngineOptions::default()
    };
    if let Ok(series) = range_eval(db, &expr, start, end, step, &opts) {
        for s in series {
            assert!(
                s.points.len() as i64 <= crate::MAX_POINTS_PER_SERIES + 1,
                "{} points for start={start} end={end} step={step}",
                s.points.len()
            );
        }
    }
    let _ = instant_eval(db, &expr, start, &opts);
}
