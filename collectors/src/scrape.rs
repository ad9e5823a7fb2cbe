//! The Prometheus-style scraper: one HTTP GET of a target's `/metrics`, parsed into a batch
//! labelled with the target's identity, plus the synthetic `up`/`scrape_*` series Prometheus
//! writes for every scrape.
//!
//! Behaviour follows Prometheus with `honor_labels: false`: the request carries Prometheus'
//! `Accept`, `Accept-Encoding: gzip` and `X-Prometheus-Scrape-Timeout-Seconds` headers; every
//! scraped series gets `job`, `instance` and the target's labels, and a scraped label that
//! clashes with one of them is kept as `exported_<name>`; a target that fails in any way is
//! down and contributes only the synthetic series.

use crate::prometheus_text::{self, format_from_content_type};
use model::{
    Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TimeSeries, TimestampMs,
};
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use std::time::{Duration, Instant};

/// What Prometheus 2.42 sends: OpenMetrics preferred, text 0.0.4 accepted, anything else last.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `User-Agent` of every scrape, so target owners can tell pipewatch from Prometheus.
pub const USER_AGENT: &str = concat!("pipewatch/", env!("CARGO_PKG_VERSION"));

/// One endpoint to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeTarget {
    pub job: String,
    pub url: String,
    /// Extra labels put on every series of this target; an `instance` here replaces the
    /// default host:port, as in a Prometheus static config.
    pub labels: Labels,
    pub interval: Duration,
    pub timeout: Duration,
}

impl ScrapeTarget {
    /// `host:port` of the URL, with the scheme's default port when none is written
    /// (Prometheus' `instance` for a static target).
    pub fn instance(&self) -> String {
        match reqwest::Url::parse(&self.url) {
            Ok(u) => match (u.host_str(), u.port_or_known_default()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => self.url.clone(),
            },
            Err(_) => self.url.clone(),
        }
    }

    /// `job`, `instance` and the configured labels: what identifies this target's series.
    pub fn target_labels(&self) -> Labels {
        let mut l = Labels::from_pairs([("job", self.job.clone()), ("instance", self.instance())]);
        for (k, v) in self.labels.iter() {
            l.insert(k, v);
        }
        l
    }
}

/// Result of one scrape. `batch` always holds the synthetic series; when `up` is false it
/// holds nothing else and `error` says why.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeOutcome {
    pub batch: Batch,
    pub up: bool,
    pub duration: Duration,
    pub error: Option<String>,
    pub samples_scraped: usize,
}

/// Performs scrapes; cheap to share, as it holds one pooled HTTP client.
#[derive(Debug, Clone)]
pub struct Scraper {
    client: reqwest::Client,
}

impl Default for Scraper {
    fn default() -> Self {
        Self::new()
    }
}

impl Scraper {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            // reqwest then sends `Accept-Encoding: gzip` and decodes gzip bodies itself.
            .gzip(true)
            .build()
            .expect("the HTTP client configuration is static and valid");
        Self { client }
    }

    /// Scrapes `t` once. `now_ms` is the scrape's start time: it stamps every sample without
    /// its own timestamp and the synthetic series.
    pub async fn scrape(&self, t: &ScrapeTarget, now_ms: TimestampMs) -> ScrapeOutcome {
        let started = Instant::now();
        let result = match tokio::time::timeout(t.timeout, self.fetch_and_parse(t, now_ms)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "GET {} timed out after {}",
                t.url,
                human_duration(t.timeout)
            )),
        };
        let duration = started.elapsed();
        let target_labels = t.target_labels();
        let (mut batch, error) = match result {
            Ok(mut batch) => {
                for s in &mut batch.series {
                    attach_target_labels(&mut s.key.labels, &target_labels);
                }
                (batch, None)
            }
            Err(e) => (Batch::default(), Some(e)),
        };
        let up = error.is_none();
        let samples_scraped = batch.sample_count();
        for (name, help, value) in [
            (
                "up",
                "1 if the last scrape of the target succeeded, 0 if it failed.",
                if up { 1.0 } else { 0.0 },
            ),
            (
                "scrape_duration_seconds",
                "Duration of the scrape in seconds.",
                duration.as_secs_f64(),
            ),
            (
                "scrape_samples_scraped",
                "Number of samples the target exposed.",
                samples_scraped as f64,
            ),
        ] {
            batch.series.push(TimeSeries {
                key: SeriesKey::new(name, target_labels.clone()),
                metric_type: MetricType::Gauge,
                samples: vec![Sample { ts: now_ms, value }],
            });
            batch.metadata.push(MetricMetadata {
                family: name.to_string(),
                metric_type: MetricType::Gauge,
                unit: String::new(),
                help: help.to_string(),
            });
        }
        ScrapeOutcome {
            batch,
            up,
            duration,
            error,
            samples_scraped,
        }
    }

    async fn fetch_and_parse(
        &self,
        t: &ScrapeTarget,
        now_ms: TimestampMs,
    ) -> Result<Batch, String> {
        let url = &t.url;
        let send = || {
            self.client
                .get(url)
                .header(ACCEPT, ACCEPT_HEADER)
                .header(
                    "X-Prometheus-Scrape-Timeout-Seconds",
                    t.timeout.as_secs_f64().to_string(),
                )
                .send()
        };
        let resp = match send().await {
            Ok(resp) => resp,
            // The target closed the kept-alive connection as this request went out on it: a
            // server whose idle timeout equals the scrape interval (pipewatch's own
            // `server.header_read_timeout` is 10 s) races every scrape. Go's HTTP client, and
            // so Prometheus, resends an idempotent GET once on a new connection; so do we.
            // Not after a refused connection or a timeout: those say the target is down.
            Err(e) if e.is_request() && !e.is_connect() && !e.is_timeout() => {
                send().await.map_err(|e| describe_request_error(url, &e))?
            }
            Err(e) => return Err(describe_request_error(url, &e)),
        };
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {url} returned {status}"));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the body of GET {url} failed: {}", error_chain(&e)))?;
        let text = std::str::from_utf8(&body).map_err(|e| {
            format!(
                "the body of GET {url} is not UTF-8 text (invalid byte at offset {}); is this a metrics endpoint?",
                e.valid_up_to()
            )
        })?;
        let format = format_from_content_type(content_type.as_deref());
        prometheus_text::parse(text, format, now_ms).map_err(|e| format!("parse error: {e}"))
    }
}

/// Sets the target's labels on a scraped series; a scraped label with the same name survives as
/// `exported_<name>` (or `exported_exported_<name>` if that is taken too), as in Prometheus.
fn attach_target_labels(labels: &mut Labels, target: &Labels) {
    for (name, value) in target.iter() {
        // Even an equal value is kept under the exported name: Prometheus does the same, and it
        // tells the reader that the target exposed that label itself.
        if let Some(scraped) = labels.get(name).map(str::to_owned) {
            let mut exported = format!("exported_{name}");
            while labels.get(&exported).is_some() || target.get(&exported).is_some() {
                exported = format!("exported_{exported}");
            }
            labels.insert(exported, scraped);
        }
        labels.insert(name, value);
    }
}

fn describe_request_error(url: &str, e: &reqwest::Error) -> String {
    if e.is_connect() {
        format!("GET {url} failed: could not connect: {}", root_cause(e))
    } else if e.is_builder() {
        format!("GET {url} failed: the URL is not valid: {}", error_chain(e))
    } else {
        format!("GET {url} failed: {}", error_chain(e))
    }
}

/// The innermost error, e.g. "Connection refused (os error 111)".
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

/// reqwest's and hyper's outer messages ("error sending request for url (...)", "client error
/// (Connect)") repeat what the caller already says; the cause a human needs is further down.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let msg = err.to_string();
        let generic = msg.starts_with("error sending request") || msg.starts_with("client error (");
        if !generic && !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> ScrapeTarget {
        ScrapeTarget {
            job: "node".into(),
            url: url.into(),
            labels: Labels::from_pairs([("env", "prod")]),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn instance_is_host_and_port_with_scheme_default() {
        assert_eq!(
            target("http://127.0.0.1:9100/metrics").instance(),
            "127.0.0.1:9100"
        );
        assert_eq!(
            target("http://example.internal/metrics").instance(),
            "example.internal:80"
        );
        assert_eq!(
            target("https://example.internal/metrics").instance(),
            "example.internal:443"
        );
        assert_eq!(target("http://[::1]:9100/metrics").instance(), "[::1]:9100");
    }

    #[test]
    fn configured_instance_label_overrides_the_address() {
        let mut t = target("http://127.0.0.1:9100/metrics");
        t.labels.insert("instance", "db-1");
        assert_eq!(t.target_labels().get("instance"), Some("db-1"));
    }

    #[test]
    fn conflicting_scraped_labels_become_exported() {
        let target = Labels::from_pairs([("job", "node"), ("instance", "h:1")]);
        let mut l = Labels::from_pairs([
            ("job", "batch"),
            ("exported_job", "x"),
            ("instance", "h:1"),
            ("a", "b"),
        ]);
        attach_target_labels(&mut l, &target);
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            vec![
                ("a", "b"),
                ("exported_exported_job", "batch"),
                ("exported_instance", "h:1"),
                ("exported_job", "x"),
                ("instance", "h:1"),
                ("job", "node")
            ]
        );
    }

    #[test]
    fn durations_read_like_a_human_wrote_them() {
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }
}
