//! `[[scrape_configs]]`: scrape jobs shaped like Prometheus' `scrape_configs` (static targets,
//! file and HTTP discovery, relabelling), and their validation.

use super::duration;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One scrape job, named and shaped like Prometheus' `scrape_configs` entries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default = "default_interval", with = "duration")]
    pub scrape_interval: Duration,
    #[serde(default = "default_timeout", with = "duration")]
    pub scrape_timeout: Duration,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Targets listed in JSON/YAML files, re-read when they change (Prometheus' `file_sd_configs`).
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Targets listed by an HTTP endpoint, polled (Prometheus' `http_sd_configs`).
    #[serde(default)]
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// Rules applied to each discovered target's labels before it is scraped; may drop it.
    #[serde(default)]
    pub relabel_configs: Vec<collectors::relabel::RelabelConfig>,
    /// Rules applied to each scraped series before it is stored; may drop it.
    #[serde(default)]
    pub metric_relabel_configs: Vec<collectors::relabel::RelabelConfig>,
}

/// Prometheus' `file_sd_config`: files (the last path element may be a `*` glob) ending in
/// `.json`, `.yml` or `.yaml`, each a list of `{targets: [...], labels: {...}}` groups.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    /// Every file is re-read this often even if it did not change; changes are picked up
    /// within a second.
    #[serde(default = "default_file_sd_refresh", with = "duration")]
    pub refresh_interval: Duration,
}

/// Prometheus' `http_sd_config`: a URL answering `GET` with a JSON list of target groups.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    pub url: String,
    #[serde(default = "default_http_sd_refresh", with = "duration")]
    pub refresh_interval: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` entries.
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_file_sd_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_http_sd_refresh() -> Duration {
    Duration::from_secs(60)
}
pub(super) fn default_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_scheme() -> String {
    "http".into()
}

/// Checks every job, naming the key (`scrape_configs[n]....`) and the fix.
pub(super) fn validate(jobs: &[ScrapeConfig]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (n, job) in jobs.iter().enumerate() {
        let key = format!("scrape_configs[{n}]");
        if job.job_name.trim().is_empty() {
            bail!("key `{key}.job_name` must not be empty");
        }
        if !seen.insert(job.job_name.clone()) {
            bail!(
                "key `{key}.job_name`: job {:?} is defined twice; job names must be unique",
                job.job_name
            );
        }
        if job.scrape_interval.is_zero() {
            bail!("key `{key}.scrape_interval` must be greater than 0");
        }
        if job.scrape_timeout > job.scrape_interval {
            bail!(
                "key `{key}.scrape_timeout` ({:?}) must not be longer than `scrape_interval` ({:?})",
                job.scrape_timeout,
                job.scrape_interval
            );
        }
        if job.scheme != "http" && job.scheme != "https" {
            bail!(
                "key `{key}.scheme` must be \"http\" or \"https\", got {:?}",
                job.scheme
            );
        }
        if !job.metrics_path.starts_with('/') {
            bail!(
                "key `{key}.metrics_path` must start with '/', got {:?}",
                job.metrics_path
            );
        }
        validate_discovery(job, &key)?;
        for (s, sc) in job.static_configs.iter().enumerate() {
            for (t, target) in sc.targets.iter().enumerate() {
                let url = format!("{}://{}{}", job.scheme, target, job.metrics_path);
                let ok = url::Url::parse(&url)
                    .ok()
                    .filter(|u| u.host_str().is_some() && !target.contains('/'));
                if ok.is_none() {
                    bail!(
                        "key `{key}.static_configs[{s}].targets[{t}]`: {target:?} is not a host:port like \"127.0.0.1:9100\""
                    );
                }
            }
        }
    }
    Ok(())
}

/// Checks the service discovery and relabelling parts of one scrape job, naming the key.
fn validate_discovery(job: &ScrapeConfig, key: &str) -> Result<()> {
    for (i, f) in job.file_sd_configs.iter().enumerate() {
        let fkey = format!("{key}.file_sd_configs[{i}]");
        if f.files.is_empty() {
            bail!("key `{fkey}.files` must list at least one file, like [\"targets/*.json\"]");
        }
        for (n, file) in f.files.iter().enumerate() {
            // Prometheus' patFileSDName: a glob only in the last path element, and a known
            // extension.
            let name = file.rsplit('/').next().unwrap_or(file);
            let dir = &file[..file.len() - name.len()];
            let ext_ok = [".json", ".yml", ".yaml"]
                .iter()
                .any(|e| file.to_ascii_lowercase().ends_with(e));
            if !ext_ok || dir.contains('*') || glob::Pattern::new(file).is_err() {
                bail!(
                    "key `{fkey}.files[{n}]`: {file:?} is not valid for file discovery; write a path ending in .json, .yml or .yaml, with `*` only in the file name"
                );
            }
        }
        if f.refresh_interval.is_zero() {
            bail!("key `{fkey}.refresh_interval` must be greater than 0");
        }
    }
    for (i, h) in job.http_sd_configs.iter().enumerate() {
        let hkey = format!("{key}.http_sd_configs[{i}]");
        let ok = url::Url::parse(&h.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if ok.is_none() {
            bail!(
                "key `{hkey}.url`: {:?} is not an http(s) URL like \"http://127.0.0.1:8000/targets\"",
                h.url
            );
        }
        if h.refresh_interval.is_zero() {
            bail!("key `{hkey}.refresh_interval` must be greater than 0");
        }
    }
    for (field, rules) in [
        ("relabel_configs", &job.relabel_configs),
        ("metric_relabel_configs", &job.metric_relabel_configs),
    ] {
        if let Err((i, e)) = collectors::relabel::validate_all(rules) {
            bail!("key `{key}.{field}[{i}]`: {e}");
        }
    }
    Ok(())
}
