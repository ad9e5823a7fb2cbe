//! Alertmanager's grouping as a pure decision: which route takes an alert, which group it is
//! in, and — given a group's stored state, its alerts and the time — whether a notification
//! goes out now and what it holds.
//!
//! The rules, as in Alertmanager's dispatcher: a new group waits `group_wait`; after a
//! notification, changes (a newly firing alert, a resolved one) go out once `group_interval`
//! has passed; an unchanged group that still fires is notified again after
//! `repeat_interval`. Silenced alerts are left out of firing notices. Unlike Alertmanager, an
//! alert whose firing notice went out is *always* told about when it resolves, also when a
//! silence covers it by then: a resolve is owed for every firing notice sent.
//!
//! Everything the decision needs is in the database (instances with what was notified, the
//! group row), so a restarted or new leader decides the same way: nothing is re-paged, nothing
//! owed is forgotten.

use super::matcher::all_match;
use crate::config::Route;
use std::collections::BTreeMap;
use store::lifecycle::{AlertInstance, LifecycleState, NotificationGroup, Notified};

/// The route that takes alerts with `labels`: the first whose matchers all hold (`routes`
/// ends with the default route, which matches everything).
pub fn route_for<'a>(routes: &'a [Route], labels: &BTreeMap<String, String>) -> &'a Route {
    routes
        .iter()
        .find(|r| all_match(&r.matchers, labels))
        .unwrap_or_else(|| routes.last().expect("the default route is always there"))
}

/// Every route that takes alerts with `labels`, in order: the first match, then, while the
/// matched route has `continue = true`, the next matching ones. As in Alertmanager, the
/// default route (the last, the routing tree's root) takes only alerts no other route took.
/// The first is [`route_for`]'s.
pub fn routes_for<'a>(routes: &'a [Route], labels: &BTreeMap<String, String>) -> Vec<&'a Route> {
    let mut out = Vec::new();
    for r in &routes[..routes.len().saturating_sub(1)] {
        if all_match(&r.matchers, labels) {
            out.push(r);
            if !r.continue_matching {
                break;
            }
        }
    }
    if out.is_empty() {
        out.push(routes.last().expect("the default route is always there"));
    }
    out
}

/// The group key of alerts with `labels` on `route`: the route's name and the values of its
/// `group_by` labels (`{alertname="Lag",job="etl"}`); `...` groups by every label.
pub fn group_key(route: &Route, labels: &BTreeMap<String, String>) -> String {
    format!(
        "{}/{}",
        route.name,
        format_labels(&group_labels(route, labels))
    )
}

/// The labels a group is made of.
pub fn group_labels(route: &Route, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    if route.group_by.iter().any(|l| l == "...") {
        return labels.clone();
    }
    route
        .group_by
        .iter()
        .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// `{a="1",b="2"}`.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// The route name a group key starts with.
pub fn route_of_key(group_key: &str) -> &str {
    group_key.split('/').next().unwrap_or("")
}

/// States a notification tells as firing: firing, and a rule's nodata or error (on their
/// own routes).
pub fn fires(s: LifecycleState) -> bool {
    matches!(
        s,
        LifecycleState::Firing | LifecycleState::NoData | LifecycleState::Error
    )
}

/// What to do with one group now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing to tell yet.
    Wait,
    /// A new group: store its row now, so `group_wait` counts from now.
    Start,
    /// The group has nothing left (every alert resolved and told): remove its row.
    Remove,
    /// Send a notification: firing alerts (not silenced) and resolves owed, by fingerprint.
    Notify {
        firing: Vec<String>,
        resolved: Vec<String>,
    },
}

/// Decides for a group whose stored row is `group` (`None` when it has none yet, which the
/// caller then creates with `created_at = now`), with `members` its alerts and `silenced`
/// saying which are silenced now.
pub fn decide(
    route: &Route,
    group: Option<&NotificationGroup>,
    members: &[&AlertInstance],
    silenced: impl Fn(&AlertInstance) -> bool,
    now_ms: i64,
) -> Decision {
    let firing: Vec<&AlertInstance> = members
        .iter()
        .copied()
        .filter(|a| fires(a.state) && !silenced(a))
        .collect();
    let owed: Vec<&AlertInstance> = members
        .iter()
        .copied()
        .filter(|a| a.notified == Notified::Firing && !fires(a.state))
        .collect();
    if firing.is_empty() && owed.is_empty() {
        // Alerts that are silenced, or that never got a notice, keep the group alive only
        // while they fire.
        let still_firing = members.iter().any(|a| fires(a.state));
        return if group.is_some() && !still_firing {
            Decision::Remove
        } else {
            Decision::Wait
        };
    }
    let changed = !owed.is_empty() || firing.iter().any(|a| a.notified != Notified::Firing);
    let ms = |d: std::time::Duration| d.as_millis() as i64;
    let due = match group {
        None => route.group_wait.is_zero(),
        Some(g) => match g.last_notified_at_ms {
            None => now_ms >= g.created_at_ms + ms(route.group_wait),
            Some(last) if changed => now_ms >= last + ms(route.group_interval),
            Some(last) => !firing.is_empty() && now_ms >= last + ms(route.repeat_interval),
        },
    };
    if !due {
        return if group.is_none() {
            Decision::Start
        } else {
            Decision::Wait
        };
    }
    let fps = |v: &[&AlertInstance]| {
        let mut out: Vec<String> = v.iter().map(|a| a.fingerprint.clone()).collect();
        out.sort();
        out
    };
    Decision::Notify {
        firing: fps(&firing),
        resolved: fps(&owed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use store::lifecycle::AlertSource;

    fn route() -> Route {
        Route {
            name: "default".into(),
            matchers: Vec::new(),
            channels: vec!["mail".into()],
            group_by: vec!["alertname".into()],
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(3600),
            continue_matching: false,
            escalation: None,
        }
    }

    fn alert(fp: &str, state: LifecycleState, notified: Notified) -> AlertInstance {
        AlertInstance {
            id: 1,
            fingerprint: fp.into(),
            source: AlertSource::Rule,
            rule: "Lag".into(),
            rule_group: "g".into(),
            labels: BTreeMap::from([
                ("alertname".into(), "Lag".into()),
                ("job".into(), fp.into()),
            ]),
            annotations: BTreeMap::new(),
            state,
            active_at_ms: Some(0),
            fired_at_ms: Some(0),
            resolved_at_ms: None,
            last_value: Some(1.0),
            last_eval_at_ms: Some(0),
            episode: 1,
            group_key: "default/{alertname=\"Lag\"}".into(),
            notified,
            firing_notified_at_ms: None,
            detail: String::new(),
            updated_at_ms: 0,
        }
    }

    fn group(created: i64, last: Option<i64>) -> NotificationGroup {
        NotificationGroup {
            group_key: "default/{alertname=\"Lag\"}".into(),
            route: "default".into(),
            labels: BTreeMap::new(),
            created_at_ms: created,
            last_notified_at_ms: last,
            seq: 0,
            last_contents: Vec::new(),
        }
    }

    const S: i64 = 1000;

    #[test]
    fn a_new_group_waits_group_wait_then_sends_everything_firing_in_one_notice() {
        let r = route();
        let (a, b) = (
            alert("a", LifecycleState::Firing, Notified::None),
            alert("b", LifecycleState::Firing, Notified::None),
        );
        let members = [&a, &b];
        assert_eq!(decide(&r, None, &members, |_| false, 0), Decision::Start);
        let g = group(0, None);
        assert_eq!(
            decide(&r, Some(&g), &members, |_| false, 29 * S),
            Decision::Wait
        );
        assert_eq!(
            decide(&r, Some(&g), &members, |_| false, 30 * S),
            Decision::Notify {
                firing: vec!["a".into(), "b".into()],
                resolved: vec![]
            }
        );
    }

    #[test]
    fn changes_wait_for_group_interval_and_an_unchanged_group_repeats() {
        let r = route();
        let told = alert("a", LifecycleState::Firing, Notified::Firing);
        let new = alert("b", LifecycleState::Firing, Notified::None);
        let g = group(0, Some(100 * S));
        // A new alert in a notified group: after group_interval (5m) since the last notice.
        assert_eq!(
            decide(&r, Some(&g), &[&told, &new], |_| false, 399 * S),
            Decision::Wait
        );
        assert!(matches!(
            decide(&r, Some(&g), &[&told, &new], |_| false, 400 * S),
            Decision::Notify { .. }
        ));
        // Unchanged: only after repeat_interval (1h).
        assert_eq!(
            decide(&r, Some(&g), &[&told], |_| false, 400 * S),
            Decision::Wait
        );
        assert_eq!(
            decide(&r, Some(&g), &[&told], |_| false, 3700 * S),
            Decision::Notify {
                firing: vec!["a".into()],
                resolved: vec![]
            }
        );
    }

    #[test]
    fn silenced_alerts_are_held_back_but_a_resolve_is_owed_for_what_was_sent() {
        let r = route();
        let g = group(0, Some(100 * S));
        // Silenced before any notice: nothing goes out, the group stays while it fires.
        let quiet = alert("q", LifecycleState::Firing, Notified::None);
        assert_eq!(
            decide(&r, Some(&g), &[&quiet], |_| true, 10_000 * S),
            Decision::Wait
        );
        // Told it fires, then silenced, then resolved: the resolve is still sent.
        let owed = alert("o", LifecycleState::Resolved, Notified::Firing);
        assert_eq!(
            decide(&r, Some(&g), &[&owed], |_| true, 400 * S),
            Decision::Notify {
                firing: vec![],
                resolved: vec!["o".into()]
            }
        );
        // Everything told: the group goes away.
        let done = alert("o", LifecycleState::Resolved, Notified::Resolved);
        assert_eq!(
            decide(&r, Some(&g), &[&done], |_| false, 400 * S),
            Decision::Remove
        );
    }

    #[test]
    fn routes_pick_the_first_match_and_groups_use_its_labels() {
        let mut page = route();
        page.name = "pages".into();
        page.matchers = vec![super::super::matcher::Matcher::parse("severity=page").unwrap()];
        page.group_by = vec!["alertname".into(), "job".into()];
        let routes = vec![page, route()];
        let l = BTreeMap::from([
            ("alertname".to_string(), "Lag".to_string()),
            ("job".to_string(), "etl".to_string()),
            ("severity".to_string(), "page".to_string()),
        ]);
        let r = route_for(&routes, &l);
        assert_eq!(r.name, "pages");
        assert_eq!(group_key(r, &l), "pages/{alertname=\"Lag\",job=\"etl\"}");
        let mut other = l.clone();
        other.insert("severity".into(), "info".into());
        assert_eq!(
            group_key(route_for(&routes, &other), &other),
            "default/{alertname=\"Lag\"}"
        );
        assert_eq!(route_of_key("pages/{alertname=\"a/b\"}"), "pages");
    }

    #[test]
    fn continue_goes_on_to_the_next_matching_routes() {
        let named = |name: &str, m: &str, cont: bool| {
            let mut r = route();
            r.name = name.into();
            r.matchers = vec![super::super::matcher::Matcher::parse(m).unwrap()];
            r.continue_matching = cont;
            r
        };
        let mut default = route();
        default.name = "default".into();
        let l = BTreeMap::from([
            ("severity".to_string(), "page".to_string()),
            ("team".to_string(), "data".to_string()),
        ]);
        let names = |routes: &[Route]| -> Vec<String> {
            routes_for(routes, &l)
                .iter()
                .map(|r| r.name.clone())
                .collect()
        };
        // Without continue: the first match only.
        let routes = vec![
            named("pages", "severity=page", false),
            named("data", "team=data", false),
            default.clone(),
        ];
        assert_eq!(names(&routes), ["pages"]);
        // continue on the first: the next match too, and matching stops there.
        let routes = vec![
            named("pages", "severity=page", true),
            named("other", "team=ml", false),
            named("data", "team=data", false),
            default.clone(),
        ];
        assert_eq!(names(&routes), ["pages", "data"]);
        // continue on the last matching route: the default route does not take it (it takes
        // what no route took).
        let routes = vec![named("pages", "severity=page", true), default.clone()];
        assert_eq!(names(&routes), ["pages"]);
        assert_eq!(route_for(&routes, &l).name, "pages");
        // Nothing matches but the default.
        let routes = vec![named("ml", "team=ml", true), default];
        assert_eq!(names(&routes), ["default"]);
    }
}
