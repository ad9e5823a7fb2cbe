//! Which series a query reads, and over which time range: the list a database-backed caller
//! fetches before evaluating (the engine itself never does I/O). The ranges follow Prometheus'
//! own `getTimeRangesForSelector`: the query range widened by the lookback or the range
//! selector's window, by every enclosing subquery's range and offset, and by the selector's
//! own offset; an `@` pins the range to its time.

use crate::eval::{duration_ms, offset_ms, system_time_ms, EngineOptions};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{AtModifier, Expr, VectorSelector};

/// One selector of a query and the time range its samples are needed for.
#[derive(Clone, Debug)]
pub struct SelectorRange {
    /// All matchers of the selector, the metric name included as a `__name__` matcher.
    pub matchers: Vec<Matcher>,
    pub mint: i64,
    pub maxt: i64,
}

/// The selectors of `expr` evaluated from `start` to `end` (equal for an instant query).
pub fn selectors(expr: &Expr, start: i64, end: i64, opts: &EngineOptions) -> Vec<SelectorRange> {
    let mut out = Vec::new();
    walk_ranges(expr, start, end, 0, opts, &mut |vs, mint, maxt| {
        out.push(SelectorRange {
            matchers: matchers_of(vs),
            mint,
            maxt,
        });
    });
    out
}

/// All matchers of a selector, its metric name (`foo{...}`) as a `__name__` matcher.
pub fn matchers_of(vs: &VectorSelector) -> Vec<Matcher> {
    let mut matchers = vs.matchers.matchers.clone();
    if let Some(name) = &vs.name {
        if !matchers.iter().any(|m| m.name == crate::value::METRIC_NAME) {
            matchers.push(Matcher::new(
                MatchOp::Equal,
                crate::value::METRIC_NAME,
                name,
            ));
        }
    }
    matchers
}

#[derive(Clone, Copy)]
struct SubqueryPath {
    offset: i64,
    range: i64,
    at: Option<i64>,
}

pub(crate) fn walk_ranges(
    expr: &Expr,
    start: i64,
    end: i64,
    _step: i64,
    opts: &EngineOptions,
    f: &mut dyn FnMut(&VectorSelector, i64, i64),
) {
    let path = SubqueryPath {
        offset: 0,
        range: 0,
        at: None,
    };
    walk(expr, start, end, opts, path, f);
}

fn resolve_at(at: &Option<AtModifier>, start: i64, end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(start),
        Some(AtModifier::End) => Some(end),
        Some(AtModifier::At(t)) => Some(system_time_ms(t)),
    }
}

fn walk(
    expr: &Expr,
    start: i64,
    end: i64,
    opts: &EngineOptions,
    path: SubqueryPath,
    f: &mut dyn FnMut(&VectorSelector, i64, i64),
) {
    match expr {
        Expr::VectorSelector(vs) => {
            selector_range(vs, opts.lookback_ms, start, end, path, f);
        }
        Expr::MatrixSelector(ms) => {
            // The callback must see the node inside the expression: its address keys the
            // engine's fetch cache.
            selector_range(&ms.vs, duration_ms(&ms.range), start, end, path, f);
        }
        Expr::Subquery(sq) => {
            let off = offset_ms(&sq.offset);
            let range = duration_ms(&sq.range);
            let p = match resolve_at(&sq.at, start, end) {
                Some(t) => SubqueryPath {
                    offset: off,
                    range,
                    at: Some(t),
                },
                None => SubqueryPath {
                    offset: path.offset.saturating_add(off),
                    range: path.range.saturating_add(range),
                    at: path.at,
                },
            };
            walk(&sq.expr, start, end, opts, p, f);
        }
        Expr::Paren(p) => walk(&p.expr, start, end, opts, path, f),
        Expr::Unary(u) => walk(&u.expr, start, end, opts, path, f),
        Expr::Binary(b) => {
            walk(&b.lhs, start, end, opts, path, f);
            walk(&b.rhs, start, end, opts, path, f);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, start, end, opts, path, f);
            }
            walk(&a.expr, start, end, opts, path, f);
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, start, end, opts, path, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Reports the range one selector reads: the query's (or an `@`'s) time span, widened back by
/// `window` (the lookback for an instant selector, the range for a range selector) and by the
/// enclosing subqueries, shifted by the offsets.
fn selector_range(
    vs: &VectorSelector,
    window: i64,
    start: i64,
    end: i64,
    path: SubqueryPath,
    f: &mut dyn FnMut(&VectorSelector, i64, i64),
) {
    let (mut s, mut e) = match path.at {
        Some(t) => (t, t),
        None => (start, end),
    };
    if let Some(t) = resolve_at(&vs.at, start, end) {
        s = t;
        e = t;
    } else {
        s = s.saturating_sub(path.offset).saturating_sub(path.range);
        e = e.saturating_sub(path.offset);
    }
    s = s.saturating_sub(window);
    let own = offset_ms(&vs.offset);
    f(vs, s.saturating_sub(own), e.saturating_sub(own));
}

/// The store's selector for a PromQL selector's matchers: an equality on `__name__` becomes
/// the metric (so SQL narrows by it), every other matcher is applied as written.
pub fn to_selector(matchers: &[Matcher]) -> Result<model::Selector, crate::QueryError> {
    use model::MatchOp as ModelOp;
    let mut metric = None;
    let mut out = Vec::new();
    for m in matchers {
        if m.name == crate::value::METRIC_NAME && matches!(m.op, MatchOp::Equal) && metric.is_none()
        {
            metric = Some(m.value.clone());
            continue;
        }
        let op = match m.op {
            MatchOp::Equal => ModelOp::Eq,
            MatchOp::NotEqual => ModelOp::Neq,
            MatchOp::Re(_) => ModelOp::Re,
            MatchOp::NotRe(_) => ModelOp::Nre,
        };
        out.push(
            model::LabelMatcher::new(m.name.clone(), op, m.value.clone())
                .map_err(|e| crate::QueryError::BadData(e.message))?,
        );
    }
    Ok(model::Selector {
        metric,
        matchers: out,
    })
}

/// The first series selector a PromQL query reads (what a query builder preselects), or None
/// when the query does not parse or reads no series.
pub fn first_selector(q: &str) -> Option<model::Selector> {
    let expr = crate::parse(q).ok()?;
    let first = selectors(&expr, 0, 0, &EngineOptions::default())
        .into_iter()
        .next()?;
    to_selector(&first.matchers).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_selector_finds_the_metric_and_labels_inside_functions() {
        let s = first_selector(
            r#"histogram_quantile(0.95, sum by (le) (rate(x_bucket{a="b",c=~"d.*"}[5m])))"#,
        )
        .unwrap();
        assert_eq!(s.metric.as_deref(), Some("x_bucket"));
        assert_eq!(s.to_string(), r#"x_bucket{a="b",c=~"d.*"}"#);
        assert_eq!(first_selector("rate(x[5m)"), None, "does not parse");
        assert_eq!(first_selector("vector(1)"), None, "reads no series");
    }
}
