//! Prometheus' catalogue routes as Grafana and promtool call them: `/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/<name>/values` (each GET or form-encoded POST) and
//! `/api/v1/metadata`.
//!
//! `match[]` is a PromQL series selector (`up`, `{job=~"etl.*"}`), repeated for a union;
//! `start`/`end` (Unix seconds or RFC 3339) keep the series live in that range by
//! [`store::LIVE_IN_RANGE`]'s rule; `limit` truncates the answer with Prometheus' warning.
//! Errors are Prometheus' `bad_data` with the parameter named.

use super::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Uri};
use axum::routing::get;
use axum::{Json, Router};
use model::Selector;
use promql_parser::parser::Expr;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Most `match[]` parameters one request may carry: each is a lookup in the series table.
pub const MAX_MATCH_PARAMS: usize = 100;

/// The Prometheus warning when `limit` cut the answer short.
const TRUNCATED: &str = "results truncated due to limit";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route(
            "/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/api/v1/metadata", get(metadata).post(metadata))
        .with_state(state)
}

/// A success body with Prometheus' optional `warnings`.
#[derive(Serialize)]
struct Answer<T: Serialize> {
    status: &'static str,
    data: T,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<&'static str>,
}

fn answer<T: Serialize>(data: T, truncated: bool) -> Json<Answer<T>> {
    Json(Answer {
        status: "success",
        data,
        warnings: if truncated { vec![TRUNCATED] } else { vec![] },
    })
}

/// The request's parameters: the query string, then a form-encoded body (Prometheus'
/// `ParseForm` takes both), repeated keys kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn read(uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        if !body.is_empty() {
            let form = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
            if !form {
                return Err(ApiError::bad_data(
                    "the request body is not form-encoded: send the parameters in the URL or as a body with Content-Type: application/x-www-form-urlencoded",
                ));
            }
            pairs.extend(url::form_urlencoded::parse(&body[..]).into_owned());
        }
        Ok(Params(pairs))
    }

    /// The first non-empty value of `name`, as Go's `FormValue` returns it.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every `match[]`, parsed as series selectors.
    fn matchers(&self) -> Result<Vec<Selector>, ApiError> {
        let raw: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k == "match[]")
            .map(|(_, v)| v.as_str())
            .collect();
        if raw.len() > MAX_MATCH_PARAMS {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"match[]\": {} selectors given, at most {MAX_MATCH_PARAMS} are accepted; combine them with a regex matcher such as {{__name__=~\"a|b\"}}",
                raw.len()
            )));
        }
        // A repeated `match[]` is parsed (and its regexes compiled) once.
        let mut distinct: Vec<&str> = Vec::with_capacity(raw.len());
        for s in raw {
            if !distinct.contains(&s) {
                distinct.push(s);
            }
        }
        distinct
            .into_iter()
            .map(|s| {
                parse_series_selector(s)
                    .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))
            })
            .collect()
    }

    /// `start`/`end` as a range in Unix ms; None when neither is given (all time, as
    /// Prometheus' defaults minTime/maxTime are).
    fn range(&self) -> Result<Option<(i64, i64)>, ApiError> {
        let time = |name: &str| -> Result<Option<i64>, ApiError> {
            self.get(name)
                .map(|v| {
                    super::promql::parse_time(name, v).map_err(|e| ApiError::bad_data(e.message()))
                })
                .transpose()
        };
        let (start, end) = (time("start")?, time("end")?);
        if start.is_none() && end.is_none() {
            return Ok(None);
        }
        let (start, end) = (start.unwrap_or(i64::MIN / 4), end.unwrap_or(i64::MAX / 4));
        if end < start {
            return Err(ApiError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        Ok(Some((start, end)))
    }

    /// `limit`: at most this many entries; absent or 0 is no limit (as in Prometheus 2.51+,
    /// which added the parameter).
    fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(usize::MAX),
            Some(v) => match v.parse::<i64>() {
                Ok(0) => Ok(usize::MAX),
                Ok(n) if n > 0 => Ok(n as usize),
                _ => Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": {v:?} is not a non-negative integer; give the most entries to return, or 0 for all"
                ))),
            },
        }
    }
}

/// Prometheus' `ParseMetricSelector`: a bare series selector, without range, offset or `@`,
/// with at least one matcher that does not match the empty string.
pub fn parse_series_selector(s: &str) -> Result<Selector, String> {
    let expr = promql_parser::parser::parse(s)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "{s:?} is not a series selector: give a metric name and/or label matchers, like up or {{job=\"etl\"}}"
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(format!(
            "{s:?} has an offset or @ modifier, which a series selector cannot have"
        ));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(format!(
            "{s:?} uses `or` between matcher sets, which pipewatch does not support; send one match[] per set"
        ));
    }
    crate::promql::to_selector(&query::plan::matchers_of(&vs)).map_err(|e| e.to_string())
}

/// Series matching any of `sels`, live in `range`, each once, sorted by metric and labels;
/// refused with 422 `execution` when they are more than `query.max_series` together.
async fn union(
    st: &AppState,
    sels: &[Selector],
    range: Option<(i64, i64)>,
) -> Result<Vec<store::SeriesInfo>, ApiError> {
    let max = st.query_limits.max_series;
    match st.store.select_series(sels, range, max, None).await? {
        store::SeriesSelection::Series(s) => Ok(s),
        store::SeriesSelection::OverLimit => Err(ApiError::execution(format!(
            "the match[] selectors select more than {max} series, the most one request may read (`query.max_series`); narrow them with more label matchers, or give a start/end range"
        ))),
    }
}

fn labels_json(s: &store::SeriesInfo) -> Value {
    let mut m = Map::new();
    m.insert("__name__".into(), Value::String(s.key.metric.clone()));
    for (k, v) in s.key.labels.iter() {
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Value::Object(m)
}

/// Keeps the first `limit` entries; says whether any were cut.
fn truncate<T>(v: &mut Vec<T>, limit: usize) -> bool {
    let cut = v.len() > limit;
    v.truncate(limit);
    cut
}

async fn series(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Answer<Vec<Value>>>, ApiError> {
    let p = Params::read(&uri, &headers, &body)?;
    let sels = p.matchers()?;
    if sels.is_empty() {
        return Err(ApiError::bad_data(
            "no match[] parameter provided: add at least one series selector, e.g. /api/v1/series?match[]=up",
        ));
    }
    let (range, limit) = (p.range()?, p.limit()?);
    let mut data: Vec<Value> = union(&st, &sels, range)
        .await?
        .iter()
        .map(labels_json)
        .collect();
    let cut = truncate(&mut data, limit);
    Ok(answer(data, cut))
}

async fn labels(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Answer<Vec<String>>>, ApiError> {
    let p = Params::read(&uri, &headers, &body)?;
    let (sels, range, limit) = (p.matchers()?, p.range()?, p.limit()?);
    let mut names: Vec<String> = if sels.is_empty() {
        st.store.label_names_in(range).await?
    } else {
        let mut set = BTreeSet::new();
        for s in union(&st, &sels, range).await? {
            set.insert("__name__".to_string());
            set.extend(s.key.labels.iter().map(|(k, _)| k.to_string()));
        }
        set.into_iter().collect()
    };
    let cut = truncate(&mut names, limit);
    Ok(answer(names, cut))
}

/// Prometheus' (pre-UTF-8) label name rule.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

async fn label_values(
    State(st): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Answer<Vec<String>>>, ApiError> {
    if !is_label_name(&name) {
        return Err(ApiError::bad_data(format!(
            "invalid label name: {name:?}; a label name is letters, digits and underscores, not starting with a digit"
        )));
    }
    let p = Params::read(&uri, &headers, &body)?;
    let (sels, range, limit) = (p.matchers()?, p.range()?, p.limit()?);
    let mut values: Vec<String> = if sels.is_empty() {
        st.store.label_values_in(&name, range).await?
    } else {
        let mut set = BTreeSet::new();
        for s in union(&st, &sels, range).await? {
            if name == "__name__" {
                set.insert(s.key.metric);
            } else if let Some(v) = s.key.labels.get(&name) {
                set.insert(v.to_string());
            }
        }
        set.into_iter().collect()
    };
    let cut = truncate(&mut values, limit);
    Ok(answer(values, cut))
}

/// One entry of `/api/v1/metadata`, as Prometheus writes it.
#[derive(Serialize)]
struct MetadataEntry {
    #[serde(rename = "type")]
    metric_type: String,
    help: String,
    unit: String,
}

/// `/api/v1/metadata`: per metric family, the type, help and unit the receivers last
/// reported (scrapes, remote_write metadata, OTLP). Prometheus serves only what its active
/// scrape targets reported; pipewatch serves what it stored, from every source.
async fn metadata(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Answer<BTreeMap<String, Vec<MetadataEntry>>>>, ApiError> {
    let p = Params::read(&uri, &headers, &body)?;
    let limit = match p.get("limit") {
        None => usize::MAX,
        Some(v) => match v.parse::<i64>() {
            // Prometheus: a negative limit is no limit.
            Ok(n) if n < 0 => usize::MAX,
            Ok(n) => n as usize,
            Err(_) => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": {v:?} is not a number; give the most metrics to return"
                )))
            }
        },
    };
    let families = st.store.metric_metadata(p.get("metric")).await?;
    let mut out = BTreeMap::new();
    for f in families.into_iter().take(limit) {
        out.insert(
            f.family,
            vec![MetadataEntry {
                // The text format's `untyped` is Prometheus' `unknown`.
                metric_type: if f.metric_type == "untyped" {
                    "unknown".to_string()
                } else {
                    f.metric_type
                },
                help: f.help,
                unit: f.unit,
            }],
        );
    }
    Ok(answer(out, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_selectors_parse_as_prometheus_match_params() {
        let s = parse_series_selector("up").unwrap();
        assert_eq!(s.metric.as_deref(), Some("up"));
        let s = parse_series_selector(r#"{__name__=~"pw_.*", job!="x"}"#).unwrap();
        assert_eq!(s.metric, None);
        assert_eq!(s.matchers.len(), 2);
        for bad in [
            "rate(up[5m])",
            "up[5m]",
            "up offset 5m",
            "{}",
            r#"{job=""}"#,
            "1",
        ] {
            assert!(parse_series_selector(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn label_names_follow_prometheus_rule() {
        assert!(is_label_name("job") && is_label_name("_x1") && is_label_name("__name__"));
        assert!(!is_label_name("1a") && !is_label_name("a-b") && !is_label_name(""));
    }

    #[test]
    fn limits_truncate_and_say_so() {
        let mut v = vec![1, 2, 3];
        assert!(truncate(&mut v, 2));
        assert_eq!(v, vec![1, 2]);
        assert!(!truncate(&mut v, usize::MAX));
    }
}
