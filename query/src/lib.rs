//! PromQL for pipewatch: the query language dashboards, rules and detectors share.
//!
//! Parsing is done by the `promql-parser` crate; evaluation here is pure (no I/O, no clock):
//! the engine asks a [`Storage`] for series and samples in a time range, so detectors reuse its
//! functions, and it is golden-tested against Prometheus' own test scripts
//! (`tests/testdata/*.test`, from Prometheus 2.42) and fuzzed. A database-backed caller lists
//! what a query reads with [`plan::selectors`], fetches it, and evaluates over a
//! [`MemoryStorage`].
//!
//! ```
//! use query::{instant_query, EngineOptions, Labels, MemoryStorage, Value};
//! let mut db = MemoryStorage::new();
//! // A counter scraped every 15 s, rising 3 per scrape: 0.2 per second.
//! db.add(
//!     Labels::new([("__name__", "rows_total"), ("job", "etl")]),
//!     (0..20).map(|i| (i * 15_000, i as f64 * 3.0)),
//! );
//! let v = instant_query(&db, "sum by (job) (rate(rows_total[1m]))", 240_000, &EngineOptions::default()).unwrap();
//! let Value::Vector(v) = v else { panic!("expected a vector") };
//! assert_eq!(v[0].labels, Labels::new([("job", "etl")]));
//! assert!((v[0].v - 0.2).abs() < 1e-12);
//! ```

mod aggregate;
mod binary;
pub mod error;
mod eval;
mod functions;
pub mod fuzzing;
pub mod matcher_limits;
pub mod plan;
pub mod quantile;
pub mod storage;
pub mod value;

pub use error::{QueryError, Result};
pub use eval::EngineOptions;
pub use functions::{extrapolated_rate, linear_regression};
pub use promql_parser::parser::Expr;
pub use storage::{MemoryStorage, Storage};
pub use value::{format_value, Labels, Sample, Series, Value};

use eval::Evaluator;

/// Prometheus' limit on points per series in a range query's answer.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Parses a PromQL expression; errors are `bad_data` with the parser's message. Regex
/// matchers are bounded first ([`matcher_limits`]), because the parser compiles them.
///
/// promql-parser 0.11 panics on some input (fuzzing found `x[44444444444444444444]`: a
/// range too large for a `Duration`); such a query is refused as `bad_data` instead of
/// taking down the request's task.
pub fn parse(query: &str) -> Result<Expr> {
    matcher_limits::check(query)?;
    check_duration_literals(query)?;
    let text = legacy_names(query);
    match std::panic::catch_unwind(|| promql_parser::parser::parse(&text)) {
        Ok(parsed) => parsed.map_err(QueryError::BadData),
        Err(_) => Err(QueryError::BadData(
            "the query could not be parsed: a number or duration in it is out of range (e.g. a range like [44444444444444444444]); use durations such as 5m or 1h".into(),
        )),
    }
}

/// Most digits a number in a range, subquery or duration may have: 10^15 seconds is 31 million
/// years, more than any range means, and far below what `std::time::Duration` holds.
const MAX_DURATION_DIGITS: usize = 15;

/// Refuses number literals that promql-parser would turn into a `Duration` and panic on: any
/// number inside `[...]` (ranges, subquery range and resolution) and any number written with
/// a duration unit (`offset 99999999999999999999s`), when its integer part has more than
/// [`MAX_DURATION_DIGITS`] digits or it is written with an exponent. The parser's
/// `Duration::from_secs_f64` panics past `u64::MAX` seconds; fuzzing found both forms
/// (`x[4444…]`, `rate(x[666…:8870126s])`). String literals are skipped.
fn check_duration_literals(q: &str) -> Result<()> {
    let b = q.as_bytes();
    let (mut i, mut depth) = (0usize, 0usize);
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(qc) = quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == qc {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'\'' | b'`' => quote = Some(c),
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'0'..=b'9' if i == 0 || !is_ident_byte(b[i - 1], depth > 0) => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                    i += 1;
                }
                let int_digits = b[start..i].iter().filter(|d| d.is_ascii_digit()).count();
                let mut end = i;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'.') {
                    end += 1;
                }
                let rest = &q[i..end];
                let has_unit = rest
                    .chars()
                    .next()
                    .is_some_and(|u| matches!(u, 's' | 'm' | 'h' | 'd' | 'w' | 'y'));
                let exponent = rest.starts_with(['e', 'E'])
                    || rest.contains(['e', 'E']) && rest.starts_with('.');
                if (depth > 0 || has_unit)
                    && (int_digits > MAX_DURATION_DIGITS || (depth > 0 && exponent))
                {
                    return Err(QueryError::BadData(format!(
                        "the duration {:?} is out of range; write ranges, offsets and subquery steps as durations such as 5m, 1h or 7d",
                        &q[start..end]
                    )));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Whether `c` can be part of a metric or label name; inside brackets `:` separates a
/// subquery's range from its step instead.
fn is_ident_byte(c: u8, in_brackets: bool) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || (c == b':' && !in_brackets)
}

/// Prometheus 2.x calls `double_exponential_smoothing` `holt_winters`; promql-parser knows only
/// the new name. Renames the function (an identifier followed by `(`, outside string
/// literals) so rules written for 2.x keep working.
fn legacy_names(q: &str) -> std::borrow::Cow<'_, str> {
    const OLD: &str = "holt_winters";
    if !q.contains(OLD) {
        return q.into();
    }
    let mut out = String::with_capacity(q.len() + 20);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut prev: Option<char> = None;
    let mut chars = q.char_indices();
    while let Some((i, c)) = chars.next() {
        if let Some(qc) = quote {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' && qc != '`' {
                escaped = true;
            } else if c == qc {
                quote = None;
            }
            prev = Some(c);
            continue;
        }
        if matches!(c, '"' | '\'' | '`') {
            quote = Some(c);
            out.push(c);
            prev = Some(c);
            continue;
        }
        let starts_ident = !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == ':');
        if starts_ident
            && q[i..].starts_with(OLD)
            && q[i + OLD.len()..].trim_start().starts_with('(')
        {
            out.push_str("double_exponential_smoothing");
            for _ in 1..OLD.len() {
                chars.next();
            }
            prev = Some('s');
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    out.into()
}

/// Evaluates `query` at `t` (Unix ms).
pub fn instant_query(
    storage: &dyn Storage,
    query: &str,
    t: i64,
    opts: &EngineOptions,
) -> Result<Value> {
    let expr = parse(query)?;
    instant_eval(storage, &expr, t, opts)
}

/// Evaluates a parsed expression at `t`.
pub fn instant_eval(
    storage: &dyn Storage,
    expr: &Expr,
    t: i64,
    opts: &EngineOptions,
) -> Result<Value> {
    let mut ev = Evaluator::new(storage, opts, expr, t, t, 0);
    let v = ev.eval(expr, t)?;
    Ok(match v {
        Value::Vector(vec) => Value::Vector(vec.into_iter().map(|s| Sample { t, ..s }).collect()),
        other => other,
    })
}

/// Evaluates `query` at every `step` from `start` to `end` (Unix ms, inclusive) and returns
/// one series per label set, as Prometheus' `query_range`.
pub fn range_query(
    storage: &dyn Storage,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
    opts: &EngineOptions,
) -> Result<Vec<Series>> {
    let expr = parse(query)?;
    range_eval(storage, &expr, start, end, step, opts)
}

/// Evaluates a parsed expression over a range of steps.
pub fn range_eval(
    storage: &dyn Storage,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    opts: &EngineOptions,
) -> Result<Vec<Series>> {
    use promql_parser::parser::value::ValueType;
    if step <= 0 {
        return Err(QueryError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if end < start {
        return Err(QueryError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    if end.saturating_sub(start) / step > MAX_POINTS_PER_SERIES {
        return Err(QueryError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    match expr.value_type() {
        ValueType::Vector | ValueType::Scalar => {}
        other => {
            return Err(QueryError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                match other {
                    ValueType::Matrix => "range vector",
                    ValueType::String => "string",
                    _ => "unknown",
                }
            )))
        }
    }
    let mut ev = Evaluator::new(storage, opts, expr, start, end, step);
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    let mut produced = 0usize;
    let mut t = start;
    while t <= end {
        ev.check_interrupt("range query evaluation")?;
        let points: Vec<(Labels, f64)> = match ev.eval(expr, t)? {
            Value::Scalar(v) => vec![(Labels::empty(), v)],
            Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
            other => {
                return Err(QueryError::BadData(format!(
                    "range query expression evaluated to a {}",
                    other.type_name()
                )))
            }
        };
        produced += points.len();
        if produced > opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        for (labels, v) in points {
            let i = *index.entry(labels.clone()).or_insert_with(|| {
                out.push(Series {
                    labels,
                    points: Vec::new(),
                });
                out.len() - 1
            });
            out[i].points.push((t, v));
        }
        t = match t.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_too_large_for_the_parser_are_refused_before_it_runs() {
        for q in [
            "o1lho[44444444444444444444444444444440]",
            "rate(x[6666666666666666666666000000000:8870126s])",
            "x offset 99999999999999999999s",
            "x[1e300]",
            "max_over_time(x[5m:1000000000000000000000s])",
        ] {
            match parse(q) {
                Err(QueryError::BadData(m)) => {
                    assert!(
                        m.contains("the duration") && m.contains("is out of range"),
                        "{q}: {m}"
                    )
                }
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn ordinary_durations_numbers_and_strings_still_parse() {
        for q in [
            "rate(x[5m])",
            "avg_over_time(x[1h30m:15s] offset 1d)",
            "x{a=\"[99999999999999999999]\"}",
            "x > 1e300",
            "metric123456789012345678[5m]",
            "x[5m] @ 1609746000",
        ] {
            assert!(parse(q).is_ok(), "{q}: {:?}", parse(q));
        }
    }
}
