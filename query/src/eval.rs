//! The evaluator: walks a parsed PromQL expression at one instant at a time, with Prometheus
//! 2.x semantics (lookback and staleness for instant selectors, closed range windows, subquery
//! steps aligned to multiples of the step, `offset` and `@`). Range queries evaluate every step
//! and join the results by label set, which gives the same answers as Prometheus' vectorised
//! evaluator.

use crate::error::{QueryError, Result};
use crate::storage::Storage;
use crate::value::{Labels, Sample, Series, Value};
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Limits and defaults of an evaluation.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the newest sample (Prometheus: 5m).
    pub lookback_ms: i64,
    /// Step of a subquery written without one (Prometheus: the global evaluation interval).
    pub default_subquery_step_ms: i64,
    /// Most samples a query may load or produce (Prometheus' `--query.max-samples`).
    pub max_samples: usize,
    /// Set from outside (a timer) to stop a query that runs too long.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60 * 1000,
            max_samples: 50_000_000,
            interrupt: None,
        }
    }
}

pub(crate) fn duration_ms(d: &Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

pub(crate) fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

pub(crate) struct Evaluator<'a> {
    pub storage: &'a dyn Storage,
    pub opts: &'a EngineOptions,
    /// Query start and end, for `@ start()` and `@ end()`.
    pub start: i64,
    pub end: i64,
    /// Series fetched per selector node (keyed by the node's address, stable while the
    /// expression is borrowed), each over the range the plan gave it.
    fetched: HashMap<usize, Arc<Vec<Arc<Series>>>>,
    ranges: HashMap<usize, (i64, i64)>,
    pub loaded_samples: usize,
    /// Subquery steps evaluated so far: bounded like samples, so `x[100y:1ms]` is refused
    /// instead of looping for hours over empty steps.
    steps_evaluated: usize,
    regexes: HashMap<String, regex::Regex>,
}

impl<'a> Evaluator<'a> {
    pub fn new(
        storage: &'a dyn Storage,
        opts: &'a EngineOptions,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Self {
        let mut ranges = HashMap::new();
        crate::plan::walk_ranges(expr, start, end, step, opts, &mut |vs, mint, maxt| {
            let key = vs as *const VectorSelector as usize;
            let e = ranges.entry(key).or_insert((mint, maxt));
            e.0 = e.0.min(mint);
            e.1 = e.1.max(maxt);
        });
        Self {
            storage,
            opts,
            start,
            end,
            fetched: HashMap::new(),
            ranges,
            loaded_samples: 0,
            steps_evaluated: 0,
            regexes: HashMap::new(),
        }
    }

    pub fn check_interrupt(&self, during: &'static str) -> Result<()> {
        if let Some(flag) = &self.opts.interrupt {
            if flag.load(Ordering::Relaxed) {
                return Err(QueryError::Timeout(during));
            }
        }
        Ok(())
    }

    /// The series of a selector, fetched once per query over the planned range.
    pub fn series_of(&mut self, vs: &VectorSelector) -> Result<Arc<Vec<Arc<Series>>>> {
        let key = vs as *const VectorSelector as usize;
        if let Some(s) = self.fetched.get(&key) {
            return Ok(s.clone());
        }
        let (mint, maxt) = self
            .ranges
            .get(&key)
            .copied()
            .unwrap_or((i64::MIN / 4, i64::MAX / 4));
        let matchers = crate::plan::matchers_of(vs);
        if !vs.matchers.or_matchers.is_empty() {
            return Err(QueryError::BadData(
                "selectors with `or` between matcher sets are not supported by pipewatch".into(),
            ));
        }
        let mut series = self.storage.select(&matchers, mint, maxt)?;
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let n: usize = series.iter().map(|s| s.points.len()).sum();
        self.loaded_samples += n;
        if self.loaded_samples > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        let s = Arc::new(series);
        self.fetched.insert(key, s.clone());
        Ok(s)
    }

    /// The instant a selector or subquery reads at, for evaluation time `t`: its `@` time or
    /// `t`, minus its offset.
    pub fn read_time(&self, at: &Option<AtModifier>, offset: &Option<Offset>, t: i64) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(ts)) => system_time_ms(ts),
        };
        base.saturating_sub(offset_ms(offset))
    }

    pub fn eval(&mut self, expr: &Expr, t: i64) -> Result<Value> {
        match expr {
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(vec) => {
                    let out: Vec<Sample> = vec
                        .into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_name(),
                            t: s.t,
                            v: -s.v,
                        })
                        .collect();
                    check_unique(&out)?;
                    Ok(Value::Vector(out))
                }
                other => Err(QueryError::BadData(format!(
                    "unary minus is not defined on a {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant_selector(vs, t)?)),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.range_selector(ms, t)?)),
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, t)?)),
            Expr::Call(call) => crate::functions::call(self, call, t),
            Expr::Aggregate(agg) => crate::aggregate::aggregate(self, agg, t),
            Expr::Binary(bin) => crate::binary::binary(self, bin, t),
            Expr::Extension(_) => Err(QueryError::BadData(
                "extension expressions are not supported".into(),
            )),
        }
    }

    /// A range selector at `t`: each series' points in `[t' - range, t']`, where `t'` is `t`
    /// (or the `@` time) minus the offset; series without points are left out.
    pub fn range_selector(&mut self, ms: &MatrixSelector, t: i64) -> Result<Vec<Series>> {
        let te = self.read_time(&ms.vs.at, &ms.vs.offset, t);
        let range = duration_ms(&ms.range);
        let series = self.series_of(&ms.vs)?;
        Ok(series
            .iter()
            .filter_map(|s| {
                let points: Vec<(i64, f64)> = s.window(te.saturating_sub(range), te).collect();
                (!points.is_empty()).then(|| Series {
                    labels: s.labels.clone(),
                    points,
                })
            })
            .collect())
    }

    /// `label_replace`'s anchored regex, compiled once per query rather than at every step.
    pub fn label_regex(&mut self, source: &str) -> Option<regex::Regex> {
        if let Some(re) = self.regexes.get(source) {
            return Some(re.clone());
        }
        let re = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .build()
            .ok()?;
        self.regexes.insert(source.to_string(), re.clone());
        Some(re)
    }

    pub fn instant_selector(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<Sample>> {
        let te = self.read_time(&vs.at, &vs.offset, t);
        let lookback = self.opts.lookback_ms;
        let series = self.series_of(vs)?;
        Ok(series
            .iter()
            .filter_map(|s| {
                s.at(te, lookback).map(|(ts, v)| Sample {
                    labels: s.labels.clone(),
                    t: ts,
                    v,
                })
            })
            .collect())
    }

    /// A subquery at `t`: the inner expression evaluated at every multiple of the step within
    /// `[t' - range, t']`, where `t'` is `t` (or the `@` time) minus the offset.
    pub fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Vec<Series>> {
        let te = self.read_time(&sq.at, &sq.offset, t);
        let range = duration_ms(&sq.range);
        let step = sq
            .step
            .as_ref()
            .map(duration_ms)
            .filter(|s| *s > 0)
            .unwrap_or(self.opts.default_subquery_step_ms);
        let first = te.saturating_sub(range);
        // Go's integer division truncates toward zero; Prometheus aligns with it.
        let mut ts = step * (first / step);
        if ts < first {
            ts += step;
        }
        let mut by_labels: HashMap<Labels, usize> = HashMap::new();
        let mut out: Vec<Series> = Vec::new();
        while ts <= te {
            self.check_interrupt("subquery evaluation")?;
            self.steps_evaluated += 1;
            if self.steps_evaluated > self.opts.max_samples {
                return Err(QueryError::TooManySamples("subquery evaluation"));
            }
            match self.eval(&sq.expr, ts)? {
                Value::Vector(vec) => {
                    for s in vec {
                        let idx = *by_labels.entry(s.labels.clone()).or_insert_with(|| {
                            out.push(Series {
                                labels: s.labels.clone(),
                                points: Vec::new(),
                            });
                            out.len() - 1
                        });
                        out[idx].points.push((ts, s.v));
                    }
                }
                Value::Scalar(v) => {
                    let idx = *by_labels.entry(Labels::empty()).or_insert_with(|| {
                        out.push(Series {
                            labels: Labels::empty(),
                            points: Vec::new(),
                        });
                        out.len() - 1
                    });
                    out[idx].points.push((ts, v));
                }
                other => {
                    return Err(QueryError::BadData(format!(
                        "subquery is only allowed on instant vector, got {}",
                        other.type_name()
                    )))
                }
            }
            ts = match ts.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
        Ok(out)
    }
}

/// Prometheus refuses a result in which two elements have the same labels (e.g. after a
/// function dropped the metric name of two series that differed only by it).
pub(crate) fn check_unique(vec: &[Sample]) -> Result<()> {
    if vec.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(vec.len());
    for s in vec {
        if !seen.insert(&s.labels) {
            return Err(QueryError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}
