//! The pipeline graph from OpenLineage events: jobs, datasets, input/output edges, runs with
//! state and duration, and dataset schema versions with change events (`migrations/0006`).
//!
//! Each event is recorded in one transaction. An event already recorded (same run id or
//! job/dataset, event type and event time) is recognised and changes nothing, so a producer
//! that re-sends after a timeout does not count a run twice. Runs tolerate any arrival order:
//! start and end are kept apart, and a late START or RUNNING does not reopen an ended run.
//!
//! The types here are the store's own (the store does not depend on `collectors`); the server
//! maps decoded events onto them.

use crate::error::DbContext;
use crate::{sql_ts, Store, StoreError};
use serde::Serialize;
use sqlx::{Postgres, Row, Transaction};
use std::collections::BTreeMap;

/// A job or dataset identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Qualified {
    pub namespace: String,
    pub name: String,
}

impl Qualified {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A dataset as one event mentions it; `schema` is (field path, type) in the order sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatasetRecord {
    pub id: Option<Qualified>,
    pub schema: Option<Vec<(String, Option<String>)>>,
}

/// Which event type, in the spec's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Run,
    Job,
    Dataset,
}

/// One event, as the store needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub kind: EventKind,
    /// RunEvents: START, RUNNING, COMPLETE, ABORT, FAIL or OTHER.
    pub event_type: Option<String>,
    pub time_ms: i64,
    pub producer: String,
    pub run_id: Option<String>,
    pub job: Option<Qualified>,
    pub parent_run_id: Option<String>,
    pub parent_job: Option<Qualified>,
    pub error_message: Option<String>,
    pub inputs: Vec<DatasetRecord>,
    pub outputs: Vec<DatasetRecord>,
    /// DatasetEvents.
    pub dataset: Option<DatasetRecord>,
}

/// A schema change found while recording an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaChange {
    pub dataset: Qualified,
    pub changed_at_ms: i64,
    pub from_version: i32,
    pub to_version: i32,
    pub run_id: Option<String>,
    pub job: Option<Qualified>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// (field, old type, new type).
    pub type_changed: Vec<(String, Option<String>, Option<String>)>,
    /// Changes recorded for this dataset so far, this one included (for the counter series).
    pub changes_total: i64,
}

/// What recording one event changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventOutcome {
    /// The event had been recorded before; nothing was changed.
    pub duplicate: bool,
    /// The run's end state and duration, when this event made both its start and end known
    /// (or moved one of them).
    pub ended: Option<(String, f64)>,
    /// Distinct runs of the job that have an event of this event's type, this one included.
    pub runs_in_state: Option<i64>,
    pub schema_changes: Vec<SchemaChange>,
}

fn is_terminal(t: &str) -> bool {
    matches!(t, "COMPLETE" | "FAIL" | "ABORT")
}

/// A run as the read API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub job: Qualified,
    pub state: String,
    pub state_time_ms: i64,
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub parent_run_id: Option<String>,
    pub parent_job: Option<String>,
    pub error_message: Option<String>,
}

/// A node of the pipeline graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphNode {
    /// `job:<namespace>/<name>` or `dataset:<namespace>/<name>`.
    pub id: String,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub last_seen_ms: i64,
    /// Jobs: the run with the latest state change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_run: Option<RunRow>,
    /// Datasets: the latest schema version number and fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
}

/// An edge: from a dataset to the job that reads it, or from a job to the dataset it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
    /// `input` or `output`.
    pub direction: String,
    pub last_seen_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineageGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

type Tx<'a> = Transaction<'a, Postgres>;

async fn upsert_job(tx: &mut Tx<'_>, q: &Qualified, ts: &str, t: i64) -> Result<i64, StoreError> {
    sqlx::query_scalar(&format!(
        "INSERT INTO lineage_jobs (namespace, name, first_seen, last_seen) VALUES ($1, $2, {ts}, {ts}) \
         ON CONFLICT (namespace, name) DO UPDATE SET \
           first_seen = least(lineage_jobs.first_seen, EXCLUDED.first_seen), \
           last_seen = greatest(lineage_jobs.last_seen, EXCLUDED.last_seen) \
         RETURNING id"
    ))
    .bind(&q.namespace)
    .bind(&q.name)
    .bind(t)
    .fetch_one(&mut **tx)
    .await
    .context("recording a lineage job")
}

async fn upsert_dataset(
    tx: &mut Tx<'_>,
    q: &Qualified,
    ts: &str,
    t: i64,
) -> Result<i64, StoreError> {
    sqlx::query_scalar(&format!(
        "INSERT INTO lineage_datasets (namespace, name, first_seen, last_seen) VALUES ($1, $2, {ts}, {ts}) \
         ON CONFLICT (namespace, name) DO UPDATE SET \
           first_seen = least(lineage_datasets.first_seen, EXCLUDED.first_seen), \
           last_seen = greatest(lineage_datasets.last_seen, EXCLUDED.last_seen) \
         RETURNING id"
    ))
    .bind(&q.namespace)
    .bind(&q.name)
    .bind(t)
    .fetch_one(&mut **tx)
    .await
    .context("recording a lineage dataset")
}

impl Store {
    /// Records one OpenLineage event: graph, run state, schema versions. See the module docs.
    pub async fn record_lineage_event(&self, e: &EventRecord) -> Result<EventOutcome, StoreError> {
        let ts = sql_ts(3);
        let t = e.time_ms;
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("beginning a lineage transaction")?;
        let job_id = match &e.job {
            Some(j) => Some(upsert_job(&mut tx, j, &ts, t).await?),
            None => None,
        };
        let (kind, subject) = match e.kind {
            EventKind::Run => ("run", e.run_id.clone().unwrap_or_default()),
            EventKind::Job => (
                "job",
                e.job.as_ref().map(Qualified::key).unwrap_or_default(),
            ),
            EventKind::Dataset => (
                "dataset",
                e.dataset
                    .as_ref()
                    .and_then(|d| d.id.as_ref())
                    .map(Qualified::key)
                    .unwrap_or_default(),
            ),
        };
        let event_type = e.event_type.clone().unwrap_or_default();
        let inserted: Option<i64> = sqlx::query_scalar(&format!(
            "INSERT INTO lineage_events (kind, subject, event_type, event_time, job_id, producer) \
             VALUES ($1, $2, $4, {ts}, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
            ts = sql_ts(3)
        ))
        .bind(kind)
        .bind(&subject)
        .bind(t)
        .bind(&event_type)
        .bind(job_id)
        .bind(&e.producer)
        .fetch_optional(&mut *tx)
        .await
        .context("recording a lineage event")?;
        if inserted.is_none() {
            tx.rollback()
                .await
                .context("rolling back a duplicate lineage event")?;
            return Ok(EventOutcome {
                duplicate: true,
                ..EventOutcome::default()
            });
        }
        let mut outcome = EventOutcome::default();

        if let (EventKind::Run, Some(run_id), Some(job_id)) = (e.kind, &e.run_id, job_id) {
            outcome.ended = self
                .update_run(&mut tx, e, run_id, job_id, &event_type)
                .await?;
            if event_type != "OTHER" && event_type != "RUNNING" {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(DISTINCT subject) FROM lineage_events \
                     WHERE kind = 'run' AND job_id = $1 AND event_type = $2",
                )
                .bind(job_id)
                .bind(&event_type)
                .fetch_one(&mut *tx)
                .await
                .context("counting runs of a job")?;
                outcome.runs_in_state = Some(n);
            }
        }

        let mut datasets: Vec<(&DatasetRecord, Option<&'static str>)> = Vec::new();
        datasets.extend(e.inputs.iter().map(|d| (d, Some("input"))));
        datasets.extend(e.outputs.iter().map(|d| (d, Some("output"))));
        datasets.extend(e.dataset.iter().map(|d| (d, None)));
        for (d, direction) in datasets {
            let Some(id) = &d.id else { continue };
            let dataset_id = upsert_dataset(&mut tx, id, &ts, t).await?;
            if let (Some(direction), Some(job_id)) = (direction, job_id) {
                sqlx::query(&format!(
                    "INSERT INTO lineage_edges (job_id, dataset_id, direction, first_seen, last_seen, last_run_id) \
                     VALUES ($1, $2, $3, {ts}, {ts}, $5) \
                     ON CONFLICT (job_id, dataset_id, direction) DO UPDATE SET \
                       first_seen = least(lineage_edges.first_seen, EXCLUDED.first_seen), \
                       last_seen = greatest(lineage_edges.last_seen, EXCLUDED.last_seen), \
                       last_run_id = coalesce(EXCLUDED.last_run_id, lineage_edges.last_run_id)",
                    ts = sql_ts(4)
                ))
                .bind(job_id)
                .bind(dataset_id)
                .bind(direction)
                .bind(t)
                .bind(&e.run_id)
                .execute(&mut *tx)
                .await
                .context("recording a lineage edge")?;
            }
            if let Some(fields) = &d.schema {
                if let Some(change) =
                    record_schema(&mut tx, e, id, dataset_id, job_id, fields).await?
                {
                    outcome.schema_changes.push(change);
                }
            }
        }
        tx.commit().await.context("committing a lineage event")?;
        Ok(outcome)
    }

    async fn update_run(
        &self,
        tx: &mut Tx<'_>,
        e: &EventRecord,
        run_id: &str,
        job_id: i64,
        event_type: &str,
    ) -> Result<Option<(String, f64)>, StoreError> {
        let ts = sql_ts(4);
        let terminal = is_terminal(event_type);
        let start = event_type == "START";
        // First sight of the run: a row with this event as its state (OTHER counts as state
        // until something better arrives).
        sqlx::query(&format!(
            "INSERT INTO lineage_runs (run_id, job_id, state, state_time) VALUES ($1, $2, $3, {ts}) \
             ON CONFLICT (run_id) DO NOTHING"
        ))
        .bind(run_id)
        .bind(job_id)
        .bind(event_type)
        .bind(e.time_ms)
        .execute(&mut **tx)
        .await
        .context("recording a lineage run")?;
        let row = sqlx::query(
            "SELECT state, (extract(epoch FROM state_time) * 1000)::bigint AS state_ms, \
                    started_at IS NOT NULL AS started, ended_at IS NOT NULL AS ended \
             FROM lineage_runs WHERE run_id = $1 FOR UPDATE",
        )
        .bind(run_id)
        .fetch_one(&mut **tx)
        .await
        .context("reading a lineage run")?;
        let state: String = row.get("state");
        let state_ms: i64 = row.get("state_ms");
        let (was_ended, newer) = (is_terminal(&state), e.time_ms >= state_ms);
        let moves_state = event_type != "OTHER"
            && (state == "OTHER"
                || if terminal {
                    !was_ended || newer
                } else {
                    !was_ended && newer
                });
        sqlx::query(&format!(
            "UPDATE lineage_runs SET \
               state = CASE WHEN $2 THEN $3 ELSE state END, \
               state_time = CASE WHEN $2 THEN {ts} ELSE state_time END, \
               started_at = CASE WHEN $5 THEN least(started_at, {ts}) ELSE started_at END, \
               ended_at = CASE WHEN $6 AND (ended_at IS NULL OR {ts} >= ended_at) THEN {ts} ELSE ended_at END, \
               end_state = CASE WHEN $6 AND (ended_at IS NULL OR {ts} >= ended_at) THEN $3 ELSE end_state END, \
               parent_run_id = coalesce($7, parent_run_id), \
               parent_job = coalesce($8, parent_job), \
               error_message = coalesce($9, error_message), \
               updated_at = now() \
             WHERE run_id = $1"
        ))
        .bind(run_id)
        .bind(moves_state)
        .bind(event_type)
        .bind(e.time_ms)
        .bind(start)
        .bind(terminal)
        .bind(&e.parent_run_id)
        .bind(e.parent_job.as_ref().map(Qualified::key))
        .bind(&e.error_message)
        .execute(&mut **tx)
        .await
        .context("updating a lineage run")?;
        if !(start || terminal) {
            return Ok(None);
        }
        let row =
            sqlx::query("SELECT end_state, duration_seconds FROM lineage_runs WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&mut **tx)
                .await
                .context("reading a run's duration")?;
        let end_state: Option<String> = row.get("end_state");
        let duration: Option<f64> = row.get("duration_seconds");
        Ok(end_state.zip(duration))
    }

    /// The pipeline graph: every job (with its latest run) and dataset (with its latest
    /// schema), and every input/output edge.
    pub async fn lineage_graph(&self) -> Result<LineageGraph, StoreError> {
        let mut latest: BTreeMap<i64, RunRow> = BTreeMap::new();
        for (job_id, run) in self.runs_where("TRUE", None).await? {
            latest.entry(job_id).or_insert(run);
        }
        let mut nodes = Vec::new();
        let jobs = sqlx::query(
            "SELECT id, namespace, name, (extract(epoch FROM last_seen) * 1000)::bigint AS seen \
             FROM lineage_jobs ORDER BY namespace, name",
        )
        .fetch_all(self.read_pool())
        .await
        .context("reading lineage jobs")?;
        for r in jobs {
            let (ns, name): (String, String) = (r.get("namespace"), r.get("name"));
            nodes.push(GraphNode {
                id: format!("job:{ns}/{name}"),
                kind: "job",
                latest_run: latest.remove(&r.get::<i64, _>("id")),
                namespace: ns,
                name,
                last_seen_ms: r.get("seen"),
                schema_version: None,
                schema: None,
            });
        }
        let datasets = sqlx::query(
            "SELECT d.namespace, d.name, (extract(epoch FROM d.last_seen) * 1000)::bigint AS seen, \
                    v.version, v.fields \
             FROM lineage_datasets d LEFT JOIN LATERAL ( \
               SELECT version, fields FROM lineage_schema_versions s \
               WHERE s.dataset_id = d.id ORDER BY version DESC LIMIT 1) v ON TRUE \
             ORDER BY d.namespace, d.name",
        )
        .fetch_all(self.read_pool())
        .await
        .context("reading lineage datasets")?;
        for r in datasets {
            let (ns, name): (String, String) = (r.get("namespace"), r.get("name"));
            nodes.push(GraphNode {
                id: format!("dataset:{ns}/{name}"),
                kind: "dataset",
                namespace: ns,
                name,
                last_seen_ms: r.get("seen"),
                latest_run: None,
                schema_version: r.get("version"),
                schema: r.get("fields"),
            });
        }
        let edges = sqlx::query(
            "SELECT j.namespace AS jns, j.name AS jname, d.namespace AS dns, d.name AS dname, \
                    e.direction, (extract(epoch FROM e.last_seen) * 1000)::bigint AS seen \
             FROM lineage_edges e JOIN lineage_jobs j ON j.id = e.job_id \
               JOIN lineage_datasets d ON d.id = e.dataset_id \
             ORDER BY j.namespace, j.name, e.direction, d.namespace, d.name",
        )
        .fetch_all(self.read_pool())
        .await
        .context("reading lineage edges")?
        .into_iter()
        .map(|r| {
            let job = format!(
                "job:{}/{}",
                r.get::<String, _>("jns"),
                r.get::<String, _>("jname")
            );
            let ds = format!(
                "dataset:{}/{}",
                r.get::<String, _>("dns"),
                r.get::<String, _>("dname")
            );
            let direction: String = r.get("direction");
            let (from, to) = if direction == "input" {
                (ds, job)
            } else {
                (job, ds)
            };
            GraphEdge {
                from,
                to,
                direction,
                last_seen_ms: r.get("seen"),
            }
        })
        .collect();
        Ok(LineageGraph { nodes, edges })
    }

    /// Runs of one job, latest state change first.
    pub async fn lineage_runs(
        &self,
        job: &Qualified,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        let rows = self
            .runs_where("j.namespace = $1 AND j.name = $2", Some((job, limit)))
            .await?;
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    async fn runs_where(
        &self,
        filter: &str,
        job: Option<(&Qualified, i64)>,
    ) -> Result<Vec<(i64, RunRow)>, StoreError> {
        let ms = |c: &str| format!("(extract(epoch FROM {c}) * 1000)::bigint AS {c}_ms");
        let sql = format!(
            "SELECT r.job_id, r.run_id, j.namespace, j.name, r.state, {}, {}, {}, \
                    r.duration_seconds, r.parent_run_id, r.parent_job, r.error_message \
             FROM lineage_runs r JOIN lineage_jobs j ON j.id = r.job_id \
             WHERE {filter} ORDER BY r.job_id, r.state_time DESC, r.run_id {}",
            ms("state_time"),
            ms("started_at"),
            ms("ended_at"),
            if job.is_some() { "LIMIT $3" } else { "" }
        );
        let mut q = sqlx::query(&sql);
        if let Some((j, limit)) = job {
            q = q.bind(&j.namespace).bind(&j.name).bind(limit);
        }
        let rows = q
            .fetch_all(self.read_pool())
            .await
            .context("reading lineage runs")?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.get("job_id"),
                    RunRow {
                        run_id: r.get("run_id"),
                        job: Qualified::new(
                            r.get::<String, _>("namespace"),
                            r.get::<String, _>("name"),
                        ),
                        state: r.get("state"),
                        state_time_ms: r.get("state_time_ms"),
                        started_at_ms: r.get("started_at_ms"),
                        ended_at_ms: r.get("ended_at_ms"),
                        duration_seconds: r.get("duration_seconds"),
                        parent_run_id: r.get("parent_run_id"),
                        parent_job: r.get("parent_job"),
                        error_message: r.get("error_message"),
                    },
                )
            })
            .collect())
    }

    /// Schema changes, newest first.
    pub async fn lineage_schema_changes(
        &self,
        limit: i64,
    ) -> Result<Vec<SchemaChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.namespace, d.name, (extract(epoch FROM c.changed_at) * 1000)::bigint AS at, \
                    c.from_version, c.to_version, c.run_id, j.namespace AS jns, j.name AS jname, \
                    c.added, c.removed, c.type_changed, \
                    (SELECT count(*) FROM lineage_schema_changes x \
                     WHERE x.dataset_id = c.dataset_id AND x.id <= c.id) AS total \
             FROM lineage_schema_changes c JOIN lineage_datasets d ON d.id = c.dataset_id \
               LEFT JOIN lineage_jobs j ON j.id = c.job_id \
             ORDER BY c.changed_at DESC, c.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.read_pool())
        .await
        .context("reading schema changes")?;
        Ok(rows
            .into_iter()
            .map(|r| SchemaChange {
                dataset: Qualified::new(
                    r.get::<String, _>("namespace"),
                    r.get::<String, _>("name"),
                ),
                changed_at_ms: r.get("at"),
                from_version: r.get("from_version"),
                to_version: r.get("to_version"),
                run_id: r.get("run_id"),
                job: r
                    .get::<Option<String>, _>("jns")
                    .zip(r.get::<Option<String>, _>("jname"))
                    .map(|(a, b)| Qualified::new(a, b)),
                added: serde_json::from_value(r.get("added")).unwrap_or_default(),
                removed: serde_json::from_value(r.get("removed")).unwrap_or_default(),
                type_changed: serde_json::from_value(r.get("type_changed")).unwrap_or_default(),
                changes_total: r.get("total"),
            })
            .collect())
    }
}

/// Stores a new schema version when `fields` differ from the latest one, and a change event
/// when there was a previous version.
async fn record_schema(
    tx: &mut Tx<'_>,
    e: &EventRecord,
    dataset: &Qualified,
    dataset_id: i64,
    job_id: Option<i64>,
    fields: &[(String, Option<String>)],
) -> Result<Option<SchemaChange>, StoreError> {
    // The dataset row was locked by the upsert, so versions are numbered without races.
    let latest: Option<(i32, serde_json::Value)> = sqlx::query_as(
        "SELECT version, fields FROM lineage_schema_versions WHERE dataset_id = $1 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(dataset_id)
    .fetch_optional(&mut **tx)
    .await
    .context("reading the latest schema version")?;
    let new_json = serde_json::to_value(fields).unwrap_or_default();
    if latest.as_ref().is_some_and(|(_, f)| *f == new_json) {
        return Ok(None);
    }
    let version = latest.as_ref().map_or(1, |(v, _)| v + 1);
    let ts = sql_ts(4);
    sqlx::query(&format!(
        "INSERT INTO lineage_schema_versions (dataset_id, version, fields, seen_at, run_id, job_id) \
         VALUES ($1, $2, $3, {ts}, $5, $6)"
    ))
    .bind(dataset_id)
    .bind(version)
    .bind(&new_json)
    .bind(e.time_ms)
    .bind(&e.run_id)
    .bind(job_id)
    .execute(&mut **tx)
    .await
    .context("recording a schema version")?;
    let Some((old_version, old_json)) = latest else {
        return Ok(None);
    };
    let old: Vec<(String, Option<String>)> = serde_json::from_value(old_json).unwrap_or_default();
    let old_map: BTreeMap<&str, &Option<String>> =
        old.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let new_map: BTreeMap<&str, &Option<String>> =
        fields.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let added: Vec<String> = fields
        .iter()
        .filter(|(n, _)| !old_map.contains_key(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    let removed: Vec<String> = old
        .iter()
        .filter(|(n, _)| !new_map.contains_key(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    let type_changed: Vec<(String, Option<String>, Option<String>)> = fields
        .iter()
        .filter_map(|(n, t)| {
            old_map
                .get(n.as_str())
                .filter(|old_t| **old_t != t)
                .map(|old_t| (n.clone(), (*old_t).clone(), t.clone()))
        })
        .collect();
    sqlx::query(&format!(
        "INSERT INTO lineage_schema_changes \
           (dataset_id, changed_at, from_version, to_version, run_id, job_id, added, removed, type_changed) \
         VALUES ($1, {ts}, $3, $4, $5, $6, $7, $8, $9)",
        ts = sql_ts(2)
    ))
    .bind(dataset_id)
    .bind(e.time_ms)
    .bind(old_version)
    .bind(version)
    .bind(&e.run_id)
    .bind(job_id)
    .bind(serde_json::to_value(&added).unwrap_or_default())
    .bind(serde_json::to_value(&removed).unwrap_or_default())
    .bind(serde_json::to_value(&type_changed).unwrap_or_default())
    .execute(&mut **tx)
    .await
    .context("recording a schema change")?;
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM lineage_schema_changes WHERE dataset_id = $1")
            .bind(dataset_id)
            .fetch_one(&mut **tx)
            .await
            .context("counting schema changes")?;
    Ok(Some(SchemaChange {
        dataset: dataset.clone(),
        changed_at_ms: e.time_ms,
        from_version: old_version,
        to_version: version,
        run_id: e.run_id.clone(),
        job: e.job.clone(),
        added,
        removed,
        type_changed,
        changes_total: total,
    }))
}
