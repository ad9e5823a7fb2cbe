//! The configuration file (TOML), environment overrides and validation.
//!
//! Every key can also be set from the environment: `PIPEWATCH_<SECTION>__<KEY>` (double
//! underscore between levels), e.g. `PIPEWATCH_INGEST__WRITERS=4` or `PIPEWATCH_SERVER__LISTEN`.
//! `DATABASE_URL` is honoured as `database.url`. Errors name the key and say how to fix it.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub ingest: IngestConfig,
    pub receivers: ReceiversConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the web app and the HTTP API.
    pub listen: SocketAddr,
    /// Where the embedded PostgreSQL cluster and other state live.
    pub data_dir: PathBuf,
    /// Folder with the browser bundle (`pkg/`), built by `scripts/build-site.sh`.
    pub site_root: PathBuf,
    /// How long shutdown may take to drain the ingest queue before giving up.
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".parse().expect("static address"),
            data_dir: PathBuf::from("pipewatch-data"),
            site_root: PathBuf::from("target/site"),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// PostgreSQL URL. Empty: start the embedded cluster under `server.data_dir`.
    pub url: String,
    /// Samples older than this many days are dropped (whole partitions).
    pub retention_days: u32,
    /// How often partitions, rollups and retention are maintained.
    #[serde(deserialize_with = "de_duration")]
    pub maintenance_interval: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            retention_days: 30,
            maintenance_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Samples the queue holds before receivers get 429/503 and scrapes wait.
    pub queue_capacity_samples: usize,
    /// A writer flushes when it holds this many samples...
    pub batch_max_samples: usize,
    /// ...or when its oldest sample has waited this long.
    #[serde(deserialize_with = "de_duration")]
    pub flush_interval: Duration,
    /// Parallel COPY writers.
    pub writers: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            queue_capacity_samples: 2_000_000,
            batch_max_samples: 50_000,
            flush_interval: Duration::from_secs(1),
            writers: 2,
        }
    }
}

/// Limits and answers of the push receivers (`POST /api/v1/write`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiversConfig {
    /// Largest request body read, in bytes as sent (compressed); larger requests get 413.
    pub max_body_bytes: usize,
    /// Largest decompressed body, in bytes; bounds what a small compressed body can expand to.
    pub max_decompressed_bytes: usize,
    /// Status when the ingest queue is full: 503 (every remote_write sender retries it) or 429
    /// (retried by Prometheus only with `queue_config.retry_on_http_429: true`; otherwise the
    /// sender drops the data). Both come with `Retry-After`.
    pub queue_full_status: u16,
    /// Address of the OTLP/gRPC receiver (`host:port`); empty turns it off. OTLP/HTTP is
    /// served on `server.listen` at `/v1/metrics`, `/v1/traces`, `/v1/logs`.
    pub otlp_grpc_listen: String,
}

impl Default for ReceiversConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_decompressed_bytes: 256 << 20,
            queue_full_status: 503,
            otlp_grpc_listen: "127.0.0.1:4317".into(),
        }
    }
}

impl ReceiversConfig {
    fn validate(&self) -> Result<()> {
        const MIN_BODY: usize = 1024;
        const MAX_BODY: usize = 1 << 30;
        if !(MIN_BODY..=MAX_BODY).contains(&self.max_body_bytes) {
            bail!(
                "key `receivers.max_body_bytes` must be between {MIN_BODY} and {MAX_BODY} (1 GiB), got {}",
                self.max_body_bytes
            );
        }
        if self.max_decompressed_bytes < self.max_body_bytes
            || self.max_decompressed_bytes > 4 * MAX_BODY
        {
            bail!(
                "key `receivers.max_decompressed_bytes` must be at least `receivers.max_body_bytes` ({}) and at most 4 GiB, got {}",
                self.max_body_bytes,
                self.max_decompressed_bytes
            );
        }
        if self.queue_full_status != 503 && self.queue_full_status != 429 {
            bail!(
                "key `receivers.queue_full_status` must be 503 or 429, got {}",
                self.queue_full_status
            );
        }
        if !self.otlp_grpc_listen.is_empty()
            && self
                .otlp_grpc_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            bail!(
                "key `receivers.otlp_grpc_listen` must be an address like \"127.0.0.1:4317\" or \"\" to turn the OTLP/gRPC receiver off, got {:?}",
                self.otlp_grpc_listen
            );
        }
        Ok(())
    }
}

/// Bearer tokens of the push receivers. With no tokens every receiver is open, which suits a
/// server on loopback; once one token is configured, requests without an accepted token get 401.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub tokens: Vec<TokenConfig>,
}

/// One accepted token: `[[auth.tokens]]`. The secret comes from exactly one of `token`,
/// `token_env` (an environment variable) or `token_file`; `name` is what logs and self-metrics
/// show, never the token.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Receivers this token may write to (`remote_write`, `otlp`, `dq`, `openlineage`,
    /// `alertmanager`); empty means all.
    #[serde(default)]
    pub receivers: Vec<String>,
}

impl std::fmt::Debug for TokenConfig {
    // Hand-written so the secret never reaches a log line or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_env", &self.token_env)
            .field("token_file", &self.token_file)
            .field("receivers", &self.receivers)
            .finish()
    }
}

/// The receivers a token can name.
pub const RECEIVER_NAMES: &[&str] = &[
    "remote_write",
    "otlp",
    "dq",
    "openlineage",
    "alertmanager",
    "events",
];

impl AuthConfig {
    fn validate(&self) -> Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let key = format!("auth.tokens[{i}]");
            if t.name.trim().is_empty() {
                bail!("key `{key}.name` is empty: give every token a name (it appears in logs instead of the token)");
            }
            if !names.insert(t.name.as_str()) {
                bail!(
                    "key `{key}.name`: {:?} is used by two tokens; names must be unique",
                    t.name
                );
            }
            let sources = [
                t.token.is_some(),
                t.token_env.is_some(),
                t.token_file.is_some(),
            ];
            if sources.iter().filter(|x| **x).count() != 1 {
                bail!("key `{key}`: set exactly one of `token`, `token_env` or `token_file` (token {:?})", t.name);
            }
            for r in &t.receivers {
                if !RECEIVER_NAMES.contains(&r.as_str()) {
                    bail!("key `{key}.receivers`: unknown receiver {r:?}; use some of {RECEIVER_NAMES:?}, or leave it out for all");
                }
            }
        }
        Ok(())
    }

    /// The tokens with their secrets read from the environment or files. Errors name the key.
    pub fn resolve(&self) -> Result<Vec<ResolvedToken>> {
        self.tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let key = format!("auth.tokens[{i}]");
                let secret = if let Some(s) = &t.token {
                    s.clone()
                } else if let Some(var) = &t.token_env {
                    std::env::var(var).map_err(|_| {
                        anyhow!("key `{key}.token_env`: environment variable {var} is not set (token {:?})", t.name)
                    })?
                } else if let Some(path) = &t.token_file {
                    std::fs::read_to_string(path)
                        .map_err(|e| {
                            anyhow!("key `{key}.token_file`: cannot read {}: {e} (token {:?})", path.display(), t.name)
                        })?
                        .trim()
                        .to_string()
                } else {
                    unreachable!("validate() checked one source is set")
                };
                if secret.len() < 16 || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    bail!("key `{key}`: token {:?} must be at least 16 characters without spaces (generate one with `openssl rand -hex 24`)", t.name);
                }
                Ok(ResolvedToken {
                    name: t.name.clone(),
                    secret,
                    receivers: t.receivers.clone(),
                })
            })
            .collect()
    }
}

/// A token ready to compare against requests.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedToken {
    pub name: String,
    pub secret: String,
    pub receivers: Vec<String>,
}

impl std::fmt::Debug for ResolvedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResolvedToken({:?}, receivers {:?})",
            self.name, self.receivers
        )
    }
}

/// Limits every push receiver applies to the series it is sent (`[limits]`). Series over a
/// limit are refused with a 4xx naming the limit; the rest of the request is stored. 0 turns a
/// limit off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Labels per series, not counting the metric name.
    pub max_labels_per_series: usize,
    /// Bytes in a label name (or metric name).
    pub max_label_name_length: usize,
    /// Bytes in a label value.
    pub max_label_value_length: usize,
    /// Series a metric may gain per minute (a cardinality-explosion brake).
    pub max_new_series_per_metric_per_minute: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_labels_per_series: 64,
            max_label_name_length: 1024,
            max_label_value_length: 4096,
            max_new_series_per_metric_per_minute: 10_000,
        }
    }
}

/// One scrape job, named and shaped like Prometheus' `scrape_configs` entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default = "default_interval", deserialize_with = "de_duration")]
    pub scrape_interval: Duration,
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    /// Every file is re-read this often even if it did not change; changes are picked up
    /// within a second.
    #[serde(default = "default_file_sd_refresh", deserialize_with = "de_duration")]
    pub refresh_interval: Duration,
}

/// Prometheus' `http_sd_config`: a URL answering `GET` with a JSON list of target groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    pub url: String,
    #[serde(default = "default_http_sd_refresh", deserialize_with = "de_duration")]
    pub refresh_interval: Duration,
}

fn default_file_sd_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_http_sd_refresh() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` entries.
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_interval() -> Duration {
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

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration ({e}); write it like \"15s\", \"500ms\" or \"1m\""
        ))
    })
}

impl Config {
    /// Loads the file (if any), applies environment overrides, and validates.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut value = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                text.parse::<toml::Table>()
                    .map_err(|e| anyhow!("config file {} is not valid TOML: {e}", p.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut value, std::env::vars())?;
        let origin = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".into());
        Self::from_table(value, &origin)
    }

    pub fn from_toml_str(text: &str) -> Result<Config> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| anyhow!("config is not valid TOML: {e}"))?;
        Self::from_table(table, "config")
    }

    fn from_table(table: toml::Table, origin: &str) -> Result<Config> {
        let de = toml::Value::Table(table);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            anyhow!("{origin}: key `{path}`: {}", e.into_inner())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let i = &self.ingest;
        if i.writers == 0 || i.writers > 64 {
            bail!(
                "key `ingest.writers` must be between 1 and 64, got {}",
                i.writers
            );
        }
        if i.batch_max_samples == 0 {
            bail!("key `ingest.batch_max_samples` must be at least 1");
        }
        if i.queue_capacity_samples < i.batch_max_samples {
            bail!(
                "key `ingest.queue_capacity_samples` ({}) must be at least `ingest.batch_max_samples` ({})",
                i.queue_capacity_samples,
                i.batch_max_samples
            );
        }
        if self.database.retention_days == 0 {
            bail!("key `database.retention_days` must be at least 1");
        }
        self.receivers.validate()?;
        self.auth.validate()?;
        let mut seen = std::collections::HashSet::new();
        for (n, job) in self.scrape_configs.iter().enumerate() {
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

    /// Expands the static configs into concrete scrape targets.
    pub fn scrape_targets(&self) -> Vec<collectors::scrape::ScrapeTarget> {
        let mut out = Vec::new();
        for job in &self.scrape_configs {
            for sc in &job.static_configs {
                for target in &sc.targets {
                    out.push(collectors::scrape::ScrapeTarget {
                        job: job.job_name.clone(),
                        url: format!("{}://{}{}", job.scheme, target, job.metrics_path),
                        labels: model::Labels::from_pairs(sc.labels.clone()),
                        interval: job.scrape_interval,
                        timeout: job.scrape_timeout,
                    });
                }
            }
        }
        out
    }
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

/// Applies `PIPEWATCH_A__B=value` and `DATABASE_URL` onto the TOML tree. A value that parses as
/// a TOML literal (number, bool, array) is taken as such, anything else as a string.
pub fn apply_env(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<()> {
    for (k, v) in vars {
        let path: Vec<String> = if k == "DATABASE_URL" {
            vec!["database".into(), "url".into()]
        } else if let Some(rest) = k.strip_prefix("PIPEWATCH_") {
            rest.split("__").map(|p| p.to_ascii_lowercase()).collect()
        } else {
            continue;
        };
        if path.len() < 2 || path.iter().any(|p| p.is_empty()) {
            // Not a config key (e.g. PIPEWATCH_URL used by the browser tests).
            continue;
        }
        let value = format!("v = {v}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(v.clone()));
        let mut cur = &mut *table;
        for part in &path[..path.len() - 1] {
            let entry = cur
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = entry
                .as_table_mut()
                .ok_or_else(|| anyhow!("environment variable {k}: `{part}` is not a section"))?;
        }
        cur.insert(path[path.len() - 1].clone(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", Config::from_toml_str(text).unwrap_err())
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.server.listen.port(), 9090);
        assert!(c.database.url.is_empty());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err("[ingest]\nwritters = 3\n");
        assert!(
            e.contains("ingest.writters") || e.contains("writters"),
            "{e}"
        );
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn bad_duration_names_the_key_and_the_format() {
        let e = err("[[scrape_configs]]\njob_name = \"a\"\nscrape_interval = \"fast\"\n");
        assert!(e.contains("scrape_configs[0].scrape_interval"), "{e}");
        assert!(e.contains("\"15s\""), "{e}");
    }

    #[test]
    fn timeout_longer_than_interval_is_refused() {
        let e = err("[[scrape_configs]]\njob_name = \"a\"\nscrape_interval = \"5s\"\nscrape_timeout = \"10s\"\n");
        assert!(e.contains("scrape_configs[0].scrape_timeout"), "{e}");
    }

    #[test]
    fn bad_target_is_named() {
        let e = err("[[scrape_configs]]\njob_name = \"a\"\nstatic_configs = [{ targets = [\"http://x:1/metrics\"] }]\n");
        assert!(
            e.contains("scrape_configs[0].static_configs[0].targets[0]"),
            "{e}"
        );
    }

    #[test]
    fn env_overrides_nested_keys() {
        let mut t = toml::Table::new();
        apply_env(
            &mut t,
            vec![
                ("PIPEWATCH_INGEST__WRITERS".to_string(), "4".to_string()),
                ("DATABASE_URL".to_string(), "postgres://x@h/db".to_string()),
                ("PIPEWATCH_URL".to_string(), "http://ignored".to_string()),
            ]
            .into_iter(),
        )
        .unwrap();
        let c = Config::from_table(t, "env").unwrap();
        assert_eq!(c.ingest.writers, 4);
        assert_eq!(c.database.url, "postgres://x@h/db");
    }

    #[test]
    fn the_documented_example_config_is_valid_and_matches_the_defaults() {
        let c = Config::from_toml_str(include_str!("../../pipewatch.example.toml")).unwrap();
        let d = Config::default();
        assert_eq!(c.server.listen, d.server.listen);
        assert_eq!(
            c.ingest.queue_capacity_samples,
            d.ingest.queue_capacity_samples
        );
        assert_eq!(c.ingest.batch_max_samples, d.ingest.batch_max_samples);
        assert_eq!(c.ingest.flush_interval, d.ingest.flush_interval);
        assert_eq!(c.database.retention_days, d.database.retention_days);
        assert_eq!(c.scrape_configs[0].scrape_interval, default_interval());
        assert_eq!(c.receivers, d.receivers);
        assert_eq!(c.limits, d.limits);
        assert_eq!(c.auth, d.auth);
    }

    #[test]
    fn tokens_are_validated_with_the_key_named_and_never_printed() {
        let e = err("[[auth.tokens]]\nname = \"a\"\n");
        assert!(
            e.contains("auth.tokens[0]") && e.contains("exactly one of"),
            "{e}"
        );
        let e = err("[[auth.tokens]]\nname = \"a\"\ntoken = \"x\"\ntoken_env = \"Y\"\n");
        assert!(e.contains("exactly one of"), "{e}");
        let e = err(
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\nreceivers = [\"prom\"]\n",
        );
        assert!(
            e.contains("auth.tokens[0].receivers") && e.contains("remote_write"),
            "{e}"
        );
        let e = err("[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdeg\"\n");
        assert!(e.contains("auth.tokens[1].name"), "{e}");

        let c = Config::from_toml_str(
            "[[auth.tokens]]\nname = \"short\"\ntoken = \"s3cret\"\n[[auth.tokens]]\nname = \"env\"\ntoken_env = \"PIPEWATCH_TEST_UNSET_TOKEN_VAR\"\n",
        )
        .unwrap();
        let e = c.auth.resolve().unwrap_err().to_string();
        assert!(
            e.contains("auth.tokens[0]") && e.contains("at least 16"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "the secret leaked into: {e}");
        assert!(!format!("{:?}", c.auth).contains("s3cret"));
        let c = Config::from_toml_str(
            "[[auth.tokens]]\nname = \"env\"\ntoken_env = \"PIPEWATCH_TEST_UNSET_TOKEN_VAR\"\n",
        )
        .unwrap();
        let e = c.auth.resolve().unwrap_err().to_string();
        assert!(
            e.contains("auth.tokens[0].token_env") && e.contains("PIPEWATCH_TEST_UNSET_TOKEN_VAR"),
            "{e}"
        );
    }

    #[test]
    fn receiver_limits_are_validated_with_the_key_named() {
        let e = err("[receivers]\nmax_body_bytes = 10\n");
        assert!(e.contains("receivers.max_body_bytes"), "{e}");
        let e = err("[receivers]\nmax_body_bytes = 4096\nmax_decompressed_bytes = 2048\n");
        assert!(e.contains("receivers.max_decompressed_bytes"), "{e}");
        let e = err("[receivers]\nqueue_full_status = 500\n");
        assert!(e.contains("must be 503 or 429"), "{e}");
        let e = err("[receivers]\nmax_body = 1\n");
        assert!(e.contains("unknown field"), "{e}");
        let c = Config::from_toml_str("[receivers]\nqueue_full_status = 429\n").unwrap();
        assert_eq!(c.receivers.queue_full_status, 429);
        assert_eq!(c.receivers.max_body_bytes, 32 << 20);
    }

    #[test]
    fn static_targets_expand_to_urls() {
        let c = Config::from_toml_str(
            "[[scrape_configs]]\njob_name = \"node\"\nstatic_configs = [{ targets = [\"127.0.0.1:9100\"], labels = { env = \"dev\" } }]\n",
        )
        .unwrap();
        let t = c.scrape_targets();
        assert_eq!(t[0].url, "http://127.0.0.1:9100/metrics");
        assert_eq!(t[0].labels.get("env"), Some("dev"));
    }
}
