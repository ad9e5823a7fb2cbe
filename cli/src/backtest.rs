//! `pipewatch backtest --selector ... --from ... --to ...`: what the detection job would have
//! flagged over stored history (`server::analysis::backtest`), printed as one line per episode.

use anyhow::{bail, Context, Result};
use server::config::Config;
use std::time::Duration;

/// RFC 3339, Unix seconds, or a duration back from now ("7d": seven days ago).
pub fn parse_time(v: &str) -> Result<i64, String> {
    let now = model::clock::now_ms();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() {
            return Ok((secs * 1000.0).round() as i64);
        }
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(v) {
        if let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) {
            return Ok(d.as_millis() as i64);
        }
    }
    if let Ok(d) = humantime::parse_duration(v) {
        return Ok(now - d.as_millis() as i64);
    }
    Err(format!(
        "{v:?} is not a time: give RFC 3339 (2026-12-01T00:00:00Z), Unix seconds, or a duration back from now (24h, 7d)"
    ))
}

fn fmt(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| secs.to_string())
}

pub async fn run(cfg: &Config, selector: &str, from: i64, to: i64, every: Duration) -> Result<()> {
    let selector = model::Selector::parse(selector).map_err(|e| {
        anyhow::anyhow!(
            "--selector {selector:?} is not a series selector ({}); write one like '{{job=\"demo_pipeline\"}}' or 'metric_name{{stage=\"transform\"}}'",
            e.message
        )
    })?;
    if from >= to {
        bail!("--from must be before --to");
    }
    if every < Duration::from_secs(1) {
        bail!("--every must be at least 1s");
    }
    let db = server::run::Database::open(cfg).await?;
    let store = store::Store::connect(&db.url, store::StoreConfig::default())
        .await
        .context("connecting to the database")?;
    let jobs = server::analysis::AnalysisJobs::new(
        store,
        server::promql::QueryLimits::default(),
        cfg.analysis.clone(),
    );
    eprintln!(
        "replaying the detectors from {} to {} UTC every {} (history {} each)...",
        fmt(from / 1000),
        fmt(to / 1000),
        humantime::format_duration(every),
        humantime::format_duration(cfg.analysis.history),
    );
    let found = jobs
        .backtest(&selector, from, to, every.as_millis() as i64)
        .await?;
    let mut n = 0;
    for s in &found {
        for e in &s.episodes {
            n += 1;
            let end = e.end.map_or("(still open)".to_string(), fmt);
            println!(
                "{} -> {}  {:<8} {:<12} {:<10} {}\n    {}\n    {}",
                fmt(e.start),
                end,
                format!("{:?}", e.severity).to_lowercase(),
                s.kind,
                s.node.as_deref().unwrap_or("-"),
                e.detector,
                s.signal,
                e.sentence,
            );
        }
    }
    println!("{n} episode(s) on {} signal(s) with findings", found.len());
    Ok(())
}
