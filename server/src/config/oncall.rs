//! `[oncall]`: the on-call files (schedules and escalation policies, YAML, see
//! `alerting::oncall`) and how mail reaches a person.
//!
//! ```toml
//! [oncall]
//! files = ["oncall/*.yml"]
//! # The e-mail channel whose SMTP settings (server, TLS, login, from) deliver escalations
//! # addressed to people; the recipient is the user's own address (`pipewatch user add
//! # --email`, or the Users page), not the channel's `to`.
//! mail_channel = "oncall-mail"
//!
//! [alerting]
//! escalation = "pipeline-pages"    # the default route's policy; routes take `escalation` too
//! ```
//!
//! At start every file is parsed (a bad one stops the start with `file:line:column`), every
//! schedule and channel a policy names must exist, every route's `escalation` must name a
//! policy, and — once the database is open — every user a file names must exist
//! ([`crate::oncall::OncallSet::check_users`]).

use super::{AlertingConfig, ChannelConfig, NotificationsConfig};
use crate::oncall::OncallSet;
use alerting::oncall::{RefKind, Target};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OncallConfig {
    /// On-call files: paths or globs, relative to the working directory.
    pub files: Vec<String>,
    /// A `[notifications.channels.<name>]` of type email whose SMTP settings deliver mail to
    /// people (escalation targets that are users or schedules). Empty: none, and a policy
    /// that targets people stops the start.
    pub mail_channel: String,
}

impl OncallConfig {
    /// Reads and checks the files against the rest of the configuration.
    pub fn load(
        &self,
        alerting: &AlertingConfig,
        notifications: &NotificationsConfig,
    ) -> Result<OncallSet> {
        let mut set = OncallSet::default();
        for (i, pattern) in self.files.iter().enumerate() {
            let key = format!("oncall.files[{i}]");
            let mut paths: Vec<PathBuf> = if pattern.contains(['*', '?', '[']) {
                glob::glob(pattern)
                    .map_err(|e| anyhow!("key `{key}`: {pattern:?} is not a valid glob: {e}"))?
                    .filter_map(|p| p.ok())
                    .collect()
            } else {
                vec![PathBuf::from(pattern)]
            };
            paths.sort();
            if paths.is_empty() {
                tracing::warn!(pattern, "oncall.files: the glob matches no file");
            }
            for p in paths {
                let path = p.display().to_string();
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("key `{key}`: cannot read the on-call file {path}"))?;
                let file = alerting::oncall::parse(&text).map_err(|errors| {
                    let lines: Vec<String> = errors.iter().map(|e| format!("{path}:{e}")).collect();
                    anyhow!(
                        "key `{key}`: the on-call file {path} is invalid:\n{}",
                        lines.join("\n")
                    )
                })?;
                set.add(&path, file)
                    .with_context(|| format!("key `{key}`"))?;
            }
        }
        self.check(&set, alerting, notifications)?;
        for (i, r) in alerting.routes.iter().enumerate() {
            if let Some(p) = &r.escalation {
                let name = if r.name.is_empty() {
                    format!("routes[{i}]")
                } else {
                    r.name.clone()
                };
                set.used_by.entry(p.clone()).or_default().push(name);
            }
        }
        if let Some(p) = &alerting.escalation {
            set.used_by
                .entry(p.clone())
                .or_default()
                .push("default".into());
        }
        Ok(set)
    }

    fn check(
        &self,
        set: &OncallSet,
        alerting: &AlertingConfig,
        notifications: &NotificationsConfig,
    ) -> Result<()> {
        for r in set.references() {
            let (pos, kind, name) = (&r.0, r.1, &r.2);
            match kind {
                RefKind::Schedule if !set.schedules.contains_key(name) => bail!(
                    "{pos}: schedule {name:?} is not defined; define it under `schedules:` in \
                     one of the [oncall] files (defined: {})",
                    list(set.schedules.keys())
                ),
                RefKind::Channel if !notifications.channels.contains_key(name) => bail!(
                    "{pos}: channel {name:?} is not configured; add \
                     [notifications.channels.{name}] or use one of: {}",
                    list(notifications.channels.keys())
                ),
                _ => {}
            }
        }
        let mut routes: Vec<(String, &Option<String>, bool)> = alerting
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    format!("alerting.routes[{i}].escalation"),
                    &r.escalation,
                    r.channels.is_empty(),
                )
            })
            .collect();
        routes.push((
            "alerting.escalation".into(),
            &alerting.escalation,
            alerting.channels.is_empty(),
        ));
        for (key, policy, no_channels) in routes {
            let Some(p) = policy else { continue };
            if !set.policies.contains_key(p) {
                bail!(
                    "key `{key}` names the escalation policy {p:?}, which no [oncall] file \
                     defines (defined: {}); add it under `escalation_policies:` or fix the name",
                    list(set.policies.keys())
                );
            }
            if no_channels {
                bail!(
                    "key `{key}`: the route has no channels, so its alert groups never send the \
                     first firing notice escalation levels count from; give the route a channel"
                );
            }
        }
        let people = set.policies.values().any(|p| {
            p.levels
                .iter()
                .flat_map(|l| &l.targets)
                .any(|t| !matches!(t, Target::Channel(_)))
        });
        if self.mail_channel.is_empty() {
            if people {
                bail!(
                    "key `oncall.mail_channel` is not set, but an escalation policy notifies \
                     users or schedules; name the [notifications.channels.<name>] e-mail \
                     channel whose SMTP settings mail people"
                );
            }
        } else {
            match notifications.channels.get(&self.mail_channel) {
                Some(ChannelConfig::Email(_)) => {}
                Some(_) => bail!(
                    "key `oncall.mail_channel`: channel {:?} is not an e-mail channel; name one \
                     with type = \"email\"",
                    self.mail_channel
                ),
                None => bail!(
                    "key `oncall.mail_channel` names the channel {:?}, which is not configured; \
                     add [notifications.channels.{}] (type = \"email\")",
                    self.mail_channel,
                    self.mail_channel
                ),
            }
        }
        Ok(())
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pw-oncall-cfg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const MAIL: &str = "[notifications.channels.mail]\ntype = \"email\"\nsmtp_host = \"h\"\n\
                        from = \"p@example.com\"\nto = [\"a@example.com\"]\n";

    const FILE: &str = "schedules:\n  - name: primary\n    layers:\n      - start: 2026-01-05T00:00:00Z\n        shift: 1d\n        users: [ann, ben]\nescalation_policies:\n  - name: pages\n    levels:\n      - targets: [{schedule: primary}]\n      - after: 10m\n        targets: [{user: lead}, {channel: mail}]\n";

    fn load(
        d: &std::path::Path,
        file: &str,
        extra: &str,
    ) -> anyhow::Result<crate::oncall::OncallSet> {
        std::fs::write(d.join("oncall.yml"), file).unwrap();
        let c = Config::from_toml_str(&format!(
            "{MAIL}[oncall]\nfiles = [\"{}/*.yml\"]\n{extra}",
            d.display()
        ))?;
        c.oncall.load(&c.alerting, &c.notifications)
    }

    #[test]
    fn a_good_file_loads_and_bad_references_stop_the_start_naming_the_line() {
        let d = dir("refs");
        let set = load(
            &d,
            FILE,
            "mail_channel = \"mail\"\n[alerting]\nchannels = [\"mail\"]\nescalation = \"pages\"\n",
        )
        .unwrap();
        assert_eq!(set.policies["pages"].levels.len(), 2);
        let e = set
            .check_users(&["ann".into(), "lead".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("oncall.yml:6:") && e.contains("\"ben\""), "{e}");
        set.check_users(&["ann".into(), "ben".into(), "lead".into()])
            .unwrap();

        let bad_schedule = FILE.replace("{schedule: primary}", "{schedule: secondary}");
        let e = format!(
            "{:#}",
            load(&d, &bad_schedule, "mail_channel = \"mail\"\n").unwrap_err()
        );
        assert!(
            e.contains("oncall.yml:10:") && e.contains("secondary"),
            "{e}"
        );
        let bad_channel = FILE.replace("{channel: mail}", "{channel: pager}");
        let e = format!(
            "{:#}",
            load(&d, &bad_channel, "mail_channel = \"mail\"\n").unwrap_err()
        );
        assert!(e.contains("oncall.yml:12:") && e.contains("pager"), "{e}");
        let e = format!("{:#}", load(&d, FILE, "").unwrap_err());
        assert!(e.contains("oncall.mail_channel"), "{e}");
        let e = format!(
            "{:#}",
            load(&d, FILE, "mail_channel = \"mail\"\n[alerting]\nchannels = [\"mail\"]\nescalation = \"nope\"\n").unwrap_err()
        );
        assert!(
            e.contains("`alerting.escalation`") && e.contains("nope"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            load(&d, FILE, "mail_channel = \"mail\"\n[[alerting.routes]]\nchannels = []\nescalation = \"pages\"\n").unwrap_err()
        );
        assert!(
            e.contains("`alerting.routes[0].escalation`") && e.contains("no channels"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            load(
                &d,
                "schedules:\n  - name: x\n    layers:\n      - start: soon\n",
                ""
            )
            .unwrap_err()
        );
        assert!(
            e.contains("oncall.files[0]") && e.contains("oncall.yml:4:"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_schedule_defined_in_two_files_is_refused() {
        let d = dir("twice");
        std::fs::write(d.join("a.yml"), "schedules:\n  - name: s\n    overrides: [{user: a, from: 2026-01-05T00:00:00Z, to: 2026-01-06T00:00:00Z}]\n").unwrap();
        std::fs::write(d.join("b.yml"), "schedules:\n  - name: s\n    overrides: [{user: a, from: 2026-01-05T00:00:00Z, to: 2026-01-06T00:00:00Z}]\n").unwrap();
        let c = Config::from_toml_str(&format!("[oncall]\nfiles = [\"{}/*.yml\"]\n", d.display()))
            .unwrap();
        let e = format!(
            "{:#}",
            c.oncall.load(&c.alerting, &c.notifications).unwrap_err()
        );
        assert!(e.contains("b.yml:2:") && e.contains("a.yml"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
