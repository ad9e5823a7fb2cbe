//! PromQL over the store: lists what a query reads ([`query::plan::selectors`]), fetches those
//! raw samples from PostgreSQL, and evaluates on the blocking pool with a deadline, so the
//! pure engine in the `query` crate never does I/O and a slow query never holds an async
//! worker.

use model::Selector;
use promql_parser::label::Matcher;
use query::{EngineOptions, Expr, QueryError, Series, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Limits every PromQL query runs under (`[query]` in the config); the defaults are the
/// config's.
#[derive(Clone, Debug)]
pub struct QueryLimits {
    /// Wall-clock budget of one query, fetch and evaluation together.
    pub timeout: Duration,
    /// Samples one query may load and produce (Prometheus' `--query.max-samples`).
    pub max_samples: usize,
    /// Series one selector may match before the query is refused.
    pub max_series_per_selector: usize,
    /// Distinct series all selectors of one query (or one catalogue request's `match[]`s)
    /// may select together before it is refused.
    pub max_series: usize,
    /// Instant selectors' lookback (Prometheus' `--query.lookback-delta`).
    pub lookback: Duration,
    /// Step of subqueries written without one (Prometheus' global evaluation_interval).
    pub default_subquery_step: Duration,
    /// Points per series a range query may return (Prometheus' 11,000).
    pub max_points: i64,
}

impl From<&crate::config::QueryConfig> for QueryLimits {
    fn from(c: &crate::config::QueryConfig) -> Self {
        Self {
            timeout: c.timeout,
            max_samples: c.max_samples,
            max_series_per_selector: c.max_series_per_selector,
            max_series: c.max_series,
            lookback: c.lookback_delta,
            max_points: i64::try_from(c.max_points).unwrap_or(i64::MAX),
            ..Self::default()
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_samples: 50_000_000,
            max_series_per_selector: 50_000,
            max_series: crate::config::QueryConfig::default().max_series,
            lookback: Duration::from_secs(300),
            default_subquery_step: Duration::from_secs(60),
            max_points: query::MAX_POINTS_PER_SERIES,
        }
    }
}

impl QueryLimits {
    fn engine_options(&self, interrupt: Arc<AtomicBool>) -> EngineOptions {
        EngineOptions {
            lookback_ms: self.lookback.as_millis() as i64,
            default_subquery_step_ms: self.default_subquery_step.as_millis() as i64,
            max_samples: self.max_samples,
            interrupt: Some(interrupt),
        }
    }
}

/// Evaluates `q` at `t` (Unix ms).
pub async fn instant(
    store: &store::Store,
    limits: &QueryLimits,
    q: &str,
    t: i64,
) -> Result<Value, QueryError> {
    let expr = query::parse(q)?;
    run(store, limits, expr, t, t, move |data, expr, opts| {
        query::instant_eval(data, expr, t, opts)
    })
    .await
}

/// Evaluates `q` at every `step` from `start` to `end` (Unix ms, inclusive).
pub async fn range(
    store: &store::Store,
    limits: &QueryLimits,
    q: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<Series>, QueryError> {
    let expr = query::parse(q)?;
    run(store, limits, expr, start, end, move |data, expr, opts| {
        query::range_eval(data, expr, start, end, step, opts)
    })
    .await
}

/// Fetches what `expr` reads over `[start, end]`, then runs `eval` on the blocking pool, all
/// within the query timeout.
async fn run<T: Send + 'static>(
    store: &store::Store,
    limits: &QueryLimits,
    expr: Expr,
    start: i64,
    end: i64,
    eval: impl FnOnce(&Prefetched, &Expr, &EngineOptions) -> Result<T, QueryError> + Send + 'static,
) -> Result<T, QueryError> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let opts = limits.engine_options(interrupt.clone());
    let deadline = Instant::now() + limits.timeout;
    let work = async {
        let data = prefetch(store, &expr, start, end, &opts, limits, deadline).await?;
        let handle = tokio::task::spawn_blocking(move || eval(&data, &expr, &opts));
        handle
            .await
            .map_err(|e| QueryError::Storage(format!("query evaluation failed: {e}")))?
    };
    match tokio::time::timeout(limits.timeout, work).await {
        Ok(r) => r,
        Err(_) => {
            // Stops the evaluation at its next step; the answer is the timeout either way.
            interrupt.store(true, Ordering::Relaxed);
            Err(QueryError::Timeout("query execution"))
        }
    }
}

/// One selector the query reads: its matchers, the range fetched for it, and its series.
type Fetched = (Vec<Matcher>, i64, i64, Vec<Arc<Series>>);

/// The raw samples a query reads: each series fetched once over the union of the ranges of
/// the selectors that select it, and shared by those selectors.
struct Prefetched {
    entries: Vec<Fetched>,
}

impl query::Storage for Prefetched {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> query::Result<Vec<Arc<Series>>> {
        let Some((_, _, _, series)) = self
            .entries
            .iter()
            .find(|(m, lo, hi, _)| m.as_slice() == matchers && *lo <= mint && maxt <= *hi)
        else {
            return Err(QueryError::Storage(format!(
                "internal error: the selector {matchers:?} over [{mint}, {maxt}] was not fetched before evaluation"
            )));
        };
        // A series shared with another selector may hold more than this one's range: hand
        // over only the range, as the engine counts (and reads) what it gets.
        Ok(series
            .iter()
            .filter_map(|s| s.clipped(mint, maxt))
            .collect())
    }
}

/// The time left before `deadline`, as the statement_timeout of the next read; none left is
/// the query's timeout.
fn remaining(deadline: Instant) -> Result<Duration, QueryError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(QueryError::Timeout("query execution"));
    }
    Ok(left)
}

fn store_error(e: store::StoreError) -> QueryError {
    match e {
        store::StoreError::InvalidQuery(m) => QueryError::BadData(m),
        e if e.is_refused_data() => QueryError::BadData(format!(
            "the database cannot use a value of this query: {e}; remove NUL bytes and out-of-range numbers"
        )),
        e if e.is_read_timeout() => QueryError::Timeout(
            "reading from the database (query.timeout or database.read_statement_timeout)",
        ),
        other => QueryError::Storage(other.to_string()),
    }
}

/// The refusal of a query whose selectors together select more than `query.max_series`.
pub fn too_many_series(max_series: usize) -> String {
    format!(
        "the query selects more than {max_series} series, the most one query may read (`query.max_series`); narrow its selectors with more label matchers or aggregate fewer series"
    )
}

async fn prefetch(
    store: &store::Store,
    expr: &Expr,
    start: i64,
    end: i64,
    opts: &EngineOptions,
    limits: &QueryLimits,
    deadline: Instant,
) -> Result<Prefetched, QueryError> {
    // The distinct selectors, each with the union of the ranges it is read over.
    let mut wanted: Vec<(Vec<Matcher>, Selector, i64, i64)> = Vec::new();
    for sel in query::plan::selectors(expr, start, end, opts) {
        if let Some(w) = wanted.iter_mut().find(|w| w.0 == sel.matchers) {
            w.2 = w.2.min(sel.mint);
            w.3 = w.3.max(sel.maxt);
            continue;
        }
        let store_sel = to_selector(&sel.matchers)?;
        wanted.push((sel.matchers, store_sel, sel.mint, sel.maxt));
    }
    let Some(mint) = wanted.iter().map(|w| w.2).min() else {
        return Ok(Prefetched {
            entries: Vec::new(),
        });
    };
    let maxt = wanted.iter().map(|w| w.3).max().unwrap_or(mint);
    // One lookup for all selectors: a series selected by several is read (and counted
    // against `query.max_series`) once.
    let sels: Vec<Selector> = wanted.iter().map(|w| w.1.clone()).collect();
    let found = store
        .select_series(
            &sels,
            Some((mint, maxt)),
            limits.max_series,
            Some(remaining(deadline)?),
        )
        .await
        .map_err(store_error)?;
    let series = match found {
        store::SeriesSelection::Series(s) => s,
        store::SeriesSelection::OverLimit => {
            return Err(QueryError::Execution(too_many_series(limits.max_series)))
        }
    };
    // Which series each selector selects, and the range each series is read over.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); wanted.len()];
    let mut range_of: Vec<Option<(i64, i64)>> = vec![None; series.len()];
    for (i, s) in series.iter().enumerate() {
        for (j, w) in wanted.iter().enumerate() {
            if w.1.matches(&s.key) {
                members[j].push(i);
                range_of[i] = Some(match range_of[i] {
                    Some((lo, hi)) => (lo.min(w.2), hi.max(w.3)),
                    None => (w.2, w.3),
                });
            }
        }
    }
    if let Some(m) = members
        .iter()
        .find(|m| m.len() > limits.max_series_per_selector)
    {
        return Err(QueryError::BadData(format!(
            "a selector matches {} series, more than the {} one selector may read (`query.max_series_per_selector`); narrow it with more label matchers",
            m.len(),
            limits.max_series_per_selector
        )));
    }
    // One read per distinct range (usually one for the whole query).
    let mut by_range: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
    for (i, r) in range_of.iter().enumerate() {
        if let Some(r) = r {
            by_range.entry(*r).or_default().push(series[i].id);
        }
    }
    let mut points: HashMap<i64, Vec<(i64, f64)>> = HashMap::new();
    let mut loaded = 0usize;
    for ((lo, hi), ids) in by_range {
        let read = store
            .raw_points(&ids, lo, hi, Some(remaining(deadline)?))
            .await
            .map_err(store_error)?;
        for (id, p) in read {
            loaded += p.len();
            if loaded > limits.max_samples {
                return Err(QueryError::TooManySamples("query execution"));
            }
            points.insert(id, p);
        }
    }
    let shared: Vec<Option<Arc<Series>>> = series
        .into_iter()
        .map(|s| {
            let points = points.remove(&s.id)?;
            let labels = query::Labels::new(
                std::iter::once((query::value::METRIC_NAME.to_string(), s.key.metric)).chain(
                    s.key
                        .labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                ),
            );
            Some(Arc::new(Series { labels, points }))
        })
        .collect();
    let entries = wanted
        .into_iter()
        .zip(members)
        .map(|((matchers, _, lo, hi), m)| {
            let series = m.iter().filter_map(|&i| shared[i].clone()).collect();
            (matchers, lo, hi, series)
        })
        .collect();
    Ok(Prefetched { entries })
}

pub use query::plan::to_selector;
