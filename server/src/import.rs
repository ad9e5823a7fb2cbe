//! `pipewatch import <file>...`: sends data-quality result files to a running pipewatch
//! (`POST /api/v1/dq/{gx,dbt,soda}`), so imports take the same path, limits and idempotency
//! as any other sender, and prints what was stored.
//!
//! The tool is taken from `--tool` or recognised from the file's JSON. dbt's `--manifest` and
//! `--sources` are sent together with a `run_results.json` as one JSON object
//! `{"run_results", "manifest", "sources"}`.

use anyhow::{anyhow, bail, Context, Result};
use collectors::dq::{self, Tool};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What to import and where to.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    pub files: Vec<PathBuf>,
    pub tool: Option<Tool>,
    pub manifest: Option<PathBuf>,
    pub sources: Option<PathBuf>,
    /// Base URL of the running server, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Bearer token, when the server requires one for the `dq` receiver.
    pub token: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Imports every file; returns the server's summary per file. Stops at the first refusal.
pub async fn run(args: &ImportArgs) -> Result<Vec<(PathBuf, Value)>> {
    if args.files.is_empty() && args.sources.is_none() {
        bail!("no files given; run `pipewatch import <file>...`");
    }
    let client = reqwest::Client::new();
    let manifest = args.manifest.as_deref().map(read).transpose()?;
    let sources = args.sources.as_deref().map(read).transpose()?;
    let mut sources_sent = false;
    let mut out = Vec::new();
    for file in &args.files {
        let bytes = read(file)?;
        let name = file.to_string_lossy();
        let tool = match args.tool {
            Some(t) => t,
            None => {
                let v: Value = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{name} is not JSON"))?;
                dq::detect(&v, Some(&name)).ok_or_else(|| {
                    anyhow!(
                        "{name}: cannot tell which tool wrote this file; pass --tool gx|dbt|soda"
                    )
                })?
            }
        };
        let body = if tool == Tool::Dbt && (manifest.is_some() || sources.is_some()) {
            sources_sent = sources.is_some();
            dbt_bundle(&bytes, manifest.as_deref(), sources.as_deref())?
        } else {
            bytes
        };
        out.push((
            file.clone(),
            post(&client, args, tool, body)
                .await
                .with_context(|| format!("importing {name}"))?,
        ));
    }
    if let (Some(s), false) = (&sources, sources_sent) {
        let path = args.sources.clone().unwrap_or_default();
        out.push((
            path,
            post(&client, args, Tool::Dbt, s.clone())
                .await
                .context("importing sources.json")?,
        ));
    }
    Ok(out)
}

/// `{"run_results": <file>, "manifest": ..., "sources": ...}` from raw artifact bytes; a
/// `sources.json` given as the main file goes under `sources`.
fn dbt_bundle(main: &[u8], manifest: Option<&[u8]>, sources: Option<&[u8]>) -> Result<Vec<u8>> {
    let main_v: Value = serde_json::from_slice(main).context("the dbt file is not JSON")?;
    let main_key = match main_v
        .pointer("/metadata/dbt_schema_version")
        .and_then(Value::as_str)
    {
        Some(s) if s.contains("/sources/") => "sources",
        _ => "run_results",
    };
    let mut parts = vec![(main_key, main)];
    if let Some(m) = manifest {
        parts.push(("manifest", m));
    }
    if let Some(s) = sources.filter(|_| main_key != "sources") {
        parts.push(("sources", s));
    }
    let mut body = b"{".to_vec();
    for (i, (k, v)) in parts.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(format!("\"{k}\":").as_bytes());
        body.extend_from_slice(v);
    }
    body.push(b'}');
    Ok(body)
}

async fn post(
    client: &reqwest::Client,
    args: &ImportArgs,
    tool: Tool,
    body: Vec<u8>,
) -> Result<Value> {
    let url = format!(
        "{}/api/v1/dq/{}",
        args.url.trim_end_matches('/'),
        tool.as_str()
    );
    let mut req = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach pipewatch at {url}; is it running? (--url)"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("pipewatch answered {status}: {}", text.trim());
    }
    serde_json::from_str(&text).with_context(|| format!("unexpected answer from {url}: {text}"))
}

/// One line per imported file, e.g. `dbt/run_results.json: dbt 1.11.16 (dbt run_results +
/// manifest), 18 checks, 18 new, 0 already stored; pass 11, warn 2, fail 1, error 1, skipped 3`.
pub fn describe(file: &Path, v: &Value) -> String {
    let statuses = v["statuses"]
        .as_object()
        .map(|m| {
            ["pass", "warn", "fail", "error", "skipped"]
                .iter()
                .filter_map(|k| m.get(*k).map(|n| format!("{k} {n}")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "{}: {} {} ({}), {} checks, {} new, {} already stored; {}",
        file.display(),
        v["tool"].as_str().unwrap_or("?"),
        v["tool_version"].as_str().unwrap_or(""),
        v["format"].as_str().unwrap_or(""),
        v["checks"],
        v["inserted"],
        v["duplicates"],
        statuses
    )
}
