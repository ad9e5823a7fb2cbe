//! Shared server state, and the web app's view of it (`app::Backend`).
//!
//! Both the receivers and the read API depend on this module and it depends on neither
//! (`receivers -> state <- api`); protocol state (OTLP running totals and the like) lives with
//! its receiver, not here.

use crate::ingest::IngestQueue;
use crate::scrape_manager::TargetHealthBoard;
use crate::telemetry::SelfMetrics;
use model::{RangeQuery, RangeSeries, Selector, StatusInfo, TargetHealth};
use std::sync::Arc;

/// Prometheus refuses more points per series than this; so do we (API and pages).
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

#[derive(Clone)]
pub struct AppState {
    pub store: store::Store,
    pub queue: IngestQueue,
    pub metrics: Arc<SelfMetrics>,
    pub board: TargetHealthBoard,
    pub started_at: i64,
    pub retention_days: u32,
    /// Where the data lives, for the Status page, without credentials.
    pub database: String,
    /// Limits and answers of the push receivers (`[receivers]` in the config).
    pub receivers: crate::config::ReceiversConfig,
    /// Bearer tokens and series limits shared by every push receiver.
    pub guard: Arc<crate::guard::Guard>,
    /// Limits of every PromQL query (`[query]` in the config).
    pub query_limits: crate::promql::QueryLimits,
    /// `[auth]`: anonymous role, session lifetime, login throttling.
    pub auth: Arc<crate::auth::AuthSettings>,
    /// Schedules and escalation policies of `[oncall] files`.
    pub oncall: Arc<crate::oncall::OncallSet>,
    /// `[notifications.channels]` by name, for the channels page and its test notices.
    pub channels: Arc<std::collections::BTreeMap<String, crate::config::ChannelConfig>>,
}

impl AppState {
    pub async fn status_info(&self) -> Result<StatusInfo, store::StoreError> {
        Ok(StatusInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            storage_mode: self.store.mode().to_string(),
            database: self.database.clone(),
            series_count: self.store.series_count().await?,
            samples_written_total: self.metrics.samples_written_total(),
            ingest_rate: self.metrics.ingest_rate(),
            queue_depth: self.queue.depth(),
            queue_capacity: self.queue.capacity(),
            started_at: self.started_at,
            retention_days: self.retention_days,
            samples_refused_too_old: self.metrics.rejected_total("too_old"),
            samples_refused_too_new: self.metrics.rejected_total("too_new"),
        })
    }
}

#[async_trait::async_trait]
impl app::Backend for AppState {
    async fn metric_names(&self) -> Result<Vec<String>, String> {
        self.store.metric_names().await.map_err(|e| e.to_string())
    }

    async fn label_names(&self, metric: &str) -> Result<Vec<String>, String> {
        self.store
            .label_names(Some(metric))
            .await
            .map_err(|e| e.to_string())
    }

    async fn label_values(&self, metric: &str, label: &str) -> Result<Vec<String>, String> {
        self.store
            .label_values(label, Some(metric))
            .await
            .map_err(|e| e.to_string())
    }

    async fn query_range(&self, selector: &str, q: RangeQuery) -> Result<Vec<RangeSeries>, String> {
        let sel = Selector::parse(selector).map_err(|e| e.message)?;
        if q.step_ms <= 0 || (q.end - q.start) / q.step_ms > MAX_POINTS_PER_SERIES {
            return Err(format!(
                "too many points: {} ms step over this range; choose a larger step",
                q.step_ms
            ));
        }
        self.store
            .query_range(&sel, &q)
            .await
            .map_err(|e| e.to_string())
    }

    async fn targets(&self) -> Vec<TargetHealth> {
        self.board.snapshot()
    }

    async fn status(&self) -> Result<StatusInfo, String> {
        self.status_info().await.map_err(|e| e.to_string())
    }

    async fn dq_datasets(&self) -> Result<Vec<model::dq::DatasetSummary>, String> {
        self.store.dq_datasets().await.map_err(|e| e.to_string())
    }

    async fn dq_checks(
        &self,
        dataset: &str,
        last_n: u32,
    ) -> Result<Vec<model::dq::CheckHistory>, String> {
        self.store
            .dq_checks(dataset, last_n)
            .await
            .map_err(|e| e.to_string())
    }

    async fn change_events(
        &self,
        q: model::ChangeEventQuery,
    ) -> Result<Vec<model::ChangeEvent>, String> {
        self.store
            .list_change_events(&q)
            .await
            .map_err(|e| e.to_string())
    }

    fn allows(&self, method: &str, path: &str, role: Option<model::auth::Role>) -> bool {
        crate::auth::policy::allows(method, path, role)
    }

    async fn list_users(&self) -> Result<Vec<model::auth::UserInfo>, String> {
        self.store.list_users().await.map_err(|e| e.to_string())
    }

    async fn add_user(
        &self,
        actor: &str,
        name: &str,
        password: &str,
        role: model::auth::Role,
    ) -> Result<(), String> {
        self.store
            .create_user(name, password, role)
            .await
            .map_err(|e| e.to_string())?;
        self.audit(actor, "user.add", name, serde_json::json!({"role": role}))
            .await
    }

    async fn change_user(
        &self,
        actor: &str,
        name: &str,
        role: Option<model::auth::Role>,
        disabled: Option<bool>,
    ) -> Result<(), String> {
        if let Some(role) = role {
            self.store
                .set_role(name, role)
                .await
                .map_err(|e| e.to_string())?;
            self.audit(actor, "user.role", name, serde_json::json!({"role": role}))
                .await?;
        }
        if let Some(disabled) = disabled {
            self.store
                .set_disabled(name, disabled)
                .await
                .map_err(|e| e.to_string())?;
            let action = if disabled {
                "user.disable"
            } else {
                "user.enable"
            };
            self.audit(actor, action, name, serde_json::json!({}))
                .await?;
        }
        Ok(())
    }

    async fn list_tokens(&self) -> Result<Vec<model::auth::TokenInfo>, String> {
        self.store
            .list_api_tokens()
            .await
            .map_err(|e| e.to_string())
    }

    async fn create_token(
        &self,
        actor: &str,
        name: &str,
        scope: model::auth::TokenScope,
    ) -> Result<String, String> {
        let t = self
            .store
            .create_api_token(name, scope, actor)
            .await
            .map_err(|e| e.to_string())?;
        self.audit(
            actor,
            "token.create",
            name,
            serde_json::json!({"scope": scope, "id": t.info.id}),
        )
        .await?;
        Ok(t.secret)
    }

    async fn revoke_token(&self, actor: &str, id: i64) -> Result<(), String> {
        let name = self
            .store
            .revoke_api_token(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("there is no live API token with id {id}"))?;
        self.audit(actor, "token.revoke", &name, serde_json::json!({"id": id}))
            .await
    }

    async fn audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<model::auth::AuditEntry>, String> {
        self.store
            .audit_log(limit, before)
            .await
            .map_err(|e| e.to_string())
    }

    async fn anomalies(
        &self,
        f: app::anomalies::AnomalyFilter,
    ) -> Result<Vec<model::anomaly::Anomaly>, String> {
        let q = store::anomaly_read::AnomalyQuery {
            state: f.state,
            severity: f.severity,
            node: f.node,
            since_ms: f.since_ms,
            overlapping: f.overlapping,
            limit: i64::from(f.limit),
        };
        self.store
            .read_anomalies(&q)
            .await
            .map_err(|e| e.to_string())
    }

    async fn anomaly(&self, id: i64) -> Result<Option<model::anomaly::Anomaly>, String> {
        self.store.anomaly(id).await.map_err(|e| e.to_string())
    }

    async fn anomaly_feedback(
        &self,
        id: i64,
        kind: model::anomaly::FeedbackKind,
        who: &str,
    ) -> Result<Option<model::anomaly::Anomaly>, String> {
        self.store
            .give_anomaly_feedback(id, kind, None, who, model::clock::now_ms())
            .await
            .map_err(|e| e.to_string())
    }

    async fn pipeline_health(&self) -> Result<Vec<model::anomaly::NodeHealth>, String> {
        self.store.node_health().await.map_err(|e| e.to_string())
    }

    async fn pipeline_graph(&self) -> Result<app::pipelines::PipelineGraph, String> {
        use app::pipelines::{PipelineEdge, PipelineGraph, PipelineNode, RunSummary};
        let g = self
            .store
            .lineage_graph()
            .await
            .map_err(|e| e.to_string())?;
        Ok(PipelineGraph {
            nodes: g
                .nodes
                .into_iter()
                .map(|n| PipelineNode {
                    id: n.id,
                    kind: n.kind.to_string(),
                    namespace: n.namespace,
                    name: n.name,
                    last_seen_ms: Some(n.last_seen_ms),
                    last_run: n.latest_run.map(|r| RunSummary {
                        state: r.state,
                        state_time_ms: r.state_time_ms,
                        duration_seconds: r.duration_seconds,
                    }),
                })
                .collect(),
            edges: g
                .edges
                .into_iter()
                .map(|e| PipelineEdge {
                    from: e.from,
                    to: e.to,
                })
                .collect(),
        })
    }

    async fn drift_results(
        &self,
        f: app::drift::DriftFilter,
    ) -> Result<Vec<model::anomaly::DriftResult>, String> {
        let q = store::anomaly_read::DriftQuery {
            dataset: f.dataset,
            column: f.column,
            latest_only: f.latest_only,
            limit: i64::from(f.limit),
        };
        self.store
            .read_drift_results(&q)
            .await
            .map_err(|e| e.to_string())
    }

    async fn last_sample(
        &self,
        selector: &model::Selector,
    ) -> Result<Option<model::TimestampMs>, String> {
        let series = self
            .store
            .find_series_in(selector, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(series.iter().map(|s| s.last_seen).max())
    }

    async fn signal_range(&self, expr: &str, q: RangeQuery) -> Result<Vec<RangeSeries>, String> {
        if q.step_ms <= 0 || (q.end - q.start) / q.step_ms > MAX_POINTS_PER_SERIES {
            return Err(format!(
                "too many points: {} ms step over this range; choose a larger step",
                q.step_ms
            ));
        }
        let series = crate::promql::range(
            &self.store,
            &self.query_limits,
            expr,
            q.start,
            q.end,
            q.step_ms,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(series
            .into_iter()
            .map(|s| {
                let metric = s.labels.get("__name__").to_string();
                RangeSeries {
                    metric,
                    labels: model::Labels::from_pairs(
                        s.labels.iter().filter(|(k, _)| *k != "__name__"),
                    ),
                    points: s.points,
                }
            })
            .collect())
    }

    async fn lifecycle_alerts(
        &self,
        filter: app::alerts::AlertListFilter,
    ) -> Result<Vec<app::alerts::AlertRow>, String> {
        crate::lifecycle::oncall::alert_rows(&self.store, filter).await
    }

    async fn lifecycle_alert(&self, id: i64) -> Result<Option<app::alerts::AlertDetail>, String> {
        crate::lifecycle::oncall::alert_detail(&self.store, id).await
    }

    async fn alert_action(
        &self,
        actor: &str,
        id: i64,
        action: app::alerts::AlertAction,
        comment: &str,
    ) -> Result<(), String> {
        use crate::lifecycle::oncall::{perform, snooze_for, OnCallRequest};
        use app::alerts::AlertAction;
        let request = match action {
            AlertAction::Note => {
                if comment.is_empty() {
                    return Err("the note is empty; write what you found or did".into());
                }
                let added = self
                    .store
                    .add_alert_event(
                        id,
                        &store::lifecycle::NewEvent {
                            kind: store::lifecycle::EventKind::Note,
                            from: None,
                            to: None,
                            by: actor,
                            detail: comment,
                            at_ms: model::clock::now_ms(),
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                return if added {
                    Ok(())
                } else {
                    Err(format!("there is no alert {id}"))
                };
            }
            AlertAction::Acknowledge => OnCallRequest::Acknowledge,
            AlertAction::Unacknowledge => OnCallRequest::Unacknowledge,
            AlertAction::Assign(to) => OnCallRequest::Assign(to),
            AlertAction::Snooze(d) => {
                OnCallRequest::Snooze(snooze_for(&d, model::clock::now_ms())?)
            }
            AlertAction::Resolve => OnCallRequest::Resolve,
        };
        perform(&self.store, id, request, actor, comment)
            .await
            .map_err(|e| e.text())
    }

    async fn silences(&self) -> Result<Vec<app::silences::SilenceRow>, String> {
        crate::lifecycle::oncall::silence_rows(&self.store).await
    }

    async fn silence_matches(&self, matchers: &str) -> Result<usize, String> {
        crate::lifecycle::oncall::silence_matches(&self.store, matchers).await
    }

    async fn create_silence(
        &self,
        actor: &str,
        matchers: &str,
        duration: &str,
        comment: &str,
    ) -> Result<String, String> {
        let id = crate::lifecycle::oncall::create_silence(
            &self.store,
            actor,
            matchers,
            duration,
            comment,
        )
        .await?;
        self.audit(
            actor,
            "silence.create",
            &id,
            serde_json::json!({"matchers": matchers, "duration": duration, "comment": comment}),
        )
        .await?;
        Ok(id)
    }

    async fn expire_silence(&self, actor: &str, id: &str) -> Result<(), String> {
        crate::lifecycle::oncall::expire_silence(&self.store, id).await?;
        self.audit(actor, "silence.expire", id, serde_json::json!({}))
            .await
    }

    async fn rule_groups(&self) -> Result<Vec<app::rules::RuleGroupView>, String> {
        crate::lifecycle::oncall::rule_groups(&self.store).await
    }

    async fn channels(&self) -> Result<Vec<app::channels::ChannelView>, String> {
        let sums = self
            .store
            .channel_summaries()
            .await
            .map_err(|e| e.to_string())?;
        Ok(self
            .channels
            .iter()
            .map(|(name, c)| {
                let s = sums.iter().find(|s| &s.channel == name);
                app::channels::ChannelView {
                    name: name.clone(),
                    kind: c.kind().to_string(),
                    destination: c.destination(),
                    delivered: s.map_or(0, |s| s.delivered),
                    waiting: s.map_or(0, |s| s.waiting),
                    last_delivered: s.and_then(|s| s.last_delivered_ms),
                    last_error: s.and_then(|s| s.last_error.clone()),
                }
            })
            .collect())
    }

    async fn send_test_notification(&self, actor: &str, channel: &str) -> Result<i64, String> {
        if !self.channels.contains_key(channel) {
            return Err(format!(
                "there is no channel {channel:?}; channels are the names under [notifications.channels] ({})",
                self.channels.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let now = model::clock::now_ms();
        let notice = crate::notify::AlertNotice {
            alert: "PipewatchTestNotification".into(),
            labels: [
                ("alertname".to_string(), "PipewatchTestNotification".to_string()),
                ("channel".to_string(), channel.to_string()),
            ]
            .into(),
            severity: "info".into(),
            explanation: format!(
                "A test notification sent by {actor} from the Notification channels page: if you read this, channel {channel} works."
            ),
            link: Some("/channels".into()),
            starts_at_ms: now,
            ends_at_ms: None,
            values: Vec::new(),
            alerts: Vec::new(),
        };
        let key = format!("test:{channel}:{now}");
        let n = store::outbox::NewNotification {
            channel: channel.to_string(),
            dedup_key: key.clone(),
            group_key: key,
            kind: store::outbox::NotificationKind::Firing,
            payload: serde_json::to_value(&notice).map_err(|e| e.to_string())?,
        };
        self.store
            .enqueue_notification(&n)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                "a test was sent to this channel this very millisecond; try again".into()
            })
    }

    async fn oncall_view(&self) -> Result<app::oncall::OncallView, String> {
        crate::oncall::view(&self.oncall, &self.store, model::clock::now_ms()).await
    }

    async fn add_override(
        &self,
        actor: &str,
        schedule: &str,
        user: &str,
        from_ms: i64,
        duration: &str,
    ) -> Result<(), String> {
        let id = crate::oncall::add_override(
            &self.oncall,
            &self.store,
            actor,
            schedule,
            user,
            from_ms,
            duration,
        )
        .await?;
        self.audit(
            actor,
            "oncall.override.add",
            schedule,
            serde_json::json!({"id": id, "user": user, "from_ms": from_ms, "duration": duration}),
        )
        .await
    }

    async fn delete_override(&self, actor: &str, id: i64) -> Result<(), String> {
        let Some(o) = self
            .store
            .delete_schedule_override(id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Err(format!(
                "there is no override {id}; it may have been removed already"
            ));
        };
        self.audit(
            actor,
            "oncall.override.remove",
            &o.schedule,
            serde_json::json!({"id": id, "user": o.user, "from_ms": o.from_ms, "to_ms": o.to_ms}),
        )
        .await
    }

    async fn set_user_email(&self, actor: &str, name: &str, email: &str) -> Result<(), String> {
        let email = Some(email.trim()).filter(|e| !e.is_empty());
        self.store
            .set_email(name, email)
            .await
            .map_err(|e| e.to_string())?;
        self.audit(
            actor,
            "user.email",
            name,
            serde_json::json!({"email": email}),
        )
        .await
    }

    async fn ui_rule_groups(&self) -> Result<Vec<app::rules::UiRuleGroupRow>, String> {
        crate::lifecycle::ui_rules::rows(&self.store).await
    }

    async fn save_rule_group(
        &self,
        actor: &str,
        original: Option<&str>,
        text: &str,
    ) -> Result<String, String> {
        let (name, action) =
            crate::lifecycle::ui_rules::save(&self.store, actor, original, text).await?;
        self.audit(
            actor,
            action,
            &name,
            serde_json::json!({"original": original, "text": text}),
        )
        .await?;
        Ok(name)
    }

    async fn delete_rule_group(&self, actor: &str, name: &str) -> Result<(), String> {
        crate::lifecycle::ui_rules::delete(&self.store, name).await?;
        self.audit(actor, "rules.delete", name, serde_json::json!({}))
            .await
    }

    async fn preview_rule_group(&self, text: &str) -> Result<app::rules::RulePreview, String> {
        crate::lifecycle::ui_rules::preview_view(&self.store, &self.query_limits, text).await
    }
}

impl AppState {
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), String> {
        self.store
            .audit(actor, action, target, detail)
            .await
            .map_err(|e| format!("the change was made but the audit log could not be written: {e}"))
    }
}
