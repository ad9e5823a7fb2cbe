//! Service discovery for the scrape manager: one task per scrape job watches its `file_sd`
//! files and polls its `http_sd` endpoints, relabels what they list together with the static
//! targets, and sends the job's whole target set to the scrape manager whenever it changes.
//!
//! Decoding and relabelling are pure and live in `collectors::sd` / `collectors::relabel`; this
//! module only does the I/O. As in Prometheus, a provider that fails (unreadable file, bad
//! JSON, HTTP error) keeps its last good target groups and records the error, which the
//! Targets page shows on every target that provider contributed.

use crate::config::ScrapeConfig;
use collectors::relabel::RelabelConfig;
use collectors::scrape::ScrapeTarget;
use collectors::sd::{self, JobDefaults, TargetGroup};
use model::Labels;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often file_sd files are checked for changes (a stat per file) between full re-reads.
/// Prometheus watches with inotify; a one-second stat poll finds a rewrite about as fast,
/// without a watcher per directory.
const FILE_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Everything one scrape job needs to discover and relabel its targets.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub defaults: JobDefaults,
    pub static_groups: Vec<TargetGroup>,
    pub file_sd: Vec<FileSdSpec>,
    pub http_sd: Vec<HttpSdSpec>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Arc<Vec<RelabelConfig>>,
}

#[derive(Debug, Clone)]
pub struct FileSdSpec {
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpSdSpec {
    pub url: String,
    pub refresh_interval: Duration,
}

impl JobSpec {
    pub fn from_config(c: &ScrapeConfig) -> Self {
        Self {
            defaults: JobDefaults {
                job_name: c.job_name.clone(),
                scheme: c.scheme.clone(),
                metrics_path: c.metrics_path.clone(),
                interval: c.scrape_interval,
                timeout: c.scrape_timeout,
            },
            static_groups: c
                .static_configs
                .iter()
                .map(|s| TargetGroup {
                    targets: s.targets.clone(),
                    labels: s.labels.clone(),
                })
                .collect(),
            file_sd: c
                .file_sd_configs
                .iter()
                .map(|f| FileSdSpec {
                    files: f.files.clone(),
                    refresh_interval: f.refresh_interval,
                })
                .collect(),
            http_sd: c
                .http_sd_configs
                .iter()
                .map(|h| HttpSdSpec {
                    url: h.url.clone(),
                    refresh_interval: h.refresh_interval,
                })
                .collect(),
            relabel_configs: c.relabel_configs.clone(),
            metric_relabel_configs: Arc::new(c.metric_relabel_configs.clone()),
        }
    }

    pub fn has_discovery(&self) -> bool {
        !self.file_sd.is_empty() || !self.http_sd.is_empty()
    }
}

/// A discovered target that survived relabelling.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTarget {
    pub target: ScrapeTarget,
    /// Labels before relabelling (`__address__`, `__meta_*`, group labels, job defaults).
    pub discovered: Labels,
    /// The current error of the provider that listed this target (its last good list is
    /// still used).
    pub discovery_error: Option<String>,
}

/// The whole target set of one job, as of the latest discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTargets {
    pub job: String,
    pub active: Vec<ActiveTarget>,
    /// Discovered label sets that relabelling dropped.
    pub dropped: Vec<Labels>,
    /// Provider errors and targets that could not be built, for logs.
    pub errors: Vec<String>,
}

/// One file of a file_sd config: its last good groups and its last error.
#[derive(Default)]
struct FileState {
    stamp: Option<(SystemTime, u64)>,
    groups: Vec<TargetGroup>,
    error: Option<String>,
}

struct FileProvider {
    name: String,
    spec: FileSdSpec,
    next_full: Instant,
    next_check: Instant,
    files: BTreeMap<PathBuf, FileState>,
    pattern_error: Option<String>,
}

impl FileProvider {
    /// Re-reads files that changed (or all of them every `refresh_interval`); true when the
    /// groups or errors changed.
    fn poll(&mut self, now: Instant) -> bool {
        if now < self.next_check {
            return false;
        }
        self.next_check = now + FILE_CHECK_PERIOD.min(self.spec.refresh_interval);
        let full = now >= self.next_full;
        if full {
            self.next_full = now + self.spec.refresh_interval;
        }
        let mut paths = Vec::new();
        let mut pattern_error = None;
        for pattern in &self.spec.files {
            match glob::glob(pattern) {
                Ok(found) => paths.extend(found.filter_map(Result::ok)),
                Err(e) => pattern_error = Some(format!("pattern {pattern:?}: {e}")),
            }
        }
        let mut changed = pattern_error != self.pattern_error;
        self.pattern_error = pattern_error;
        // A file that is gone takes its targets with it, as in Prometheus.
        let before = self.files.len();
        self.files.retain(|p, _| paths.contains(p));
        changed |= self.files.len() != before;
        for path in paths {
            let state = self.files.entry(path.clone()).or_default();
            let stamp = std::fs::metadata(&path)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            if !full && state.stamp.is_some() && state.stamp == stamp {
                continue;
            }
            state.stamp = stamp;
            let name = path.display().to_string();
            let result = std::fs::read(&path)
                .map_err(|e| format!("cannot read {name}: {e}"))
                .and_then(|bytes| {
                    sd::decode_file_sd(&name, &bytes).map_err(|e| format!("{name}: {e}"))
                });
            match result {
                Ok(groups) => {
                    changed |= groups != state.groups || state.error.is_some();
                    state.groups = groups;
                    state.error = None;
                }
                Err(e) => {
                    if state.error.as_ref() != Some(&e) {
                        tracing::warn!(provider = %self.name, error = %e, "file_sd: keeping the last good targets of this file");
                        changed = true;
                    }
                    state.error = Some(e);
                }
            }
        }
        changed
    }

    fn groups(&self) -> Vec<(Labels, &TargetGroup, Option<String>)> {
        let mut out = Vec::new();
        for (path, state) in &self.files {
            let error = state
                .error
                .clone()
                .or_else(|| self.pattern_error.clone())
                .map(|e| format!("{}: {e}", self.name));
            for g in &state.groups {
                let mut meta = Labels::from_pairs(g.labels.clone());
                meta.insert(sd::FILEPATH_LABEL, path.display().to_string());
                out.push((meta, g, error.clone()));
            }
        }
        out
    }

    fn errors(&self) -> Vec<String> {
        self.pattern_error
            .iter()
            .chain(self.files.values().filter_map(|s| s.error.as_ref()))
            .map(|e| format!("{}: {e}", self.name))
            .collect()
    }
}

struct HttpProvider {
    name: String,
    spec: HttpSdSpec,
    client: reqwest::Client,
    next: Instant,
    groups: Vec<TargetGroup>,
    error: Option<String>,
}

impl HttpProvider {
    async fn poll(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.spec.refresh_interval;
        match self.fetch().await {
            Ok(groups) => {
                let changed = groups != self.groups || self.error.is_some();
                self.groups = groups;
                self.error = None;
                changed
            }
            Err(e) => {
                let changed = self.error.as_ref() != Some(&e);
                if changed {
                    tracing::warn!(provider = %self.name, error = %e, "http_sd: keeping the last good targets");
                }
                self.error = Some(e);
                changed
            }
        }
    }

    /// One GET, with the headers Prometheus sends, and its checks of the answer.
    async fn fetch(&self) -> Result<Vec<TargetGroup>, String> {
        let url = &self.spec.url;
        let resp = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                "X-Prometheus-Refresh-Interval-Seconds",
                self.spec.refresh_interval.as_secs_f64().to_string(),
            )
            // Never longer than the refresh interval, so a hung endpoint cannot stall the job.
            .timeout(self.spec.refresh_interval.min(Duration::from_secs(30)))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("GET {url}: server returned HTTP status {status}"));
        }
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string();
        if !is_json_content_type(&ct) {
            return Err(format!(
                "GET {url}: unsupported content type {ct:?}; http_sd answers must be application/json"
            ));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: reading body: {e}"))?;
        sd::decode_target_groups_json(&body).map_err(|e| format!("GET {url}: {e}"))
    }

    fn groups(&self) -> Vec<(Labels, &TargetGroup, Option<String>)> {
        let error = self.error.as_ref().map(|e| format!("{}: {e}", self.name));
        self.groups
            .iter()
            .map(|g| {
                let mut meta = Labels::from_pairs(g.labels.clone());
                meta.insert(sd::URL_LABEL, self.spec.url.clone());
                (meta, g, error.clone())
            })
            .collect()
    }
}

/// Prometheus' `^(?i:application\/json(;\s*charset=("utf-8"|utf-8))?)$`.
fn is_json_content_type(ct: &str) -> bool {
    let lower = ct.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(params) = rest.strip_prefix(';') else {
        return false;
    };
    matches!(params.trim_start(), "charset=utf-8" | "charset=\"utf-8\"")
}

/// Watches one job's providers until `stop`, sending its target set at start and whenever it
/// changes.
pub async fn run_job(spec: JobSpec, tx: mpsc::Sender<JobTargets>, stop: CancellationToken) {
    let job = spec.defaults.job_name.clone();
    let now = Instant::now();
    let client = reqwest::Client::builder()
        .user_agent(collectors::scrape::USER_AGENT)
        .build()
        .expect("static HTTP client configuration");
    let mut files: Vec<FileProvider> = spec
        .file_sd
        .iter()
        .enumerate()
        .map(|(i, f)| FileProvider {
            name: format!("job {job:?} file_sd_configs[{i}]"),
            spec: f.clone(),
            next_full: now,
            next_check: now,
            files: BTreeMap::new(),
            pattern_error: None,
        })
        .collect();
    let mut https: Vec<HttpProvider> = spec
        .http_sd
        .iter()
        .enumerate()
        .map(|(i, h)| HttpProvider {
            name: format!("job {job:?} http_sd_configs[{i}]"),
            spec: h.clone(),
            client: client.clone(),
            next: now,
            groups: Vec::new(),
            error: None,
        })
        .collect();
    let tick = spec
        .file_sd
        .iter()
        .map(|f| f.refresh_interval)
        .chain(spec.http_sd.iter().map(|h| h.refresh_interval))
        .fold(FILE_CHECK_PERIOD, Duration::min);
    let mut first = true;
    loop {
        let now = Instant::now();
        let mut changed = first;
        for f in &mut files {
            changed |= f.poll(now);
        }
        for h in &mut https {
            tokio::select! {
                c = h.poll(now) => changed |= c,
                _ = stop.cancelled() => return,
            }
        }
        if changed {
            let set = build_job_targets(&spec, &files, &https);
            for e in &set.errors {
                tracing::debug!(job = %job, error = %e, "discovery");
            }
            tokio::select! {
                r = tx.send(set) => if r.is_err() { return },
                _ = stop.cancelled() => return,
            }
        }
        first = false;
        if !spec.has_discovery() {
            // Static targets only: nothing will ever change.
            stop.cancelled().await;
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.cancelled() => return,
        }
    }
}

fn build_job_targets(spec: &JobSpec, files: &[FileProvider], https: &[HttpProvider]) -> JobTargets {
    let mut groups: Vec<(Labels, &TargetGroup, Option<String>)> = spec
        .static_groups
        .iter()
        .map(|g| (Labels::from_pairs(g.labels.clone()), g, None))
        .collect();
    let mut errors = Vec::new();
    for f in files {
        groups.extend(f.groups());
        errors.extend(f.errors());
    }
    for h in https {
        groups.extend(h.groups());
        errors.extend(h.error.iter().map(|e| format!("{}: {e}", h.name)));
    }
    let mut active: Vec<ActiveTarget> = Vec::new();
    let mut dropped = Vec::new();
    for (group_labels, g, error) in groups {
        for address in &g.targets {
            let discovered = sd::discovered_labels(&spec.defaults, address, &group_labels);
            match sd::resolve_target(&spec.defaults.job_name, &discovered, &spec.relabel_configs) {
                Ok(Some(target)) => {
                    // The same target listed twice is scraped once, as in Prometheus.
                    if !active.iter().any(|a| a.target == target) {
                        active.push(ActiveTarget {
                            target,
                            discovered,
                            discovery_error: error.clone(),
                        });
                    }
                }
                Ok(None) => dropped.push(discovered),
                Err(e) => {
                    errors.push(format!("target {address:?}: {e}"));
                    dropped.push(discovered);
                }
            }
        }
    }
    JobTargets {
        job: spec.defaults.job_name.clone(),
        active,
        dropped,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_those_prometheus_accepts() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"utf-8\"",
        ] {
            assert!(is_json_content_type(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/json; charset=latin1",
            "",
        ] {
            assert!(!is_json_content_type(bad), "{bad}");
        }
    }
}
