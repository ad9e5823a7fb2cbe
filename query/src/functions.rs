//! PromQL functions, each with Prometheus 2.42's semantics (extrapolation in `rate`,
//! `increase` and `delta`; Kahan summation in the `*_over_time` family; the metric name dropped
//! by every function except `last_over_time`, `label_replace`, `label_join`, `sort`,
//! `sort_desc` and `vector`).

use crate::error::{QueryError, Result};
use crate::eval::{check_unique, duration_ms, Evaluator};
use crate::quantile::{bucket_quantile, quantile, Bucket};
use crate::value::{is_label_name, Labels, Sample, Series, Value};
use chrono::{Datelike, TimeZone, Timelike, Utc};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};
use std::collections::HashMap;

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

fn scalar_arg(ev: &mut Evaluator, e: &Expr, t: i64) -> Result<f64> {
    match ev.eval(e, t)? {
        Value::Scalar(v) => Ok(v),
        other => Err(QueryError::BadData(format!(
            "expected a scalar argument, got {}",
            other.type_name()
        ))),
    }
}

fn vector_arg(ev: &mut Evaluator, e: &Expr, t: i64) -> Result<Vec<Sample>> {
    match ev.eval(e, t)? {
        Value::Vector(v) => Ok(v),
        other => Err(QueryError::BadData(format!(
            "expected an instant vector argument, got {}",
            other.type_name()
        ))),
    }
}

fn string_arg(e: &Expr) -> Result<String> {
    match unwrap_parens(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(QueryError::BadData(
            "expected a string literal argument".into(),
        )),
    }
}

/// A range-vector argument at `t`: each series' points in its window, plus how the window
/// was defined (for the extrapolation in `rate` and friends).
struct RangeArg {
    series: Vec<Series>,
    range_ms: i64,
    /// The window's end (`t` or the `@` time, minus the offset).
    window_end: i64,
}

fn range_arg(ev: &mut Evaluator, e: &Expr, t: i64) -> Result<RangeArg> {
    match unwrap_parens(e) {
        Expr::MatrixSelector(ms) => Ok(RangeArg {
            series: ev.range_selector(ms, t)?,
            range_ms: duration_ms(&ms.range),
            window_end: ev.read_time(&ms.vs.at, &ms.vs.offset, t),
        }),
        Expr::Subquery(sq) => {
            let te = ev.read_time(&sq.at, &sq.offset, t);
            let range = duration_ms(&sq.range);
            let series = ev.subquery(sq, t)?;
            Ok(RangeArg {
                series,
                range_ms: range,
                window_end: te,
            })
        }
        _ => Err(QueryError::BadData(
            "expected a range vector argument (a selector with [range] or a subquery)".into(),
        )),
    }
}

pub(crate) fn call(ev: &mut Evaluator, c: &Call, t: i64) -> Result<Value> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
    let out = match name {
        "time" => return Ok(Value::Scalar(t as f64 / 1000.0)),
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "scalar" => {
            let v = vector_arg(ev, args[0], t)?;
            return Ok(Value::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "vector" => {
            let v = scalar_arg(ev, args[0], t)?;
            return Ok(Value::Vector(vec![Sample {
                labels: Labels::empty(),
                t,
                v,
            }]));
        }
        "rate" | "increase" | "delta" => {
            let (counter, per_second) = match name {
                "rate" => (true, true),
                "increase" => (true, false),
                _ => (false, false),
            };
            over_range(ev, args[0], t, name, |points, arg| {
                extrapolated_rate(points, arg.window_end, arg.range_ms, counter, per_second)
            })?
        }
        "irate" => over_range(ev, args[0], t, name, |p, _| instant_value(p, true))?,
        "idelta" => over_range(ev, args[0], t, name, |p, _| instant_value(p, false))?,
        "deriv" => over_range(ev, args[0], t, name, |p, _| {
            (p.len() >= 2).then(|| linear_regression(p, p[0].0).0)
        })?,
        "predict_linear" => {
            let d = scalar_arg(ev, args[1], t)?;
            over_range(ev, args[0], t, name, |p, _| {
                (p.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(p, t);
                    slope * d + intercept
                })
            })?
        }
        "holt_winters" | "double_exponential_smoothing" => {
            let sf = scalar_arg(ev, args[1], t)?;
            let tf = scalar_arg(ev, args[2], t)?;
            if sf <= 0.0 || sf >= 1.0 {
                return Err(QueryError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                )));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(QueryError::Execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                )));
            }
            over_range(ev, args[0], t, name, |p, _| holt_winters(p, sf, tf))?
        }
        "resets" => over_range(ev, args[0], t, name, |p, _| {
            Some(p.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64)
        })?,
        "changes" => over_range(ev, args[0], t, name, |p, _| {
            Some(
                p.windows(2)
                    .filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan()))
                    .count() as f64,
            )
        })?,
        "avg_over_time" => over_range(ev, args[0], t, name, |p, _| Some(avg_over_time(p)))?,
        "count_over_time" => over_range(ev, args[0], t, name, |p, _| Some(p.len() as f64))?,
        "sum_over_time" => over_range(ev, args[0], t, name, |p, _| {
            let (sum, c) = p
                .iter()
                .fold((0.0, 0.0), |(s, c), x| kahan_sum_inc(x.1, s, c));
            Some(if sum.is_infinite() { sum } else { sum + c })
        })?,
        "min_over_time" => over_range(ev, args[0], t, name, |p, _| {
            let mut m = p[0].1;
            for x in p {
                if x.1 < m || m.is_nan() {
                    m = x.1;
                }
            }
            Some(m)
        })?,
        "max_over_time" => over_range(ev, args[0], t, name, |p, _| {
            let mut m = p[0].1;
            for x in p {
                if x.1 > m || m.is_nan() {
                    m = x.1;
                }
            }
            Some(m)
        })?,
        "last_over_time" => over_range(ev, args[0], t, name, |p, _| p.last().map(|x| x.1))?,
        "present_over_time" => over_range(ev, args[0], t, name, |_, _| Some(1.0))?,
        "stddev_over_time" => over_range(ev, args[0], t, name, |p, _| {
            Some(variance_over_time(p).sqrt())
        })?,
        "stdvar_over_time" => over_range(ev, args[0], t, name, |p, _| Some(variance_over_time(p)))?,
        "quantile_over_time" => {
            let q = scalar_arg(ev, args[0], t)?;
            over_range(ev, args[1], t, name, |p, _| {
                Some(quantile(q, p.iter().map(|x| x.1).collect()))
            })?
        }
        "absent_over_time" => {
            let arg = range_arg(ev, args[0], t)?;
            if arg.series.iter().any(|s| !s.points.is_empty()) {
                Vec::new()
            } else {
                vec![Sample {
                    labels: absent_labels(args[0]),
                    t,
                    v: 1.0,
                }]
            }
        }
        "absent" => {
            let v = vector_arg(ev, args[0], t)?;
            if v.is_empty() {
                vec![Sample {
                    labels: absent_labels(args[0]),
                    t,
                    v: 1.0,
                }]
            } else {
                Vec::new()
            }
        }
        "timestamp" => {
            let v = match unwrap_parens(args[0]) {
                Expr::VectorSelector(vs) => ev.instant_selector(vs, t)?,
                other => vector_arg(ev, other, t)?
                    .into_iter()
                    .map(|s| Sample { t, ..s })
                    .collect(),
            };
            v.into_iter()
                .map(|s| Sample {
                    labels: s.labels.without_name(),
                    t,
                    v: s.t as f64 / 1000.0,
                })
                .collect()
        }
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sin" | "cos"
        | "tan" | "asin" | "acos" | "atan" | "sinh" | "cosh" | "tanh" | "asinh" | "acosh"
        | "atanh" | "rad" | "deg" | "sgn" => {
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "exp" => f64::exp,
                "sqrt" => f64::sqrt,
                "ln" => f64::ln,
                "log2" => f64::log2,
                "log10" => f64::log10,
                "sin" => f64::sin,
                "cos" => f64::cos,
                "tan" => f64::tan,
                "asin" => f64::asin,
                "acos" => f64::acos,
                "atan" => f64::atan,
                "sinh" => f64::sinh,
                "cosh" => f64::cosh,
                "tanh" => f64::tanh,
                "asinh" => f64::asinh,
                "acosh" => f64::acosh,
                "atanh" => f64::atanh,
                "rad" => |v| v * std::f64::consts::PI / 180.0,
                "deg" => |v| v * 180.0 / std::f64::consts::PI,
                _ => |v: f64| {
                    if v < 0.0 {
                        -1.0
                    } else if v > 0.0 {
                        1.0
                    } else {
                        v
                    }
                },
            };
            map_values(vector_arg(ev, args[0], t)?, t, f)
        }
        "round" => {
            let v = vector_arg(ev, args[0], t)?;
            let to_nearest = if args.len() >= 2 {
                scalar_arg(ev, args[1], t)?
            } else {
                1.0
            };
            let inv = 1.0 / to_nearest;
            map_values(v, t, |x| (x * inv + 0.5).floor() / inv)
        }
        "clamp" => {
            let v = vector_arg(ev, args[0], t)?;
            let min = scalar_arg(ev, args[1], t)?;
            let max = scalar_arg(ev, args[2], t)?;
            if max < min {
                Vec::new()
            } else {
                map_values(v, t, |x| go_max(min, go_min(max, x)))
            }
        }
        "clamp_min" => {
            let v = vector_arg(ev, args[0], t)?;
            let min = scalar_arg(ev, args[1], t)?;
            map_values(v, t, |x| go_max(min, x))
        }
        "clamp_max" => {
            let v = vector_arg(ev, args[0], t)?;
            let max = scalar_arg(ev, args[1], t)?;
            map_values(v, t, |x| go_min(max, x))
        }
        "sort" | "sort_desc" => {
            let mut v = vector_arg(ev, args[0], t)?;
            let desc = name == "sort_desc";
            // NaN last in both directions, as Prometheus' heaps order them.
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.v.partial_cmp(&a.v).unwrap_or(std::cmp::Ordering::Equal),
                _ => a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal),
            });
            return Ok(Value::Vector(v));
        }
        "label_replace" => {
            let v = vector_arg(ev, args[0], t)?;
            let dst = string_arg(args[1])?;
            let repl = string_arg(args[2])?;
            let src = string_arg(args[3])?;
            let re_src = string_arg(args[4])?;
            let re = ev.label_regex(&re_src).ok_or_else(|| {
                QueryError::Execution(format!(
                    "invalid regular expression in label_replace(): {re_src}"
                ))
            })?;
            if !is_label_name(&dst) {
                return Err(QueryError::Execution(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            v.into_iter()
                .map(|s| {
                    let src_val = s.labels.get(&src).to_string();
                    match re.captures(&src_val) {
                        None => s,
                        Some(caps) => {
                            let mut res = String::new();
                            caps.expand(&repl, &mut res);
                            let mut labels = s.labels.clone();
                            labels.set(&dst, &res);
                            Sample { labels, ..s }
                        }
                    }
                })
                .collect()
        }
        "label_join" => {
            let v = vector_arg(ev, args[0], t)?;
            let dst = string_arg(args[1])?;
            let sep = string_arg(args[2])?;
            let mut srcs = Vec::new();
            for a in &args[3..] {
                let s = string_arg(a)?;
                if !is_label_name(&s) {
                    return Err(QueryError::Execution(format!(
                        "invalid source label name in label_join(): {s}"
                    )));
                }
                srcs.push(s);
            }
            if !is_label_name(&dst) {
                return Err(QueryError::Execution(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            v.into_iter()
                .map(|s| {
                    let joined = srcs
                        .iter()
                        .map(|n| s.labels.get(n))
                        .collect::<Vec<_>>()
                        .join(&sep);
                    let mut labels = s.labels.clone();
                    labels.set(&dst, &joined);
                    Sample { labels, ..s }
                })
                .collect()
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute"
        | "month" | "year" => {
            let f = |secs: f64| -> f64 {
                let Some(dt) = Utc.timestamp_opt(secs as i64, 0).single() else {
                    return f64::NAN;
                };
                match name {
                    "days_in_month" => days_in_month(dt.year(), dt.month()) as f64,
                    "day_of_month" => dt.day() as f64,
                    "day_of_week" => dt.weekday().num_days_from_sunday() as f64,
                    "day_of_year" => dt.ordinal() as f64,
                    "hour" => dt.hour() as f64,
                    "minute" => dt.minute() as f64,
                    "month" => dt.month() as f64,
                    _ => dt.year() as f64,
                }
            };
            if args.is_empty() {
                vec![Sample {
                    labels: Labels::empty(),
                    t,
                    v: f((t / 1000) as f64),
                }]
            } else {
                map_values(vector_arg(ev, args[0], t)?, t, f)
            }
        }
        "histogram_quantile" => {
            let q = scalar_arg(ev, args[0], t)?;
            let v = vector_arg(ev, args[1], t)?;
            histogram_quantile(q, v, t)
        }
        // Native histograms: pipewatch stores none, and Prometheus skips float samples in
        // these functions, so on the same data both answer with an empty vector.
        "histogram_count" | "histogram_sum" => {
            vector_arg(ev, args[0], t)?;
            Vec::new()
        }
        "histogram_fraction" => {
            vector_arg(ev, args[2], t)?;
            Vec::new()
        }
        other => {
            return Err(QueryError::BadData(format!(
                "function {other}() is not supported by pipewatch"
            )))
        }
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn go_max(a: f64, b: f64) -> f64 {
    // Go's math.Max: NaN if either is NaN.
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let first_next = chrono::NaiveDate::from_ymd_opt(ny, nm, 1);
    let first = chrono::NaiveDate::from_ymd_opt(year, month, 1);
    match (first, first_next) {
        (Some(a), Some(b)) => (b - a).num_days() as u32,
        _ => 30,
    }
}

fn map_values(v: Vec<Sample>, t: i64, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    v.into_iter()
        .map(|s| Sample {
            labels: s.labels.without_name(),
            t,
            v: f(s.v),
        })
        .collect()
}

/// Applies a range function to every series of a range-vector argument that has points in
/// its window; the metric name is dropped except by `last_over_time`.
fn over_range(
    ev: &mut Evaluator,
    arg: &Expr,
    t: i64,
    name: &str,
    f: impl Fn(&[(i64, f64)], &RangeArg) -> Option<f64>,
) -> Result<Vec<Sample>> {
    let ra = range_arg(ev, arg, t)?;
    let keep_name = name == "last_over_time";
    let mut out = Vec::with_capacity(ra.series.len());
    for s in &ra.series {
        if s.points.is_empty() {
            continue;
        }
        if let Some(v) = f(&s.points, &ra) {
            out.push(Sample {
                labels: if keep_name {
                    s.labels.clone()
                } else {
                    s.labels.without_name()
                },
                t,
                v,
            });
        }
    }
    Ok(out)
}

/// `rate`, `increase` and `delta`: the change over the window, corrected for counter resets,
/// extrapolated towards the window's edges (not past a counter's zero point), per second for
/// `rate`.
pub fn extrapolated_rate(
    points: &[(i64, f64)],
    window_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let range_start = window_end.saturating_sub(range_ms);
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.1 - first.1;
    if is_counter {
        let mut prev = first.1;
        for p in &points[1..] {
            if p.1 < prev {
                result += prev;
            }
            prev = p.1;
        }
    }
    let mut duration_to_start = (first.0 - range_start) as f64 / 1000.0;
    let duration_to_end = (window_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg_between = sampled / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < duration_to_start {
            duration_to_start = to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut interval = sampled;
    interval += if duration_to_start < threshold {
        duration_to_start
    } else {
        avg_between / 2.0
    };
    interval += if duration_to_end < threshold {
        duration_to_end
    } else {
        avg_between / 2.0
    };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

fn instant_value(p: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let last = p[p.len() - 1];
    let prev = p[p.len() - 2];
    let mut v = if is_rate && last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    let dt = last.0 - prev.0;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

fn avg_over_time(p: &[(i64, f64)]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for &(_, v) in p {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_sum_inc(v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

fn variance_over_time(p: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in p {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Least-squares slope and intercept at `intercept_time` (ms), in units per second.
pub fn linear_regression(p: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let init_y = p[0].1;
    let mut const_y = true;
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &(ts, v)) in p.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (ts - intercept_time) as f64 / 1e3;
        (sx, cx) = kahan_sum_inc(x, sx, cx);
        (sy, cy) = kahan_sum_inc(v, sy, cy);
        (sxy, cxy) = kahan_sum_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_sum_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn holt_winters(p: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, p[0].1);
    let mut b = p[1].1 - p[0].1;
    for (i, &(_, v)) in p.iter().enumerate().skip(1) {
        let x = sf * v;
        b = if i - 1 == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        };
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// The labels `absent()` gives its 1: the equality matchers of a plain selector argument
/// (a label matched twice with `=` is left out).
fn absent_labels(arg: &Expr) -> Labels {
    let vs = match unwrap_parens(arg) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for m in &vs.matchers.matchers {
        if m.name != crate::value::METRIC_NAME {
            *seen.entry(m.name.as_str()).or_default() += 1;
        }
    }
    let mut pairs = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == crate::value::METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && seen.get(m.name.as_str()) == Some(&1) {
            pairs.push((m.name.clone(), m.value.clone()));
        }
    }
    Labels::new(pairs)
}

fn histogram_quantile(q: f64, v: Vec<Sample>, t: i64) -> Vec<Sample> {
    let mut groups: Vec<(Labels, Labels, Vec<Bucket>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in v {
        let le = s.labels.get("le");
        let Some(upper) = parse_go_float(le) else {
            continue;
        };
        let mut key = s.labels.clone();
        key.remove("le");
        let i = *index.entry(key.clone()).or_insert_with(|| {
            let out = key.without_name();
            groups.push((key.clone(), out, Vec::new()));
            groups.len() - 1
        });
        groups[i].2.push(Bucket {
            upper_bound: upper,
            count: s.v,
        });
    }
    groups
        .into_iter()
        .filter(|g| !g.2.is_empty())
        .map(|(_, labels, buckets)| Sample {
            labels,
            t,
            v: bucket_quantile(q, buckets),
        })
        .collect()
}

/// Go's strconv.ParseFloat for the forms `le` labels take (decimal, exponent, Inf, NaN).
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if s.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    s.replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|_| !s.contains("__"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_extrapolates_to_window_edges_and_handles_resets() {
        // A counter rising 1/s sampled every 15 s over a 60 s window ending 5 s after the
        // last sample: extrapolation covers the gap at both ends.
        let pts: Vec<(i64, f64)> = (0..4)
            .map(|i| (10_000 + i * 15_000, 100.0 + i as f64 * 15.0))
            .collect();
        let r = extrapolated_rate(&pts, 60_000, 60_000, true, true).unwrap();
        assert!((r - 1.0).abs() < 1e-9, "{r}");
        // Starting from 0, the counter cannot have existed before its first sample: no
        // extrapolation towards the window's start (45 s of rise seen, 5 s added at the end).
        let from_zero: Vec<(i64, f64)> = pts.iter().map(|&(t, v)| (t, v - 100.0)).collect();
        let r = extrapolated_rate(&from_zero, 60_000, 60_000, true, true).unwrap();
        assert!((r - 50.0 / 60.0).abs() < 1e-9, "{r}");
        // A reset: 10 -> 20 is +10, then the counter restarted and reached 5: +5.
        let pts = vec![(0, 10.0), (10_000, 20.0), (20_000, 5.0)];
        let inc = extrapolated_rate(&pts, 20_000, 20_000, true, false).unwrap();
        assert!((inc - 15.0).abs() < 1e-9, "{inc}");
        assert_eq!(
            extrapolated_rate(&pts[..1], 20_000, 20_000, true, true),
            None
        );
    }

    #[test]
    fn le_values_parse_like_go() {
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("0.25"), Some(0.25));
        assert_eq!(parse_go_float("1e3"), Some(1000.0));
        assert_eq!(parse_go_float("abc"), None);
    }
}
