//! Route `continue` (Alertmanager's): an alert taken by a route with `continue = true` is also
//! taken by the next matching routes, each with its own groups and timers.
//!
//! An alert instance has one *primary* group (`alert_instances.group_key`, its first route's)
//! whose notice state is on the instance itself. Each further route's group is an *extra
//! membership*: in the engine's round it is a copy of the instance carrying that group's key
//! and what was last told about it in that group, so [`super::grouping::decide`] treats it like
//! any member; what is told is stored per (alert, group) in `alert_route_notices` (migration
//! 0091). A resolve owed in an extra group keeps the instance live until it is sent, as for
//! the primary group.

use super::grouping::{fires, group_key, route_of_key, routes_for};
use crate::config::Route;
use std::collections::{HashMap, HashSet};
use store::lifecycle::{AlertInstance, Notified};

/// What was told about an alert in one extra group: `(alert id, group key) -> (episode,
/// notified)`.
pub type Told = HashMap<(i64, String), (i32, Notified)>;

fn db(context: &'static str) -> impl Fn(sqlx::Error) -> store::StoreError {
    move |source| store::StoreError::Database { context, source }
}

/// The stored states for `ids`.
pub async fn load(conn: &mut sqlx::PgConnection, ids: &[i64]) -> Result<Told, store::StoreError> {
    let rows: Vec<(i64, String, i32, String)> = sqlx::query_as(
        "SELECT alert_id, group_key, episode, notified FROM alert_route_notices
         WHERE alert_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
    .map_err(db("reading extra route notices"))?;
    rows.into_iter()
        .map(|(id, key, ep, n)| Ok(((id, key), (ep, n.parse()?))))
        .collect()
}

/// Alerts still owed a resolve in an extra group (for a leader taking over: they are live
/// even if their primary group is done).
pub async fn owing(conn: &mut sqlx::PgConnection) -> Result<Vec<i64>, store::StoreError> {
    sqlx::query_scalar(
        "SELECT DISTINCT alert_id FROM alert_route_notices WHERE notified = 'firing'",
    )
    .fetch_all(conn)
    .await
    .map_err(db("reading owed extra route notices"))
}

/// Records what was told about `a` in the extra group `key`.
pub async fn save(
    conn: &mut sqlx::PgConnection,
    a: &AlertInstance,
    key: &str,
    notified: Notified,
) -> Result<(), store::StoreError> {
    sqlx::query(
        "INSERT INTO alert_route_notices (alert_id, group_key, episode, notified)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (alert_id, group_key) DO UPDATE
         SET episode = $3, notified = $4, updated_at = now()",
    )
    .bind(a.id)
    .bind(key)
    .bind(a.episode)
    .bind(notified.as_str())
    .execute(conn)
    .await
    .map_err(db("recording an extra route notice"))?;
    Ok(())
}

/// The extra memberships of `alerts` under `routes` (rules' nodata and error instances have
/// routes of their own and none): copies of the instances with the extra group's key and
/// what was told there about the current episode, for the groups they fire in or owe a
/// resolve to. Keyed by (group key, fingerprint).
pub fn memberships<'a>(
    routes: &[Route],
    alerts: impl IntoIterator<Item = &'a AlertInstance>,
    told: &Told,
) -> HashMap<(String, String), AlertInstance> {
    let mut out = HashMap::new();
    for a in alerts {
        if matches!(route_of_key(&a.group_key), "nodata" | "error") {
            continue;
        }
        for r in routes_for(routes, &a.labels).into_iter().skip(1) {
            let key = group_key(r, &a.labels);
            if key == a.group_key {
                continue;
            }
            let notified = match told.get(&(a.id, key.clone())) {
                Some((ep, n)) if *ep == a.episode => *n,
                _ => Notified::None,
            };
            if !fires(a.state) && notified != Notified::Firing {
                continue;
            }
            let mut copy = a.clone();
            copy.group_key = key.clone();
            copy.notified = notified;
            out.insert((key, a.fingerprint.clone()), copy);
        }
    }
    out
}

/// Fingerprints owed a resolve in some extra group.
pub fn owed(memberships: &HashMap<(String, String), AlertInstance>) -> HashSet<String> {
    memberships
        .values()
        .filter(|a| a.notified == Notified::Firing)
        .map(|a| a.fingerprint.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::matcher::Matcher;
    use std::collections::BTreeMap;
    use std::time::Duration;
    use store::lifecycle::{AlertSource, LifecycleState};

    fn route(name: &str, m: &[&str], cont: bool) -> Route {
        Route {
            name: name.into(),
            matchers: m.iter().map(|s| Matcher::parse(s).unwrap()).collect(),
            channels: vec!["x".into()],
            group_by: vec!["alertname".into()],
            group_wait: Duration::ZERO,
            group_interval: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(3600),
            continue_matching: cont,
            escalation: None,
        }
    }

    fn alert(state: LifecycleState) -> AlertInstance {
        AlertInstance {
            id: 7,
            fingerprint: "fp".into(),
            source: AlertSource::Rule,
            rule: "Lag".into(),
            rule_group: "g".into(),
            labels: BTreeMap::from([
                ("alertname".into(), "Lag".into()),
                ("severity".into(), "page".into()),
            ]),
            annotations: BTreeMap::new(),
            state,
            active_at_ms: Some(0),
            fired_at_ms: Some(0),
            resolved_at_ms: None,
            last_value: None,
            last_eval_at_ms: None,
            episode: 2,
            group_key: "pages/{alertname=\"Lag\"}".into(),
            notified: Notified::Firing,
            firing_notified_at_ms: None,
            detail: String::new(),
            updated_at_ms: 0,
        }
    }

    #[test]
    fn extra_groups_carry_what_was_told_there_for_the_current_episode() {
        let routes = vec![
            route("pages", &["severity=page"], true),
            route("audit", &["alertname=Lag"], false),
            route("default", &[], false),
        ];
        let audit = "audit/{alertname=\"Lag\"}".to_string();
        let a = alert(LifecycleState::Firing);
        // Nothing told in `audit` yet: a member that has not been notified.
        let m = memberships(&routes, [&a], &Told::new());
        assert_eq!(m.len(), 1);
        let copy = &m[&(audit.clone(), "fp".to_string())];
        assert_eq!(copy.group_key, audit);
        assert_eq!(copy.notified, Notified::None);
        // Told firing for an earlier episode only: not told for this one.
        let told = Told::from([((7, audit.clone()), (1, Notified::Firing))]);
        assert_eq!(
            memberships(&routes, [&a], &told)[&(audit.clone(), "fp".into())].notified,
            Notified::None
        );
        // Resolved, with a firing notice sent in `audit`: the resolve is owed there.
        let r = alert(LifecycleState::Resolved);
        let told = Told::from([((7, audit.clone()), (2, Notified::Firing))]);
        let m = memberships(&routes, [&r], &told);
        assert_eq!(owed(&m), HashSet::from(["fp".to_string()]));
        // Resolved and told: nothing left in `audit`.
        let told = Told::from([((7, audit), (2, Notified::Resolved))]);
        assert!(memberships(&routes, [&r], &told).is_empty());
        // Without continue on the first route: no extra group.
        let routes = vec![
            route("pages", &["severity=page"], false),
            route("audit", &["alertname=Lag"], false),
            route("default", &[], false),
        ];
        assert!(memberships(&routes, [&a], &Told::new()).is_empty());
    }
}
