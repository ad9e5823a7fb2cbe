//! The Pipelines page (the landing page): the pipeline graph from OpenLineage (jobs and the
//! datasets they read and write) laid out left to right as SVG, each node coloured by its
//! health (the worst open anomaly), with its open-anomaly count and last run; a click on a
//! node opens its anomalies. Nodes that have anomalies but no lineage (a service known only
//! from its metrics, like the demo's `model_serving`) are drawn in a column of their own.

use crate::range::encode_query_value;
use crate::timefmt::{format_ago, format_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use model::anomaly::NodeHealth;
use model::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A job's latest run, as a node shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// START, RUNNING, COMPLETE, FAIL, ABORT or OTHER.
    pub state: String,
    pub state_time_ms: TimestampMs,
    pub duration_seconds: Option<f64>,
}

/// A node of the pipeline graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineNode {
    /// Unique in the graph: `job:<namespace>/<name>`, `dataset:<namespace>/<name>`, or
    /// `node:<name>` for nodes known only from anomalies.
    pub id: String,
    /// `job`, `dataset` or `service`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub last_seen_ms: Option<TimestampMs>,
    pub last_run: Option<RunSummary>,
}

/// An edge: a dataset read by a job, or a job writing a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineEdge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PipelineGraph {
    pub nodes: Vec<PipelineNode>,
    pub edges: Vec<PipelineEdge>,
}

/// The health of one node as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShownHealth {
    /// `ok`, `info`, `warning` or `critical`.
    pub status: String,
    pub open_anomalies: u32,
    /// The name anomalies use for this node (the `node` filter of the Anomalies page).
    pub anomaly_node: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelinesView {
    pub now: TimestampMs,
    pub graph: PipelineGraph,
    /// Per node of `graph`, in the same order.
    pub health: Vec<ShownHealth>,
    /// Why health is unknown (the nodes are then drawn grey), if it is.
    pub health_error: Option<String>,
}

/// The names an anomaly's `node` may use for a graph node: its plain name (what the demo's
/// stages and most labels say), `namespace/name`, or the graph id.
fn node_keys(n: &PipelineNode) -> [String; 3] {
    [
        n.name.clone(),
        format!("{}/{}", n.namespace, n.name),
        n.id.clone(),
    ]
}

/// Joins the health list onto the graph: each node gets the health of the first of its keys
/// that has one; health entries that match no node become `service` nodes of their own.
pub fn join_health(
    mut graph: PipelineGraph,
    health: &[NodeHealth],
) -> (PipelineGraph, Vec<ShownHealth>) {
    let by_node: HashMap<&str, &NodeHealth> = health.iter().map(|h| (h.node.as_str(), h)).collect();
    let mut used: Vec<&str> = Vec::new();
    let mut shown: Vec<ShownHealth> = graph
        .nodes
        .iter()
        .map(|n| {
            let keys = node_keys(n);
            match keys.iter().find_map(|k| by_node.get(k.as_str())) {
                Some(h) => {
                    used.push(h.node.as_str());
                    ShownHealth {
                        status: h.status.clone(),
                        open_anomalies: h.open_anomalies,
                        anomaly_node: h.node.clone(),
                    }
                }
                None => ShownHealth {
                    status: "ok".into(),
                    open_anomalies: 0,
                    anomaly_node: n.name.clone(),
                },
            }
        })
        .collect();
    for h in health {
        if used.contains(&h.node.as_str()) {
            continue;
        }
        graph.nodes.push(PipelineNode {
            id: format!("node:{}", h.node),
            kind: "service".into(),
            namespace: String::new(),
            name: h.node.clone(),
            last_seen_ms: None,
            last_run: None,
        });
        shown.push(ShownHealth {
            status: h.status.clone(),
            open_anomalies: h.open_anomalies,
            anomaly_node: h.node.clone(),
        });
    }
    (graph, shown)
}

pub const NODE_W: f64 = 184.0;
pub const NODE_H: f64 = 62.0;
const COL_GAP: f64 = 52.0;
const ROW_GAP: f64 = 22.0;
/// Space between two bands of a wrapped graph, where the wrapping edges run.
const BAND_GAP: f64 = 44.0;
const MARGIN: f64 = 16.0;
/// Columns per band: what fits the page's width (1,190 px) without scaling the text down.
pub const COLUMNS_PER_BAND: usize = 5;

/// Where each node goes: its column (longest path from a source, so every edge points right)
/// and its row, and the drawing's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Top-left corner of each node, in the order of `graph.nodes`.
    pub pos: Vec<(f64, f64)>,
    pub column: Vec<usize>,
    pub width: f64,
    pub height: f64,
}

/// Lays the graph out left to right. Columns are longest-path layers (bounded, so a cycle
/// cannot loop: its nodes just stop moving right); within a column, nodes are ordered by the
/// mean row of their upstream nodes, which keeps a chain of jobs and datasets on one line
/// and edges from crossing in the common cases. Nodes without edges (`service` nodes) get a
/// column after the last.
pub fn layout(graph: &PipelineGraph) -> Layout {
    let n = graph.nodes.len();
    let index: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = graph
        .edges
        .iter()
        .filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?)))
        .filter(|(a, b)| a != b)
        .collect();
    let mut column = vec![0usize; n];
    for _ in 0..n {
        let mut changed = false;
        for &(a, b) in &edges {
            if column[b] < column[a] + 1 && column[a] + 1 < n {
                column[b] = column[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let linked: Vec<bool> = (0..n)
        .map(|i| edges.iter().any(|&(a, b)| a == i || b == i))
        .collect();
    let last = (0..n).filter(|&i| linked[i]).map(|i| column[i]).max();
    for i in 0..n {
        if !linked[i] && graph.nodes[i].kind == "service" {
            column[i] = last.map_or(0, |c| c + 1);
        }
    }
    let columns = column.iter().copied().max().map_or(0, |c| c + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); columns];
    // Start from a stable order (kind, then name), then order by upstream rows.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&graph.nodes[a], &graph.nodes[b]);
        (&x.kind, &x.name, &x.id).cmp(&(&y.kind, &y.name, &y.id))
    });
    for i in order {
        rows[column[i]].push(i);
    }
    let mut row_of = vec![0.0f64; n];
    for (c, col) in rows.iter_mut().enumerate() {
        if c > 0 {
            let key = |i: usize| -> f64 {
                let ups: Vec<f64> = edges
                    .iter()
                    .filter(|&&(_, b)| b == i)
                    .map(|&(a, _)| row_of[a])
                    .collect();
                if ups.is_empty() {
                    f64::MAX
                } else {
                    ups.iter().sum::<f64>() / ups.len() as f64
                }
            };
            col.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
        }
        for (r, &i) in col.iter().enumerate() {
            row_of[i] = r as f64;
        }
    }
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0);
    // A long chain wraps like a line of text: columns 0-4 in the first band, 5-9 below it,
    // so the whole pipeline is readable at the page's width without scrolling sideways.
    let band_height = tallest as f64 * NODE_H + tallest.saturating_sub(1) as f64 * ROW_GAP;
    let bands = columns.div_ceil(COLUMNS_PER_BAND).max(1);
    let mut pos = vec![(0.0, 0.0); n];
    for (c, col) in rows.iter().enumerate() {
        // Shorter columns are centred against the tallest one.
        let offset = (tallest - col.len()) as f64 * (NODE_H + ROW_GAP) / 2.0;
        let (band, slot) = (c / COLUMNS_PER_BAND, c % COLUMNS_PER_BAND);
        for (r, &i) in col.iter().enumerate() {
            pos[i] = (
                MARGIN + slot as f64 * (NODE_W + COL_GAP),
                MARGIN
                    + band as f64 * (band_height + BAND_GAP)
                    + offset
                    + r as f64 * (NODE_H + ROW_GAP),
            );
        }
    }
    let shown_columns = columns.min(COLUMNS_PER_BAND);
    Layout {
        pos,
        column,
        width: 2.0 * MARGIN
            + shown_columns as f64 * NODE_W
            + shown_columns.saturating_sub(1) as f64 * COL_GAP,
        height: 2.0 * MARGIN + bands as f64 * band_height + (bands - 1) as f64 * BAND_GAP,
    }
}

/// The SVG path of an edge from node box `a` to node box `b` (top-left corners): a curve
/// from the right side of `a` to the left side of `b`, or, when `b` is not to the right (the
/// edge wraps to the next band), a route down into the gap between the bands, back left,
/// and into `b` from the left.
pub fn edge_path(a: (f64, f64), b: (f64, f64)) -> String {
    let (x1, y1) = (a.0 + NODE_W, a.1 + NODE_H / 2.0);
    let (x2, y2) = (b.0 - 2.0, b.1 + NODE_H / 2.0);
    if x2 > x1 {
        let mid = (x1 + x2) / 2.0;
        return format!("M {x1:.1} {y1:.1} C {mid:.1} {y1:.1}, {mid:.1} {y2:.1}, {x2:.1} {y2:.1}");
    }
    let right = x1 + COL_GAP / 2.0;
    let left = x2 - COL_GAP / 2.0 + 2.0;
    // The gap below the band that `a` is in; `b` is in a later band.
    let gap_y = (b.1 - BAND_GAP / 2.0).min(y2 - NODE_H / 2.0 - BAND_GAP / 2.0);
    let gap_y = gap_y.max(y1 + NODE_H / 2.0 + 4.0);
    format!(
        "M {x1:.1} {y1:.1} L {right:.1} {y1:.1} L {right:.1} {gap_y:.1} L {left:.1} {gap_y:.1} L {left:.1} {y2:.1} L {x2:.1} {y2:.1}"
    )
}

/// Hops offered for the focused view (a job to the next job is two hops: job, dataset, job).
pub const HOP_CHOICES: [usize; 3] = [2, 4, 6];
pub const DEFAULT_HOPS: usize = 4;

/// The focused view of a large graph: the nodes whose name contains `query` (ignoring case)
/// and everything up to `hops` edges upstream and downstream of them (their blast radius).
/// Returns the narrowed view and how many nodes matched.
pub fn focus_view(mut v: PipelinesView, query: &str, hops: usize) -> (PipelinesView, usize) {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        let n = v.graph.nodes.len();
        return (v, n);
    }
    let index: HashMap<&str, usize> = v
        .graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = v
        .graph
        .edges
        .iter()
        .filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?)))
        .collect();
    let seeds: Vec<usize> = (0..v.graph.nodes.len())
        .filter(|&i| v.graph.nodes[i].name.to_lowercase().contains(&q))
        .collect();
    let mut keep = vec![false; v.graph.nodes.len()];
    for &s in &seeds {
        keep[s] = true;
    }
    // Downstream and upstream separately: a sibling reached up then down is not in the
    // blast radius.
    for downstream in [true, false] {
        let mut frontier = seeds.clone();
        for _ in 0..hops {
            let mut next = Vec::new();
            for &(a, b) in &edges {
                let (from, to) = if downstream { (a, b) } else { (b, a) };
                if frontier.contains(&from) && !next.contains(&to) {
                    next.push(to);
                }
            }
            for &i in &next {
                keep[i] = true;
            }
            frontier = next;
        }
    }
    let kept_ids: Vec<String> = (0..keep.len())
        .filter(|&i| keep[i])
        .map(|i| v.graph.nodes[i].id.clone())
        .collect();
    let mut i = 0;
    v.health.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    v.graph.nodes.retain(|n| kept_ids.contains(&n.id));
    v.graph
        .edges
        .retain(|e| kept_ids.contains(&e.from) && kept_ids.contains(&e.to));
    (v, seeds.len())
}

/// Text for SVG markup.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Cuts a name to what fits in a node, keeping the end (the distinctive part of dotted names).
fn fit(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s.to_string()
    } else {
        let tail: String = s.chars().skip(n - (max - 1)).collect();
        format!("…{tail}")
    }
}

/// The Anomalies page filtered to one node.
pub fn anomalies_href(node: &str) -> String {
    format!("/anomalies?node={}", encode_query_value(node))
}

fn run_line(now: TimestampMs, r: &RunSummary) -> String {
    let dur = r
        .duration_seconds
        .map(|d| {
            format!(
                " · {}",
                crate::timefmt::format_duration_ms((d * 1000.0) as i64)
            )
        })
        .unwrap_or_default();
    format!("{} {}{dur}", r.state, format_ago(now, r.state_time_ms))
}

fn health_line(h: &ShownHealth) -> String {
    match h.open_anomalies {
        0 => "healthy".into(),
        n => format!("{} · {n} open", h.status),
    }
}

/// The graph as SVG markup: edges as curves with arrowheads, nodes as linked boxes.
pub fn graph_svg(v: &PipelinesView, lay: &Layout) -> String {
    let g = &v.graph;
    let index: HashMap<&str, usize> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="pipeline-svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="Pipeline graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a1"/></marker></defs>"##,
        w = lay.width.ceil(),
        h = lay.height.ceil()
    );
    for e in &g.edges {
        let (Some(&a), Some(&b)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) else {
            continue;
        };
        out.push_str(&format!(
            r##"<path class="pipeline-edge" d="{}" fill="none" stroke="#8a94a1" stroke-width="1.6" stroke-linejoin="round" marker-end="url(#arrow)"/>"##,
            edge_path(lay.pos[a], lay.pos[b])
        ));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let (x, y) = lay.pos[i];
        let h = &v.health[i];
        let status = if v.health_error.is_some() {
            "unknown"
        } else {
            h.status.as_str()
        };
        let kind_label = match n.kind.as_str() {
            "job" => "job",
            "dataset" => "dataset",
            _ => "service",
        };
        let second = if v.health_error.is_some() {
            kind_label.to_string()
        } else {
            format!("{kind_label} · {}", health_line(h))
        };
        let third = match &n.last_run {
            Some(r) => run_line(v.now, r),
            None => n
                .last_seen_ms
                .map(|t| format!("seen {}", format_ago(v.now, t)))
                .unwrap_or_default(),
        };
        let failed = n
            .last_run
            .as_ref()
            .is_some_and(|r| matches!(r.state.as_str(), "FAIL" | "ABORT"));
        let title = format!(
            "{} {}{}\n{}\n{}\nClick to see its anomalies.",
            n.kind,
            if n.namespace.is_empty() {
                String::new()
            } else {
                format!("{}/", n.namespace)
            },
            n.name,
            second,
            n.last_run
                .as_ref()
                .map(|r| format!("last run {} at {}", r.state, format_utc(r.state_time_ms)))
                .unwrap_or_default()
        );
        let rx = if n.kind == "dataset" { 18 } else { 6 };
        out.push_str(&format!(
            r##"<a href="{href}" class="pipeline-node status-{status}" data-node="{name}" data-status="{status}" data-open="{open}"><title>{title}</title><rect x="{x:.1}" y="{y:.1}" width="{NODE_W}" height="{NODE_H}" rx="{rx}"/><text x="{tx:.1}" y="{y1:.1}" class="node-name">{shown}</text><text x="{tx:.1}" y="{y2:.1}" class="node-line">{second}</text><text x="{tx:.1}" y="{y3:.1}" class="node-line{fail}">{third}</text></a>"##,
            href = esc(&anomalies_href(&h.anomaly_node)),
            name = esc(&n.name),
            open = h.open_anomalies,
            title = esc(&title),
            tx = x + 10.0,
            y1 = y + 19.0,
            y2 = y + 37.0,
            y3 = y + 53.0,
            shown = esc(&fit(&n.name, 20)),
            second = esc(&fit(&second, 28)),
            third = esc(&fit(&third, 28)),
            fail = if failed { " run-failed" } else { "" },
        ));
    }
    out.push_str("</svg>");
    out
}

#[server(prefix = "/app-fn", endpoint = "pipelines_view")]
pub async fn load_pipelines() -> Result<PipelinesView, ServerFnError> {
    let backend = use_context::<std::sync::Arc<dyn crate::Backend>>()
        .ok_or_else(|| ServerFnError::new("the server did not provide a data backend"))?;
    let graph = backend.pipeline_graph().await.map_err(ServerFnError::new)?;
    let (health, health_error) = match backend.pipeline_health().await {
        Ok(h) => (h, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let (graph, health) = join_health(graph, &health);
    Ok(PipelinesView {
        now: crate::api::now_ms(),
        graph,
        health,
        health_error,
    })
}

#[component]
pub fn PipelinesPage() -> impl IntoView {
    let query = use_query_map();
    let focus = Memo::new(move |_| {
        query.with(|q| {
            let hops = q
                .get_str("hops")
                .and_then(|h| h.parse::<usize>().ok())
                .unwrap_or(DEFAULT_HOPS);
            (q.get("focus").unwrap_or_default(), hops)
        })
    });
    let tick = RwSignal::new(0u64);
    let data = Resource::new(move || tick.get(), |_| load_pipelines());
    crate::every_seconds(15, move || tick.update(|t| *t += 1));
    view! {
        <Title text="Pipelines · pipewatch"/>
        <h1>"Pipelines"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading the pipeline graph…"</p> }>
            {move || {
                data.get()
                    .map(|r| match r {
                        Err(e) => view! {
                            <div class="error-box" role="alert">
                                <strong>"Could not read the pipeline graph: "</strong>
                                {crate::error_text(&e)}
                            </div>
                        }
                        .into_any(),
                        Ok(v) if v.graph.nodes.is_empty() => view! {
                            <div class="empty" role="status">
                                <p><strong>"No pipeline graph yet."</strong>
                                " It is drawn from OpenLineage run events: point your scheduler's OpenLineage integration (Airflow, Spark, dbt, Flink, …) at "
                                <code>"POST /api/v1/lineage"</code>
                                " on this server (HTTP transport), or send a RunEvent yourself:"</p>
                                <pre class="snippet">{LINEAGE_EXAMPLE}</pre>
                                <p>"To see one now, run " <code>"pipewatch demo"</code> "."</p>
                            </div>
                        }
                        .into_any(),
                        Ok(v) => {
                            let (q, hops) = focus.get();
                            pipelines_body(v, q, hops).into_any()
                        }
                    })
            }}
        </Transition>
    }
}

const LINEAGE_EXAMPLE: &str = r#"curl -X POST http://<pipewatch>/api/v1/lineage -H 'content-type: application/json' -d '{
  "eventType": "COMPLETE", "eventTime": "2026-01-01T12:00:00Z",
  "run": {"runId": "3f5e2c1a-0000-4000-8000-000000000001"},
  "job": {"namespace": "etl", "name": "load_orders"},
  "inputs": [{"namespace": "pg", "name": "raw_orders"}],
  "outputs": [{"namespace": "pg", "name": "orders"}],
  "producer": "https://example.com/my-scheduler"}'"#;

/// The search / focus form: a node name (or part of one) and how many hops around it.
fn focus_form(names: Vec<String>, query: &str, hops: usize) -> impl IntoView {
    let focused = !query.trim().is_empty();
    let value = query.to_string();
    view! {
        <Form method="get" action="/">
            <div class="form-row focus-form">
                <label>
                    "Find a node"
                    <input type="text" name="focus" class="focus-input" list="node-names" value=value placeholder="name or part of one" autocomplete="off"/>
                </label>
                <datalist id="node-names">
                    {names.into_iter().map(|n| view! { <option value=n/> }).collect_view()}
                </datalist>
                <label>
                    "Up and downstream"
                    <select name="hops" class="hops-select" on:change=crate::explore::submit_own_form>
                        {HOP_CHOICES
                            .into_iter()
                            .map(|h| view! { <option value=h.to_string() selected=h == hops>{format!("{h} hops")}</option> })
                            .collect_view()}
                    </select>
                </label>
                <button type="submit">"Focus"</button>
                {focused.then(|| view! { <a href="/" class="clear-filters">"Whole pipeline"</a> })}
            </div>
        </Form>
    }
}

fn pipelines_body(v: PipelinesView, query: String, hops: usize) -> impl IntoView {
    let mut names: Vec<String> = v.graph.nodes.iter().map(|n| n.name.clone()).collect();
    names.sort();
    names.dedup();
    let form = focus_form(names, &query, hops);
    let (v, matched) = focus_view(v, &query, hops);
    if matched == 0 {
        return view! {
            {form}
            <p class="empty" role="status">
                {format!("No node's name contains {query:?}. ")}
                <a href="/">"Show the whole pipeline"</a> "."
            </p>
        }
        .into_any();
    }
    let lay = layout(&v.graph);
    let svg = graph_svg(&v, &lay);
    let counts = {
        let mut c: BTreeMap<&str, usize> = BTreeMap::new();
        for h in &v.health {
            *c.entry(h.status.as_str()).or_default() += 1;
        }
        c
    };
    let summary = format!(
        "{} nodes · {} critical · {} warning · {} healthy",
        v.graph.nodes.len(),
        counts.get("critical").copied().unwrap_or(0),
        counts.get("warning").copied().unwrap_or(0),
        counts.get("ok").copied().unwrap_or(0),
    );
    // Worst first, then in pipeline order: the table answers "what is wrong" at a glance.
    let rank = |s: &str| match s {
        "critical" => 0,
        "warning" => 1,
        "info" => 2,
        _ => 3,
    };
    let mut order: Vec<usize> = (0..v.graph.nodes.len()).collect();
    order.sort_by_key(|&i| {
        (
            rank(&v.health[i].status),
            lay.column[i],
            v.graph.nodes[i].name.clone(),
        )
    });
    let rows = order
        .into_iter()
        .map(|i| (&v.graph.nodes[i], &v.health[i]))
        .map(|(n, h)| {
            let status = if v.health_error.is_some() {
                "unknown".to_string()
            } else {
                h.status.clone()
            };
            let last = n
                .last_run
                .as_ref()
                .map(|r| run_line(v.now, r))
                .unwrap_or_else(|| "–".into());
            let last_title = n
                .last_run
                .as_ref()
                .map(|r| format_utc(r.state_time_ms))
                .unwrap_or_default();
            view! {
                <tr class="pipeline-row" data-node=n.name.clone() data-status=status.clone()>
                    <td><a href=anomalies_href(&h.anomaly_node)>{n.name.clone()}</a>
                        {(!n.namespace.is_empty()).then(|| view! { <span class="muted small">{format!(" {}", n.namespace)}</span> })}
                    </td>
                    <td>{n.kind.clone()}</td>
                    <td><span class=format!("sev-badge sev-{status}")>{status.clone()}</span></td>
                    <td class="num">{h.open_anomalies}</td>
                    <td title=last_title>{last}</td>
                    <td><a class="focus-link" href=format!("/?focus={}&hops={DEFAULT_HOPS}", encode_query_value(&n.name)) title="Only this node and what is up and downstream of it">"blast radius"</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {form}
        {v.health_error.clone().map(|e| view! {
            <div class="warning" role="status">"Node health is unknown (nodes are grey): " {e}</div>
        })}
        <p class="muted pipeline-summary">{summary}
            " · a box is a job, a rounded box a dataset; colour is the worst open anomaly. Click a node for its anomalies."
        </p>
        <div class="pipeline-legend">
            <span class="sev-badge sev-ok">"ok"</span>
            <span class="sev-badge sev-info">"info"</span>
            <span class="sev-badge sev-warning">"warning"</span>
            <span class="sev-badge sev-critical">"critical"</span>
        </div>
        <div class="pipeline-graph" inner_html=svg></div>
        <table class="pipeline-nodes">
            <thead><tr><th>"Node"</th><th>"Kind"</th><th>"Health"</th><th class="num">"Open anomalies"</th><th>"Last run"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: &str, name: &str) -> PipelineNode {
        PipelineNode {
            id: format!("{kind}:demo/{name}"),
            kind: kind.into(),
            namespace: "demo".into(),
            name: name.into(),
            last_seen_ms: Some(0),
            last_run: None,
        }
    }

    fn edge(a: &str, b: &str) -> PipelineEdge {
        PipelineEdge {
            from: a.into(),
            to: b.into(),
        }
    }

    fn chain_names() -> Vec<&'static str> {
        vec![
            "kafka.events",
            "stream_ingest",
            "raw_events",
            "transform",
            "clean_orders",
            "feature_store",
            "features_daily",
        ]
    }

    /// The demo's lineage: kafka.events -> stream_ingest -> raw_events -> transform ->
    /// clean_orders -> feature_store -> features_daily.
    fn demo_graph() -> PipelineGraph {
        let chain = [
            ("dataset", "kafka.events"),
            ("job", "stream_ingest"),
            ("dataset", "raw_events"),
            ("job", "transform"),
            ("dataset", "clean_orders"),
            ("job", "feature_store"),
            ("dataset", "features_daily"),
        ];
        let mut nodes: Vec<PipelineNode> = chain.iter().map(|(k, n)| node(k, n)).collect();
        nodes.reverse(); // the layout must not depend on the input order
        let edges = chain
            .windows(2)
            .map(|w| {
                edge(
                    &format!("{}:demo/{}", w[0].0, w[0].1),
                    &format!("{}:demo/{}", w[1].0, w[1].1),
                )
            })
            .collect();
        PipelineGraph { nodes, edges }
    }

    #[test]
    fn a_chain_is_laid_out_left_to_right_on_one_row() {
        let g = demo_graph();
        let lay = layout(&g);
        let col = |name: &str| lay.column[g.nodes.iter().position(|n| n.name == name).unwrap()];
        assert_eq!(col("kafka.events"), 0);
        assert_eq!(col("stream_ingest"), 1);
        assert_eq!(col("features_daily"), 6);
        // Left to right within a band; the sixth column starts a second band below.
        let at = |name: &str| lay.pos[g.nodes.iter().position(|n| n.name == name).unwrap()];
        for pair in chain_names().windows(2) {
            let (a, b) = (at(pair[0]), at(pair[1]));
            if pair[1] == "feature_store" {
                assert!(
                    b.1 > a.1 + NODE_H && b.0 < a.0,
                    "{pair:?} wraps: {a:?} {b:?}"
                );
            } else {
                assert!(b.0 > a.0 + NODE_W && b.1 == a.1, "{pair:?}: {a:?} {b:?}");
            }
        }
        assert!(lay.width <= 1190.0, "fits the page: {}", lay.width);
        // The wrapping edge runs through the gap between the bands, into its target's left.
        let p = edge_path(at("clean_orders"), at("feature_store"));
        assert!(
            p.starts_with(&format!("M {:.1}", at("clean_orders").0 + NODE_W)),
            "{p}"
        );
        let (fx, fy) = at("feature_store");
        assert!(
            p.ends_with(&format!("{:.1} {:.1}", fx - 2.0, fy + NODE_H / 2.0)),
            "{p}"
        );
    }

    #[test]
    fn a_cycle_does_not_hang_and_branches_stack_in_one_column() {
        let mut g = PipelineGraph {
            nodes: vec![
                node("job", "a"),
                node("job", "b"),
                node("dataset", "x"),
                node("dataset", "y"),
            ],
            edges: vec![
                edge("job:demo/a", "dataset:demo/x"),
                edge("job:demo/a", "dataset:demo/y"),
                edge("dataset:demo/x", "job:demo/b"),
            ],
        };
        let lay = layout(&g);
        assert_eq!(lay.column, vec![0, 2, 1, 1]);
        assert_ne!(lay.pos[2].1, lay.pos[3].1, "x and y stacked");
        g.edges.push(edge("job:demo/b", "job:demo/a"));
        let lay = layout(&g);
        assert!(lay.column.iter().all(|c| *c < 4));
    }

    #[test]
    fn health_joins_by_plain_name_and_unknown_nodes_become_services_on_the_right() {
        let health = vec![
            NodeHealth {
                node: "transform".into(),
                status: "critical".into(),
                open_anomalies: 2,
            },
            NodeHealth {
                node: "model_serving".into(),
                status: "warning".into(),
                open_anomalies: 1,
            },
        ];
        let (g, shown) = join_health(demo_graph(), &health);
        assert_eq!(g.nodes.len(), 8);
        let at = |name: &str| g.nodes.iter().position(|n| n.name == name).unwrap();
        assert_eq!(shown[at("transform")].status, "critical");
        assert_eq!(shown[at("transform")].open_anomalies, 2);
        assert_eq!(shown[at("raw_events")].status, "ok");
        assert_eq!(g.nodes[at("model_serving")].kind, "service");
        assert_eq!(shown[at("model_serving")].status, "warning");
        let lay = layout(&g);
        assert_eq!(
            lay.column[at("model_serving")],
            7,
            "after the last lineage column"
        );

        let v = PipelinesView {
            now: 0,
            graph: g,
            health: shown,
            health_error: None,
        };
        let svg = graph_svg(&v, &lay);
        assert!(svg.contains(r#"href="/anomalies?node=transform" class="pipeline-node status-critical" data-node="transform""#), "{svg}");
        assert!(svg.contains("job · critical · 2 open"), "{svg}");
        assert_eq!(svg.matches("<path class=\"pipeline-edge\"").count(), 6);
    }

    #[test]
    fn focus_keeps_the_matches_and_their_blast_radius_only() {
        let (g, health) = join_health(demo_graph(), &[]);
        let v = PipelinesView {
            now: 0,
            graph: g,
            health,
            health_error: None,
        };
        let names = |v: &PipelinesView| {
            let mut n: Vec<String> = v.graph.nodes.iter().map(|n| n.name.clone()).collect();
            n.sort();
            n
        };
        let (f, matched) = focus_view(v.clone(), "TRANSFORM", 2);
        assert_eq!(matched, 1);
        assert_eq!(
            names(&f),
            [
                "clean_orders",
                "feature_store",
                "raw_events",
                "stream_ingest",
                "transform"
            ]
        );
        assert_eq!(f.health.len(), f.graph.nodes.len());
        assert_eq!(f.graph.edges.len(), 4);
        let (f, _) = focus_view(v.clone(), "transform", 1);
        assert_eq!(names(&f), ["clean_orders", "raw_events", "transform"]);
        let (all, n) = focus_view(v.clone(), " ", 2);
        assert_eq!((all.graph.nodes.len(), n), (7, 7));
        assert_eq!(focus_view(v, "nothing-like-this", 2).1, 0);
    }

    #[test]
    fn long_names_keep_their_end_and_markup_is_escaped() {
        assert_eq!(fit("warehouse.analytics.orders_daily", 13), "…orders_daily");
        assert_eq!(fit("orders", 13), "orders");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
