//! The alert lifecycle engine: the leader instance (`store::leader`, role `Alerting`)
//! evaluates the rule groups of `[alerting].rule_files` every interval against the store,
//! writes what they record (and `ALERTS` / `ALERTS_FOR_STATE`) through the ingest queue, keeps
//! each alert instance's state in `alert_instances` with every transition in `alert_events`,
//! takes in the alerts received on `POST /api/v2/alerts` as instances of their own, and
//! notifies groups of alerts through the outbox as Alertmanager would ([`grouping`]).
//!
//! One round (every [`TICK`]) is one transaction: the transitions found in it, their events,
//! and the outbox rows of the notifications they make due commit together, so a crash never
//! loses a notice nor sends one for a transition that was not stored. The in-memory state
//! (each group's `GroupEvaluator`, the live instances) is a cache of the tables: a new leader,
//! or one whose round failed, reads it back (`take_over`), so a restarted leader does not
//! re-page what it already paged.
//!
//! States beyond Prometheus': `nodata` when none of the series an alerting rule's expression
//! reads exist at the evaluation (rules built on `absent`/`absent_over_time`, which are about
//! missing data, are left out), and `error` when a rule's evaluation fails. Both are instances
//! of the rule itself (labels: `alertname` only), routed to `alerting.nodata_channels` /
//! `error_channels`, which are empty by default: they show in the API and do not page.
//!
//! Rules of the `anomaly`, `dq_check` and `drift` kinds read stored results instead of series
//! (the anomalies table here; data-quality runs and drift results in [`kinds`]).

pub mod backtest;
pub mod escalation;
pub mod fanout;
pub mod grouping;
pub mod inhibit;
pub mod kinds;
pub mod matcher;
pub mod notice;
pub mod oncall;
pub mod ui_rules;

use crate::config::{AlertingConfig, Route, RuleSource};
use crate::ingest::IngestQueue;
use crate::promql::QueryLimits;
use alerting::{Alert, AlertState, EvalOptions, GroupEvaluator, RuleGroup, RuleType};
use anyhow::{Context, Result};
use grouping::{fires, Decision};
use matcher::Matcher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use store::lifecycle::{
    self as db, AlertInstance, AlertSource, EventKind, GroupEntry, LifecycleState,
    NotificationGroup, Notified, RuleStatus,
};
use store::{LeaderRole, Leadership, Store};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How often the engine looks at the clock: rule groups are evaluated when their interval
/// has passed and groups are notified when their wait is over, each within a tick of it.
pub const TICK: Duration = Duration::from_millis(250);

/// What the engine needs besides the store.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub alerting: AlertingConfig,
    /// Rule files read (and linted) at start.
    pub rules: Vec<RuleSource>,
    pub limits: QueryLimits,
    /// `$externalURL` in templates (`notifications.public_url`).
    pub external_url: String,
    /// Escalation of unacknowledged groups; `None` when no policy is defined.
    pub escalator: Option<escalation::Escalator>,
}

/// One rule group and when it is next evaluated.
struct GroupRun {
    file: String,
    ev: GroupEvaluator,
    interval_ms: i64,
    next_eval_ms: i64,
}

/// The state held while leading.
struct Leading {
    lead: Leadership,
    runs: Vec<GroupRun>,
    /// Live instances (active, or owing a resolve notice) by fingerprint.
    instances: HashMap<String, AlertInstance>,
    /// Episodes whose hold-back by a silence is already on their timeline.
    silence_noted: HashSet<(String, i32)>,
    /// What `alert_inhibitions` holds (target id -> (source id, rule)).
    inhibitions: inhibit::Recorded,
    /// Ends of active alerts whose rule is gone (found at take-over), for the next round.
    orphans: Vec<Change>,
}

/// A change to one instance, with the event it goes on the timeline with.
struct Change {
    instance: AlertInstance,
    event: Option<(LifecycleState, LifecycleState, String)>,
}

pub struct Engine {
    store: Store,
    queue: Option<IngestQueue>,
    routes: Vec<Route>,
    nodata_route: Route,
    error_route: Route,
    limits: QueryLimits,
    /// What is evaluated: the rule files' groups, then those made on the Rules page.
    groups: Vec<(String, RuleGroup)>,
    file_groups: Vec<(String, RuleGroup)>,
    /// The page-made groups as last read (name, text), when they were, and whether they were.
    ui_texts: Vec<(String, String)>,
    ui_checked_ms: i64,
    ui_loaded: bool,
    default_interval_ms: i64,
    eval_opts: EvalOptions,
    state: Option<Leading>,
    escalator: Option<escalation::Escalator>,
    /// When a follower last tried to take the leadership.
    last_try_ms: i64,
    /// `[[alerting.inhibit_rules]]`, and the lineage graph for those with `lineage = true`
    /// (read again every [`LINEAGE_REFRESH_MS`]).
    inhibit_rules: Vec<inhibit::InhibitRule>,
    lineage: std::sync::Mutex<Option<(i64, Option<std::sync::Arc<inhibit::Lineage>>)>>,
}

/// How long the lineage graph read for inhibition is used before it is read again (it changes
/// as OpenLineage events arrive; reading it every tick would cost a query per 250 ms).
pub const LINEAGE_REFRESH_MS: i64 = 30_000;

/// How often an instance that does not lead tries to take over (each try opens a database
/// session).
pub const FOLLOWER_RETRY_MS: i64 = 1000;

impl Engine {
    /// Reads the rule groups of `settings.rules` (already linted at start).
    pub fn new(
        store: Store,
        queue: Option<IngestQueue>,
        settings: EngineSettings,
    ) -> Result<Engine> {
        let groups = ui_rules::file_groups(&settings)?;
        let a = &settings.alerting;
        let engine = query::EngineOptions {
            lookback_ms: settings.limits.lookback.as_millis() as i64,
            default_subquery_step_ms: a.evaluation_interval.as_millis() as i64,
            max_samples: settings.limits.max_samples,
            interrupt: None,
        };
        Ok(Engine {
            store,
            queue,
            routes: a.routes(),
            nodata_route: a.default_route("nodata", a.nodata_channels.clone()),
            error_route: a.default_route("error", a.error_channels.clone()),
            limits: settings.limits,
            file_groups: groups.clone(),
            groups,
            ui_texts: Vec::new(),
            ui_checked_ms: i64::MIN,
            ui_loaded: false,
            default_interval_ms: a.evaluation_interval.as_millis() as i64,
            eval_opts: EvalOptions {
                external_labels: BTreeMap::new(),
                external_url: settings.external_url,
                engine,
            },
            state: None,
            escalator: settings.escalator,
            last_try_ms: i64::MIN,
            inhibit_rules: a.inhibit_rules(),
            lineage: std::sync::Mutex::new(None),
        })
    }

    /// Runs rounds every [`TICK`] until `stop`, then gives up the leadership.
    pub fn spawn(mut self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            info!(
                groups = self.groups.len(),
                "alert lifecycle engine started; evaluating while this instance leads"
            );
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Err(e) = self.round(model::clock::now_ms()).await {
                    warn!(error = %format!("{e:#}"), "alert lifecycle round failed; reloading its state from the database");
                    // The cache may be ahead of the database: read it back next round.
                    self.state = None;
                }
            }
            if let Some(st) = self.state.take() {
                st.lead.release().await;
            }
        })
    }

    /// Whether this engine leads now.
    pub fn is_leading(&self) -> bool {
        self.state.is_some()
    }

    /// One round at `now_ms`: take or check the leadership, evaluate what is due, take in
    /// Alertmanager alerts, and commit transitions and due notifications together.
    pub async fn round(&mut self, now_ms: i64) -> Result<()> {
        let mut st = match self.state.take() {
            Some(mut st) => {
                if !st.lead.still_leading().await {
                    warn!("lost the alerting leadership (database session ended)");
                    return Ok(());
                }
                if self.refresh_ui_rules(now_ms, false).await {
                    // Rebuilt from the tables as a new leader would: unchanged rules carry
                    // on, rules that are gone have their alerts resolved.
                    let noted = st.silence_noted;
                    let mut fresh = self.take_over(st.lead).await?;
                    fresh.silence_noted = noted;
                    fresh
                } else {
                    st
                }
            }
            None if self.last_try_ms.saturating_add(FOLLOWER_RETRY_MS) > now_ms => return Ok(()),
            None => {
                self.last_try_ms = now_ms;
                let Some(lead) = self.store.try_lead(LeaderRole::Alerting).await? else {
                    return Ok(());
                };
                self.refresh_ui_rules(now_ms, true).await;
                let st = self.take_over(lead).await?;
                info!(
                    instances = st.instances.len(),
                    "this instance now leads alert evaluation"
                );
                st
            }
        };
        let result = self.round_leading(&mut st, now_ms).await;
        // On failure the state is dropped (leadership too: its connection closes) and read
        // back from the database by whoever leads next.
        if result.is_ok() {
            self.state = Some(st);
        }
        result
    }

    /// Reads the live instances back and restores each group's alert state from them.
    async fn take_over(&self, lead: Leadership) -> Result<Leading> {
        let mut conn = self.store.pool().acquire().await?;
        let mut live = db::live_instances(&mut conn).await?;
        // Alerts whose first route is done but that owe a resolve in a `continue` route's group.
        for id in fanout::owing(&mut conn).await? {
            if !live.iter().any(|a| a.id == id) {
                if let Some(a) = self.store.lifecycle_alert(id).await? {
                    live.push(a);
                }
            }
        }
        let mut runs: Vec<GroupRun> = self
            .groups
            .iter()
            .map(|(file, g)| GroupRun {
                file: file.clone(),
                ev: GroupEvaluator::new(g.clone(), self.eval_opts.clone()),
                interval_ms: g.interval_ms.unwrap_or(self.default_interval_ms),
                next_eval_ms: 0,
            })
            .collect();
        for run in &mut runs {
            let group = run.ev.group().clone();
            for (i, rule) in group.rules.iter().enumerate() {
                if rule.rule_type != RuleType::Alerting {
                    continue;
                }
                let restored: Vec<Alert> = live
                    .iter()
                    .filter(|a| {
                        a.source == AlertSource::Rule
                            && a.rule_group == group.name
                            && a.rule == rule.name
                            && matches!(a.state, LifecycleState::Pending | LifecycleState::Firing)
                    })
                    .map(|a| Alert {
                        labels: query::Labels::new(a.labels.iter()),
                        annotations: a.annotations.clone(),
                        state: if a.state == LifecycleState::Firing {
                            AlertState::Firing
                        } else {
                            AlertState::Pending
                        },
                        value: a.last_value.unwrap_or(f64::NAN),
                        active_at: a.active_at_ms.unwrap_or(0),
                        fired_at: a.fired_at_ms,
                        resolved_at: None,
                        keep_firing_since: None,
                    })
                    .collect();
                run.ev.restore(i, restored);
            }
        }
        let statuses: Vec<RuleStatus> = runs
            .iter()
            .flat_map(|run| {
                let g = run.ev.group();
                g.rules.iter().enumerate().map(|(i, r)| RuleStatus {
                    group_file: run.file.clone(),
                    group_name: g.name.clone(),
                    rule_index: i as i32,
                    group_interval_ms: run.interval_ms,
                    rule: rule_json(r),
                    health: "unknown".into(),
                    last_error: String::new(),
                    last_evaluation_ms: None,
                    evaluation_s: 0.0,
                })
            })
            .collect();
        db::reset_rule_status(&mut conn, &statuses).await?;
        // Alerts of rules that no longer exist (a page-made group deleted or renamed, a rule
        // file edited between runs) would otherwise stay firing forever. Only once the
        // page-made groups were read: a failed read must not resolve their alerts.
        let now_ms = model::clock::now_ms();
        let orphans = if self.ui_loaded {
            live.iter()
                .filter(|a| {
                    a.source == AlertSource::Rule
                        && a.state.is_active()
                        && !self.groups.iter().any(|(_, g)| {
                            g.name == a.rule_group && g.rules.iter().any(|r| r.name == a.rule)
                        })
                })
                .map(|a| ended(a, now_ms, "its rule no longer exists (deleted or renamed)"))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Leading {
            orphans,
            lead,
            runs,
            instances: live
                .into_iter()
                .map(|a| (a.fingerprint.clone(), a))
                .collect(),
            silence_noted: HashSet::new(),
            inhibitions: inhibit::load(&mut conn).await?,
        })
    }

    async fn round_leading(&self, st: &mut Leading, now_ms: i64) -> Result<()> {
        let mut changes = std::mem::take(&mut st.orphans);
        let mut statuses = Vec::new();
        for run in st.runs.iter_mut() {
            if run.next_eval_ms > now_ms {
                continue;
            }
            let (c, s) = self.evaluate(run, &st.instances, now_ms).await;
            changes.extend(c);
            statuses.extend(s);
            // Keep the group's phase; the first time, or after a stall, go on from now.
            run.next_eval_ms = if run.next_eval_ms + run.interval_ms > now_ms {
                run.next_eval_ms + run.interval_ms
            } else {
                now_ms + run.interval_ms
            };
        }
        changes.extend(self.sync_alertmanager(&st.instances, now_ms).await?);

        // Work on a copy: the cache only moves on once the transaction has committed.
        let mut working = st.instances.clone();
        let mut noted = st.silence_noted.clone();
        let mut tx = self.store.pool().begin().await?;
        for c in changes {
            let mut inst = c.instance;
            (inst.id, inst.episode) = db::save_instance(&mut tx, &inst).await?;
            if let Some((from, to, detail)) = &c.event {
                db::add_event(
                    &mut tx,
                    inst.id,
                    &db::NewEvent {
                        kind: EventKind::Transition,
                        from: Some(*from),
                        to: Some(*to),
                        by: "system",
                        detail,
                        at_ms: now_ms,
                    },
                )
                .await?;
                debug!(alert = %inst.rule, fingerprint = %inst.fingerprint, %from, %to, "alert transition");
            }
            working.insert(inst.fingerprint.clone(), inst);
        }
        self.resolve_by_hand(&mut tx, &mut working, now_ms).await?;
        let (inhibited, inhibitions) = self.inhibitions(&working, now_ms).await;
        let owed_elsewhere = self
            .flush(&mut tx, &mut working, &mut noted, &inhibited, now_ms)
            .await?;
        inhibit::record(
            &mut tx,
            &st.inhibitions,
            &inhibitions,
            |id| describe_alert(&working, id),
            now_ms,
        )
        .await?;
        if let Some(esc) = &self.escalator {
            let routes = |r: &str| self.route_named(r).clone();
            let inhibited = |a: &AlertInstance| inhibited.contains_key(&a.fingerprint);
            esc.round(&mut tx, &working, routes, inhibited, now_ms)
                .await?;
        }
        if !statuses.is_empty() {
            db::save_rule_status(&mut tx, &statuses).await?;
        }
        tx.commit()
            .await
            .context("committing an alert lifecycle round")?;
        working.retain(|fp, a| {
            a.state.is_active() || a.notified == Notified::Firing || owed_elsewhere.contains(fp)
        });
        noted.retain(|(fp, ep)| working.get(fp).is_some_and(|a| a.episode == *ep));
        st.instances = working;
        st.silence_noted = noted;
        st.inhibitions = inhibitions;
        Ok(())
    }

    /// Which live alerts are inhibited now ([`inhibit::inhibited`]), by fingerprint, and the
    /// same by alert id for `alert_inhibitions`.
    async fn inhibitions(
        &self,
        working: &HashMap<String, AlertInstance>,
        now_ms: i64,
    ) -> (BTreeMap<String, inhibit::Inhibition>, inhibit::Recorded) {
        if self.inhibit_rules.is_empty() {
            return Default::default();
        }
        let graph = self.lineage_graph(now_ms).await;
        let mut alerts: Vec<&AlertInstance> = working.values().collect();
        // Stable order: the first source found is the one named.
        alerts.sort_by_key(|a| a.id);
        let by_fp = inhibit::inhibited(&alerts, &self.inhibit_rules, graph.as_deref());
        let by_id = by_fp
            .iter()
            .filter_map(|(fp, inh)| {
                let t = working.get(fp)?;
                let s = working.get(&inh.by)?;
                (t.id > 0 && s.id > 0).then(|| (t.id, (s.id, inh.rule.clone())))
            })
            .collect();
        (by_fp, by_id)
    }

    /// The lineage graph for lineage inhibit rules, read at most every [`LINEAGE_REFRESH_MS`];
    /// `None` when no rule needs it or it cannot be read (then lineage rules inhibit nothing:
    /// better a page too many than a missed one).
    async fn lineage_graph(&self, now_ms: i64) -> Option<std::sync::Arc<inhibit::Lineage>> {
        if !self.inhibit_rules.iter().any(|r| r.lineage) {
            return None;
        }
        if let Some((at, g)) = self.lineage.lock().expect("not poisoned").as_ref() {
            if now_ms - at < LINEAGE_REFRESH_MS {
                return g.clone();
            }
        }
        let g = match self.store.lineage_graph().await {
            Ok(g) => Some(std::sync::Arc::new(inhibit::Lineage::from_graph(&g))),
            Err(e) => {
                warn!(error = %e, "cannot read the lineage graph; lineage inhibit rules inhibit nothing until it can be read");
                None
            }
        };
        *self.lineage.lock().expect("not poisoned") = Some((now_ms, g.clone()));
        g
    }

    /// Carries out the manual resolves users asked for (`POST .../resolve`), in the round's
    /// transaction, so the transition, its event (by the user) and the resolve notice it owes
    /// commit together like every other transition. A rule whose condition still holds opens
    /// a new episode at its next evaluation; an Alertmanager alert stays resolved until its
    /// client reports it starting again ([`Engine::sync_alertmanager`]).
    async fn resolve_by_hand(
        &self,
        tx: &mut sqlx::PgConnection,
        working: &mut HashMap<String, AlertInstance>,
        now_ms: i64,
    ) -> Result<()> {
        for req in db::resolve_requests(tx).await? {
            let live = working
                .values_mut()
                .find(|a| a.id == req.alert_id && a.state.is_active());
            let resolved = match live {
                Some(inst) => {
                    let detail = match req.comment.trim() {
                        "" => "resolved by hand".to_string(),
                        c => format!("resolved by hand: {c}"),
                    };
                    let from = inst.state;
                    *inst = ended(inst, now_ms, &detail).instance;
                    let to = inst.state;
                    (inst.id, inst.episode) = db::save_instance(tx, inst).await?;
                    db::add_event(
                        tx,
                        inst.id,
                        &db::NewEvent {
                            kind: EventKind::Transition,
                            from: Some(from),
                            to: Some(to),
                            by: &req.by,
                            detail: &detail,
                            at_ms: now_ms,
                        },
                    )
                    .await?;
                    info!(alert = %inst.rule, by = %req.by, "alert resolved by hand");
                    true
                }
                // It ended on its own meanwhile.
                None => false,
            };
            db::finish_resolve_request(tx, req.alert_id, resolved, now_ms).await?;
        }
        Ok(())
    }

    /// Evaluates one group at `now_ms`: the instance changes it makes and each rule's status.
    async fn evaluate(
        &self,
        run: &mut GroupRun,
        instances: &HashMap<String, AlertInstance>,
        now_ms: i64,
    ) -> (Vec<Change>, Vec<RuleStatus>) {
        let started = Instant::now();
        let group = run.ev.group().clone();
        let mut data: HashMap<query::Labels, BTreeMap<i64, f64>> = HashMap::new();
        let mut series_read = vec![0usize; group.rules.len()];
        let mut fetch_errors: Vec<Option<String>> = vec![None; group.rules.len()];
        for (i, rule) in group.rules.iter().enumerate() {
            if rule.pipewatch.as_ref().is_some_and(|k| !k.is_evaluated()) {
                continue;
            }
            let Ok(expr) = query::parse(&rule.expr) else {
                continue;
            };
            match fetch(
                &self.store,
                &self.limits,
                &expr,
                now_ms,
                &self.eval_opts.engine,
                &mut data,
            )
            .await
            {
                Ok(n) => series_read[i] = n,
                Err(e) => fetch_errors[i] = Some(e),
            }
        }
        let mut changes = Vec::new();
        let mut statuses = Vec::new();
        let status = |i: usize, health: &str, err: &str, secs: f64| RuleStatus {
            group_file: run.file.clone(),
            group_name: group.name.clone(),
            rule_index: i as i32,
            group_interval_ms: run.interval_ms,
            rule: rule_json(&group.rules[i]),
            health: health.into(),
            last_error: err.into(),
            last_evaluation_ms: Some(now_ms),
            evaluation_s: secs,
        };
        if fetch_errors.iter().any(Option::is_some) {
            // Evaluating over partial data would resolve alerts that still hold: leave every
            // alert as it is and report the rules that could not read their series.
            let secs = started.elapsed().as_secs_f64();
            for (i, rule) in group.rules.iter().enumerate() {
                let err = fetch_errors[i].clone().unwrap_or_default();
                changes.extend(self.rule_condition(
                    instances,
                    &group.name,
                    &rule.name,
                    LifecycleState::Error,
                    (!err.is_empty()).then(|| format!("reading its series: {err}")),
                    now_ms,
                ));
                statuses.push(status(
                    i,
                    if err.is_empty() { "ok" } else { "err" },
                    &err,
                    secs,
                ));
            }
            return (changes, statuses);
        }
        let mut storage = query::MemoryStorage::new();
        for (labels, points) in data {
            storage.push_series(query::Series {
                labels,
                points: points.into_iter().collect(),
            });
        }
        let out = run.ev.eval(&storage, now_ms);
        if !out.samples.is_empty() {
            if let Some(q) = &self.queue {
                if let Err(e) = q.try_push(to_batch(&out.samples, now_ms)) {
                    warn!(group = %group.name, error = %e, "recorded samples were not queued");
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let mut seen = HashSet::new();
        let mut evaluated = HashSet::new();
        let errored: HashSet<String> = out.errors.iter().map(|e| e.rule.clone()).collect();
        // Read once per evaluation, and only by groups with anomaly rules.
        let mut anomalies: Option<Result<Vec<db::OpenAnomaly>, String>> = None;
        for (i, rule) in group.rules.iter().enumerate() {
            if let Some(alerting::PipewatchKind::Anomaly {
                selector,
                min_severity,
                min_score,
            }) = &rule.pipewatch
            {
                if anomalies.is_none() {
                    anomalies = Some(self.open_anomalies().await);
                }
                match anomalies.as_ref().expect("loaded above") {
                    Ok(list) => {
                        let matching: Vec<&db::OpenAnomaly> = list
                            .iter()
                            .filter(|a| {
                                anomaly_matches(a, selector, min_severity.as_deref(), *min_score)
                            })
                            .collect();
                        changes.extend(self.anomaly_changes(
                            instances,
                            &group.name,
                            rule,
                            &matching,
                            now_ms,
                        ));
                        statuses.push(status(i, "ok", "", secs));
                    }
                    Err(e) => statuses.push(status(i, "err", e, secs)),
                }
                continue;
            }
            if kinds::is_stored_result_kind(rule) {
                let result = self.stored_result_hits(rule, now_ms).await;
                changes.extend(
                    self.rule_condition(
                        instances,
                        &group.name,
                        &rule.name,
                        LifecycleState::Error,
                        result
                            .as_ref()
                            .err()
                            .map(|e| format!("reading its results: {e}")),
                        now_ms,
                    ),
                );
                match result {
                    Ok(hits) => {
                        changes.extend(self.hit_changes(
                            instances,
                            &group.name,
                            rule,
                            &hits,
                            now_ms,
                        ));
                        statuses.push(status(i, "ok", "", secs));
                    }
                    Err(e) => statuses.push(status(i, "err", &e, secs)),
                }
                continue;
            }
            if out.skipped.iter().any(|(n, _)| n == &rule.name) {
                let why = out
                    .skipped
                    .iter()
                    .find(|(n, _)| n == &rule.name)
                    .map(|(_, w)| w.clone())
                    .unwrap_or_default();
                statuses.push(status(i, "unknown", &why, 0.0));
                continue;
            }
            let error = out
                .errors
                .iter()
                .find(|e| e.rule == rule.name)
                .map(|e| e.message.clone());
            statuses.push(status(
                i,
                if error.is_some() { "err" } else { "ok" },
                error.as_deref().unwrap_or(""),
                secs,
            ));
            changes.extend(self.rule_condition(
                instances,
                &group.name,
                &rule.name,
                LifecycleState::Error,
                error.clone(),
                now_ms,
            ));
            if rule.rule_type != RuleType::Alerting || error.is_some() {
                continue;
            }
            let nodata = series_read[i] == 0 && reads_series_without_absent(&rule.expr);
            changes.extend(self.rule_condition(
                instances,
                &group.name,
                &rule.name,
                LifecycleState::NoData,
                nodata.then(|| {
                    format!(
                        "none of the series {} reads exist (looked back {})",
                        rule.expr,
                        humantime::format_duration(self.limits.lookback)
                    )
                }),
                now_ms,
            ));
            evaluated.insert(rule.name.clone());
            for a in run.ev.all_alerts(i) {
                let labels: BTreeMap<String, String> = a
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let fp = fingerprint(&["rule", &group.name, &grouping::format_labels(&labels)]);
                seen.insert(fp.clone());
                if let Some(c) = self.rule_alert_change(
                    instances.get(&fp),
                    &group.name,
                    &rule.name,
                    fp,
                    labels,
                    a,
                    now_ms,
                ) {
                    changes.push(c);
                }
            }
        }
        // Instances the evaluator no longer has (a pending alert whose condition cleared is
        // dropped at once). Rules may share a name (one per severity), so an instance is gone
        // only when no rule of that name produced it and none of them failed.
        for old in instances.values() {
            if old.source == AlertSource::Rule
                && old.rule_group == group.name
                && evaluated.contains(&old.rule)
                && !errored.contains(&old.rule)
                && matches!(old.state, LifecycleState::Pending | LifecycleState::Firing)
                && !seen.contains(&old.fingerprint)
            {
                let mut c = ended(old, now_ms, "the condition no longer holds");
                c.instance.last_eval_at_ms = Some(now_ms);
                changes.push(c);
            }
        }
        (changes, statuses)
    }

    async fn open_anomalies(&self) -> Result<Vec<db::OpenAnomaly>, String> {
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        db::open_anomalies(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// An `anomaly` rule's alerts: one per matching open anomaly, firing once it has been
    /// open for the rule's `for`, resolved when the anomaly closes (or stops matching).
    fn anomaly_changes(
        &self,
        instances: &HashMap<String, AlertInstance>,
        group: &str,
        rule: &alerting::Rule,
        matching: &[&db::OpenAnomaly],
        now_ms: i64,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut seen = HashSet::new();
        for a in matching {
            let fp = fingerprint(&["anomaly", group, &rule.name, &a.id.to_string()]);
            seen.insert(fp.clone());
            let mut labels = a.labels.clone();
            labels.insert("severity".into(), a.severity.clone());
            labels.insert("anomaly_kind".into(), a.kind.clone());
            if let Some(node) = &a.node {
                labels.insert("node".into(), node.clone());
            }
            for (k, v) in &rule.labels {
                labels.insert(k.clone(), v.clone());
            }
            labels.insert("alertname".into(), rule.name.clone());
            let annotations = BTreeMap::from([
                ("summary".to_string(), a.explanation.clone()),
                ("signal".to_string(), a.signal.clone()),
                ("score".to_string(), query::format_value(a.score)),
            ]);
            let target = if now_ms - a.started_at_ms >= rule.for_ms {
                LifecycleState::Firing
            } else {
                LifecycleState::Pending
            };
            let old = instances.get(&fp);
            match old {
                Some(o) if o.state == target => {}
                Some(o) if o.state == LifecycleState::Pending => {
                    let mut inst = o.clone();
                    inst.state = target;
                    inst.fired_at_ms = Some(now_ms);
                    changes.push(Change {
                        instance: inst,
                        event: Some((o.state, target, a.explanation.clone())),
                    });
                }
                _ => {
                    let route = grouping::route_for(&self.routes, &labels);
                    changes.push(Change {
                        instance: AlertInstance {
                            id: old.map_or(0, |o| o.id),
                            fingerprint: fp,
                            source: AlertSource::Anomaly,
                            rule: rule.name.clone(),
                            rule_group: group.to_string(),
                            group_key: grouping::group_key(route, &labels),
                            labels,
                            annotations,
                            state: target,
                            active_at_ms: Some(a.started_at_ms),
                            fired_at_ms: (target == LifecycleState::Firing).then_some(now_ms),
                            resolved_at_ms: None,
                            last_value: Some(a.observed),
                            last_eval_at_ms: Some(now_ms),
                            episode: old.map_or(1, |o| o.episode + 1),
                            notified: match old.map(|o| o.notified) {
                                Some(Notified::Firing) => Notified::Firing,
                                _ => Notified::None,
                            },
                            firing_notified_at_ms: None,
                            detail: format!("anomaly {}", a.id),
                            updated_at_ms: now_ms,
                        },
                        event: Some((
                            old.map_or(LifecycleState::Inactive, |o| o.state),
                            target,
                            a.explanation.clone(),
                        )),
                    });
                }
            }
        }
        for o in instances.values() {
            if o.source == AlertSource::Anomaly
                && o.rule_group == group
                && o.rule == rule.name
                && matches!(o.state, LifecycleState::Pending | LifecycleState::Firing)
                && !seen.contains(&o.fingerprint)
            {
                changes.push(ended(o, now_ms, "the anomaly closed"));
            }
        }
        changes
    }

    /// The change an evaluated alert makes to its instance, if any.
    #[allow(clippy::too_many_arguments)]
    fn rule_alert_change(
        &self,
        old: Option<&AlertInstance>,
        group: &str,
        rule: &str,
        fp: String,
        labels: BTreeMap<String, String>,
        a: &Alert,
        now_ms: i64,
    ) -> Option<Change> {
        let target = match a.state {
            AlertState::Pending => LifecycleState::Pending,
            AlertState::Firing => LifecycleState::Firing,
            AlertState::Inactive if a.resolved_at.is_some() => LifecycleState::Resolved,
            AlertState::Inactive => LifecycleState::Inactive,
        };
        let value_text = format!("value {}", query::format_value(a.value));
        match old {
            Some(old) if matches!(old.state, LifecycleState::Pending | LifecycleState::Firing) => {
                let mut inst = old.clone();
                inst.last_value = Some(a.value);
                inst.annotations = a.annotations.clone();
                inst.last_eval_at_ms = Some(now_ms);
                if old.state == target {
                    // Keep writes down: only a changed value or annotation is stored.
                    let same = old.last_value.map(f64::to_bits) == Some(a.value.to_bits())
                        && old.annotations == a.annotations;
                    return (!same).then_some(Change {
                        instance: inst,
                        event: None,
                    });
                }
                inst.state = target;
                match target {
                    LifecycleState::Firing => inst.fired_at_ms = a.fired_at.or(Some(now_ms)),
                    LifecycleState::Resolved => {
                        inst.resolved_at_ms = a.resolved_at.or(Some(now_ms))
                    }
                    _ => {}
                }
                Some(Change {
                    instance: inst,
                    event: Some((old.state, target, value_text)),
                })
            }
            _ => {
                if !matches!(target, LifecycleState::Pending | LifecycleState::Firing) {
                    return None;
                }
                let from = old.map_or(LifecycleState::Inactive, |o| o.state);
                let route = grouping::route_for(&self.routes, &labels);
                let inst = AlertInstance {
                    id: old.map_or(0, |o| o.id),
                    fingerprint: fp,
                    source: AlertSource::Rule,
                    rule: rule.to_string(),
                    rule_group: group.to_string(),
                    group_key: grouping::group_key(route, &labels),
                    labels,
                    annotations: a.annotations.clone(),
                    state: target,
                    active_at_ms: Some(a.active_at),
                    fired_at_ms: a.fired_at,
                    resolved_at_ms: None,
                    last_value: Some(a.value),
                    last_eval_at_ms: Some(now_ms),
                    episode: old.map_or(1, |o| o.episode + 1),
                    // A resolve still owed from the last episode stays owed.
                    notified: match old.map(|o| o.notified) {
                        Some(Notified::Firing) => Notified::Firing,
                        _ => Notified::None,
                    },
                    firing_notified_at_ms: old
                        .and_then(|o| o.firing_notified_at_ms)
                        .filter(|_| old.is_some_and(|o| o.notified == Notified::Firing)),
                    detail: String::new(),
                    updated_at_ms: now_ms,
                };
                Some(Change {
                    instance: inst,
                    event: Some((from, target, value_text)),
                })
            }
        }
    }

    /// The change to a rule's own `nodata` or `error` instance: entered with `why`, left
    /// (resolved) when `why` is `None`.
    fn rule_condition(
        &self,
        instances: &HashMap<String, AlertInstance>,
        group: &str,
        rule: &str,
        state: LifecycleState,
        why: Option<String>,
        now_ms: i64,
    ) -> Option<Change> {
        let fp = fingerprint(&[state.as_str(), group, rule]);
        let old = instances.get(&fp);
        let active = old.is_some_and(|o| o.state == state);
        match why {
            None if active => {
                let mut inst = old.cloned()?;
                inst.state = LifecycleState::Resolved;
                inst.resolved_at_ms = Some(now_ms);
                inst.last_eval_at_ms = Some(now_ms);
                Some(Change {
                    instance: inst,
                    event: Some((state, LifecycleState::Resolved, format!("{state} cleared"))),
                })
            }
            None => None,
            Some(why) if active => {
                let o = old?;
                (o.detail != why).then(|| {
                    let mut inst = o.clone();
                    inst.detail = why;
                    inst.last_eval_at_ms = Some(now_ms);
                    Change {
                        instance: inst,
                        event: None,
                    }
                })
            }
            Some(why) => {
                let labels = BTreeMap::from([("alertname".to_string(), rule.to_string())]);
                let route = if state == LifecycleState::NoData {
                    &self.nodata_route
                } else {
                    &self.error_route
                };
                Some(Change {
                    instance: AlertInstance {
                        id: old.map_or(0, |o| o.id),
                        fingerprint: fp,
                        source: AlertSource::Rule,
                        rule: rule.to_string(),
                        rule_group: group.to_string(),
                        group_key: grouping::group_key(route, &labels),
                        labels,
                        annotations: BTreeMap::new(),
                        state,
                        active_at_ms: Some(now_ms),
                        fired_at_ms: Some(now_ms),
                        resolved_at_ms: None,
                        last_value: None,
                        last_eval_at_ms: Some(now_ms),
                        episode: old.map_or(1, |o| o.episode + 1),
                        notified: match old.map(|o| o.notified) {
                            Some(Notified::Firing) => Notified::Firing,
                            _ => Notified::None,
                        },
                        firing_notified_at_ms: None,
                        detail: why.clone(),
                        updated_at_ms: now_ms,
                    },
                    event: Some((
                        old.map_or(LifecycleState::Inactive, |o| o.state),
                        state,
                        why,
                    )),
                })
            }
        }
    }

    /// Alerts received on `POST /api/v2/alerts` as instances: firing while their `endsAt` is
    /// ahead, resolved once it passed.
    async fn sync_alertmanager(
        &self,
        instances: &HashMap<String, AlertInstance>,
        now_ms: i64,
    ) -> Result<Vec<Change>> {
        let received = self.store.alerts(now_ms, false).await?;
        let mut changes = Vec::new();
        let mut seen = HashSet::new();
        // Read only when a received alert is not firing here (rare: a new one, or one
        // resolved by hand).
        let mut by_hand: Option<HashMap<String, i64>> = None;
        for a in received {
            let fp = fingerprint(&["alertmanager", &a.fingerprint]);
            seen.insert(fp.clone());
            let old = instances.get(&fp);
            if !old.is_some_and(|o| o.state == LifecycleState::Firing) {
                if by_hand.is_none() {
                    by_hand = Some(
                        self.store
                            .manually_resolved(AlertSource::Alertmanager)
                            .await?,
                    );
                }
                // Resolved by hand after this occurrence started: it stays resolved until the
                // client reports a new occurrence (a later startsAt).
                if by_hand
                    .as_ref()
                    .and_then(|m| m.get(&fp))
                    .is_some_and(|t| *t >= a.starts_at_ms)
                {
                    continue;
                }
            }
            match old {
                Some(o) if o.state == LifecycleState::Firing => {
                    if o.annotations != a.annotations {
                        let mut inst = o.clone();
                        inst.annotations = a.annotations.clone();
                        changes.push(Change {
                            instance: inst,
                            event: None,
                        });
                    }
                }
                _ => {
                    let route = grouping::route_for(&self.routes, &a.labels);
                    let from = old.map_or(LifecycleState::Inactive, |o| o.state);
                    changes.push(Change {
                        instance: AlertInstance {
                            id: old.map_or(0, |o| o.id),
                            fingerprint: fp,
                            source: AlertSource::Alertmanager,
                            rule: a.labels.get("alertname").cloned().unwrap_or_default(),
                            rule_group: String::new(),
                            group_key: grouping::group_key(route, &a.labels),
                            labels: a.labels.clone(),
                            annotations: a.annotations.clone(),
                            state: LifecycleState::Firing,
                            active_at_ms: Some(a.starts_at_ms),
                            fired_at_ms: Some(a.starts_at_ms),
                            resolved_at_ms: None,
                            last_value: None,
                            last_eval_at_ms: Some(now_ms),
                            episode: old.map_or(1, |o| o.episode + 1),
                            notified: match old.map(|o| o.notified) {
                                Some(Notified::Firing) => Notified::Firing,
                                _ => Notified::None,
                            },
                            firing_notified_at_ms: None,
                            detail: a.generator_url.clone().unwrap_or_default(),
                            updated_at_ms: now_ms,
                        },
                        event: Some((
                            from,
                            LifecycleState::Firing,
                            "received from an Alertmanager client".into(),
                        )),
                    });
                }
            }
        }
        for o in instances.values() {
            if o.source == AlertSource::Alertmanager
                && o.state == LifecycleState::Firing
                && !seen.contains(&o.fingerprint)
            {
                let mut inst = o.clone();
                inst.state = LifecycleState::Resolved;
                inst.resolved_at_ms = Some(now_ms);
                changes.push(Change {
                    instance: inst,
                    event: Some((
                        LifecycleState::Firing,
                        LifecycleState::Resolved,
                        "endsAt passed".into(),
                    )),
                });
            }
        }
        Ok(changes)
    }

    fn route_named(&self, name: &str) -> &Route {
        if name == self.nodata_route.name {
            return &self.nodata_route;
        }
        if name == self.error_route.name {
            return &self.error_route;
        }
        self.routes
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| {
                self.routes
                    .last()
                    .expect("the default route is always there")
            })
    }

    /// Decides every group and writes the notifications that are due, in `tx`.
    async fn flush(
        &self,
        tx: &mut sqlx::PgConnection,
        working: &mut HashMap<String, AlertInstance>,
        noted: &mut HashSet<(String, i32)>,
        inhibited: &BTreeMap<String, inhibit::Inhibition>,
        now_ms: i64,
    ) -> Result<HashSet<String>> {
        let rows: HashMap<String, NotificationGroup> = db::lock_groups(tx)
            .await?
            .into_iter()
            .map(|g| (g.group_key.clone(), g))
            .collect();
        let silences: Vec<(String, Vec<Matcher>)> = db::current_silences(tx, now_ms)
            .await?
            .into_iter()
            .filter(|s| s.starts_at_ms <= now_ms)
            .filter_map(|s| {
                let m: Result<Vec<Matcher>, String> =
                    s.matchers.iter().map(Matcher::from_silence).collect();
                m.ok().map(|m| (s.id, m))
            })
            .collect();
        // Snoozed alerts send no repeat notices (changes still go out).
        let snoozed = db::snoozed_alerts(tx, now_ms).await?;
        let silenced_by = |a: &AlertInstance| -> Option<String> {
            silences
                .iter()
                .find(|(_, m)| matcher::all_match(m, &a.labels))
                .map(|(id, _)| id.clone())
        };
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in working.values() {
            if fires(a.state) || a.notified == Notified::Firing {
                members
                    .entry(a.group_key.clone())
                    .or_default()
                    .push(a.fingerprint.clone());
            }
        }
        // Groups of further routes (`continue`), each member a copy with that group's state.
        let ids: Vec<i64> = working.values().map(|a| a.id).collect();
        let told_extra = fanout::load(tx, &ids).await?;
        let mut extra = fanout::memberships(&self.routes, working.values(), &told_extra);
        for (key, fp) in extra.keys() {
            members.entry(key.clone()).or_default().push(fp.clone());
        }
        for key in rows.keys() {
            members.entry(key.clone()).or_default();
        }
        for (key, fps) in members {
            let route = self.route_named(grouping::route_of_key(&key)).clone();
            let row = rows.get(&key);
            if route.channels.is_empty() {
                if row.is_some() {
                    db::delete_group(tx, &key).await?;
                }
                continue;
            }
            let list: Vec<&AlertInstance> = fps
                .iter()
                .filter_map(|f| {
                    extra
                        .get(&(key.clone(), f.clone()))
                        .or_else(|| working.get(f))
                })
                .filter(|a| a.group_key == key)
                .collect();
            // Note on the timeline, once per episode, that a silence held a firing notice back.
            let mut silenced_now = Vec::new();
            for a in &list {
                if fires(a.state) && a.notified != Notified::Firing {
                    if let Some(id) = silenced_by(a) {
                        if !noted.contains(&(a.fingerprint.clone(), a.episode)) {
                            silenced_now.push((a.id, a.fingerprint.clone(), a.episode, id));
                        }
                    }
                }
            }
            let decision = grouping::decide(
                &route,
                row,
                &list,
                // Inhibited alerts are held back like silenced ones (their owed resolves
                // still go out).
                |a| {
                    fires(a.state)
                        && (silenced_by(a).is_some() || inhibited.contains_key(&a.fingerprint))
                },
                now_ms,
            );
            for (id, fp, episode, silence) in silenced_now {
                db::add_event(
                    tx,
                    id,
                    &db::NewEvent {
                        kind: EventKind::Silenced,
                        from: None,
                        to: None,
                        by: "system",
                        detail: &format!("firing notice held back by silence {silence}"),
                        at_ms: now_ms,
                    },
                )
                .await?;
                noted.insert((fp, episode));
            }
            match decision {
                Decision::Wait => {}
                Decision::Start => {
                    let labels = list
                        .first()
                        .map(|a| grouping::group_labels(&route, &a.labels))
                        .unwrap_or_default();
                    db::save_group(
                        tx,
                        &NotificationGroup {
                            group_key: key.clone(),
                            route: route.name.clone(),
                            labels,
                            created_at_ms: now_ms,
                            last_notified_at_ms: None,
                            seq: 0,
                            last_contents: Vec::new(),
                        },
                    )
                    .await?;
                }
                Decision::Remove => db::delete_group(tx, &key).await?,
                Decision::Notify { firing, resolved } => {
                    let member = |x: &String| list.iter().find(|a| &a.fingerprint == x).copied();
                    let f: Vec<&AlertInstance> = firing.iter().filter_map(member).collect();
                    let r: Vec<&AlertInstance> = resolved.iter().filter_map(member).collect();
                    let repeat = r.is_empty() && f.iter().all(|a| a.notified == Notified::Firing);
                    if repeat && !f.is_empty() && f.iter().all(|a| snoozed.contains(&a.id)) {
                        debug!(group = %key, "repeat notice held back: every firing alert is snoozed");
                        continue;
                    }
                    let (kind, notice) = notice::compose(&f, &r);
                    let mut g = row.cloned().unwrap_or_else(|| NotificationGroup {
                        group_key: key.clone(),
                        route: route.name.clone(),
                        labels: f
                            .first()
                            .or(r.first())
                            .map(|a| grouping::group_labels(&route, &a.labels))
                            .unwrap_or_default(),
                        created_at_ms: now_ms,
                        last_notified_at_ms: None,
                        seq: 0,
                        last_contents: Vec::new(),
                    });
                    g.seq += 1;
                    g.last_notified_at_ms = Some(now_ms);
                    g.last_contents = f
                        .iter()
                        .map(|a| (a, "firing"))
                        .chain(r.iter().map(|a| (a, "resolved")))
                        .map(|(a, s)| GroupEntry {
                            fingerprint: a.fingerprint.clone(),
                            episode: a.episode,
                            state: s.into(),
                        })
                        .collect();
                    // The group's birth time keeps keys unique when a group is removed and
                    // later starts again; the sequence makes a replayed round harmless.
                    let dedup = format!("{key}@{}#{}", g.created_at_ms, g.seq);
                    let channels: Vec<&str> = route.channels.iter().map(String::as_str).collect();
                    crate::notify::enqueue(tx, &channels, &dedup, &key, kind, &notice).await?;
                    db::save_group(tx, &g).await?;
                    let told =
                        format!("{} notice to {} ({dedup})", kind, route.channels.join(", "));
                    for (fps, state) in
                        [(&firing, Notified::Firing), (&resolved, Notified::Resolved)]
                    {
                        for fp in fps {
                            if let Some(copy) = extra.get_mut(&(key.clone(), fp.clone())) {
                                // An extra group's notice: its state is kept apart.
                                copy.notified = state;
                                fanout::save(tx, copy, &key, state).await?;
                                db::add_event(
                                    tx,
                                    copy.id,
                                    &db::NewEvent {
                                        kind: EventKind::Notified,
                                        from: None,
                                        to: None,
                                        by: "system",
                                        detail: &told,
                                        at_ms: now_ms,
                                    },
                                )
                                .await?;
                                continue;
                            }
                            let Some(a) = working.get_mut(fp) else {
                                continue;
                            };
                            if state == Notified::Firing && a.notified != Notified::Firing {
                                a.firing_notified_at_ms = Some(now_ms);
                            }
                            a.notified = state;
                            db::save_instance(tx, a).await?;
                            db::add_event(
                                tx,
                                a.id,
                                &db::NewEvent {
                                    kind: EventKind::Notified,
                                    from: None,
                                    to: None,
                                    by: "system",
                                    detail: &told,
                                    at_ms: now_ms,
                                },
                            )
                            .await?;
                        }
                    }
                    info!(group = %key, %kind, firing = firing.len(), resolved = resolved.len(), "notification enqueued");
                }
            }
        }
        Ok(fanout::owed(&extra))
    }
}

/// An alert in a few words for a timeline entry: its rule and labels.
fn describe_alert(working: &HashMap<String, AlertInstance>, id: i64) -> String {
    working
        .values()
        .find(|a| a.id == id)
        .map(|a| {
            let own: BTreeMap<String, String> = a
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "alertname")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            format!("{}{}", a.rule, grouping::format_labels(&own))
        })
        .unwrap_or_else(|| "no longer live".into())
}

/// The change ending an active instance: a firing (or nodata / error) one resolves, a pending
/// one goes back to inactive, with `why` on the timeline.
fn ended(old: &AlertInstance, now_ms: i64, why: &str) -> Change {
    let mut inst = old.clone();
    let to = if old.state == LifecycleState::Pending {
        LifecycleState::Inactive
    } else {
        inst.resolved_at_ms = Some(now_ms);
        LifecycleState::Resolved
    };
    inst.state = to;
    Change {
        instance: inst,
        event: Some((old.state, to, why.to_string())),
    }
}

/// A stable id from parts (xxh3, hex).
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0]);
    }
    format!("{:016x}", h.digest())
}

/// Whether an open anomaly is one an `anomaly` rule fires on: at or above its severity and
/// score, and matched by its selector (label matchers on the anomaly's labels; a metric name
/// must appear in the anomaly's signal expression).
fn anomaly_matches(
    a: &db::OpenAnomaly,
    selector: &str,
    min_severity: Option<&str>,
    min_score: Option<f64>,
) -> bool {
    const ORDER: [&str; 3] = ["info", "warning", "critical"];
    let rank = |s: &str| ORDER.iter().position(|x| *x == s).unwrap_or(0);
    if min_severity.is_some_and(|m| rank(&a.severity) < rank(m)) {
        return false;
    }
    if min_score.is_some_and(|m| a.score < m) {
        return false;
    }
    if selector.is_empty() {
        return true;
    }
    let Ok(query::Expr::VectorSelector(vs)) = query::parse(selector) else {
        return false;
    };
    query::plan::matchers_of(&vs).iter().all(|m| {
        if m.name == query::value::METRIC_NAME {
            a.signal.contains(&m.value)
        } else {
            m.is_match(a.labels.get(&m.name).map_or("", String::as_str))
        }
    })
}

/// Whether an expression reads series and is not about missing data (`absent`,
/// `absent_over_time`): only such rules can be in `nodata`.
fn reads_series_without_absent(expr: &str) -> bool {
    let Ok(e) = query::parse(expr) else {
        return false;
    };
    let opts = query::EngineOptions::default();
    !query::plan::selectors(&e, 0, 0, &opts).is_empty() && !expr.contains("absent")
}

/// Fetches what `expr` reads at `t` into `into`; returns how many series were found.
async fn fetch(
    store: &Store,
    limits: &QueryLimits,
    expr: &query::Expr,
    t: i64,
    opts: &query::EngineOptions,
    into: &mut HashMap<query::Labels, BTreeMap<i64, f64>>,
) -> Result<usize, String> {
    let mut found = 0;
    for sel in query::plan::selectors(expr, t, t, opts) {
        let s = crate::promql::to_selector(&sel.matchers).map_err(|e| e.to_string())?;
        let raw = tokio::time::timeout(
            limits.timeout,
            store.raw_samples(&s, sel.mint, sel.maxt, limits.max_series_per_selector),
        )
        .await
        .map_err(|_| {
            format!(
                "reading took longer than query.timeout ({:?})",
                limits.timeout
            )
        })?
        .map_err(|e| e.to_string())?;
        found += raw.len();
        for (key, points) in raw {
            let labels = query::Labels::new(
                std::iter::once((query::value::METRIC_NAME.to_string(), key.metric)).chain(
                    key.labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                ),
            );
            into.entry(labels).or_default().extend(points);
        }
    }
    Ok(found)
}

/// Samples a group produced at `t`, as a batch for the ingest queue.
fn to_batch(samples: &[(query::Labels, f64)], t: i64) -> model::Batch {
    model::Batch {
        series: samples
            .iter()
            .map(|(l, v)| model::TimeSeries {
                key: model::SeriesKey::new(
                    l.get(query::value::METRIC_NAME),
                    model::Labels::from_pairs(
                        l.iter().filter(|(k, _)| *k != query::value::METRIC_NAME),
                    ),
                ),
                metric_type: model::MetricType::Gauge,
                samples: vec![model::Sample { ts: t, value: *v }],
            })
            .collect(),
        metadata: Vec::new(),
    }
}

/// A rule as Prometheus' `/api/v1/rules` shows it (without health and alerts).
fn rule_json(r: &alerting::Rule) -> serde_json::Value {
    match r.rule_type {
        RuleType::Recording => serde_json::json!({
            "name": r.name,
            "query": r.expr,
            "labels": r.labels,
            "type": "recording",
        }),
        RuleType::Alerting => serde_json::json!({
            "name": r.name,
            "query": r.expr,
            "duration": r.for_ms as f64 / 1000.0,
            "keepFiringFor": r.keep_firing_for_ms as f64 / 1000.0,
            "labels": r.labels,
            "annotations": r.annotations,
            "type": "alerting",
            "kind": r.pipewatch.as_ref().map(|k| k.name()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodata_is_for_rules_that_read_series_and_are_not_about_absence() {
        assert!(reads_series_without_absent("rate(rows_total[5m]) == 0"));
        assert!(!reads_series_without_absent("absent(up{job=\"etl\"})"));
        assert!(!reads_series_without_absent("absent_over_time(x[10m])"));
        assert!(!reads_series_without_absent("vector(1) > 0"));
    }

    #[test]
    fn fingerprints_are_stable_and_separate_their_parts() {
        assert_eq!(fingerprint(&["a", "bc"]), fingerprint(&["a", "bc"]));
        assert_ne!(fingerprint(&["a", "bc"]), fingerprint(&["ab", "c"]));
        assert_eq!(fingerprint(&["x"]).len(), 16);
    }
}
