//! Service discovery, the pure half: Prometheus' `file_sd` / `http_sd` target-group documents
//! decoded from bytes, and discovered targets turned into scrape targets through
//! `relabel_configs` (Prometheus' `scrape.PopulateLabels`).
//!
//! The I/O (reading files when they change, polling HTTP endpoints) lives in the server; this
//! module never touches the file system or the network, so it can be golden-tested and fuzzed.
//!
//! A target group is `{"targets": ["host:port", ...], "labels": {"name": "value"}}`; file_sd
//! accepts a JSON or YAML list of them, http_sd a JSON list. As in Prometheus, unknown fields in
//! a JSON group are refused, and every target becomes a label set with `__address__`.

use crate::relabel::{is_label_name, relabel, RelabelConfig};
use crate::scrape::ScrapeTarget;
use model::Labels;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
/// Set by file_sd on every target: the file it came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";
/// Set by http_sd on every target: the URL it came from.
pub const URL_LABEL: &str = "__meta_url";

/// One target group of a file_sd file or http_sd answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Why a target-group document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdError {
    #[error("not a JSON list of target groups like [{{\"targets\": [\"host:port\"], \"labels\": {{\"env\": \"prod\"}}}}]: {0}")]
    Json(String),
    #[error("not a YAML list of target groups like `- targets: [\"host:port\"]`: {0}")]
    Yaml(String),
    #[error("target group {group}: {name:?} is not a label name; label names match [a-zA-Z_][a-zA-Z0-9_]*")]
    BadLabelName { group: usize, name: String },
    #[error("target group {0} is null; every list item must be an object with \"targets\"")]
    NullGroup(usize),
    #[error("{0:?} is not a file_sd file name: it must end in .json, .yml or .yaml")]
    UnknownExtension(String),
}

/// Decodes a JSON list of target groups (file_sd `.json` files and http_sd answers).
pub fn decode_target_groups_json(bytes: &[u8]) -> Result<Vec<TargetGroup>, SdError> {
    // `null` items are refused as Prometheus does ("nil target group item found"); a `null`
    // document is an empty list, as Go's json.Unmarshal makes it.
    let groups: Option<Vec<Option<TargetGroup>>> =
        serde_json::from_slice(bytes).map_err(|e| SdError::Json(e.to_string()))?;
    check_groups(groups.unwrap_or_default())
}

/// Decodes a YAML list of target groups (file_sd `.yml` / `.yaml` files).
pub fn decode_target_groups_yaml(bytes: &[u8]) -> Result<Vec<TargetGroup>, SdError> {
    let groups: Option<Vec<Option<TargetGroup>>> =
        serde_yaml_ng::from_slice(bytes).map_err(|e| SdError::Yaml(e.to_string()))?;
    check_groups(groups.unwrap_or_default())
}

/// Decodes a file_sd file, choosing JSON or YAML by the file name's extension as Prometheus
/// does.
pub fn decode_file_sd(file_name: &str, bytes: &[u8]) -> Result<Vec<TargetGroup>, SdError> {
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".json") {
        decode_target_groups_json(bytes)
    } else if lower.ends_with(".yml") || lower.ends_with(".yaml") {
        decode_target_groups_yaml(bytes)
    } else {
        Err(SdError::UnknownExtension(file_name.to_string()))
    }
}

fn check_groups(groups: Vec<Option<TargetGroup>>) -> Result<Vec<TargetGroup>, SdError> {
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let g = g.ok_or(SdError::NullGroup(i))?;
            if let Some(name) = g.labels.keys().find(|n| !is_label_name(n)) {
                return Err(SdError::BadLabelName {
                    group: i,
                    name: name.clone(),
                });
            }
            Ok(g)
        })
        .collect()
}

/// What a scrape job contributes to every target's discovered labels.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDefaults {
    pub job_name: String,
    pub scheme: String,
    pub metrics_path: String,
    pub interval: Duration,
    pub timeout: Duration,
}

/// The labels Prometheus shows as "discovered labels": the target's `__address__`, its group's
/// labels, then the job's `job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__` and
/// `__scrape_timeout__` where the group did not set them (`scrape.PopulateDiscoveredLabels`).
pub fn discovered_labels(job: &JobDefaults, address: &str, group_labels: &Labels) -> Labels {
    let mut lb = group_labels.clone();
    lb.insert(ADDRESS_LABEL, address);
    for (name, value) in [
        ("job", job.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, format_duration(job.interval)),
        (SCRAPE_TIMEOUT_LABEL, format_duration(job.timeout)),
        (METRICS_PATH_LABEL, job.metrics_path.clone()),
        (SCHEME_LABEL, job.scheme.clone()),
    ] {
        if lb.get(name).is_none() {
            lb.insert(name, value);
        }
    }
    lb
}

/// Why a discovered target cannot be scraped (Prometheus' `PopulateLabels` errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no __address__ label after relabelling")]
    NoAddress,
    #[error("__address__ {0:?} is not a host:port (it must not contain '/')")]
    BadAddress(String),
    #[error("__scheme__ {0:?} is neither http nor https")]
    BadScheme(String),
    #[error("{label} {value:?} is not a duration like \"15s\"")]
    BadDuration { label: &'static str, value: String },
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutOverInterval { timeout: String, interval: String },
    #[error("URL {0:?} built from __scheme__, __address__ and __metrics_path__ is not valid")]
    BadUrl(String),
}

/// Relabels a discovered target and builds its scrape target. `Ok(None)`: a rule dropped it.
/// The scrape target's labels are the relabelled labels without the `__` ones, with `instance`
/// defaulting to `__address__`.
pub fn resolve_target(
    job_name: &str,
    discovered: &Labels,
    rules: &[RelabelConfig],
) -> Result<Option<ScrapeTarget>, TargetError> {
    let Some(lb) = relabel(discovered, rules) else {
        return Ok(None);
    };
    let addr = lb.get(ADDRESS_LABEL).ok_or(TargetError::NoAddress)?;
    if addr.contains('/') {
        return Err(TargetError::BadAddress(addr.to_string()));
    }
    let scheme = lb.get(SCHEME_LABEL).unwrap_or("http");
    if scheme != "http" && scheme != "https" {
        return Err(TargetError::BadScheme(scheme.to_string()));
    }
    let duration = |label: &'static str| {
        let value = lb.get(label).unwrap_or("");
        humantime::parse_duration(value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| TargetError::BadDuration {
                label,
                value: value.to_string(),
            })
    };
    let interval = duration(SCRAPE_INTERVAL_LABEL)?;
    let timeout = duration(SCRAPE_TIMEOUT_LABEL)?;
    if timeout > interval {
        return Err(TargetError::TimeoutOverInterval {
            timeout: lb.get(SCRAPE_TIMEOUT_LABEL).unwrap_or("").to_string(),
            interval: lb.get(SCRAPE_INTERVAL_LABEL).unwrap_or("").to_string(),
        });
    }
    let path = lb.get(METRICS_PATH_LABEL).unwrap_or("");
    let raw = format!("{scheme}://{addr}{path}");
    let mut url = reqwest::Url::parse(&raw).map_err(|_| TargetError::BadUrl(raw.clone()))?;
    if url.host_str().is_none() {
        return Err(TargetError::BadUrl(raw));
    }
    let params: Vec<(&str, &str)> = lb
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(PARAM_LABEL_PREFIX).map(|p| (p, v)))
        .collect();
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    let mut labels = Labels::new();
    for (k, v) in lb.iter() {
        if !k.starts_with("__") {
            labels.insert(k, v);
        }
    }
    if labels.get("instance").is_none() {
        labels.insert("instance", addr);
    }
    Ok(Some(ScrapeTarget {
        job: job_name.to_string(),
        url: url.to_string(),
        labels,
        interval,
        timeout,
    }))
}

/// Durations as Prometheus writes them in `__scrape_interval__` (`15s`, `1m`, `1m30s`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}
