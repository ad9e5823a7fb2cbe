//! On-call schedules and escalation policies as the server holds them: the files of
//! `[oncall] files` read at start ([`OncallSet`]), who is on call now (file overrides plus
//! those added at run time, `store::oncall`), and the person-addressed mail channel that
//! delivers escalations to a user's own address.
//!
//! Escalations are written to the outbox like every other notice. A notice for a person goes
//! to the channel `mailto:<address>`; the sender hands such rows to [`PersonMail`], which
//! sends with the SMTP settings of `[oncall] mail_channel` to that one address. The address is
//! fixed when the notice is enqueued, so a retried or replayed row goes where the first
//! attempt went.

use crate::config::EmailConfig;
use crate::notify::{email::EmailChannel, Channel, Delivery};
use alerting::oncall::schedule::{Override, Schedule};
use alerting::oncall::{OncallFile, Policy, RefKind};
use alerting::yaml::Pos;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::oncall::StoredOverride;

/// The outbox channel prefix of person-addressed mail.
pub const MAILTO: &str = "mailto:";

/// A place in an on-call file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePos {
    pub path: String,
    pub pos: Pos,
}

impl std::fmt::Display for SourcePos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path, self.pos)
    }
}

/// Every schedule and policy of the on-call files, by name.
#[derive(Debug, Clone, Default)]
pub struct OncallSet {
    pub schedules: BTreeMap<String, Schedule>,
    pub policies: BTreeMap<String, Policy>,
    /// Where each schedule and policy was defined (for "defined twice" errors).
    defined: HashMap<String, String>,
    refs: Vec<(SourcePos, RefKind, String)>,
    /// The routes using each policy (filled in by the config check).
    pub used_by: BTreeMap<String, Vec<String>>,
}

impl OncallSet {
    /// Adds one parsed file; a schedule or policy another file defined already is an error.
    pub fn add(&mut self, path: &str, file: OncallFile) -> Result<()> {
        for s in file.schedules {
            if let Some(first) = self
                .defined
                .insert(format!("schedule {}", s.name), path.to_string())
            {
                bail!(
                    "{}: schedule {:?} is defined twice: in {first} and in {path}",
                    locate(path, &s.name),
                    s.name
                );
            }
            self.schedules.insert(s.name.clone(), s);
        }
        for p in file.policies {
            if let Some(first) = self
                .defined
                .insert(format!("policy {}", p.name), path.to_string())
            {
                bail!(
                    "{}: escalation policy {:?} is defined twice: in {first} and in {path}",
                    locate(path, &p.name),
                    p.name
                );
            }
            self.policies.insert(p.name.clone(), p);
        }
        for r in file.references {
            self.refs.push((
                SourcePos {
                    path: path.to_string(),
                    pos: r.pos,
                },
                r.kind,
                r.name,
            ));
        }
        Ok(())
    }

    /// Every name the files use, with where.
    pub fn references(&self) -> &[(SourcePos, RefKind, String)] {
        &self.refs
    }

    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty() && self.policies.is_empty()
    }

    /// Refuses the start when a file names a user that does not exist.
    pub fn check_users(&self, users: &[String]) -> Result<()> {
        for (pos, kind, name) in &self.refs {
            if *kind == RefKind::User && !users.contains(name) {
                bail!(
                    "{pos}: user {name:?} does not exist; add them with `pipewatch user add \
                     {name} --email <address>` (or on the Users page), or fix the name"
                );
            }
        }
        Ok(())
    }

    /// Who `schedule` has on call at `at_ms`, with `stored` the overrides added at run time.
    pub fn on_call(&self, schedule: &str, stored: &[StoredOverride], at_ms: i64) -> Option<String> {
        let s = self.schedules.get(schedule)?;
        let extra = overrides_for(schedule, stored);
        s.who_is_on_call(&extra, at_ms).map(str::to_string)
    }
}

/// How far ahead the On-call page lists hand-offs, and how many.
const HANDOFF_HORIZON_MS: i64 = 14 * 86_400_000;
const HANDOFFS_SHOWN: usize = 8;
/// Longest override the page adds (longer cover belongs in the schedule file).
const MAX_OVERRIDE_MS: i64 = 90 * 86_400_000;

/// What the On-call page shows at `now_ms`.
pub async fn view(
    set: &OncallSet,
    store: &store::Store,
    now_ms: i64,
) -> Result<app::oncall::OncallView, String> {
    use app::oncall::{LayerView, OverrideView, PolicyView, ScheduleView};
    let stored = store
        .schedule_overrides(now_ms)
        .await
        .map_err(|e| e.to_string())?;
    let schedules = set
        .schedules
        .values()
        .map(|s| {
            let extra = overrides_for(&s.name, &stored);
            let mut overrides: Vec<OverrideView> = s
                .overrides
                .iter()
                .filter(|o| o.to_ms > now_ms)
                .map(|o| OverrideView {
                    id: None,
                    user: o.user.clone(),
                    from: o.from_ms,
                    to: o.to_ms,
                    by: "file".into(),
                })
                .collect();
            overrides.extend(stored.iter().filter(|o| o.schedule == s.name).map(|o| {
                OverrideView {
                    id: Some(o.id),
                    user: o.user.clone(),
                    from: o.from_ms,
                    to: o.to_ms,
                    by: o.created_by.clone(),
                }
            }));
            ScheduleView {
                name: s.name.clone(),
                on_call: s.who_is_on_call(&extra, now_ms).map(str::to_string),
                handoffs: s
                    .handoffs(&extra, now_ms, now_ms + HANDOFF_HORIZON_MS, HANDOFFS_SHOWN)
                    .into_iter()
                    .map(|h| (h.at_ms, h.user))
                    .collect(),
                layers: s
                    .layers
                    .iter()
                    .map(|l| LayerView {
                        name: l.name.clone(),
                        users: l.users.clone(),
                        shift: alerting::duration::format(l.shift_ms),
                        start: l.start_ms,
                        end: l.end_ms,
                        restrict: l.restrict.map(restriction_text).unwrap_or_default(),
                    })
                    .collect(),
                overrides,
            }
        })
        .collect();
    let policies = set
        .policies
        .values()
        .map(|p| PolicyView {
            name: p.name.clone(),
            levels: p
                .levels
                .iter()
                .map(|l| {
                    let t: Vec<String> = l.targets.iter().map(ToString::to_string).collect();
                    format!(
                        "after {}: {}",
                        alerting::duration::format(l.after_ms),
                        t.join(", ")
                    )
                })
                .collect(),
            routes: set.used_by.get(&p.name).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(app::oncall::OncallView {
        now: now_ms,
        schedules,
        policies,
    })
}

/// `mon,tue,fri 09:00-17:00` (days left out when every day).
fn restriction_text(r: alerting::oncall::schedule::Restriction) -> String {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    let hours = format!("{}-{}", hm(r.from_minute), hm(r.to_minute));
    if r.days.iter().all(|d| *d) {
        hours
    } else {
        let days: Vec<&str> = DAYS
            .iter()
            .zip(r.days)
            .filter(|(_, on)| *on)
            .map(|(d, _)| *d)
            .collect();
        format!("{} {hours}", days.join(","))
    }
}

/// Adds an override from the page; the answer to a bad request says what to change.
pub async fn add_override(
    set: &OncallSet,
    store: &store::Store,
    actor: &str,
    schedule: &str,
    user: &str,
    from_ms: i64,
    duration: &str,
) -> Result<i64, String> {
    if !set.schedules.contains_key(schedule) {
        return Err(format!(
            "there is no schedule {schedule:?}; schedules are defined in the [oncall] files"
        ));
    }
    if user.is_empty() {
        return Err("name the user who is on call during the override".into());
    }
    let ms = alerting::duration::parse(duration)
        .map_err(|e| format!("duration: {e}; choose one like 4h or 1d"))?;
    if ms <= 0 || ms > MAX_OVERRIDE_MS {
        return Err(format!(
            "duration {duration:?}: an override lasts more than 0s and at most 90d; put longer              cover into the schedule file"
        ));
    }
    store
        .add_schedule_override(schedule, user, from_ms, from_ms + ms, actor)
        .await
        .map_err(|e| e.to_string())
}

/// The run-time overrides of `schedule` in the schedule model's shape, oldest first.
pub fn overrides_for(schedule: &str, stored: &[StoredOverride]) -> Vec<Override> {
    stored
        .iter()
        .filter(|o| o.schedule == schedule)
        .map(|o| Override {
            user: o.user.clone(),
            from_ms: o.from_ms,
            to_ms: o.to_ms,
        })
        .collect()
}

/// The first line of `path` where `name:` gives `name`, for errors about a whole schedule or
/// policy (the parser keeps positions of references only).
fn locate(path: &str, name: &str) -> String {
    let line = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines().position(|l| {
                let l = l.trim_start_matches([' ', '-']);
                l.strip_prefix("name:")
                    .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == name)
            })
        })
        .map(|i| i + 1)
        .unwrap_or(1);
    format!("{path}:{line}:1")
}

/// The person-addressed mail channel of `cfg` (`[oncall] mail_channel`), if one is set.
pub fn person_mail(cfg: &crate::config::Config) -> Result<Option<Arc<dyn Channel>>> {
    let name = &cfg.oncall.mail_channel;
    if name.is_empty() {
        return Ok(None);
    }
    match cfg.notifications.channels.get(name) {
        Some(crate::config::ChannelConfig::Email(e)) => Ok(Some(Arc::new(PersonMail::new(
            e,
            cfg.notifications.send_timeout,
            &format!("notifications.channels.{name}"),
        )?))),
        _ => bail!("key `oncall.mail_channel`: {name:?} is not an e-mail channel"),
    }
}

/// Delivers `mailto:<address>` outbox rows: the SMTP settings of `[oncall] mail_channel`,
/// addressed to the one person. One SMTP transport per address, built on first use.
pub struct PersonMail {
    settings: EmailConfig,
    timeout: Duration,
    key: String,
    by_address: Mutex<HashMap<String, Arc<EmailChannel>>>,
}

impl PersonMail {
    /// `key` is the mail channel's config key, for errors. Building one transport now makes a
    /// bad setting (a missing password variable) stop the start.
    pub fn new(settings: &EmailConfig, timeout: Duration, key: &str) -> Result<PersonMail> {
        EmailChannel::new(settings, timeout, key)?;
        Ok(PersonMail {
            settings: settings.clone(),
            timeout,
            key: key.to_string(),
            by_address: Mutex::new(HashMap::new()),
        })
    }

    fn channel_for(&self, address: &str) -> Result<Arc<EmailChannel>, String> {
        let mut map = self.by_address.lock().expect("not poisoned");
        if let Some(c) = map.get(address) {
            return Ok(c.clone());
        }
        let mut cfg = self.settings.clone();
        cfg.to = vec![address.to_string()];
        let c = Arc::new(
            EmailChannel::new(&cfg, self.timeout, &self.key)
                .map_err(|e| format!("mailing {address}: {e:#}"))?,
        );
        map.insert(address.to_string(), c.clone());
        Ok(c)
    }
}

#[async_trait::async_trait]
impl Channel for PersonMail {
    async fn send(&self, d: &Delivery) -> Result<(), String> {
        let Some(address) = d.channel.strip_prefix(MAILTO) else {
            return Err(format!(
                "{:?} is not a person-addressed channel (mailto:<address>)",
                d.channel
            ));
        };
        let channel = self.channel_for(address)?;
        channel.send(d).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_the_line_of_a_name() {
        let p = std::env::temp_dir().join(format!("pw-oncall-locate-{}.yml", std::process::id()));
        std::fs::write(&p, "schedules:\n  - name: a\n  - name: \"b\"\n").unwrap();
        let path = p.display().to_string();
        assert_eq!(locate(&path, "b"), format!("{path}:3:1"));
        let _ = std::fs::remove_file(&p);
    }
}
