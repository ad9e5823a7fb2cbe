//! Inhibition: while a source alert fires, the target alerts it inhibits send no firing
//! notices (a resolve owed for a firing notice already sent still goes out, as for silences).
//!
//! Two kinds of `[[alerting.inhibit_rules]]`:
//! - Alertmanager's: `source_matchers`, `target_matchers`, `equal`. A firing alert matching the
//!   source matchers inhibits every alert matching the target matchers whose `equal` labels
//!   have the same values (a label missing on both counts as equal). As in Alertmanager, an
//!   alert matching both sides is not inhibited by another alert matching both sides, so a
//!   rule cannot make a set of alerts silence each other.
//! - By lineage (`lineage = true`): a firing source alert on a pipeline node inhibits target
//!   alerts on nodes *downstream* of it in the OpenLineage graph (`store::lineage`): a stalled
//!   ingest job explains the stale datasets and stalled jobs after it, so only it pages.
//!   `source_matchers`, `target_matchers` and `equal` narrow it further when given. Nodes on a
//!   cycle are not downstream of each other (each would otherwise hide the other).
//!
//! The node an alert is on comes from its labels, first found: `node` (a graph id
//! `job:<namespace>/<name>`, `dataset:<namespace>/<name>`, or a bare name), `stage` (a job's
//! name: the demo's stage alerts), `dataset` (a dataset's name), `job` (a job's name, when it
//! is one; Prometheus' `job` label usually names a scrape job, which is not in the graph). A
//! name matches graph nodes of that name in any namespace.
//!
//! [`inhibited`] is the decision, pure: alerts, rules and graph in, inhibited alerts (and by
//! which alert and rule) out. [`record`] keeps `alert_inhibitions` (migration 0091) in step so
//! the API shows which alert inhibits which, and notes the start of an inhibition on the
//! target's timeline.

use super::matcher::{all_match, Matcher};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use store::lifecycle::{AlertInstance, LifecycleState};

/// One inhibit rule, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct InhibitRule {
    /// Shown on the timeline and in the API.
    pub name: String,
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
    pub lineage: bool,
}

/// Why an alert is inhibited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inhibition {
    /// The inhibiting alert's fingerprint.
    pub by: String,
    pub rule: String,
}

/// The pipeline graph as inhibition needs it: nodes with their kind and name, and edges in
/// the direction data flows.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    /// `job:<ns>/<name>` / `dataset:<ns>/<name>` -> index.
    ids: HashMap<String, usize>,
    /// (kind, name) -> indexes.
    by_name: HashMap<(String, String), Vec<usize>>,
    down: Vec<Vec<usize>>,
}

impl Lineage {
    /// From `(id, kind, name)` nodes and `(from, to)` edges; edges naming unknown nodes are
    /// left out.
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
        edges: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Lineage {
        let mut g = Lineage::default();
        for (id, kind, name) in nodes {
            let i = g.down.len();
            if g.ids.insert(id.to_string(), i).is_some() {
                continue;
            }
            g.down.push(Vec::new());
            g.by_name
                .entry((kind.to_string(), name.to_string()))
                .or_default()
                .push(i);
        }
        for (from, to) in edges {
            if let (Some(&f), Some(&t)) = (g.ids.get(from), g.ids.get(to)) {
                g.down[f].push(t);
            }
        }
        g
    }

    pub fn from_graph(graph: &store::lineage::LineageGraph) -> Lineage {
        Lineage::new(
            graph
                .nodes
                .iter()
                .map(|n| (n.id.as_str(), n.kind, n.name.as_str())),
            graph.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())),
        )
    }

    /// The nodes an alert with `labels` is on (see the module docs).
    pub fn nodes_of(&self, labels: &BTreeMap<String, String>) -> Vec<usize> {
        let named = |kind: &str, name: &str| -> Vec<usize> {
            self.by_name
                .get(&(kind.to_string(), name.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        if let Some(n) = labels.get("node") {
            if let Some(&i) = self.ids.get(n) {
                return vec![i];
            }
            let mut out = named("job", n);
            out.extend(named("dataset", n));
            if !out.is_empty() {
                return out;
            }
        }
        for (label, kind) in [("stage", "job"), ("dataset", "dataset"), ("job", "job")] {
            if let Some(v) = labels.get(label) {
                let found = named(kind, v);
                if !found.is_empty() {
                    return found;
                }
            }
        }
        Vec::new()
    }

    /// Every node reachable from `from` (not `from` itself unless on a cycle).
    fn reachable(&self, from: usize) -> HashSet<usize> {
        let mut seen = HashSet::new();
        let mut queue: VecDeque<usize> = self.down[from].iter().copied().collect();
        while let Some(n) = queue.pop_front() {
            if seen.insert(n) {
                queue.extend(self.down[n].iter().copied());
            }
        }
        seen
    }
}

/// Reachability answers, computed once per node per decision.
struct Reach<'a> {
    g: &'a Lineage,
    memo: HashMap<usize, HashSet<usize>>,
}

impl Reach<'_> {
    /// Whether `b` is strictly downstream of `a`: reachable from it, and not upstream of it too.
    fn downstream(&mut self, a: usize, b: usize) -> bool {
        if a == b {
            return false;
        }
        let g = self.g;
        let ab = self
            .memo
            .entry(a)
            .or_insert_with(|| g.reachable(a))
            .contains(&b);
        ab && !self
            .memo
            .entry(b)
            .or_insert_with(|| g.reachable(b))
            .contains(&a)
    }
}

fn equal_labels(equal: &[String], a: &AlertInstance, b: &AlertInstance) -> bool {
    equal.iter().all(|l| a.labels.get(l) == b.labels.get(l))
}

/// Which of `alerts` are inhibited now, by which firing alert and rule (the first rule, then
/// the first source in `alerts`' order, that inhibits it). Only firing alerts inhibit; lineage
/// rules need `graph` and inhibit nothing without it.
pub fn inhibited(
    alerts: &[&AlertInstance],
    rules: &[InhibitRule],
    graph: Option<&Lineage>,
) -> BTreeMap<String, Inhibition> {
    let mut out = BTreeMap::new();
    if rules.is_empty() {
        return out;
    }
    let firing: Vec<&AlertInstance> = alerts
        .iter()
        .copied()
        .filter(|a| a.state == LifecycleState::Firing)
        .collect();
    let empty = Lineage::default();
    let mut reach = Reach {
        g: graph.unwrap_or(&empty),
        memo: HashMap::new(),
    };
    let mut nodes: HashMap<&str, Vec<usize>> = HashMap::new();
    if let Some(g) = graph {
        for a in alerts {
            nodes.insert(a.fingerprint.as_str(), g.nodes_of(&a.labels));
        }
    }
    for t in alerts {
        if !t.state.is_active() {
            continue;
        }
        'rules: for r in rules {
            if !all_match(&r.target, &t.labels) {
                continue;
            }
            if r.lineage && graph.is_none() {
                continue;
            }
            let two_sided = !r.lineage && all_match(&r.source, &t.labels);
            for s in &firing {
                if s.fingerprint == t.fingerprint
                    || !all_match(&r.source, &s.labels)
                    || !equal_labels(&r.equal, s, t)
                    || (two_sided && all_match(&r.target, &s.labels))
                {
                    continue;
                }
                if r.lineage {
                    let (sn, tn) = (
                        &nodes[s.fingerprint.as_str()],
                        &nodes[t.fingerprint.as_str()],
                    );
                    let below = sn
                        .iter()
                        .any(|&a| tn.iter().any(|&b| reach.downstream(a, b)));
                    if !below {
                        continue;
                    }
                }
                out.insert(
                    t.fingerprint.clone(),
                    Inhibition {
                        by: s.fingerprint.clone(),
                        rule: r.name.clone(),
                    },
                );
                break 'rules;
            }
        }
    }
    out
}

fn db(context: &'static str) -> impl Fn(sqlx::Error) -> store::StoreError {
    move |source| store::StoreError::Database { context, source }
}

/// What `alert_inhibitions` holds: target alert id -> (inhibiting alert id, rule).
pub type Recorded = BTreeMap<i64, (i64, String)>;

/// Brings `alert_inhibitions` in step with `now` (target id -> (source id, rule)) given what
/// it held (`before`), in the round's transaction, and puts each new inhibition on its
/// target's timeline. Writes nothing when nothing changed.
pub async fn record(
    tx: &mut sqlx::PgConnection,
    before: &Recorded,
    now: &Recorded,
    describe: impl Fn(i64) -> String,
    at_ms: i64,
) -> Result<(), store::StoreError> {
    let gone: Vec<i64> = before
        .keys()
        .filter(|k| !now.contains_key(k))
        .copied()
        .collect();
    if !gone.is_empty() {
        sqlx::query("DELETE FROM alert_inhibitions WHERE alert_id = ANY($1)")
            .bind(&gone)
            .execute(&mut *tx)
            .await
            .map_err(db("ending alert inhibitions"))?;
    }
    for (target, (source, rule)) in now {
        if before.get(target) == Some(&(*source, rule.clone())) {
            continue;
        }
        sqlx::query(
            "INSERT INTO alert_inhibitions (alert_id, inhibited_by, rule) VALUES ($1, $2, $3)
             ON CONFLICT (alert_id) DO UPDATE SET inhibited_by = $2, rule = $3, since = now()",
        )
        .bind(target)
        .bind(source)
        .bind(rule)
        .execute(&mut *tx)
        .await
        .map_err(db("recording an alert inhibition"))?;
        store::lifecycle::add_event(
            tx,
            *target,
            &store::lifecycle::NewEvent {
                kind: store::lifecycle::EventKind::Silenced,
                from: None,
                to: None,
                by: "system",
                detail: &format!(
                    "inhibited by alert {source} ({}) under inhibit rule {rule}: no firing \
                     notices while it fires",
                    describe(*source)
                ),
                at_ms,
            },
        )
        .await?;
    }
    Ok(())
}

/// What `alert_inhibitions` holds now (read when an instance takes over the leadership).
pub async fn load(conn: &mut sqlx::PgConnection) -> Result<Recorded, store::StoreError> {
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT alert_id, inhibited_by, rule FROM alert_inhibitions")
            .fetch_all(conn)
            .await
            .map_err(db("reading alert inhibitions"))?;
    Ok(rows.into_iter().map(|(t, s, r)| (t, (s, r))).collect())
}

/// For the API: which alert inhibits each of `ids`, as `{"alert": id, "rule": name}`.
pub async fn inhibited_by(
    pool: &sqlx::PgPool,
    ids: &[i64],
) -> Result<HashMap<i64, serde_json::Value>, store::StoreError> {
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT alert_id, inhibited_by, rule FROM alert_inhibitions WHERE alert_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .map_err(db("reading alert inhibitions"))?;
    Ok(rows
        .into_iter()
        .map(|(t, s, r)| (t, serde_json::json!({"alert": s, "rule": r})))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::lifecycle::{AlertSource, Notified};

    fn alert(fp: &str, labels: &[(&str, &str)], state: LifecycleState) -> AlertInstance {
        AlertInstance {
            id: 1,
            fingerprint: fp.into(),
            source: AlertSource::Rule,
            rule: fp.into(),
            rule_group: "g".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            state,
            active_at_ms: Some(0),
            fired_at_ms: Some(0),
            resolved_at_ms: None,
            last_value: None,
            last_eval_at_ms: None,
            episode: 1,
            group_key: "default/{}".into(),
            notified: Notified::None,
            firing_notified_at_ms: None,
            detail: String::new(),
            updated_at_ms: 0,
        }
    }

    fn m(list: &[&str]) -> Vec<Matcher> {
        list.iter().map(|s| Matcher::parse(s).unwrap()).collect()
    }

    fn rule(source: &[&str], target: &[&str], equal: &[&str], lineage: bool) -> InhibitRule {
        InhibitRule {
            name: "r".into(),
            source: m(source),
            target: m(target),
            equal: equal.iter().map(|s| s.to_string()).collect(),
            lineage,
        }
    }

    /// The demo's pipeline: stream_ingest -> raw_events -> transform -> clean_orders ->
    /// feature_store, and a side job reading raw_events.
    fn demo_graph() -> Lineage {
        Lineage::new(
            [
                ("job:demo/stream_ingest", "job", "stream_ingest"),
                ("dataset:demo/raw_events", "dataset", "raw_events"),
                ("job:demo/transform", "job", "transform"),
                ("dataset:demo/clean_orders", "dataset", "clean_orders"),
                ("job:demo/feature_store", "job", "feature_store"),
                ("job:demo/audit", "job", "audit"),
            ],
            [
                ("job:demo/stream_ingest", "dataset:demo/raw_events"),
                ("dataset:demo/raw_events", "job:demo/transform"),
                ("job:demo/transform", "dataset:demo/clean_orders"),
                ("dataset:demo/clean_orders", "job:demo/feature_store"),
                ("dataset:demo/raw_events", "job:demo/audit"),
            ],
        )
    }

    use LifecycleState::{Firing, Pending, Resolved};

    #[test]
    fn alertmanager_rules_need_a_firing_source_matching_labels_and_equal_values() {
        let r = [rule(
            &["severity=critical"],
            &["severity=warning"],
            &["cluster"],
            false,
        )];
        let crit = alert(
            "crit",
            &[("severity", "critical"), ("cluster", "a")],
            Firing,
        );
        let warn_a = alert("wa", &[("severity", "warning"), ("cluster", "a")], Firing);
        let warn_b = alert("wb", &[("severity", "warning"), ("cluster", "b")], Firing);
        let got = inhibited(&[&crit, &warn_a, &warn_b], &r, None);
        assert_eq!(
            got,
            BTreeMap::from([(
                "wa".to_string(),
                Inhibition {
                    by: "crit".into(),
                    rule: "r".into()
                }
            )])
        );
        // A pending or resolved source inhibits nothing.
        for state in [Pending, Resolved] {
            let c = alert("crit", &[("severity", "critical"), ("cluster", "a")], state);
            assert!(inhibited(&[&c, &warn_a], &r, None).is_empty());
        }
    }

    #[test]
    fn alerts_matching_both_sides_do_not_inhibit_each_other() {
        let r = [rule(&["team=data"], &["team=data"], &[], false)];
        let (a, b) = (
            alert("a", &[("team", "data")], Firing),
            alert("b", &[("team", "data")], Firing),
        );
        assert!(inhibited(&[&a, &b], &r, None).is_empty());
    }

    #[test]
    fn by_lineage_an_upstream_alert_inhibits_the_alerts_downstream_of_it() {
        let g = demo_graph();
        let r = [rule(&[], &[], &[], true)];
        let ingest = alert("ingest", &[("stage", "stream_ingest")], Firing);
        let transform = alert("transform", &[("stage", "transform")], Firing);
        let stale = alert(
            "stale",
            &[("dataset", "clean_orders"), ("job", "demo_pipeline")],
            Firing,
        );
        let features = alert("features", &[("node", "job:demo/feature_store")], Pending);
        let unrelated = alert("other", &[("stage", "billing")], Firing);
        let got = inhibited(
            &[&ingest, &transform, &stale, &features, &unrelated],
            &r,
            Some(&g),
        );
        let by: BTreeMap<&str, &str> = got
            .iter()
            .map(|(k, v)| (k.as_str(), v.by.as_str()))
            .collect();
        assert_eq!(
            by,
            BTreeMap::from([
                ("features", "ingest"),
                ("stale", "ingest"),
                ("transform", "ingest")
            ])
        );
        // Without the upstream alert, transform is the root cause and inhibits what follows.
        let got = inhibited(&[&transform, &stale, &ingest_resolved()], &r, Some(&g));
        assert_eq!(got["stale"].by, "transform");
        assert!(!got.contains_key("transform"));
        // A sibling branch is not downstream.
        let audit = alert("audit", &[("stage", "audit")], Firing);
        assert!(inhibited(&[&transform, &audit], &r, Some(&g)).is_empty());
        // No graph: lineage rules inhibit nothing.
        assert!(inhibited(&[&ingest, &transform], &r, None).is_empty());
    }

    fn ingest_resolved() -> AlertInstance {
        alert("ingest", &[("stage", "stream_ingest")], Resolved)
    }

    #[test]
    fn lineage_rules_take_matchers_and_nodes_on_a_cycle_do_not_hide_each_other() {
        let g = demo_graph();
        // Only pages inhibit, only warnings are inhibited.
        let r = [rule(&["severity=page"], &["severity=warning"], &[], true)];
        let up = alert(
            "up",
            &[("stage", "stream_ingest"), ("severity", "warning")],
            Firing,
        );
        let down = alert(
            "down",
            &[("stage", "transform"), ("severity", "warning")],
            Firing,
        );
        assert!(inhibited(&[&up, &down], &r, Some(&g)).is_empty());
        let up = alert(
            "up",
            &[("stage", "stream_ingest"), ("severity", "page")],
            Firing,
        );
        assert_eq!(inhibited(&[&up, &down], &r, Some(&g))["down"].by, "up");

        let cyc = Lineage::new(
            [("job:n/a", "job", "a"), ("job:n/b", "job", "b")],
            [("job:n/a", "job:n/b"), ("job:n/b", "job:n/a")],
        );
        let r = [rule(&[], &[], &[], true)];
        let (a, b) = (
            alert("a", &[("stage", "a")], Firing),
            alert("b", &[("stage", "b")], Firing),
        );
        assert!(inhibited(&[&a, &b], &r, Some(&cyc)).is_empty());
    }
}
