//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `quantile`, `count_values`) with `by` / `without`, computed as
//! Prometheus 2.42 does, including which of equal values `topk`/`bottomk` keep.

use crate::error::{QueryError, Result};
use crate::eval::{check_unique, Evaluator};
use crate::quantile::quantile;
use crate::value::{format_value, is_label_name, Labels, Sample, Value, METRIC_NAME};
use promql_parser::parser::{AggregateExpr, LabelModifier};
use std::collections::HashMap;

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: usize,
    /// topk / bottomk / quantile members.
    heap: Vec<Sample>,
}

pub(crate) fn aggregate(ev: &mut Evaluator, agg: &AggregateExpr, t: i64) -> Result<Value> {
    let op = agg.op.to_string().to_lowercase();
    let (mut grouping, without): (Vec<String>, bool) = match &agg.modifier {
        None => (Vec::new(), false),
        Some(LabelModifier::Include(l)) => (l.labels.clone(), false),
        Some(LabelModifier::Exclude(l)) => (l.labels.clone(), true),
    };
    grouping.sort();
    let mut k: i64 = 0;
    let mut q = 0.0;
    let mut value_label = String::new();
    if let Some(p) = &agg.param {
        match ev.eval(p, t)? {
            Value::Scalar(v) => {
                if op == "topk" || op == "bottomk" {
                    if !(v >= i64::MIN as f64 && v <= i64::MAX as f64) {
                        return Err(QueryError::Execution(format!(
                            "Scalar value {} overflows int64",
                            format_value(v)
                        )));
                    }
                    k = v as i64;
                } else {
                    q = v;
                }
            }
            Value::String(s) => value_label = s,
            other => {
                return Err(QueryError::BadData(format!(
                    "unexpected {} parameter for {op}",
                    other.type_name()
                )))
            }
        }
    }
    let vec = match ev.eval(&agg.expr, t)? {
        Value::Vector(v) => v,
        other => {
            return Err(QueryError::BadData(format!(
                "expected an instant vector to aggregate, got {}",
                other.type_name()
            )))
        }
    };
    if (op == "topk" || op == "bottomk") && k < 1 {
        return Ok(Value::Vector(Vec::new()));
    }
    if op == "count_values" {
        if !is_label_name(&value_label) {
            return Err(QueryError::Execution(format!(
                "invalid label name {value_label:?}"
            )));
        }
        if !without {
            grouping.push(value_label.clone());
            grouping.sort();
        }
    }

    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Vec<(String, String)>, usize> = HashMap::new();
    for s in vec {
        let mut metric = s.labels.clone();
        if op == "count_values" {
            metric.set(&value_label, &format_value(s.v));
        }
        let key = if without {
            metric
                .iter()
                .filter(|(n, _)| *n != METRIC_NAME && !grouping.iter().any(|g| g == n))
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        } else {
            metric.keep(&grouping).into_pairs()
        };
        let gi = match index.get(&key) {
            Some(&i) => i,
            None => {
                let labels = if without {
                    let mut l = metric.drop_names(&grouping);
                    l.remove(METRIC_NAME);
                    l
                } else {
                    metric.keep(&grouping)
                };
                let mut g = Group {
                    labels,
                    value: s.v,
                    mean: s.v,
                    count: 1,
                    heap: Vec::new(),
                };
                match op.as_str() {
                    "stddev" | "stdvar" => g.value = 0.0,
                    "topk" | "bottomk" | "quantile" => g.heap.push(s.clone()),
                    "group" => g.value = 1.0,
                    _ => {}
                }
                groups.push(g);
                index.insert(key, groups.len() - 1);
                continue;
            }
        };
        let g = &mut groups[gi];
        match op.as_str() {
            "sum" => g.value += s.v,
            "avg" => {
                g.count += 1;
                let n = g.count as f64;
                if g.mean.is_infinite() {
                    if s.v.is_infinite() && (g.mean > 0.0) == (s.v > 0.0) {
                        continue;
                    }
                    if !s.v.is_infinite() && !s.v.is_nan() {
                        continue;
                    }
                }
                g.mean += s.v / n - g.mean / n;
            }
            "group" => {}
            "max" => {
                if g.value < s.v || g.value.is_nan() {
                    g.value = s.v;
                }
            }
            "min" => {
                if g.value > s.v || g.value.is_nan() {
                    g.value = s.v;
                }
            }
            "count" | "count_values" => g.count += 1,
            "stddev" | "stdvar" => {
                g.count += 1;
                let delta = s.v - g.mean;
                g.mean += delta / g.count as f64;
                g.value += delta * (s.v - g.mean);
            }
            "topk" => heap_offer(&mut g.heap, s, k as usize, top_less),
            "bottomk" => heap_offer(&mut g.heap, s, k as usize, bottom_less),
            "quantile" => g.heap.push(s),
            other => {
                return Err(QueryError::BadData(format!(
                    "aggregation {other} is not supported by pipewatch"
                )))
            }
        }
    }

    let mut out = Vec::new();
    for g in groups {
        let v = match op.as_str() {
            "avg" => g.mean,
            "count" | "count_values" => g.count as f64,
            "stdvar" => g.value / g.count as f64,
            "stddev" => (g.value / g.count as f64).sqrt(),
            "topk" | "bottomk" => {
                let less = if op == "topk" { top_less } else { bottom_less };
                let mut h = g.heap;
                // sort.Sort(sort.Reverse(heap)): the best first.
                h.sort_by(|a, b| {
                    if less(b, a) {
                        std::cmp::Ordering::Less
                    } else if less(a, b) {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                });
                out.extend(h.into_iter().map(|s| Sample { t, ..s }));
                continue;
            }
            "quantile" => quantile(q, g.heap.iter().map(|s| s.v).collect()),
            _ => g.value,
        };
        out.push(Sample {
            labels: g.labels,
            t,
            v,
        });
    }
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// `vectorByValueHeap.Less`: a min-heap on value with NaN smallest (topk evicts its root).
fn top_less(a: &Sample, b: &Sample) -> bool {
    a.v.is_nan() || a.v < b.v
}

/// `vectorByReverseValueHeap.Less`: a max-heap on value with NaN first (bottomk).
fn bottom_less(a: &Sample, b: &Sample) -> bool {
    a.v.is_nan() || a.v > b.v
}

/// Offers `s` to a bounded heap of `k` as Prometheus' topk/bottomk do with Go's
/// container/heap, so that ties keep the same members.
fn heap_offer(h: &mut Vec<Sample>, s: Sample, k: usize, less: fn(&Sample, &Sample) -> bool) {
    let root_worse = less(&h[0], &s);
    if h.len() < k || root_worse {
        if h.len() == k {
            if k == 1 {
                h[0] = s;
                return;
            }
            // heap.Pop
            let n = h.len() - 1;
            h.swap(0, n);
            down(h, 0, n, less);
            h.pop();
        }
        // heap.Push
        h.push(s);
        let j = h.len() - 1;
        up(h, j, less);
    }
}

fn up(h: &mut [Sample], mut j: usize, less: fn(&Sample, &Sample) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn down(h: &mut [Sample], i0: usize, n: usize, less: fn(&Sample, &Sample) -> bool) {
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&h[j2], &h[j1]) {
            j = j2;
        }
        if !less(&h[j], &h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}
