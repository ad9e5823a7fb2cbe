//! Decoder for OpenLineage events (spec 2-0-2: `RunEvent`, `JobEvent`, `DatasetEvent`) as
//! `openlineage-python` and the other clients POST them, plus the mapping of their facets to
//! series.
//!
//! A body is one event object or a JSON array of them. Only what pipewatch uses is read:
//! job, run (with the `parent` and `errorMessage` run facets), input and output datasets with
//! the `schema`, `outputStatistics`, `inputStatistics`, `dataQualityMetrics` and
//! `dataQualityAssertions` facets. Every other facet and field is ignored, as the spec asks of
//! consumers (facets are open-ended), but the facets that are read must have the spec's shape:
//! a wrong type is an error naming the field (`[1].inputs[0].inputFacets.dataQualityMetrics.
//! rowCount`), because silently skipping it would hide a broken producer.
//!
//! Which kind an event is follows the spec's required fields: `run` and `job` make a
//! `RunEvent`, `job` alone a `JobEvent`, `dataset` a `DatasetEvent`.
//!
//! The series derived here depend on one event only (facet values at the event's time); the
//! series that need the run's history (duration, run counts, schema changes) are made by the
//! server from what the store returns, with [`run_series`].

use model::{Labels, MetricType, Sample, SeriesKey, TimeSeries, TimestampMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a body was refused. Every message names the event and field, and what to send.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpenLineageError {
    #[error("body is empty; send an OpenLineage event as JSON (or a JSON array of events)")]
    EmptyBody,
    #[error("body is not an OpenLineage event: {path}: {message}; send JSON following https://openlineage.io/spec/2-0-2/OpenLineage.json")]
    Json { path: String, message: String },
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
}

/// Which of the spec's three event types an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    Run,
    Job,
    Dataset,
}

/// `eventType` of a `RunEvent`: the run's state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunEventType {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    Other,
}

impl RunEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "START",
            Self::Running => "RUNNING",
            Self::Complete => "COMPLETE",
            Self::Abort => "ABORT",
            Self::Fail => "FAIL",
            Self::Other => "OTHER",
        }
    }

    /// The type named `s` (as [`RunEventType::as_str`] writes it).
    pub fn from_name(s: &str) -> Option<Self> {
        [
            Self::Start,
            Self::Running,
            Self::Complete,
            Self::Abort,
            Self::Fail,
            Self::Other,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// COMPLETE, FAIL and ABORT end a run.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Abort | Self::Fail)
    }
}

/// A job or dataset identity: the spec's (namespace, name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Name {
    pub namespace: String,
    pub name: String,
}

/// One decoded event, reduced to what pipewatch keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct LineageEvent {
    pub kind: EventKind,
    /// RunEvents only; absent `eventType` is read as OTHER (the spec makes it optional).
    pub event_type: Option<RunEventType>,
    /// `eventTime` as sent, and as Unix milliseconds.
    pub event_time: String,
    pub time_ms: TimestampMs,
    pub producer: String,
    pub run: Option<RunInfo>,
    /// RunEvents and JobEvents.
    pub job: Option<Name>,
    pub inputs: Vec<DatasetInfo>,
    pub outputs: Vec<DatasetInfo>,
    /// DatasetEvents only.
    pub dataset: Option<DatasetInfo>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    /// `parent` run facet: the run (and job) that started this one, e.g. an Airflow DAG run.
    pub parent: Option<ParentRun>,
    /// `errorMessage` run facet.
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParentRun {
    pub run_id: String,
    pub job: Name,
}

/// A dataset with the facets pipewatch reads.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    pub id: Name,
    pub schema: Option<Vec<SchemaField>>,
    pub output_statistics: Option<Statistics>,
    pub input_statistics: Option<Statistics>,
    pub quality: Option<QualityMetrics>,
    pub assertions: Vec<Assertion>,
}

/// `SchemaDatasetFacet` field, with nested struct fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaField {
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub field_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SchemaField>,
}

/// Flattens nested fields to (`parent.child`, type) pairs, the unit a schema change is
/// reported in.
pub fn flatten_schema(fields: &[SchemaField]) -> Vec<(String, Option<String>)> {
    fn walk(prefix: &str, fields: &[SchemaField], out: &mut Vec<(String, Option<String>)>) {
        for f in fields {
            let path = if prefix.is_empty() {
                f.name.clone()
            } else {
                format!("{prefix}.{}", f.name)
            };
            out.push((path.clone(), f.field_type.clone()));
            walk(&path, &f.fields, out);
        }
    }
    let mut out = Vec::new();
    walk("", fields, &mut out);
    out
}

/// `outputStatistics` / `inputStatistics`: rows, bytes (`size`) and files moved by the run.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    pub row_count: Option<f64>,
    #[serde(alias = "size")]
    pub bytes: Option<f64>,
    pub file_count: Option<f64>,
}

/// `dataQualityMetrics` input facet.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityMetrics {
    pub row_count: Option<f64>,
    pub bytes: Option<f64>,
    pub file_count: Option<f64>,
    #[serde(default)]
    pub column_metrics: BTreeMap<String, ColumnMetrics>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnMetrics {
    pub null_count: Option<f64>,
    pub distinct_count: Option<f64>,
    pub sum: Option<f64>,
    pub count: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[serde(default)]
    pub quantiles: BTreeMap<String, f64>,
}

/// One entry of `dataQualityAssertions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Assertion {
    pub assertion: String,
    pub success: bool,
    pub column: Option<String>,
    pub name: Option<String>,
    pub severity: Option<String>,
}

mod raw {
    //! The wire shapes, as serde reads them; unknown fields and facets are ignored.
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Body {
        Many(Vec<Event>),
        One(Box<Event>),
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Event {
        pub event_time: Option<String>,
        pub event_type: Option<Option<RunEventType>>,
        #[serde(default)]
        pub producer: Option<String>,
        pub run: Option<Run>,
        pub job: Option<Job>,
        #[serde(default)]
        pub inputs: Option<Vec<Dataset>>,
        #[serde(default)]
        pub outputs: Option<Vec<Dataset>>,
        pub dataset: Option<Dataset>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Run {
        pub run_id: String,
        #[serde(default)]
        pub facets: Option<RunFacets>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct RunFacets {
        pub parent: Option<ParentFacet>,
        pub error_message: Option<ErrorMessageFacet>,
    }

    #[derive(Deserialize)]
    pub struct ParentFacet {
        pub run: ParentRunRef,
        pub job: Name,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ParentRunRef {
        pub run_id: String,
    }

    #[derive(Deserialize)]
    pub struct ErrorMessageFacet {
        pub message: String,
    }

    #[derive(Deserialize)]
    pub struct Job {
        pub namespace: String,
        pub name: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Dataset {
        pub namespace: String,
        pub name: String,
        #[serde(default)]
        pub facets: Option<DatasetFacets>,
        #[serde(default)]
        pub input_facets: Option<InputFacets>,
        #[serde(default)]
        pub output_facets: Option<OutputFacets>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct DatasetFacets {
        pub schema: Option<SchemaFacet>,
        pub data_quality_assertions: Option<AssertionsFacet>,
        // Producers written before the spec moved it used the dataset facets.
        pub data_quality_metrics: Option<QualityMetrics>,
    }

    #[derive(Deserialize)]
    pub struct SchemaFacet {
        #[serde(default)]
        pub fields: Option<Vec<SchemaField>>,
        #[serde(rename = "_deleted", default)]
        pub deleted: Option<bool>,
    }

    #[derive(Deserialize)]
    pub struct AssertionsFacet {
        pub assertions: Vec<Assertion>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct InputFacets {
        pub input_statistics: Option<Statistics>,
        pub data_quality_metrics: Option<QualityMetrics>,
        // DataQualityAssertionsDatasetFacet derives from InputDatasetFacet in the schema, and
        // some producers (the Great Expectations integration) send it here.
        pub data_quality_assertions: Option<AssertionsFacet>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct OutputFacets {
        pub output_statistics: Option<Statistics>,
    }
}

/// Decodes a request body: one event or an array of events.
pub fn decode(bytes: &[u8]) -> Result<Vec<LineageEvent>, OpenLineageError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(OpenLineageError::EmptyBody);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    // Untagged enums hide the inner error, so read the array and the object shapes
    // separately to name the failing field.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let body = if first == Some(b'[') {
        serde_path_to_error::deserialize::<_, Vec<raw::Event>>(de).map(raw::Body::Many)
    } else {
        serde_path_to_error::deserialize::<_, raw::Event>(de).map(|e| raw::Body::One(Box::new(e)))
    }
    .map_err(|e| OpenLineageError::Json {
        path: match e.path().to_string() {
            p if p == "." => "body".to_string(),
            p => p,
        },
        message: e.inner().to_string(),
    })?;
    let (events, many) = match body {
        raw::Body::Many(v) => (v, true),
        raw::Body::One(e) => (vec![*e], false),
    };
    if many && events.is_empty() {
        return Err(OpenLineageError::Invalid {
            at: "body".into(),
            message: "the array holds no events; send at least one OpenLineage event".into(),
        });
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            convert(
                e,
                if many {
                    format!("[{i}]")
                } else {
                    "event".into()
                },
            )
        })
        .collect()
}

fn invalid(at: &str, message: impl Into<String>) -> OpenLineageError {
    OpenLineageError::Invalid {
        at: at.to_string(),
        message: message.into(),
    }
}

fn name(at: &str, namespace: String, name: String) -> Result<Name, OpenLineageError> {
    if namespace.is_empty() {
        return Err(invalid(at, "namespace is empty; every job and dataset needs a namespace (e.g. the scheduler or the database URL)"));
    }
    if name.is_empty() {
        return Err(invalid(
            at,
            "name is empty; every job and dataset needs a name",
        ));
    }
    Ok(Name { namespace, name })
}

fn convert(e: raw::Event, at: String) -> Result<LineageEvent, OpenLineageError> {
    let event_time = e.event_time.ok_or_else(|| {
        invalid(
            &at,
            "eventTime is missing; send the time the event occurred as an ISO-8601 date-time, e.g. 2026-01-01T10:00:00Z",
        )
    })?;
    let time_ms = parse_time(&event_time).ok_or_else(|| {
        invalid(
            &format!("{at}.eventTime"),
            format!("{event_time:?} is not an ISO-8601 date-time with a time zone; send e.g. 2026-01-01T10:00:00.000Z"),
        )
    })?;
    let kind = match (&e.run, &e.job, &e.dataset) {
        (Some(_), Some(_), _) => EventKind::Run,
        (Some(_), None, _) => {
            return Err(invalid(&at, "has a run but no job; a RunEvent needs both `run` and `job`"))
        }
        (None, Some(_), _) => EventKind::Job,
        (None, None, Some(_)) => EventKind::Dataset,
        (None, None, None) => {
            return Err(invalid(
                &at,
                "has neither `run` and `job` (RunEvent), `job` (JobEvent) nor `dataset` (DatasetEvent); send one of the three OpenLineage event types",
            ))
        }
    };
    let run = match e.run {
        Some(r) if kind == EventKind::Run => {
            if r.run_id.trim().is_empty() {
                return Err(invalid(
                    &format!("{at}.run.runId"),
                    "is empty; send the run's UUID",
                ));
            }
            let facets = r.facets.unwrap_or_default();
            Some(RunInfo {
                run_id: r.run_id,
                parent: facets
                    .parent
                    .map(|p| {
                        Ok::<_, OpenLineageError>(ParentRun {
                            run_id: p.run.run_id,
                            job: name(
                                &format!("{at}.run.facets.parent.job"),
                                p.job.namespace,
                                p.job.name,
                            )?,
                        })
                    })
                    .transpose()?,
                error_message: facets.error_message.map(|m| m.message),
            })
        }
        _ => None,
    };
    let job = e
        .job
        .map(|j| name(&format!("{at}.job"), j.namespace, j.name))
        .transpose()?;
    let datasets = |list: Option<Vec<raw::Dataset>>, field: &str| {
        list.unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, d)| dataset(&format!("{at}.{field}[{i}]"), d))
            .collect::<Result<Vec<_>, _>>()
    };
    let (inputs, outputs) = if kind == EventKind::Dataset {
        (Vec::new(), Vec::new())
    } else {
        (
            datasets(e.inputs, "inputs")?,
            datasets(e.outputs, "outputs")?,
        )
    };
    let dataset = match e.dataset {
        Some(d) if kind == EventKind::Dataset => Some(dataset(&format!("{at}.dataset"), d)?),
        _ => None,
    };
    Ok(LineageEvent {
        kind,
        event_type: (kind == EventKind::Run)
            .then(|| e.event_type.flatten().unwrap_or(RunEventType::Other)),
        event_time,
        time_ms,
        producer: e.producer.unwrap_or_default(),
        run,
        job,
        inputs,
        outputs,
        dataset,
    })
}

fn dataset(at: &str, d: raw::Dataset) -> Result<DatasetInfo, OpenLineageError> {
    let facets = d.facets.unwrap_or_default();
    let input = d.input_facets.unwrap_or_default();
    let output = d.output_facets.unwrap_or_default();
    let schema = match facets.schema {
        Some(s) if s.deleted != Some(true) => s.fields,
        _ => None,
    };
    if let Some(fields) = &schema {
        for (i, f) in fields.iter().enumerate() {
            if f.name.is_empty() {
                return Err(invalid(
                    &format!("{at}.facets.schema.fields[{i}].name"),
                    "is empty; every schema field needs a name",
                ));
            }
        }
    }
    let mut assertions = Vec::new();
    for a in [
        facets.data_quality_assertions,
        input.data_quality_assertions,
    ]
    .into_iter()
    .flatten()
    {
        assertions.extend(a.assertions);
    }
    Ok(DatasetInfo {
        id: name(at, d.namespace, d.name)?,
        schema,
        output_statistics: output.output_statistics,
        input_statistics: input.input_statistics,
        quality: input.data_quality_metrics.or(facets.data_quality_metrics),
        assertions,
    })
}

/// RFC 3339 with any offset; a date-time without one (some Java producers) is read as UTC.
fn parse_time(s: &str) -> Option<TimestampMs> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

fn gauge(metric: &str, labels: &[(&str, &str)], ts: TimestampMs, value: f64) -> TimeSeries {
    TimeSeries {
        key: SeriesKey::new(metric, Labels::from_pairs(labels.iter().copied())),
        metric_type: MetricType::Gauge,
        samples: vec![Sample { ts, value }],
    }
}

/// The series one event's facets carry, at the event's time:
///
/// - `openlineage_dataset_output_{rows,bytes,files}{namespace,dataset,job}` from
///   `outputStatistics` (what the run wrote), `openlineage_dataset_input_{rows,bytes,files}`
///   from `inputStatistics` (what it read);
/// - `openlineage_dataset_{rows,bytes,files}{namespace,dataset}` from `dataQualityMetrics`, and
///   per column `openlineage_dataset_column_{nulls,distinct_values,sum,values,min,max}` and
///   `openlineage_dataset_column_quantile{quantile}`;
/// - `openlineage_dataset_assertion_success{namespace,dataset,assertion,column}` 1 or 0 per
///   `dataQualityAssertions` entry;
/// - `openlineage_dataset_schema_fields{namespace,dataset}`: fields in the sent schema
///   (nested ones included).
pub fn facet_series(e: &LineageEvent) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    let ts = e.time_ms;
    let job = e.job.as_ref().map(|j| j.name.as_str()).unwrap_or("");
    let all = e.inputs.iter().chain(&e.outputs).chain(e.dataset.as_ref());
    for d in all {
        let ns = d.id.namespace.as_str();
        let ds = d.id.name.as_str();
        let with_job = [("namespace", ns), ("dataset", ds), ("job", job)];
        let with_job: &[(&str, &str)] = if job.is_empty() {
            &with_job[..2]
        } else {
            &with_job
        };
        for (stats, dir) in [
            (&d.output_statistics, "output"),
            (&d.input_statistics, "input"),
        ] {
            let Some(s) = stats else { continue };
            for (v, unit) in [
                (s.row_count, "rows"),
                (s.bytes, "bytes"),
                (s.file_count, "files"),
            ] {
                if let Some(v) = v {
                    out.push(gauge(
                        &format!("openlineage_dataset_{dir}_{unit}"),
                        with_job,
                        ts,
                        v,
                    ));
                }
            }
        }
        let base = [("namespace", ns), ("dataset", ds)];
        if let Some(q) = &d.quality {
            for (v, unit) in [
                (q.row_count, "rows"),
                (q.bytes, "bytes"),
                (q.file_count, "files"),
            ] {
                if let Some(v) = v {
                    out.push(gauge(&format!("openlineage_dataset_{unit}"), &base, ts, v));
                }
            }
            for (col, m) in &q.column_metrics {
                let labels = [("namespace", ns), ("dataset", ds), ("column", col.as_str())];
                for (v, what) in [
                    (m.null_count, "nulls"),
                    (m.distinct_count, "distinct_values"),
                    (m.sum, "sum"),
                    (m.count, "values"),
                    (m.min, "min"),
                    (m.max, "max"),
                ] {
                    if let Some(v) = v {
                        out.push(gauge(
                            &format!("openlineage_dataset_column_{what}"),
                            &labels,
                            ts,
                            v,
                        ));
                    }
                }
                for (q, v) in &m.quantiles {
                    let mut l = labels.to_vec();
                    l.push(("quantile", q.as_str()));
                    out.push(gauge("openlineage_dataset_column_quantile", &l, ts, *v));
                }
            }
        }
        for a in &d.assertions {
            let mut l = vec![
                ("namespace", ns),
                ("dataset", ds),
                ("assertion", a.assertion.as_str()),
            ];
            if let Some(c) = a.column.as_deref().filter(|c| !c.is_empty()) {
                l.push(("column", c));
            }
            if let Some(n) = a.name.as_deref().filter(|n| !n.is_empty()) {
                l.push(("name", n));
            }
            out.push(gauge(
                "openlineage_dataset_assertion_success",
                &l,
                ts,
                if a.success { 1.0 } else { 0.0 },
            ));
        }
        if let Some(fields) = &d.schema {
            out.push(gauge(
                "openlineage_dataset_schema_fields",
                &base,
                ts,
                flatten_schema(fields).len() as f64,
            ));
        }
    }
    out
}

/// What the store learned from one run event, for [`run_series`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOutcome {
    /// Set when this event completed the run's start and end (in either order).
    pub ended: Option<(RunEventType, f64)>,
    /// Distinct runs of the job that have reached this event's state, this one included.
    pub runs_in_state: Option<u64>,
}

/// The series of a run event that need the run's history:
/// `openlineage_runs_total{namespace,job,state}` (a counter: runs that reached START,
/// COMPLETE, FAIL or ABORT) and `openlineage_run_duration_seconds{namespace,job,state}` at the
/// run's end (state is how it ended). A COMPLETE event also gives
/// `openlineage_job_last_success_timestamp_seconds{namespace,job}` (the event's time, in
/// seconds, Prometheus' convention for "when did this last succeed"): the detection job reads
/// the job's freshness from it against its learned cadence.
pub fn run_series(e: &LineageEvent, outcome: &RunOutcome) -> Vec<TimeSeries> {
    let (Some(job), Some(t)) = (&e.job, e.event_type) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(n) = outcome.runs_in_state {
        let mut s = gauge(
            "openlineage_runs_total",
            &[
                ("namespace", &job.namespace),
                ("job", &job.name),
                ("state", t.as_str()),
            ],
            e.time_ms,
            n as f64,
        );
        s.metric_type = MetricType::Counter;
        out.push(s);
    }
    if t == RunEventType::Complete {
        out.push(gauge(
            "openlineage_job_last_success_timestamp_seconds",
            &[("namespace", &job.namespace), ("job", &job.name)],
            e.time_ms,
            e.time_ms as f64 / 1000.0,
        ));
    }
    if let Some((state, secs)) = outcome.ended {
        out.push(gauge(
            "openlineage_run_duration_seconds",
            &[
                ("namespace", &job.namespace),
                ("job", &job.name),
                ("state", state.as_str()),
            ],
            e.time_ms,
            secs,
        ));
    }
    out
}
