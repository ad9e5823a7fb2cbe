//! One notification for a group: the alerts that fire and those whose resolve is owed, put
//! into the [`AlertNotice`] every channel renders. A group of one alert reads as that alert
//! (its labels, summary, value, a link to it); a larger group is named by what its alerts
//! share and lists each of them in the explanation.

use crate::notify::{AlertNotice, NoticeAlert};
use std::collections::BTreeMap;
use store::lifecycle::{AlertInstance, LifecycleState};
use store::outbox::NotificationKind;

/// The notice for `firing` and `resolved` alerts of one group (at least one of them is not
/// empty), and whether it is a firing or a resolve notification.
pub fn compose(
    firing: &[&AlertInstance],
    resolved: &[&AlertInstance],
) -> (NotificationKind, AlertNotice) {
    let kind = if firing.is_empty() {
        NotificationKind::Resolved
    } else {
        NotificationKind::Firing
    };
    let all: Vec<&AlertInstance> = firing.iter().chain(resolved).copied().collect();
    // The labels every alert of the notice shares.
    let mut common: BTreeMap<String, String> = all[0].labels.clone();
    for a in &all[1..] {
        common.retain(|k, v| a.labels.get(k) == Some(v));
    }
    let name = match common.get("alertname") {
        Some(n) => n.clone(),
        None => format!("{} alerts", all.len()),
    };
    let name = match all[0].state {
        LifecycleState::NoData if all.len() == 1 => format!("{name} (no data)"),
        LifecycleState::Error if all.len() == 1 => format!("{name} (evaluation error)"),
        _ => name,
    };
    let severity = all
        .iter()
        .find_map(|a| a.labels.get("severity").cloned())
        .unwrap_or_default();
    let explanation = if all.len() == 1 {
        describe(all[0])
    } else {
        let mut lines = vec![format!(
            "{} firing, {} resolved:",
            firing.len(),
            resolved.len()
        )];
        for (status, list) in [("FIRING", firing), ("RESOLVED", resolved)] {
            for a in list {
                let own: BTreeMap<String, String> = a
                    .labels
                    .iter()
                    .filter(|(k, _)| !common.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                lines.push(format!(
                    "- [{status}] {} {}",
                    super::grouping::format_labels(&own),
                    describe(a)
                ));
            }
        }
        lines.join("\n")
    };
    let starts_at_ms = all
        .iter()
        .filter_map(|a| a.fired_at_ms.or(a.active_at_ms))
        .min()
        .unwrap_or(0);
    let ends_at_ms = (kind == NotificationKind::Resolved)
        .then(|| all.iter().filter_map(|a| a.resolved_at_ms).max())
        .flatten();
    let (link, values) = if all.len() == 1 {
        let a = all[0];
        (
            (a.id > 0).then(|| format!("/api/v1/lifecycle/alerts/{}", a.id)),
            match (a.last_eval_at_ms, a.last_value) {
                (Some(t), Some(v)) => vec![(t, v)],
                _ => Vec::new(),
            },
        )
    } else {
        (None, Vec::new())
    };
    let alerts = [
        (NotificationKind::Firing, firing),
        (NotificationKind::Resolved, resolved),
    ]
    .into_iter()
    .flat_map(|(status, list)| list.iter().map(move |a| (status, a)))
    .map(|(status, a)| {
        let own: BTreeMap<String, String> = a
            .labels
            .iter()
            .filter(|(k, _)| !common.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let title = if own.is_empty() {
            describe(a)
        } else {
            format!("{} {}", super::grouping::format_labels(&own), describe(a))
        };
        NoticeAlert {
            id: format!("{}#{}", a.fingerprint, a.episode),
            status,
            title,
        }
    })
    .collect();
    (
        kind,
        AlertNotice {
            alert: name,
            labels: common,
            severity,
            explanation,
            link,
            starts_at_ms,
            ends_at_ms,
            values,
            alerts,
        },
    )
}

/// One alert in a sentence: its summary (or description), its value, and why for nodata and
/// error states.
fn describe(a: &AlertInstance) -> String {
    let mut parts = Vec::new();
    if let Some(s) = a
        .annotations
        .get("summary")
        .or_else(|| a.annotations.get("description"))
    {
        parts.push(s.clone());
    }
    match a.state {
        LifecycleState::NoData => parts.push(format!("no data: {}", a.detail)),
        LifecycleState::Error => parts.push(format!("evaluation failed: {}", a.detail)),
        _ => {
            if let Some(v) = a.last_value {
                parts.push(format!("value {}", query::format_value(v)));
            }
        }
    }
    if parts.is_empty() {
        a.rule.clone()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::lifecycle::{AlertSource, Notified};

    fn alert(job: &str, state: LifecycleState) -> AlertInstance {
        AlertInstance {
            id: 7,
            fingerprint: job.into(),
            source: AlertSource::Rule,
            rule: "Lag".into(),
            rule_group: "g".into(),
            labels: BTreeMap::from([
                ("alertname".into(), "Lag".into()),
                ("job".into(), job.into()),
                ("severity".into(), "page".into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), format!("{job} lags"))]),
            state,
            active_at_ms: Some(1_000),
            fired_at_ms: Some(2_000),
            resolved_at_ms: (state == LifecycleState::Resolved).then_some(9_000),
            last_value: Some(42.0),
            last_eval_at_ms: Some(8_000),
            episode: 1,
            group_key: "default/{alertname=\"Lag\"}".into(),
            notified: Notified::None,
            firing_notified_at_ms: None,
            detail: String::new(),
            updated_at_ms: 0,
        }
    }

    #[test]
    fn one_alert_reads_as_itself_and_a_group_lists_its_alerts() {
        let a = alert("etl", LifecycleState::Firing);
        let (kind, n) = compose(&[&a], &[]);
        assert_eq!(kind, NotificationKind::Firing);
        assert_eq!(n.alert, "Lag");
        assert_eq!(n.labels["job"], "etl");
        assert_eq!(n.explanation, "etl lags; value 42");
        assert_eq!(n.link.as_deref(), Some("/api/v1/lifecycle/alerts/7"));
        assert_eq!(n.values, vec![(8_000, 42.0)]);

        let (b, c) = (
            alert("dbt", LifecycleState::Firing),
            alert("spark", LifecycleState::Resolved),
        );
        let (kind, n) = compose(&[&a, &b], &[&c]);
        assert_eq!(kind, NotificationKind::Firing);
        assert_eq!(n.alert, "Lag");
        assert!(!n.labels.contains_key("job"));
        assert_eq!(n.severity, "page");
        assert_eq!(
            n.explanation,
            "2 firing, 1 resolved:\n- [FIRING] {job=\"etl\"} etl lags; value 42\n\
             - [FIRING] {job=\"dbt\"} dbt lags; value 42\n\
             - [RESOLVED] {job=\"spark\"} spark lags; value 42"
        );

        assert_eq!(
            n.alerts
                .iter()
                .map(|x| (x.id.as_str(), x.status, x.title.as_str()))
                .collect::<Vec<_>>(),
            [
                (
                    "etl#1",
                    NotificationKind::Firing,
                    "{job=\"etl\"} etl lags; value 42"
                ),
                (
                    "dbt#1",
                    NotificationKind::Firing,
                    "{job=\"dbt\"} dbt lags; value 42"
                ),
                (
                    "spark#1",
                    NotificationKind::Resolved,
                    "{job=\"spark\"} spark lags; value 42"
                ),
            ]
        );

        let (kind, n) = compose(&[], &[&c]);
        assert_eq!(kind, NotificationKind::Resolved);
        assert_eq!(n.ends_at_ms, Some(9_000));
    }
}
