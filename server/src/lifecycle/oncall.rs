//! On-call actions and the lifecycle as the pages see it: one place for what the API
//! (`api::lifecycle`) and the pages (`state`'s `app::Backend`) both do, so an action checks and
//! records the same way whichever door it came through.
//!
//! The actions only write `alert_oncall` and the timeline; the engine reads them (snoozes hold
//! repeat notices back, resolve requests become transitions in its round).

use super::matcher::{all_match, Matcher, Op};
use std::collections::{BTreeMap, HashMap};
use store::lifecycle::{
    ActionOutcome, AlertFilter, AlertInstance, AlertSource, LifecycleState, NewSilence, OnCall,
    OnCallAction, SilenceMatcher,
};
use store::{Store, StoreError};

/// The longest snooze: for longer, silence the alert or fix the rule.
pub const MAX_SNOOZE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);
/// The longest silence the pages create (the API takes any end, as Alertmanager does).
pub const MAX_PAGE_SILENCE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// An on-call action with what it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum OnCallRequest {
    Acknowledge,
    Unacknowledge,
    /// To this user; empty takes the assignment away.
    Assign(String),
    /// Until this time (Unix ms).
    Snooze(i64),
    Resolve,
}

/// Why an action was not done.
#[derive(Debug)]
pub enum ActionError {
    NotFound(String),
    /// It does not fit the alert's state now.
    Conflict(String),
    /// It names something that does not exist, or a time that does not work.
    Invalid(String),
    Store(StoreError),
}

impl ActionError {
    /// For people (the pages).
    pub fn text(self) -> String {
        match self {
            ActionError::NotFound(m) | ActionError::Conflict(m) | ActionError::Invalid(m) => m,
            ActionError::Store(e) => format!("the database could not answer: {e}"),
        }
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The end of a snooze of `duration` (`30m`, `2h`) from `now`.
pub fn snooze_for(duration: &str, now: i64) -> Result<i64, String> {
    let d = humantime::parse_duration(duration.trim()).map_err(|e| {
        format!("duration {duration:?} is not a duration like \"30m\" or \"2h\": {e}")
    })?;
    let until = now + d.as_millis() as i64;
    check_snooze(until, now)?;
    Ok(until)
}

/// A snooze must end in the future, within [`MAX_SNOOZE`].
pub fn check_snooze(until: i64, now: i64) -> Result<(), String> {
    if until <= now {
        return Err(
            "the snooze would end in the past; send a later `until` or a positive `duration`"
                .into(),
        );
    }
    if until - now > MAX_SNOOZE.as_millis() as i64 {
        return Err(format!(
            "a snooze lasts at most {}; for longer, create a silence",
            humantime::format_duration(MAX_SNOOZE)
        ));
    }
    Ok(())
}

/// Does `request` to alert `id` as `by`, with `comment` on the timeline.
pub async fn perform(
    store: &Store,
    id: i64,
    request: OnCallRequest,
    by: &str,
    comment: &str,
) -> Result<(), ActionError> {
    let now = model::clock::now_ms();
    let (action, comment) = match request {
        OnCallRequest::Acknowledge => (OnCallAction::Acknowledge, comment.to_string()),
        OnCallRequest::Unacknowledge => (OnCallAction::Unacknowledge, comment.to_string()),
        OnCallRequest::Resolve => (OnCallAction::Resolve, comment.to_string()),
        OnCallRequest::Assign(to) => (
            OnCallAction::Assign(Some(to.trim().to_string()).filter(|t| !t.is_empty())),
            comment.to_string(),
        ),
        OnCallRequest::Snooze(until) => {
            check_snooze(until, now).map_err(ActionError::Invalid)?;
            let when = rfc3339(until);
            let detail = match comment.trim() {
                "" => format!("until {when}"),
                c => format!("until {when}: {c}"),
            };
            (OnCallAction::Snooze { until_ms: until }, detail)
        }
    };
    match store
        .oncall_action(id, &action, by, &comment, now)
        .await
        .map_err(ActionError::Store)?
    {
        ActionOutcome::Done => Ok(()),
        ActionOutcome::NotFound => Err(ActionError::NotFound(format!(
            "there is no alert {id}; list them at /api/v1/lifecycle/alerts"
        ))),
        ActionOutcome::Conflict(m) => Err(ActionError::Conflict(m)),
        ActionOutcome::Invalid(m) => Err(ActionError::Invalid(m)),
    }
}

/// Splits matcher text (`a="1", b=~"x,y"`, optionally in braces) at the commas outside quotes.
pub fn split_matchers(text: &str) -> Vec<String> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in t.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// Parses matcher text; errors name the matcher and say how to write one.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    split_matchers(text)
        .iter()
        .map(|m| Matcher::parse(m))
        .collect()
}

/// The labels a group key is made of (`route/{a="1",b="2"}`).
pub fn group_labels_of_key(key: &str) -> Vec<(String, String)> {
    let labels = key.split_once('/').map_or("", |(_, l)| l);
    parse_matchers(labels)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.op == Op::Eq)
        .map(|m| (m.name, m.value))
        .collect()
}

/// Silences active now, compiled, with their ids.
pub async fn active_silences(
    store: &Store,
    now: i64,
) -> Result<Vec<(String, Vec<Matcher>)>, StoreError> {
    Ok(store
        .silences()
        .await?
        .into_iter()
        .filter(|s| s.status(now) == "active")
        .filter_map(|s| {
            let m: Result<Vec<Matcher>, String> =
                s.matchers.iter().map(Matcher::from_silence).collect();
            m.ok().map(|m| (s.id, m))
        })
        .collect())
}

fn row(
    a: &AlertInstance,
    silences: &[(String, Vec<Matcher>)],
    o: Option<&OnCall>,
    now: i64,
) -> app::alerts::AlertRow {
    let acked = o.and_then(|o| o.acknowledged_in(a.episode));
    app::alerts::AlertRow {
        id: a.id,
        rule: a.rule.clone(),
        rule_group: a.rule_group.clone(),
        source: a.source.as_str().to_string(),
        state: a.state.as_str().to_string(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        value: a.last_value.map(query::format_value),
        active_at_ms: a.active_at_ms,
        fired_at_ms: a.fired_at_ms,
        resolved_at_ms: a.resolved_at_ms,
        updated_at_ms: a.updated_at_ms,
        episode: a.episode,
        group_key: a.group_key.clone(),
        group_labels: group_labels_of_key(&a.group_key),
        // Filled in by the callers, from `alert_inhibitions`.
        inhibited_by: None,
        silenced_by: silences
            .iter()
            .find(|(_, m)| a.state.is_active() && all_match(m, &a.labels))
            .map(|(id, _)| id.clone()),
        acknowledged_by: acked.map(str::to_string),
        acknowledged_at_ms: o
            .and_then(|o| o.acknowledged_at_ms)
            .filter(|_| acked.is_some()),
        assignee: o.and_then(|o| o.assignee.clone()),
        snoozed_until_ms: o
            .filter(|o| o.snoozed_at(now))
            .and_then(|o| o.snoozed_until_ms),
        resolve_requested_by: o.and_then(|o| o.resolve_requested_by.clone()),
        detail: a.detail.clone(),
    }
}

/// Sets `inhibited_by` on `rows` from `alert_inhibitions`.
async fn mark_inhibited(store: &Store, rows: &mut [app::alerts::AlertRow]) -> Result<(), String> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let by = super::inhibit::inhibited_by(store.pool(), &ids)
        .await
        .map_err(|e| e.to_string())?;
    for r in rows {
        r.inhibited_by = by
            .get(&r.id)
            .and_then(|v| Some((v["alert"].as_i64()?, v["rule"].as_str()?.to_string())));
    }
    Ok(())
}

/// The Alerts page's list.
pub async fn alert_rows(
    store: &Store,
    f: app::alerts::AlertListFilter,
) -> Result<Vec<app::alerts::AlertRow>, String> {
    let matchers = parse_matchers(&f.matchers).map_err(|e| format!("labels: {e}"))?;
    let mut states = Vec::new();
    for s in &f.states {
        states.push(
            LifecycleState::ALL
                .into_iter()
                .find(|x| x.as_str() == s)
                .ok_or_else(|| format!("state {s:?} is not known"))?,
        );
    }
    if states.is_empty() {
        states = LifecycleState::ALL
            .into_iter()
            .filter(|s| *s != LifecycleState::Inactive)
            .collect();
    }
    let now = model::clock::now_ms();
    let alerts: Vec<AlertInstance> = store
        .lifecycle_alerts(&AlertFilter {
            states,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|a| all_match(&matchers, &a.labels))
        .filter(|a| f.severity.is_empty() || a.labels.get("severity") == Some(&f.severity))
        .take(app::alerts::LIST_LIMIT + 1)
        .collect();
    let silences = active_silences(store, now)
        .await
        .map_err(|e| e.to_string())?;
    let ids: Vec<i64> = alerts.iter().map(|a| a.id).collect();
    let oncall = store.oncall_states(&ids).await.map_err(|e| e.to_string())?;
    let mut rows: Vec<app::alerts::AlertRow> = alerts
        .iter()
        .map(|a| row(a, &silences, oncall.get(&a.id), now))
        .collect();
    mark_inhibited(store, &mut rows).await?;
    Ok(rows)
}

/// Explore over the first series `expr` reads, around `[from, to]`.
fn explore_href(expr: &str, from: i64, to: i64) -> Option<String> {
    let parsed = query::parse(expr).ok()?;
    let opts = query::EngineOptions::default();
    let sel = query::plan::selectors(&parsed, to, to, &opts)
        .into_iter()
        .next()?;
    let mut metric = String::new();
    let mut rest = Vec::new();
    for m in &sel.matchers {
        if m.name == query::value::METRIC_NAME && metric.is_empty() {
            metric = m.value.clone();
            continue;
        }
        // promql-parser prints a matcher as PromQL writes it (`job=~"etl.*"`).
        rest.push(m.to_string());
    }
    let selector = if rest.is_empty() {
        metric
    } else {
        format!("{metric}{{{}}}", rest.join(","))
    };
    model::Selector::parse(&selector).ok()?;
    Some(format!(
        "/explore?q={}&from={from}&to={to}",
        app::range::encode_query_value(&selector)
    ))
}

/// The alert detail page.
pub async fn alert_detail(
    store: &Store,
    id: i64,
) -> Result<Option<app::alerts::AlertDetail>, String> {
    let Some(a) = store.lifecycle_alert(id).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let now = model::clock::now_ms();
    let silences = active_silences(store, now)
        .await
        .map_err(|e| e.to_string())?;
    let oncall = store
        .oncall_states(&[id])
        .await
        .map_err(|e| e.to_string())?;
    let timeline = store
        .alert_events(id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|e| app::alerts::AlertEventRow {
            at_ms: e.at_ms,
            kind: e.kind.as_str().to_string(),
            from: e.from_state,
            to: e.to_state,
            by: e.by,
            detail: e.detail,
        })
        .collect();
    let users = store
        .list_users()
        .await
        .map(|u| {
            u.into_iter()
                .filter(|u| !u.disabled)
                .map(|u| u.name)
                .collect()
        })
        .unwrap_or_default();
    let rule_query = if a.source == AlertSource::Rule {
        store
            .rule_statuses()
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|r| {
                r.group_name == a.rule_group && r.rule["name"].as_str() == Some(a.rule.as_str())
            })
            .and_then(|r| r.rule["query"].as_str().map(str::to_string))
    } else {
        None
    };
    let from = a.active_at_ms.unwrap_or(now) - 3_600_000;
    let to = if a.state.is_active() {
        now
    } else {
        a.resolved_at_ms.unwrap_or(now) + 900_000
    }
    .min(now);
    let explore = rule_query
        .as_deref()
        .and_then(|q| explore_href(q, from, to));
    let anomaly_href = (a.source == AlertSource::Anomaly)
        .then(|| a.detail.strip_prefix("anomaly ")?.parse::<i64>().ok())
        .flatten()
        .map(|n| format!("/anomalies/{n}"));
    let mut alert = row(&a, &silences, oncall.get(&id), now);
    mark_inhibited(store, std::slice::from_mut(&mut alert)).await?;
    Ok(Some(app::alerts::AlertDetail {
        alert,
        timeline,
        users,
        rule_query,
        explore_href: explore,
        anomaly_href,
    }))
}

fn to_silence_matcher(m: &Matcher) -> SilenceMatcher {
    SilenceMatcher {
        name: m.name.clone(),
        value: m.value.clone(),
        is_regex: matches!(m.op, Op::Re | Op::NotRe),
        is_equal: matches!(m.op, Op::Eq | Op::Re),
    }
}

fn matchers_text(ms: &[SilenceMatcher]) -> String {
    ms.iter()
        .filter_map(|m| Matcher::from_silence(m).ok())
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Active alerts, for counting what silences catch.
async fn active_alerts(store: &Store) -> Result<Vec<AlertInstance>, String> {
    store
        .lifecycle_alerts(&AlertFilter {
            states: LifecycleState::ALL
                .into_iter()
                .filter(|s| s.is_active())
                .collect(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())
}

/// The Silences page's list, each with the active alerts it catches.
pub async fn silence_rows(store: &Store) -> Result<Vec<app::silences::SilenceRow>, String> {
    let now = model::clock::now_ms();
    let alerts = active_alerts(store).await?;
    Ok(store
        .silences()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| {
            let compiled: Vec<Matcher> = s
                .matchers
                .iter()
                .filter_map(|m| Matcher::from_silence(m).ok())
                .collect();
            app::silences::SilenceRow {
                matching: alerts
                    .iter()
                    .filter(|a| all_match(&compiled, &a.labels))
                    .count(),
                matchers: matchers_text(&s.matchers),
                status: s.status(now).to_string(),
                id: s.id,
                starts_at_ms: s.starts_at_ms,
                ends_at_ms: s.ends_at_ms,
                created_by: s.created_by,
                comment: s.comment,
            }
        })
        .collect())
}

/// Checks silence matchers as the API does: at least one, and not all matching an alert
/// without labels (that would silence everything).
fn silence_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    let ms = parse_matchers(text)?;
    if ms.is_empty() {
        return Err(
            "write at least one matcher, like alertname=\"StageStalled\" or job=~\"etl.*\"".into(),
        );
    }
    if ms.iter().all(|m| m.matches(&BTreeMap::new())) {
        return Err(
            "these matchers also match an alert without labels, so they would silence everything; match at least one label's value".into(),
        );
    }
    Ok(ms)
}

/// How many active alerts `text` catches.
pub async fn silence_matches(store: &Store, text: &str) -> Result<usize, String> {
    let ms = silence_matchers(text)?;
    Ok(active_alerts(store)
        .await?
        .iter()
        .filter(|a| all_match(&ms, &a.labels))
        .count())
}

/// Creates a silence from the pages; returns its id.
pub async fn create_silence(
    store: &Store,
    actor: &str,
    text: &str,
    duration: &str,
    comment: &str,
) -> Result<String, String> {
    let ms = silence_matchers(text)?;
    let d = humantime::parse_duration(duration.trim())
        .map_err(|e| format!("duration {duration:?} is not a duration like \"2h\": {e}"))?;
    if d.is_zero() || d > MAX_PAGE_SILENCE {
        return Err(format!(
            "a silence from this page lasts from a minute to {}",
            humantime::format_duration(MAX_PAGE_SILENCE)
        ));
    }
    if comment.trim().is_empty() {
        return Err("say why the alerts are silenced (the comment is empty)".into());
    }
    let now = model::clock::now_ms();
    store
        .create_silence(&NewSilence {
            matchers: ms.iter().map(to_silence_matcher).collect(),
            starts_at_ms: now,
            ends_at_ms: now + d.as_millis() as i64,
            created_by: actor.to_string(),
            comment: comment.trim().to_string(),
        })
        .await
        .map_err(|e| e.to_string())
}

/// Ends a silence now.
pub async fn expire_silence(store: &Store, id: &str) -> Result<(), String> {
    match store
        .expire_silence(id, model::clock::now_ms())
        .await
        .map_err(|e| e.to_string())?
    {
        Some(_) => Ok(()),
        None => Err(format!("there is no silence {id}")),
    }
}

/// The Rules page.
pub async fn rule_groups(store: &Store) -> Result<Vec<app::rules::RuleGroupView>, String> {
    let statuses = store.rule_statuses().await.map_err(|e| e.to_string())?;
    let active = store
        .lifecycle_alerts(&AlertFilter {
            states: vec![LifecycleState::Pending, LifecycleState::Firing],
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let now = model::clock::now_ms();
    let mut counts: HashMap<(String, String), (usize, bool)> = HashMap::new();
    for a in &active {
        if a.source == AlertSource::Alertmanager {
            continue;
        }
        let e = counts
            .entry((a.rule_group.clone(), a.rule.clone()))
            .or_default();
        e.0 += 1;
        e.1 |= a.state == LifecycleState::Firing;
    }
    let mut groups: Vec<app::rules::RuleGroupView> = Vec::new();
    for s in statuses {
        if groups
            .last()
            .is_none_or(|g| g.file != s.group_file || g.name != s.group_name)
        {
            groups.push(app::rules::RuleGroupView {
                file: s.group_file.clone(),
                name: s.group_name.clone(),
                interval_ms: s.group_interval_ms,
                rules: Vec::new(),
            });
        }
        let r = &s.rule;
        let name = r["name"].as_str().unwrap_or_default().to_string();
        let kind = r["type"].as_str().unwrap_or_default().to_string();
        let query = r["query"].as_str().unwrap_or_default().to_string();
        let (n, firing) = counts
            .get(&(s.group_name.clone(), name.clone()))
            .copied()
            .unwrap_or_default();
        let labels: BTreeMap<String, String> =
            serde_json::from_value(r["labels"].clone()).unwrap_or_default();
        let g = groups.last_mut().expect("pushed above");
        g.rules.push(app::rules::RuleRow {
            state: match (kind.as_str(), n, firing) {
                ("alerting", 0, _) => "inactive".into(),
                ("alerting", _, true) => "firing".into(),
                ("alerting", _, false) => "pending".into(),
                _ => String::new(),
            },
            active_alerts: n,
            for_ms: (r["duration"].as_f64().unwrap_or(0.0) * 1000.0) as i64,
            explore_href: explore_href(&query, now - 3_600_000, now),
            name,
            kind,
            query,
            labels,
            health: s.health,
            last_error: s.last_error,
            last_evaluation_ms: s.last_evaluation_ms,
            evaluation_s: s.evaluation_s,
        });
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_text_splits_at_commas_outside_quotes_and_group_keys_give_their_labels() {
        assert_eq!(
            split_matchers("{a=\"1,2\", b=~\"x\\\"y\" ,c!=d}"),
            ["a=\"1,2\"", "b=~\"x\\\"y\"", "c!=d"]
        );
        assert!(split_matchers("  ").is_empty());
        assert_eq!(
            group_labels_of_key("default/{alertname=\"StageStalled\",stage=\"transform\"}"),
            [
                ("alertname".to_string(), "StageStalled".to_string()),
                ("stage".to_string(), "transform".to_string())
            ]
        );
        assert!(group_labels_of_key("default/{}").is_empty());
    }

    #[test]
    fn silences_from_the_pages_must_match_something() {
        assert!(silence_matchers("")
            .unwrap_err()
            .contains("at least one matcher"));
        assert!(silence_matchers("job=~\".*\"")
            .unwrap_err()
            .contains("silence everything"));
        let ms = silence_matchers("alertname=\"X\", job!~\"a|b\"").unwrap();
        let sm: Vec<SilenceMatcher> = ms.iter().map(to_silence_matcher).collect();
        assert!(!sm[0].is_regex && sm[0].is_equal);
        assert!(sm[1].is_regex && !sm[1].is_equal);
        assert_eq!(matchers_text(&sm), "alertname=\"X\", job!~\"a|b\"");
    }

    #[test]
    fn snoozes_end_in_the_future_within_a_week() {
        assert_eq!(snooze_for("1h", 0).unwrap(), 3_600_000);
        assert!(snooze_for("soon", 0)
            .unwrap_err()
            .contains("not a duration"));
        assert!(snooze_for("8d", 0)
            .unwrap_err()
            .contains("create a silence"));
        assert!(check_snooze(0, 10).unwrap_err().contains("past"));
    }
}
