//! PromQL over the store: lists what a query reads ([`query::plan::selectors`]), fetches those
//! raw samples from PostgreSQL, and evaluates on the blocking pool with a deadline, so the
//! pure engine in the `query` crate never does I/O and a slow query never holds an async
//! worker.

use promql_parser::label::Matcher;
use query::{EngineOptions, Expr, QueryError, Series, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    let work = async {
        let data = prefetch(store, &expr, start, end, &opts, limits).await?;
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

/// One fetched selector: its matchers, the range fetched, and the series.
type Fetched = (Vec<Matcher>, i64, i64, Vec<Arc<Series>>);

/// The raw samples a query reads, fetched once per distinct selector and range.
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
        Ok(series.clone())
    }
}

async fn prefetch(
    store: &store::Store,
    expr: &Expr,
    start: i64,
    end: i64,
    opts: &EngineOptions,
    limits: &QueryLimits,
) -> Result<Prefetched, QueryError> {
    let mut entries: Vec<Fetched> = Vec::new();
    let mut loaded = 0usize;
    for sel in query::plan::selectors(expr, start, end, opts) {
        if let Some(e) = entries.iter_mut().find(|e| e.0 == sel.matchers) {
            if e.1 <= sel.mint && sel.maxt <= e.2 {
                continue;
            }
            // Same selector over another range: fetch the union once more.
            e.1 = e.1.min(sel.mint);
            e.2 = e.2.max(sel.maxt);
            let (lo, hi) = (e.1, e.2);
            e.3 = fetch(store, &sel.matchers, lo, hi, limits, &mut loaded).await?;
            continue;
        }
        let series = fetch(
            store,
            &sel.matchers,
            sel.mint,
            sel.maxt,
            limits,
            &mut loaded,
        )
        .await?;
        entries.push((sel.matchers, sel.mint, sel.maxt, series));
    }
    Ok(Prefetched { entries })
}

async fn fetch(
    store: &store::Store,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
    limits: &QueryLimits,
    loaded: &mut usize,
) -> Result<Vec<Arc<Series>>, QueryError> {
    let sel = to_selector(matchers)?;
    let raw = store
        .raw_samples(&sel, mint, maxt, limits.max_series_per_selector)
        .await
        .map_err(|e| match e {
            store::StoreError::InvalidQuery(m) => QueryError::BadData(m),
            e if e.is_refused_data() => QueryError::BadData(format!(
                "the database cannot use a value of this query: {e}; remove NUL bytes and out-of-range numbers"
            )),
            e if e.is_read_timeout() => {
                QueryError::Timeout("reading from the database (database.read_statement_timeout)")
            }
            other => QueryError::Storage(other.to_string()),
        })?;
    let mut out = Vec::with_capacity(raw.len());
    for (key, points) in raw {
        *loaded += points.len();
        if *loaded > limits.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        let labels = query::Labels::new(
            std::iter::once((query::value::METRIC_NAME.to_string(), key.metric)).chain(
                key.labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            ),
        );
        out.push(Arc::new(Series { labels, points }));
    }
    Ok(out)
}

pub use query::plan::to_selector;
