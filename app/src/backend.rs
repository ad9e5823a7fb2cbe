//! What the server must provide for the pages: the server functions in [`crate::api`] find
//! an `Arc<dyn Backend>` in the Leptos context (the server's router provides it) and read
//! everything through it.

/// Data access for the pages. Errors are user-facing text: say what is wrong and what to do.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn metric_names(&self) -> Result<Vec<String>, String>;
    async fn label_names(&self, metric: &str) -> Result<Vec<String>, String>;
    async fn label_values(&self, metric: &str, label: &str) -> Result<Vec<String>, String>;
    /// `selector` is Prometheus selector text, e.g. `demo_rows_total{job="x"}`; errors are user-facing text.
    async fn query_range(
        &self,
        selector: &str,
        q: model::RangeQuery,
    ) -> Result<Vec<model::RangeSeries>, String>;
    async fn targets(&self) -> Vec<model::TargetHealth>;
    async fn status(&self) -> Result<model::StatusInfo, String>;
    /// Data-quality datasets with the latest status of their checks, worst first. The default
    /// says the backend keeps no data-quality results.
    async fn dq_datasets(&self) -> Result<Vec<model::dq::DatasetSummary>, String> {
        Err("this backend keeps no data-quality results".into())
    }
    /// The checks of `dataset` with their last `last_n` runs, oldest first.
    async fn dq_checks(
        &self,
        dataset: &str,
        last_n: u32,
    ) -> Result<Vec<model::dq::CheckHistory>, String> {
        let _ = (dataset, last_n);
        Err("this backend keeps no data-quality results".into())
    }
    /// Change events matching `q`, newest first (markers on Explore charts). The default
    /// keeps none, so a chart simply shows no markers.
    async fn change_events(
        &self,
        q: model::ChangeEventQuery,
    ) -> Result<Vec<model::ChangeEvent>, String> {
        let _ = q;
        Ok(Vec::new())
    }

    // Users, tokens and the audit log (app/src/users.rs, app/src/audit.rs). `actor` is the
    // user making the change, for the audit log. The defaults keep no users.

    /// Whether the server's policy table lets `role` call `method path`: server functions
    /// called while a page renders do not pass the auth layer, so they ask here.
    fn allows(&self, method: &str, path: &str, role: Option<model::auth::Role>) -> bool {
        let _ = (method, path, role);
        false
    }
    async fn list_users(&self) -> Result<Vec<model::auth::UserInfo>, String> {
        Err(NO_USERS.into())
    }
    async fn add_user(
        &self,
        actor: &str,
        name: &str,
        password: &str,
        role: model::auth::Role,
    ) -> Result<(), String> {
        let _ = (actor, name, password, role);
        Err(NO_USERS.into())
    }
    /// Changes the role and/or the disabled flag of `name`.
    async fn change_user(
        &self,
        actor: &str,
        name: &str,
        role: Option<model::auth::Role>,
        disabled: Option<bool>,
    ) -> Result<(), String> {
        let _ = (actor, name, role, disabled);
        Err(NO_USERS.into())
    }
    async fn list_tokens(&self) -> Result<Vec<model::auth::TokenInfo>, String> {
        Err(NO_USERS.into())
    }
    /// Creates an API token and returns its secret (shown once).
    async fn create_token(
        &self,
        actor: &str,
        name: &str,
        scope: model::auth::TokenScope,
    ) -> Result<String, String> {
        let _ = (actor, name, scope);
        Err(NO_USERS.into())
    }
    async fn revoke_token(&self, actor: &str, id: i64) -> Result<(), String> {
        let _ = (actor, id);
        Err(NO_USERS.into())
    }
    /// The newest `limit` audit rows with an id below `before`, newest first.
    async fn audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<model::auth::AuditEntry>, String> {
        let _ = (limit, before);
        Err(NO_USERS.into())
    }
    /// Anomalies matching `filter`, open ones first, then the latest started. The defaults of
    /// the analysis methods say the backend keeps no analysis results.
    async fn anomalies(
        &self,
        filter: crate::anomalies::AnomalyFilter,
    ) -> Result<Vec<model::anomaly::Anomaly>, String> {
        let _ = filter;
        Err(NO_ANALYSIS.into())
    }
    /// One anomaly; `None` when there is no such id.
    async fn anomaly(&self, id: i64) -> Result<Option<model::anomaly::Anomaly>, String> {
        let _ = id;
        Err(NO_ANALYSIS.into())
    }
    /// Records what `who` said about anomaly `id` and returns it as it is now; `None` when
    /// there is no such id.
    async fn anomaly_feedback(
        &self,
        id: i64,
        kind: model::anomaly::FeedbackKind,
        who: &str,
    ) -> Result<Option<model::anomaly::Anomaly>, String> {
        let _ = (id, kind, who);
        Err(NO_ANALYSIS.into())
    }
    /// Nodes with open anomalies (every other node is healthy).
    async fn pipeline_health(&self) -> Result<Vec<model::anomaly::NodeHealth>, String> {
        Err(NO_ANALYSIS.into())
    }
    /// The pipeline graph as OpenLineage runs drew it.
    async fn pipeline_graph(&self) -> Result<crate::pipelines::PipelineGraph, String> {
        Ok(crate::pipelines::PipelineGraph::default())
    }
    /// Drift results matching `filter`.
    async fn drift_results(
        &self,
        filter: crate::drift::DriftFilter,
    ) -> Result<Vec<model::anomaly::DriftResult>, String> {
        let _ = filter;
        Err(NO_ANALYSIS.into())
    }
    /// A PromQL expression (Explore's query, an anomaly's signal) evaluated at every
    /// `q.step_ms` over `[q.start, q.end]`, as `/api/v1/query_range` does; `q.aggregation`
    /// does not apply. Errors are the engine's messages.
    async fn signal_range(
        &self,
        expr: &str,
        q: model::RangeQuery,
    ) -> Result<Vec<model::RangeSeries>, String> {
        let _ = (expr, q);
        Err("this backend does not evaluate PromQL".into())
    }

    /// When a series matching `selector` last had a sample (Unix ms), at any time; `None` when
    /// no series matches. For an empty chart's "last data at ...".
    async fn last_sample(
        &self,
        selector: &model::Selector,
    ) -> Result<Option<model::TimestampMs>, String> {
        let _ = selector;
        Ok(None)
    }

    // The alert lifecycle (app/src/alerts.rs, silences.rs, rules.rs). `actor` is the user
    // acting. The defaults keep no alerts.

    /// Alerts matching `filter`; a bad matcher is an error naming it.
    async fn lifecycle_alerts(
        &self,
        filter: crate::alerts::AlertListFilter,
    ) -> Result<Vec<crate::alerts::AlertRow>, String> {
        let _ = filter;
        Err(NO_ALERTING.into())
    }
    /// One alert with its timeline; `None` when there is no such id.
    async fn lifecycle_alert(&self, id: i64) -> Result<Option<crate::alerts::AlertDetail>, String> {
        let _ = id;
        Err(NO_ALERTING.into())
    }
    async fn alert_action(
        &self,
        actor: &str,
        id: i64,
        action: crate::alerts::AlertAction,
        comment: &str,
    ) -> Result<(), String> {
        let _ = (actor, id, action, comment);
        Err(NO_ALERTING.into())
    }
    async fn silences(&self) -> Result<Vec<crate::silences::SilenceRow>, String> {
        Err(NO_ALERTING.into())
    }
    /// How many current alerts the matcher text catches.
    async fn silence_matches(&self, matchers: &str) -> Result<usize, String> {
        let _ = matchers;
        Err(NO_ALERTING.into())
    }
    /// Creates a silence from matcher text and a duration (`2h`); returns its id.
    async fn create_silence(
        &self,
        actor: &str,
        matchers: &str,
        duration: &str,
        comment: &str,
    ) -> Result<String, String> {
        let _ = (actor, matchers, duration, comment);
        Err(NO_ALERTING.into())
    }
    async fn expire_silence(&self, actor: &str, id: &str) -> Result<(), String> {
        let _ = (actor, id);
        Err(NO_ALERTING.into())
    }
    async fn rule_groups(&self) -> Result<Vec<crate::rules::RuleGroupView>, String> {
        Err(NO_ALERTING.into())
    }
    // Notification channels (app/src/channels.rs).
    /// The configured channels with their delivery counts.
    async fn channels(&self) -> Result<Vec<crate::channels::ChannelView>, String> {
        Err(NO_ALERTING.into())
    }
    /// Queues a test notification to `channel` as `actor`; returns its outbox id.
    async fn send_test_notification(&self, actor: &str, channel: &str) -> Result<i64, String> {
        let _ = (actor, channel);
        Err(NO_ALERTING.into())
    }

    // On call (app/src/oncall.rs); `actor` is the user making the change, for the audit log.
    /// Schedules with who is on call now and next, and the escalation policies.
    async fn oncall_view(&self) -> Result<crate::oncall::OncallView, String> {
        Err(NO_ALERTING.into())
    }
    /// Adds an override of `schedule`: `user` on call from `from_ms` for `duration` (`4h`).
    async fn add_override(
        &self,
        actor: &str,
        schedule: &str,
        user: &str,
        from_ms: i64,
        duration: &str,
    ) -> Result<(), String> {
        let _ = (actor, schedule, user, from_ms, duration);
        Err(NO_ALERTING.into())
    }
    async fn delete_override(&self, actor: &str, id: i64) -> Result<(), String> {
        let _ = (actor, id);
        Err(NO_ALERTING.into())
    }
    /// Sets (empty: removes) the address escalations to `name` are mailed to.
    async fn set_user_email(&self, actor: &str, name: &str, email: &str) -> Result<(), String> {
        let _ = (actor, name, email);
        Err(NO_USERS.into())
    }
    /// The rule groups made on the Rules page.
    async fn ui_rule_groups(&self) -> Result<Vec<crate::rules::UiRuleGroupRow>, String> {
        Ok(Vec::new())
    }
    /// Lints and stores a page-made group (new when `original` is `None`); returns its name.
    /// Lint errors come one per line, each with its line:column.
    async fn save_rule_group(
        &self,
        actor: &str,
        original: Option<&str>,
        text: &str,
    ) -> Result<String, String> {
        let _ = (actor, original, text);
        Err(NO_ALERTING.into())
    }
    async fn delete_rule_group(&self, actor: &str, name: &str) -> Result<(), String> {
        let _ = (actor, name);
        Err(NO_ALERTING.into())
    }
    /// What a group would have fired on over the last 24 hours.
    async fn preview_rule_group(&self, text: &str) -> Result<crate::rules::RulePreview, String> {
        let _ = text;
        Err(NO_ALERTING.into())
    }
}

const NO_USERS: &str = "this backend keeps no users";

const NO_ANALYSIS: &str = "this backend keeps no anomaly or drift results";

const NO_ALERTING: &str = "this backend keeps no alerts";
