//! Rule files: Prometheus' format (`groups:` of recording and alerting rules) loaded unchanged,
//! plus pipewatch's rule kinds as one optional `pipewatch:` key per alerting rule, and the
//! checks `promtool check rules` makes, each reported with `line:column`.
//!
//! ```yaml
//! groups:
//!   - name: orders
//!     interval: 30s
//!     rules:
//!       - record: job:rows:rate5m
//!         expr: sum by (job) (rate(rows_total[5m]))
//!       - alert: RowsStopped
//!         expr: job:rows:rate5m == 0
//!         for: 10m
//!         keep_firing_for: 5m
//!         labels: { severity: page }
//!         annotations: { summary: "{{ $labels.job }} wrote no rows for 10m" }
//!       # pipewatch's own kinds: no `expr`, a `pipewatch:` key instead.
//!       - alert: OrdersStale
//!         pipewatch: { kind: freshness, selector: 'last_success_timestamp_seconds{pipeline="orders"}', max_age: 2h }
//! ```
//!
//! A file that uses `pipewatch:` is no longer a Prometheus rule file (promtool refuses unknown
//! keys); one without it is checked exactly as promtool checks it.

use crate::duration;
use crate::template;
use crate::yaml::{self, err, Fields, Node, Pos, YamlError};
use promql_parser::parser::Expr;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A parsed rule file.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

/// Rules evaluated one after another at the group's interval.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub pos: Pos,
    /// The group's own `interval`, when it has one (else the global evaluation interval).
    pub interval_ms: Option<i64>,
    /// Most series (recording) or alerts (alerting) a rule may produce; 0 is no limit.
    pub limit: usize,
    pub rules: Vec<Rule>,
}

/// What a rule produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleType {
    /// `record:` writes the expression's result as a new series.
    Recording,
    /// `alert:` turns every element of the result into an alert.
    Alerting,
}

/// One rule, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub pos: Pos,
    pub rule_type: RuleType,
    /// The `record` or `alert` name.
    pub name: String,
    /// The PromQL the rule evaluates: as written, or generated from a pipewatch kind
    /// (absence, freshness); empty for kinds evaluated elsewhere (anomaly, dq_check, drift).
    pub expr: String,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// pipewatch's rule kind, when the rule has a `pipewatch:` key.
    pub pipewatch: Option<PipewatchKind>,
}

/// pipewatch's rule kinds beyond a PromQL threshold (`pipewatch: { kind: ... }`).
#[derive(Clone, Debug, PartialEq)]
pub enum PipewatchKind {
    /// Fires while no sample of `selector` arrived for `window_ms`
    /// (evaluated now, as `absent_over_time(selector[window])`).
    Absence { selector: String, window_ms: i64 },
    /// Fires while the newest value of `selector` (a Unix time in seconds, such as a last
    /// successful run) is older than `max_age_ms` (evaluated now, as
    /// `time() - selector > max_age`).
    Freshness { selector: String, max_age_ms: i64 },
    /// A threshold with hysteresis: an element of `query` becomes an alert when its value
    /// crosses `trigger` (above it, or below it with `below: true`) and stays one until it
    /// is back past `clear`, so a value hovering at the threshold does not page repeatedly.
    Threshold {
        query: String,
        trigger: f64,
        clear: f64,
        below: bool,
    },
    /// Fires on anomalies found by the analysis jobs over series matching `selector` (all
    /// when empty), at or above a severity or a score. Evaluated by the server from the
    /// `anomalies` table.
    Anomaly {
        selector: String,
        min_severity: Option<String>,
        min_score: Option<f64>,
    },
    /// Fires while the latest run of a data-quality check of `dataset` (one `check`, by name
    /// or id, or any) fails (or errors), or also warns when `on` is `warn`: one alert per
    /// check ([`crate::kinds::dq_hits`]).
    DqCheck {
        dataset: String,
        check: Option<String>,
        on: DqStatus,
    },
    /// Fires while the latest drift result of `feature` (a column) for `statistic` (stored as
    /// its Evidently name) is past `threshold`: above it for distances, below it for p-value
    /// tests ([`crate::kinds::drift_hits`]).
    Drift {
        feature: String,
        statistic: String,
        threshold: f64,
    },
}

/// Which data-quality outcomes a `dq_check` rule fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DqStatus {
    Fail,
    Warn,
}

impl PipewatchKind {
    pub fn name(&self) -> &'static str {
        match self {
            PipewatchKind::Absence { .. } => "absence",
            PipewatchKind::Threshold { .. } => "threshold",
            PipewatchKind::Freshness { .. } => "freshness",
            PipewatchKind::Anomaly { .. } => "anomaly",
            PipewatchKind::DqCheck { .. } => "dq_check",
            PipewatchKind::Drift { .. } => "drift",
        }
    }

    /// True for the kinds a [`crate::GroupEvaluator`] evaluates (their PromQL is generated);
    /// the others read tables the caller owns (anomalies, data-quality runs, drift results):
    /// see [`crate::kinds`].
    pub fn is_evaluated(&self) -> bool {
        matches!(
            self,
            PipewatchKind::Absence { .. }
                | PipewatchKind::Freshness { .. }
                | PipewatchKind::Threshold { .. }
        )
    }
}

/// The drift statistics a `drift` rule names: the names the analysis jobs store in
/// `drift_results.method` (Evidently's registry names), plus the two spellings the README
/// showed first, read as their Evidently names ([`drift_statistic`]).
pub const DRIFT_STATISTICS: [&str; 12] = [
    "psi",
    "ks",
    "wasserstein",
    "jensenshannon",
    "chisquare",
    "z",
    "kl_div",
    "anderson",
    "cramer_von_mises",
    "mannw",
    "jensen_shannon",
    "chi_square",
];

/// The name stored in `drift_results.method` for a statistic a rule names.
pub fn drift_statistic(name: &str) -> &str {
    match name {
        "jensen_shannon" => "jensenshannon",
        "chi_square" => "chisquare",
        other => other,
    }
}

/// Whether a drift statistic is a p-value (drift when it is small) rather than a distance
/// (drift when it is large), as the analysis crate's `StatTest::is_p_value`.
pub fn drift_is_p_value(statistic: &str) -> bool {
    !matches!(
        drift_statistic(statistic),
        "wasserstein" | "psi" | "jensenshannon" | "kl_div"
    )
}
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// How bad a finding is: errors make the file invalid; warnings (duplicate rules, as promtool's
/// lint) do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding of [`parse`], with its place when it has one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.pos {
            write!(f, "{p}: ")?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

impl From<YamlError> for Diagnostic {
    fn from(e: YamlError) -> Self {
        Diagnostic {
            severity: Severity::Error,
            pos: Some(e.pos),
            message: e.message,
        }
    }
}

/// The result of reading a rule file: the rules (when the file's shape was readable) and every
/// finding. The file is valid when no finding is an [`Severity::Error`].
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub file: Option<RuleFile>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    pub fn is_valid(&self) -> bool {
        self.file.is_some()
            && !self
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// Number of rules in the file.
    pub fn rule_count(&self) -> usize {
        self.file
            .as_ref()
            .map_or(0, |f| f.groups.iter().map(|g| g.rules.len()).sum())
    }
}

/// Reads and checks a rule file. The YAML's shape (unknown keys, wrong types, bad durations)
/// stops reading at the first problem, as Go's strict decoder does; the rules' content is then
/// checked in full, so one run lists every invalid expression, name and template.
pub fn parse(text: &str) -> Parsed {
    let root = match yaml::parse(text) {
        Ok(n) => n,
        Err(e) => {
            return Parsed {
                file: None,
                diagnostics: vec![e.into()],
            }
        }
    };
    let raw = match read_file(&root) {
        Ok(f) => f,
        Err(e) => {
            return Parsed {
                file: None,
                diagnostics: vec![e.into()],
            }
        }
    };
    let mut diagnostics = validate(&raw);
    diagnostics.extend(duplicate_rules(&raw));
    diagnostics.sort();
    Parsed {
        file: Some(raw.into_file()),
        diagnostics,
    }
}

struct RawRule {
    rule: Rule,
    record: Option<(Pos, String)>,
    alert: Option<(Pos, String)>,
    expr: Option<(Pos, String)>,
    label_keys: Vec<(Pos, String)>,
}

fn read_file(root: &Node) -> Result<RawFile, YamlError> {
    let f = Fields::new(root, "the rule file", &["groups"])?;
    let mut groups = Vec::new();
    if let Some(gs) = f.value("groups") {
        for g in gs.as_seq("groups")? {
            groups.push(read_group(g)?);
        }
    }
    Ok(RawFile { groups })
}

struct RawFile {
    groups: Vec<RawGroup>,
}

struct RawGroup {
    group: RuleGroup,
    rules: Vec<RawRule>,
}

fn duration_of(node: &Node, what: &str) -> Result<i64, YamlError> {
    let s = node.as_str(what)?;
    duration::parse(&s).map_err(|e| err(node.pos, format!("{what}: {e}")))
}

fn read_group(g: &Node) -> Result<RawGroup, YamlError> {
    let f = Fields::new(g, "a rule group", &["name", "interval", "limit", "rules"])?;
    let name = match f.value("name") {
        Some(n) => n.as_str("the group name")?,
        None => String::new(),
    };
    let interval_ms = match f.value("interval") {
        Some(n) if !n.is_null() => Some(duration_of(n, "interval")?).filter(|v| *v != 0),
        _ => None,
    };
    let limit = match f.value("limit") {
        Some(n) if !n.is_null() => {
            let s = n.as_str("limit")?;
            let v: i64 = s.parse().map_err(|_| {
                err(
                    n.pos,
                    format!("limit: {s:?} is not a whole number (write e.g. `limit: 100`)"),
                )
            })?;
            v.max(0) as usize
        }
        _ => 0,
    };
    let mut rules = Vec::new();
    if let Some(rs) = f.value("rules") {
        for r in rs.as_seq("rules")? {
            rules.push(read_rule(r)?);
        }
    }
    Ok(RawGroup {
        group: RuleGroup {
            name,
            pos: g.pos,
            interval_ms,
            limit,
            rules: Vec::new(),
        },
        rules,
    })
}

fn read_rule(r: &Node) -> Result<RawRule, YamlError> {
    let f = Fields::new(
        r,
        "a rule",
        &[
            "record",
            "alert",
            "expr",
            "for",
            "keep_firing_for",
            "labels",
            "annotations",
            "pipewatch",
        ],
    )?;
    let named = |key: &str| -> Result<Option<(Pos, String)>, YamlError> {
        match f.value(key) {
            Some(n) => Ok(Some((n.pos, n.as_str(key)?))),
            None => Ok(None),
        }
    };
    let record = named("record")?;
    let alert = named("alert")?;
    let expr = named("expr")?;
    let for_ms = match f.value("for") {
        Some(n) if !n.is_null() => duration_of(n, "for")?,
        _ => 0,
    };
    let keep_firing_for_ms = match f.value("keep_firing_for") {
        Some(n) if !n.is_null() => duration_of(n, "keep_firing_for")?,
        _ => 0,
    };
    let mut labels = BTreeMap::new();
    let mut label_keys = Vec::new();
    if let Some(n) = f.value("labels") {
        for (k, v) in n.as_string_map("labels")? {
            let key = k.as_str("a label name")?;
            label_keys.push((k.pos, key.clone()));
            labels.insert(key, v);
        }
    }
    let mut annotations = BTreeMap::new();
    if let Some(n) = f.value("annotations") {
        for (k, v) in n.as_string_map("annotations")? {
            annotations.insert(k.as_str("an annotation name")?, v);
        }
    }
    let pipewatch = match f.value("pipewatch") {
        Some(n) => Some(read_pipewatch(n)?),
        None => None,
    };
    let alert_name = alert.as_ref().map(|a| a.1.clone()).unwrap_or_default();
    let record_name = record.as_ref().map(|a| a.1.clone()).unwrap_or_default();
    let rule_type = if alert_name.is_empty() && !record_name.is_empty() {
        RuleType::Recording
    } else {
        RuleType::Alerting
    };
    let name = if rule_type == RuleType::Recording {
        record_name
    } else {
        alert_name
    };
    let generated = match &pipewatch {
        Some(PipewatchKind::Absence {
            selector,
            window_ms,
        }) => format!(
            "absent_over_time({selector}[{}])",
            duration::format(*window_ms)
        ),
        // The whole result: the evaluator applies the trigger and clear thresholds, since
        // which one holds depends on whether the element is already an alert.
        Some(PipewatchKind::Threshold { query, .. }) => query.clone(),
        Some(PipewatchKind::Freshness {
            selector,
            max_age_ms,
        }) => format!(
            "time() - ({selector}) > {}",
            query::format_value(*max_age_ms as f64 / 1000.0)
        ),
        _ => String::new(),
    };
    let expr_text = match (&expr, &pipewatch) {
        (Some((_, e)), _) if !e.is_empty() => e.clone(),
        _ => generated,
    };
    Ok(RawRule {
        rule: Rule {
            pos: r.pos,
            rule_type,
            name,
            expr: expr_text,
            for_ms,
            keep_firing_for_ms,
            labels,
            annotations,
            pipewatch,
        },
        record,
        alert,
        expr,
        label_keys,
    })
}

fn read_pipewatch(n: &Node) -> Result<PipewatchKind, YamlError> {
    let kinds = "threshold, absence, freshness, anomaly, dq_check, drift";
    let base = Fields::new(
        n,
        "pipewatch",
        &[
            "kind",
            "selector",
            "for",
            "max_age",
            "min_severity",
            "min_score",
            "dataset",
            "check",
            "on",
            "feature",
            "statistic",
            "threshold",
            "query",
            "above",
            "below",
            "clear",
        ],
    )?;
    let Some(kind_node) = base.value("kind") else {
        return Err(err(
            n.pos,
            format!("pipewatch: `kind` must be set (one of {kinds})"),
        ));
    };
    let kind = kind_node.as_str("pipewatch.kind")?;
    let allowed: &[&str] = match kind.as_str() {
        "threshold" => &["kind", "query", "above", "below", "clear"],
        "absence" => &["kind", "selector", "for"],
        "freshness" => &["kind", "selector", "max_age"],
        "anomaly" => &["kind", "selector", "min_severity", "min_score"],
        "dq_check" => &["kind", "dataset", "check", "on"],
        "drift" => &["kind", "feature", "statistic", "threshold"],
        other => {
            return Err(err(
                kind_node.pos,
                format!("pipewatch.kind: unknown kind {other:?} (one of {kinds})"),
            ))
        }
    };
    let f = Fields::new(n, &format!("pipewatch kind {kind}"), allowed)?;
    let required = |key: &str, hint: &str| -> Result<(Pos, String), YamlError> {
        match f.value(key) {
            Some(v) if !v.is_null() => Ok((v.pos, v.as_str(key)?)),
            _ => Err(err(
                n.pos,
                format!("pipewatch kind {kind}: `{key}` must be set ({hint})"),
            )),
        }
    };
    let selector_of = |(pos, s): (Pos, String)| -> Result<String, YamlError> {
        match query::parse(&s) {
            Ok(Expr::VectorSelector(_)) => Ok(s),
            Ok(_) => Err(err(
                pos,
                format!("pipewatch.selector: {s:?} is not a series selector (write e.g. `job_last_success_seconds{{job=\"etl\"}}`)"),
            )),
            Err(e) => Err(err(
                pos,
                format!("pipewatch.selector: could not parse {s:?}: {e}"),
            )),
        }
    };
    let float_of = |key: &str, pos: Pos, s: &str| -> Result<f64, YamlError> {
        s.parse::<f64>()
            .map_err(|_| err(pos, format!("pipewatch.{key}: {s:?} is not a number")))
    };
    Ok(match kind.as_str() {
        "threshold" => {
            let (qpos, query) = required("query", "the PromQL whose value is compared")?;
            if let Err(e) = query::parse(&query) {
                return Err(err(
                    qpos,
                    format!("pipewatch.query: could not parse {query:?}: {e}"),
                ));
            }
            let above = f.value("above").filter(|v| !v.is_null());
            let below = f.value("below").filter(|v| !v.is_null());
            let (tnode, is_below) = match (above, below) {
                (Some(a), None) => (a, false),
                (None, Some(b)) => (b, true),
                _ => {
                    return Err(err(
                        n.pos,
                        "pipewatch kind threshold: set exactly one of `above` and `below` (the value that fires)",
                    ))
                }
            };
            let key = if is_below { "below" } else { "above" };
            let trigger = float_of(key, tnode.pos, &tnode.as_str(key)?)?;
            let clear = match f.value("clear") {
                Some(v) if !v.is_null() => {
                    let c = float_of("clear", v.pos, &v.as_str("clear")?)?;
                    if (!is_below && c > trigger) || (is_below && c < trigger) {
                        return Err(err(
                            v.pos,
                            format!(
                                "pipewatch.clear: {c} is past the trigger {trigger}; the alert clears once the value is back {} {c}, so put it on the other side of `{key}`",
                                if is_below { "above" } else { "below" }
                            ),
                        ));
                    }
                    c
                }
                _ => trigger,
            };
            PipewatchKind::Threshold {
                query,
                trigger,
                clear,
                below: is_below,
            }
        }
        "absence" => {
            let selector =
                selector_of(required("selector", "the series that must keep arriving")?)?;
            let (pos, w) = required("for", "how long without data fires, e.g. 10m")?;
            let window_ms =
                duration::parse(&w).map_err(|e| err(pos, format!("pipewatch.for: {e}")))?;
            if window_ms <= 0 {
                return Err(err(pos, "pipewatch.for: must be longer than 0s"));
            }
            PipewatchKind::Absence {
                selector,
                window_ms,
            }
        }
        "freshness" => {
            let selector = selector_of(required(
                "selector",
                "a series whose value is a Unix time in seconds, e.g. a last successful run",
            )?)?;
            let (pos, w) = required("max_age", "how old the newest value may be, e.g. 2h")?;
            let max_age_ms =
                duration::parse(&w).map_err(|e| err(pos, format!("pipewatch.max_age: {e}")))?;
            PipewatchKind::Freshness {
                selector,
                max_age_ms,
            }
        }
        "anomaly" => {
            let selector = match f.value("selector") {
                Some(v) if !v.is_null() => selector_of((v.pos, v.as_str("selector")?))?,
                _ => String::new(),
            };
            let min_severity = match f.value("min_severity") {
                Some(v) if !v.is_null() => {
                    let s = v.as_str("min_severity")?;
                    if !SEVERITIES.contains(&s.as_str()) {
                        return Err(err(
                            v.pos,
                            format!(
                                "pipewatch.min_severity: {s:?} is not one of {}",
                                SEVERITIES.join(", ")
                            ),
                        ));
                    }
                    Some(s)
                }
                _ => None,
            };
            let min_score = match f.value("min_score") {
                Some(v) if !v.is_null() => {
                    Some(float_of("min_score", v.pos, &v.as_str("min_score")?)?)
                }
                _ => None,
            };
            PipewatchKind::Anomaly {
                selector,
                min_severity,
                min_score,
            }
        }
        "dq_check" => {
            let (_, dataset) = required("dataset", "the dataset the checks run on")?;
            let check = match f.value("check") {
                Some(v) if !v.is_null() => Some(v.as_str("check")?),
                _ => None,
            };
            let on = match f.value("on") {
                Some(v) if !v.is_null() => match v.as_str("on")?.as_str() {
                    "fail" => DqStatus::Fail,
                    "warn" => DqStatus::Warn,
                    other => {
                        return Err(err(
                            v.pos,
                            format!("pipewatch.on: {other:?} is not one of fail, warn"),
                        ))
                    }
                },
                _ => DqStatus::Fail,
            };
            PipewatchKind::DqCheck { dataset, check, on }
        }
        _ => {
            let (_, feature) = required("feature", "the feature or column that drifts")?;
            let (pos, statistic) = required("statistic", &DRIFT_STATISTICS[..10].join(", "))?;
            if !DRIFT_STATISTICS.contains(&statistic.as_str()) {
                return Err(err(
                    pos,
                    format!(
                        "pipewatch.statistic: {statistic:?} is not one of {}",
                        DRIFT_STATISTICS[..10].join(", ")
                    ),
                ));
            }
            let (pos, t) = required("threshold", "the statistic's value that fires, e.g. 0.2")?;
            PipewatchKind::Drift {
                feature,
                statistic: drift_statistic(&statistic).to_string(),
                threshold: float_of("threshold", pos, &t)?,
            }
        }
    })
}

/// A valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(s: &str) -> bool {
    query::value::is_label_name(s)
}

/// A valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c == ':' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == ':' || c.is_ascii_alphanumeric())
}

fn validate(file: &RawFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let error = |pos: Option<Pos>, message: String| Diagnostic {
        severity: Severity::Error,
        pos,
        message,
    };
    for g in &file.groups {
        let gname = &g.group.name;
        if gname.is_empty() {
            out.push(error(
                Some(g.group.pos),
                "Groupname must not be empty".into(),
            ));
        }
        if !seen.insert(gname.clone()) {
            out.push(error(
                Some(g.group.pos),
                format!("groupname: \"{gname}\" is repeated in the same file"),
            ));
        }
        for (i, r) in g.rules.iter().enumerate() {
            let ctx = format!("group {gname:?}, rule {}, {:?}", i + 1, r.rule.name);
            let mut push =
                |pos: Option<Pos>, msg: String| out.push(error(pos, format!("{ctx}: {msg}")));
            let record = r.record.as_ref().filter(|(_, v)| !v.is_empty());
            let alert = r.alert.as_ref().filter(|(_, v)| !v.is_empty());
            match (record, alert) {
                (Some((p, _)), Some(_)) => push(
                    Some(*p),
                    "only one of 'record' and 'alert' must be set".into(),
                ),
                (None, None) => push(
                    Some(
                        r.record
                            .as_ref()
                            .or(r.alert.as_ref())
                            .map_or(r.rule.pos, |x| x.0),
                    ),
                    "one of 'record' or 'alert' must be set".into(),
                ),
                _ => {}
            }
            let expr_pos = r.expr.as_ref().map_or(r.rule.pos, |e| e.0);
            let written = r.expr.as_ref().map(|e| e.1.as_str()).unwrap_or("");
            match &r.rule.pipewatch {
                Some(k) if !written.is_empty() => push(
                    Some(expr_pos),
                    format!(
                        "'expr' and pipewatch kind {} are exclusive: the kind defines what the rule watches (remove one)",
                        k.name()
                    ),
                ),
                Some(_) if record.is_some() => push(
                    Some(r.rule.pos),
                    "'pipewatch' kinds are alerting rules: use `alert:` instead of `record:`".into(),
                ),
                Some(_) => {}
                None if written.is_empty() => {
                    push(Some(expr_pos), "field 'expr' must be set in rule".into())
                }
                None => match query::parse(written) {
                    Err(e) => push(Some(expr_pos), format!("could not parse expression: {e}")),
                    Ok(parsed) => {
                        if let Err(e) = prometheus_242(written, &parsed) {
                            push(Some(expr_pos), format!("could not parse expression: {e}"));
                        }
                    }
                },
            }
            if let Some((p, name)) = record {
                if !r.rule.annotations.is_empty() {
                    push(
                        Some(*p),
                        "invalid field 'annotations' in recording rule".into(),
                    );
                }
                if r.rule.for_ms != 0 {
                    push(Some(*p), "invalid field 'for' in recording rule".into());
                }
                if r.rule.keep_firing_for_ms != 0 {
                    push(
                        Some(*p),
                        "invalid field 'keep_firing_for' in recording rule".into(),
                    );
                }
                if !is_metric_name(name) {
                    push(Some(*p), format!("invalid recording rule name: {name}"));
                }
            }
            for (p, k) in &r.label_keys {
                if !is_label_name(k) || k == "__name__" {
                    push(Some(*p), format!("invalid label name: {k}"));
                }
            }
            for k in r.rule.annotations.keys() {
                if !is_label_name(k) {
                    push(None, format!("invalid annotation name: {k}"));
                }
            }
            if alert.is_some() {
                for (what, map) in [
                    ("label", &r.rule.labels),
                    ("annotation", &r.rule.annotations),
                ] {
                    for (k, v) in map {
                        if let Err(e) = template::Template::parse(&with_defs(v)) {
                            push(
                                None,
                                format!("{what} {k:?}: template: __alert_{}:{e}", r.rule.name),
                            );
                        }
                    }
                }
            }
        }
    }
    out
}

/// PromQL functions of Prometheus 2.42 (`promql/parser/functions.go`).
const FUNCTIONS_2_42: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_sum",
    "histogram_fraction",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// Aggregations of Prometheus 2.42.
const AGGREGATIONS_2_42: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
];

/// The PromQL parser pipewatch uses also reads Prometheus 3.x syntax (quoted UTF-8 names,
/// `limitk`, `info`, `mad_over_time`, ...). A rule file must stay loadable by the Prometheus
/// version pipewatch matches, so lint refuses what 2.42 would not parse, as promtool 2.42 does.
fn prometheus_242(text: &str, expr: &Expr) -> Result<(), String> {
    // The parser is fed `holt_winters` under its 3.x name, so the 3.x name itself is only
    // recognisable in the text.
    if regex::Regex::new(r"\bdouble_exponential_smoothing\s*\(")
        .map(|re| re.is_match(text))
        .unwrap_or(false)
    {
        return Err(
            "unknown function with name \"double_exponential_smoothing\" in Prometheus 2.42 (it is called holt_winters there)".into(),
        );
    }
    if has_quoted_name(text) {
        return Err(
            "quoted metric or label names are not in Prometheus 2.42 (they came in 3.0)".into(),
        );
    }
    check_242(expr)
}

fn check_selector_242(vs: &promql_parser::parser::VectorSelector) -> Result<(), String> {
    if let Some(m) = vs
        .matchers
        .matchers
        .iter()
        .find(|m| !is_label_name(&m.name))
    {
        return Err(format!(
            "{:?} is not a valid label name in Prometheus 2.42 (quoted UTF-8 names came in 3.0)",
            m.name
        ));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err("`or` between label matchers is not in Prometheus 2.42".into());
    }
    Ok(())
}

/// True when a metric or label is named with a quoted string: `{"my.metric"}`,
/// `{"a.b"="x"}` (inside braces a string right after `{` or `,` is a name) or
/// `sum by ("a.b")` (any string in the label list of by, without, on, ignoring, group_left or
/// group_right).
fn has_quoted_name(text: &str) -> bool {
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let mut braces = 0usize;
    // For each open parenthesis: does it hold a label list?
    let mut parens: Vec<bool> = Vec::new();
    let mut prev = ' ';
    let mut word = String::new();
    let mut last_word = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            prev = c;
            continue;
        }
        if !word.is_empty() {
            last_word = std::mem::take(&mut word);
        }
        match c {
            '"' | '\'' | '`' => {
                let in_label_list = parens.last().copied().unwrap_or(false);
                if (braces > 0 && (prev == '{' || prev == ',')) || (in_label_list && braces == 0) {
                    return true;
                }
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && c != '`' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
                prev = c;
                last_word.clear();
                continue;
            }
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '(' => parens.push(LABEL_LISTS.contains(&last_word.as_str())),
            ')' => {
                parens.pop();
            }
            _ => {}
        }
        if !c.is_whitespace() {
            prev = c;
            last_word.clear();
        }
    }
    false
}

fn check_242(expr: &Expr) -> Result<(), String> {
    match expr {
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !AGGREGATIONS_2_42.contains(&op.as_str()) {
                return Err(format!("unknown aggregation {op:?} in Prometheus 2.42"));
            }
            check_242(&a.expr)?;
            if let Some(p) = &a.param {
                check_242(p)?;
            }
            Ok(())
        }
        Expr::Unary(u) => check_242(&u.expr),
        Expr::Binary(b) => {
            check_242(&b.lhs)?;
            check_242(&b.rhs)
        }
        Expr::Paren(p) => check_242(&p.expr),
        Expr::Subquery(s) => check_242(&s.expr),
        Expr::VectorSelector(vs) => check_selector_242(vs),
        Expr::MatrixSelector(ms) => check_selector_242(&ms.vs),
        Expr::Call(c) => {
            if !FUNCTIONS_2_42.contains(&c.func.name)
                && c.func.name != "double_exponential_smoothing"
            {
                return Err(format!(
                    "unknown function with name {:?} in Prometheus 2.42",
                    c.func.name
                ));
            }
            c.args.args.iter().try_for_each(|a| check_242(a))
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
    }
}

/// The variables Prometheus declares before every alert template, so `$labels`, `$value`,
/// `$externalLabels` and `$externalURL` work.
pub(crate) fn with_defs(text: &str) -> String {
    format!("{{{{$labels := .Labels}}}}{{{{$externalLabels := .ExternalLabels}}}}{{{{$externalURL := .ExternalURL}}}}{{{{$value := .Value}}}}{text}")
}

/// promtool's lint: two rules with the same name and labels record or alert on the same series.
fn duplicate_rules(file: &RawFile) -> Vec<Diagnostic> {
    let mut seen: BTreeMap<(String, Vec<(String, String)>), usize> = BTreeMap::new();
    for g in &file.groups {
        for r in &g.rules {
            let key = (
                r.rule.name.clone(),
                r.rule
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            *seen.entry(key).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((name, labels), n)| Diagnostic {
            severity: Severity::Warning,
            pos: None,
            message: format!(
                "{n} rules named {name:?} with labels {labels:?}: they write the same series, which might cause inconsistency"
            ),
        })
        .collect()
}

impl RawFile {
    fn into_file(self) -> RuleFile {
        RuleFile {
            groups: self
                .groups
                .into_iter()
                .map(|g| RuleGroup {
                    rules: g.rules.into_iter().map(|r| r.rule).collect(),
                    ..g.group
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod threshold_tests {
    use super::*;

    fn kind_of(yaml: &str) -> Result<PipewatchKind, String> {
        let text = format!("groups:\n- name: g\n  rules:\n  - alert: Lag\n    pipewatch: {yaml}\n");
        let p = parse(&text);
        if !p.is_valid() {
            return Err(p.diagnostics.iter().map(|d| d.to_string()).collect());
        }
        Ok(p.file.unwrap().groups[0].rules[0]
            .pipewatch
            .clone()
            .unwrap())
    }

    #[test]
    fn threshold_kind_reads_trigger_and_clear_and_refuses_a_clear_past_the_trigger() {
        assert_eq!(
            kind_of("{kind: threshold, query: 'lag_seconds', above: 10, clear: 5}").unwrap(),
            PipewatchKind::Threshold {
                query: "lag_seconds".into(),
                trigger: 10.0,
                clear: 5.0,
                below: false
            }
        );
        // Without `clear` it clears at the trigger, like a plain comparison.
        assert!(matches!(
            kind_of("{kind: threshold, query: 'rows', below: 100}").unwrap(),
            PipewatchKind::Threshold {
                trigger: 100.0,
                clear: 100.0,
                below: true,
                ..
            }
        ));
        let e = kind_of("{kind: threshold, query: 'lag', above: 10, clear: 12}").unwrap_err();
        assert!(
            e.contains("pipewatch.clear: 12 is past the trigger 10"),
            "{e}"
        );
        let e = kind_of("{kind: threshold, query: 'lag', above: 10, below: 1}").unwrap_err();
        assert!(e.contains("exactly one of `above` and `below`"), "{e}");
        let e = kind_of("{kind: threshold, query: 'rate(x[5m]', above: 1}").unwrap_err();
        assert!(e.contains("pipewatch.query: could not parse"), "{e}");
    }
}
