//! Escalation: a firing alert group whose route has an escalation policy, and that nobody
//! acknowledges, notifies the policy's levels one after another — each once its `after` has
//! passed since the group's first firing notice — and everyone a level reached is told when
//! the group stops firing.
//!
//! Runs inside the engine's round transaction, on the leader only, after the group notices
//! ([`super::Engine::flush`]): a level's outbox rows, its record in `escalation_steps` and the
//! `escalated` event on the timeline of each firing alert of the group commit together, so two
//! instances never escalate twice and a restarted leader neither repeats a level nor forgets
//! the resolve owed.
//!
//! The rules:
//! - A group's escalation starts with its first firing notice and ends when no alert of the
//!   group fires any more; if the group fires again later (with a new firing notice), a new
//!   escalation starts from level 1.
//! - A group is held while every one of its firing alerts is acknowledged in its current
//!   episode, or silenced, or snoozed, or inhibited: no level goes out. Taking an acknowledgement back lets
//!   the levels whose time has come go out at once.
//! - A level's targets: a schedule (whoever is on call then), a user (mailed at their address
//!   through `[oncall] mail_channel`), or a channel. A target that cannot be reached (nobody
//!   on call, no such user, a disabled user, no address) is on the timeline as "not
//!   delivered: ..." — the next level still goes out at its time.
//! - Escalation follows an alert's first route (the group its `group_key` names); the groups
//!   of further routes it reaches through `continue` notify their channels but do not
//!   escalate.
//! - When no alert of the group fires any more (or the group's row is gone), a resolve notice
//!   goes to every channel and person any level reached, once each.

use super::grouping::{self, fires};
use super::matcher::{self, Matcher};
use super::notice;
use crate::config::Route;
use crate::oncall::{OncallSet, MAILTO};
use alerting::oncall::{Policy, Target};
use anyhow::Result;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use store::lifecycle::{self as db, AlertInstance, EventKind, LifecycleState, Notified};
use store::oncall::{self as oc, Contact, Escalation, EscalationStep, Recipient, StoredOverride};
use store::outbox::NotificationKind;
use tracing::info;

/// The escalation part of the engine.
#[derive(Clone, Debug)]
pub struct Escalator {
    set: Arc<OncallSet>,
    /// Whether `[oncall] mail_channel` is set (people can be mailed).
    can_mail_people: bool,
}

impl Escalator {
    /// `None` when no policy is defined: the engine then skips escalation entirely.
    pub fn new(set: Arc<OncallSet>, can_mail_people: bool) -> Option<Escalator> {
        (!set.policies.is_empty()).then_some(Escalator {
            set,
            can_mail_people,
        })
    }

    /// One round: start, advance and close escalations, in `tx`.
    pub async fn round(
        &self,
        tx: &mut sqlx::PgConnection,
        working: &HashMap<String, AlertInstance>,
        route_named: impl Fn(&str) -> Route,
        inhibited: impl Fn(&AlertInstance) -> bool,
        now_ms: i64,
    ) -> Result<()> {
        let groups: HashMap<String, i64> = db::lock_groups(tx)
            .await?
            .into_iter()
            .map(|g| (g.group_key, g.created_at_ms))
            .collect();
        // At most one open escalation per group life: a new one starts only after the last
        // closed (the group stopped firing) and a new firing notice went out.
        let mut open: HashMap<(String, i64), Escalation> = oc::open_escalations(tx)
            .await?
            .into_iter()
            .map(|e| ((e.group_key.clone(), e.group_born_ms), e))
            .collect();
        let mut members: HashMap<&str, Vec<&AlertInstance>> = HashMap::new();
        for a in working.values() {
            members.entry(a.group_key.as_str()).or_default().push(a);
        }

        // Groups that fire and whose policy applies.
        let mut due: Vec<(String, i64, Policy, Vec<&AlertInstance>)> = Vec::new();
        for (key, born) in &groups {
            let route = route_named(grouping::route_of_key(key));
            let Some(policy) = route
                .escalation
                .as_ref()
                .and_then(|p| self.set.policies.get(p))
            else {
                continue;
            };
            let list = members.get(key.as_str()).cloned().unwrap_or_default();
            let firing: Vec<&AlertInstance> =
                list.iter().copied().filter(|a| fires(a.state)).collect();
            // Escalation counts from the group's first firing notice: none yet, nothing to do.
            if !firing.iter().any(|a| a.notified == Notified::Firing) {
                continue;
            }
            due.push((key.clone(), *born, policy.clone(), firing));
        }

        if !due.is_empty() {
            let ids: Vec<i64> = due
                .iter()
                .flat_map(|(_, _, _, f)| f.iter().map(|a| a.id))
                .collect();
            let acked = oc::acknowledged(tx, &ids).await?;
            let snoozed = db::snoozed_alerts(tx, now_ms).await?;
            let silences: Vec<Vec<Matcher>> = db::current_silences(tx, now_ms)
                .await?
                .into_iter()
                .filter(|s| s.starts_at_ms <= now_ms)
                .filter_map(|s| {
                    s.matchers
                        .iter()
                        .map(Matcher::from_silence)
                        .collect::<Result<Vec<_>, _>>()
                        .ok()
                })
                .collect();
            let mut contacts: Option<HashMap<String, Contact>> = None;
            let mut overrides: Option<Vec<StoredOverride>> = None;
            for (key, born, policy, firing) in due {
                let held = firing.iter().all(|a| {
                    acked.get(&a.id) == Some(&a.episode)
                        || snoozed.contains(&a.id)
                        || inhibited(a)
                        || silences.iter().any(|m| matcher::all_match(m, &a.labels))
                });
                let esc = match open.remove(&(key.clone(), born)) {
                    Some(e) => e,
                    None => {
                        let started = firing
                            .iter()
                            .filter_map(|a| a.firing_notified_at_ms)
                            .min()
                            .unwrap_or(now_ms);
                        oc::start_escalation(tx, &key, born, &policy.name, started).await?
                    }
                };
                if held {
                    continue;
                }
                for (i, level) in policy.levels.iter().enumerate() {
                    let level_no = i as i32;
                    if esc.has_level(level_no) || esc.started_ms + level.after_ms > now_ms {
                        continue;
                    }
                    if contacts.is_none() {
                        contacts = Some(oc::contacts(tx).await?);
                        overrides = Some(oc::live_overrides(tx, now_ms).await?);
                    }
                    let recipients = self.resolve(
                        &level.targets,
                        contacts.as_ref().expect("loaded above"),
                        overrides.as_deref().unwrap_or_default(),
                        now_ms,
                    );
                    let (_, mut n) = notice::compose(&firing, &[]);
                    n.explanation = format!(
                        "Escalated: level {} of policy {}, not acknowledged for {}.\n\n{}",
                        i + 1,
                        policy.name,
                        alerting::duration::format((now_ms - esc.started_ms).max(0) / 1000 * 1000),
                        n.explanation
                    );
                    let dedup = format!("escalation/{key}@{born}.{}#{}", esc.seq, i + 1);
                    let channels: BTreeSet<&str> = recipients
                        .iter()
                        .filter_map(|r| r.channel.as_deref())
                        .collect();
                    let channels: Vec<&str> = channels.into_iter().collect();
                    crate::notify::enqueue(
                        tx,
                        &channels,
                        &dedup,
                        &key,
                        NotificationKind::Firing,
                        &n,
                    )
                    .await?;
                    oc::add_step(
                        tx,
                        esc.id,
                        &EscalationStep {
                            level: level_no,
                            at_ms: now_ms,
                            recipients: recipients.clone(),
                        },
                    )
                    .await?;
                    let detail = describe(i, &policy.name, level.after_ms, &recipients);
                    for a in &firing {
                        db::add_event(
                            tx,
                            a.id,
                            &db::NewEvent {
                                kind: EventKind::Escalated,
                                from: None,
                                to: None,
                                by: "system",
                                detail: &detail,
                                at_ms: now_ms,
                            },
                        )
                        .await?;
                    }
                    info!(group = %key, level = i + 1, policy = %policy.name, %detail, "escalated");
                }
            }
        }

        // What is left open belongs to groups that stopped firing (or whose life ended): the
        // resolve goes to everyone reached.
        for (_, esc) in open {
            let still_firing = groups.get(&esc.group_key) == Some(&esc.group_born_ms)
                && members
                    .get(esc.group_key.as_str())
                    .is_some_and(|l| l.iter().any(|a| fires(a.state)));
            if still_firing {
                continue;
            }
            self.close(tx, &esc, working, now_ms).await?;
        }
        Ok(())
    }

    /// Sends the resolve to everyone `esc` reached, notes it on the alerts' timelines and
    /// closes it.
    async fn close(
        &self,
        tx: &mut sqlx::PgConnection,
        esc: &Escalation,
        working: &HashMap<String, AlertInstance>,
        now_ms: i64,
    ) -> Result<()> {
        let channels: BTreeSet<&str> = esc
            .steps
            .iter()
            .flat_map(|s| &s.recipients)
            .filter_map(|r| r.channel.as_deref())
            .collect();
        let ids = oc::alerts_of_group(tx, &esc.group_key, esc.group_born_ms).await?;
        if !channels.is_empty() {
            let resolved: Vec<&AlertInstance> = working
                .values()
                .filter(|a| a.group_key == esc.group_key && a.state == LifecycleState::Resolved)
                .collect();
            let n = if resolved.is_empty() {
                // The alerts left the engine's working set already (a leader took over after
                // they were told): a notice naming the group.
                crate::notify::AlertNotice {
                    alert: esc.group_key.clone(),
                    labels: Default::default(),
                    severity: String::new(),
                    explanation: format!("The alert group {} no longer fires.", esc.group_key),
                    link: None,
                    starts_at_ms: esc.started_ms,
                    ends_at_ms: Some(now_ms),
                    values: Vec::new(),
                    alerts: Vec::new(),
                }
            } else {
                notice::compose(&[], &resolved).1
            };
            let list: Vec<&str> = channels.iter().copied().collect();
            let dedup = format!(
                "escalation/{}@{}.{}#resolved",
                esc.group_key, esc.group_born_ms, esc.seq
            );
            crate::notify::enqueue(
                tx,
                &list,
                &dedup,
                &esc.group_key,
                NotificationKind::Resolved,
                &n,
            )
            .await?;
            let told = format!(
                "resolved notice to everyone escalation policy {} reached: {}",
                esc.policy,
                list.iter()
                    .map(|c| c.strip_prefix(MAILTO).unwrap_or(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for id in ids {
                db::add_event(
                    tx,
                    id,
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
        oc::finish_escalation(tx, esc.id, now_ms).await?;
        info!(group = %esc.group_key, policy = %esc.policy, "escalation closed");
        Ok(())
    }

    /// Whom `targets` reach now, and how.
    fn resolve(
        &self,
        targets: &[Target],
        contacts: &HashMap<String, Contact>,
        overrides: &[StoredOverride],
        now_ms: i64,
    ) -> Vec<Recipient> {
        targets
            .iter()
            .map(|t| {
                let target = t.to_string();
                match t {
                    Target::Channel(c) => Recipient {
                        target,
                        user: None,
                        channel: Some(c.clone()),
                        note: String::new(),
                    },
                    Target::User(u) => self.person(target, u, contacts),
                    Target::Schedule(s) => match self.set.on_call(s, overrides, now_ms) {
                        Some(u) => self.person(target, &u, contacts),
                        None => Recipient {
                            target,
                            user: None,
                            channel: None,
                            note: format!("nobody is on call in schedule {s}"),
                        },
                    },
                }
            })
            .collect()
    }

    fn person(&self, target: String, user: &str, contacts: &HashMap<String, Contact>) -> Recipient {
        let mut r = Recipient {
            target,
            user: Some(user.to_string()),
            channel: None,
            note: String::new(),
        };
        match contacts.get(user) {
            None => r.note = format!("{user} is not a user"),
            Some(c) if c.disabled => r.note = format!("{user} is disabled"),
            Some(Contact { email: None, .. }) => r.note = format!("{user} has no e-mail address"),
            Some(_) if !self.can_mail_people => {
                r.note = "[oncall] mail_channel is not set".to_string()
            }
            Some(Contact { email: Some(e), .. }) => r.channel = Some(format!("{MAILTO}{e}")),
        }
        r
    }
}

/// The timeline text of a level: `level 2 of pages (after 15m): mailed ann (schedule
/// primary); not delivered: ben has no e-mail address (user ben); sent to channel slack`.
fn describe(index: usize, policy: &str, after_ms: i64, recipients: &[Recipient]) -> String {
    let parts: Vec<String> = recipients
        .iter()
        .map(|r| match (&r.channel, &r.user) {
            (None, _) => format!("not delivered: {} ({})", r.note, r.target),
            (Some(c), Some(u)) => format!(
                "mailed {u} at {} ({})",
                c.strip_prefix(MAILTO).unwrap_or(c),
                r.target
            ),
            (Some(_), None) => format!("sent to {}", r.target),
        })
        .collect();
    format!(
        "level {} of policy {policy} (after {}): {}",
        index + 1,
        alerting::duration::format(after_ms),
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_says_who_was_reached_and_who_was_not_and_why() {
        let r = |target: &str, user: Option<&str>, channel: Option<&str>, note: &str| Recipient {
            target: target.into(),
            user: user.map(Into::into),
            channel: channel.map(Into::into),
            note: note.into(),
        };
        let d = describe(
            1,
            "pages",
            900_000,
            &[
                r(
                    "schedule primary",
                    Some("ann"),
                    Some("mailto:ann@example.com"),
                    "",
                ),
                r("user ben", Some("ben"), None, "ben has no e-mail address"),
                r("channel slack", None, Some("slack"), ""),
            ],
        );
        assert_eq!(
            d,
            "level 2 of policy pages (after 15m): mailed ann at ann@example.com (schedule \
             primary); not delivered: ben has no e-mail address (user ben); sent to channel slack"
        );
    }

    #[test]
    fn people_without_a_way_to_be_mailed_are_not_delivered_with_the_reason() {
        let esc = Escalator {
            set: Arc::new(OncallSet::default()),
            can_mail_people: true,
        };
        let contacts: HashMap<String, Contact> = [
            (
                "ann".to_string(),
                Contact {
                    email: Some("ann@example.com".into()),
                    disabled: false,
                },
            ),
            (
                "ben".to_string(),
                Contact {
                    email: None,
                    disabled: false,
                },
            ),
            (
                "cy".to_string(),
                Contact {
                    email: Some("cy@example.com".into()),
                    disabled: true,
                },
            ),
        ]
        .into();
        let got: Vec<(Option<String>, String)> = ["ann", "ben", "cy", "dee"]
            .iter()
            .map(|u| {
                let r = esc.person(format!("user {u}"), u, &contacts);
                (r.channel, r.note)
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some("mailto:ann@example.com".into()), String::new()),
                (None, "ben has no e-mail address".into()),
                (None, "cy is disabled".into()),
                (None, "dee is not a user".into()),
            ]
        );
        let r = esc.resolve(&[Target::Schedule("gone".into())], &contacts, &[], 0);
        assert_eq!(r[0].note, "nobody is on call in schedule gone");
    }
}
