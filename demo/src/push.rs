//! The demo's push-based jobs: what a pipeline's short-lived batch jobs send to pipewatch
//! instead of being scraped, over the real protocols on loopback.
//!
//! Today: `nightly_export`, a batch job that runs every 5 minutes and reports its outcome with
//! Prometheus remote_write (as a Prometheus agent or a Pushgateway-style client would).

use super::{noise, Fault, FaultKind};
use model::{Batch, Labels, MetricMetadata, MetricType, Sample, SeriesKey, TimeSeries};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the export job runs (simulated).
const EXPORT_EVERY_MS: i64 = 5 * 60_000;
/// How often the demo pushes.
const PUSH_EVERY: Duration = Duration::from_secs(15);

/// The export job's metrics at `t_ms`: its last completed run, its duration and rows.
/// A stall or volume drop upstream of the export (any stage) shows here too: a stalled
/// pipeline exports nothing, so `last_success` stops advancing.
pub fn export_batch(t_ms: i64, fault: Option<Fault>) -> Batch {
    let active = fault.filter(|f| t_ms >= f.start_ms);
    let mut last_run = t_ms - t_ms.rem_euclid(EXPORT_EVERY_MS);
    if let Some(f) = active.filter(|f| f.kind == FaultKind::Stall) {
        last_run = f.start_ms - f.start_ms.rem_euclid(EXPORT_EVERY_MS);
    }
    let runs = (last_run / EXPORT_EVERY_MS) as f64;
    let slow = if active.is_some_and(|f| f.kind == FaultKind::Latency) {
        6.0
    } else {
        1.0
    };
    let duration = 40.0 * slow * (1.0 + 0.1 * noise(500, last_run / EXPORT_EVERY_MS));
    // Runs before a volume drop wrote the full 250k rows, later ones a fifth (the counter
    // stays monotonic across the fault start).
    let normal_runs = match active.filter(|f| f.kind == FaultKind::VolumeDrop) {
        Some(f) => (f.start_ms.div_euclid(EXPORT_EVERY_MS)) as f64,
        None => runs,
    };
    let rows = normal_runs * 250_000.0 + (runs - normal_runs) * 50_000.0;
    let labels = Labels::from_pairs([
        ("job", "nightly_export"),
        ("instance", "demo-export"),
        ("env", "demo"),
    ]);
    let series = |metric: &str, metric_type, value: f64| TimeSeries {
        key: SeriesKey::new(metric, labels.clone()),
        metric_type,
        samples: vec![Sample { ts: t_ms, value }],
    };
    let meta = |family: &str, metric_type, unit: &str, help: &str| MetricMetadata {
        family: family.into(),
        metric_type,
        unit: unit.into(),
        help: help.into(),
    };
    Batch {
        series: vec![
            series(
                "demo_export_last_success_timestamp_seconds",
                MetricType::Gauge,
                (last_run / 1000) as f64,
            ),
            series(
                "demo_export_duration_seconds",
                MetricType::Gauge,
                (duration * 10.0).round() / 10.0,
            ),
            series("demo_export_rows_total", MetricType::Counter, rows),
        ],
        metadata: vec![
            meta(
                "demo_export_last_success_timestamp_seconds",
                MetricType::Gauge,
                "seconds",
                "Unix time the nightly_export batch job last finished.",
            ),
            meta(
                "demo_export_duration_seconds",
                MetricType::Gauge,
                "seconds",
                "Duration of the last nightly_export run.",
            ),
            meta(
                "demo_export_rows",
                MetricType::Counter,
                "",
                "Rows the nightly_export batch job wrote.",
            ),
        ],
    }
}

/// Logs a demo push that was refused or failed; the next push tries again.
pub(super) async fn log_outcome(sent: reqwest::Result<reqwest::Response>, what: &str) {
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            tracing::warn!(%status, push = what, body = %text.trim(), "demo push refused");
        }
        Err(e) => tracing::warn!(error = %e, push = what, "demo push failed"),
    }
}

/// Pushes the export job's metrics to `base_url` (pipewatch's own HTTP address) every 15 s
/// until `stop`, each time followed by `model_serving`'s OTLP metrics and traces
/// ([`super::otlp::push`]). Failures are logged and the next push tries again.
pub async fn run(base_url: String, fault: Option<Fault>, stop: CancellationToken) {
    let http = reqwest::Client::new();
    let url = format!("{base_url}/api/v1/write");
    loop {
        let body = collectors::remote_write::encode(&export_batch(model::clock::now_ms(), fault));
        let sent = http
            .post(&url)
            .header("content-encoding", "snappy")
            .header("content-type", "application/x-protobuf")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body)
            .send()
            .await;
        log_outcome(sent, "remote_write").await;
        super::otlp::push(&http, &base_url, model::clock::now_ms(), fault).await;
        super::lineage::push(&http, &base_url, model::clock::now_ms(), fault).await;
        super::dq::push(&http, &base_url, model::clock::now_ms(), fault).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PUSH_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(b: &Batch, metric: &str) -> f64 {
        b.series
            .iter()
            .find(|s| s.key.metric == metric)
            .unwrap()
            .samples[0]
            .value
    }

    #[test]
    fn a_stall_freezes_the_last_success_and_a_volume_drop_slows_the_rows() {
        let t0 = 1_800_000_000_000;
        let stall = Fault::new(FaultKind::Stall, "transform", t0).ok();
        let at = |t, f| {
            value(
                &export_batch(t, f),
                "demo_export_last_success_timestamp_seconds",
            )
        };
        assert!(at(t0 + 3_600_000, None) - at(t0, None) >= 3_300.0);
        assert_eq!(at(t0 + 3_600_000, stall), at(t0, stall));

        let drop = Fault::new(FaultKind::VolumeDrop, "transform", t0 - 3_600_000).ok();
        let rows = |f| {
            value(&export_batch(t0 + 3_600_000, f), "demo_export_rows_total")
                - value(&export_batch(t0, f), "demo_export_rows_total")
        };
        assert!((rows(drop) / rows(None) - 0.2).abs() < 1e-9);
        let before = value(
            &export_batch(t0 - 3_600_001, drop),
            "demo_export_rows_total",
        );
        let after = value(
            &export_batch(t0 - 3_600_000 + 300_000, drop),
            "demo_export_rows_total",
        );
        assert!(after >= before, "{before} -> {after}");
    }
}
