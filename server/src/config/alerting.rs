//! `[alerting]`: the rule files the leader evaluates, how often, and where their alerts go —
//! a routing tree like Alertmanager's, flattened: a default route (`group_by`, `group_wait`,
//! `group_interval`, `repeat_interval`, `channels`) and optional `[[alerting.routes]]` tried
//! in order, the first whose matchers all hold taking the alert — and, when that route sets
//! `continue = true` (Alertmanager's `continue`), matching goes on to the routes after it, so
//! one alert can be notified through several routes, each with its own groups and timers.
//!
//! ```toml
//! [alerting]
//! rule_files = ["rules/*.yml"]
//! channels = ["oncall-mail"]
//!
//! [[alerting.routes]]
//! matchers = ['severity="page"']
//! channels = ["oncall-mail", "oncall-slack"]
//! group_wait = "10s"
//! ```
//!
//! Rules whose evaluation fails (`error`) or whose series vanished (`nodata`) do not page:
//! they go to `error_channels` / `nodata_channels`, empty by default.
//!
//! Inhibit rules (`crate::lifecycle::inhibit`) keep alerts explained by another firing alert
//! from paging: Alertmanager's `source_matchers` / `target_matchers` / `equal`, or by the
//! pipeline's lineage graph (an alert on a node inhibits the alerts on nodes downstream):
//!
//! ```toml
//! [[alerting.inhibit_rules]]
//! name = "upstream-explains-downstream"
//! lineage = true                      # nodes from the labels node, stage, dataset, job
//! source_matchers = ['severity="page"']
//!
//! [[alerting.inhibit_rules]]
//! source_matchers = ['severity="critical"']
//! target_matchers = ['severity="warning"']
//! equal = ["cluster"]
//! ```

use super::duration;
use crate::lifecycle::matcher::Matcher;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Rule files (Prometheus format plus pipewatch's kinds): paths or globs, relative to the
    /// working directory. Loaded and linted at start; a bad file stops the start.
    pub rule_files: Vec<String>,
    /// How often a rule group is evaluated when it sets no `interval` of its own.
    #[serde(with = "duration")]
    pub evaluation_interval: Duration,
    /// Labels whose values make a notification group (`["..."]`: every label, one group per
    /// alert).
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before its first notification.
    #[serde(with = "duration")]
    pub group_wait: Duration,
    /// How long a group waits after a notification before telling about changes.
    #[serde(with = "duration")]
    pub group_interval: Duration,
    /// How long a group that still fires, unchanged, waits before notifying again.
    #[serde(with = "duration")]
    pub repeat_interval: Duration,
    /// Channels (`[notifications.channels.<name>]`) of the default route.
    pub channels: Vec<String>,
    /// Channels told when a rule's series vanish (state `nodata`); none by default.
    pub nodata_channels: Vec<String>,
    /// Channels told when a rule's evaluation fails (state `error`); none by default.
    pub error_channels: Vec<String>,
    /// Routes tried in order before the default route.
    pub routes: Vec<RouteConfig>,
    /// Firing alerts that keep other alerts from notifying.
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// The escalation policy (from `[oncall] files`) of the default route's alert groups;
    /// none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            rule_files: Vec::new(),
            evaluation_interval: Duration::from_secs(60),
            group_by: vec!["alertname".into()],
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            channels: Vec::new(),
            nodata_channels: Vec::new(),
            error_channels: Vec::new(),
            routes: Vec::new(),
            inhibit_rules: Vec::new(),
            escalation: None,
        }
    }
}

/// One `[[alerting.inhibit_rules]]`, as Alertmanager's plus `lineage`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    /// Shown on the inhibited alert's timeline; `inhibit_rules[<index>]` when empty.
    #[serde(default)]
    pub name: String,
    /// What a firing alert must match to inhibit (every firing alert when empty).
    #[serde(default)]
    pub source_matchers: Vec<String>,
    /// What an alert must match to be inhibited (every alert when empty).
    #[serde(default)]
    pub target_matchers: Vec<String>,
    /// Labels that must have the same value on both alerts.
    #[serde(default)]
    pub equal: Vec<String>,
    /// Inhibit only alerts on pipeline nodes downstream of the source alert's node in the
    /// OpenLineage graph.
    #[serde(default)]
    pub lineage: bool,
}

/// One `[[alerting.routes]]`: alerts whose labels match every matcher go to its channels;
/// unset group settings are the default route's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Shown in group keys and logs; `routes[<index>]` when empty.
    #[serde(default)]
    pub name: String,
    /// Alertmanager matchers: `severity="page"`, `job=~"etl.*"`, `team!=data`.
    #[serde(default)]
    pub matchers: Vec<String>,
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_wait: Option<Duration>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_interval: Option<Duration>,
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub repeat_interval: Option<Duration>,
    /// Alertmanager's `continue`: after this route takes an alert, go on trying the routes
    /// after it (the default route takes the alert too when no later route matches).
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// The escalation policy (from `[oncall] files`) of this route's alert groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
}

mod opt_duration {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        humantime_serde::option::serialize(d, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        humantime_serde::option::deserialize(d).map_err(|e: D::Error| {
            serde::de::Error::custom(format!(
                "{e}; write a duration like \"15s\", \"500ms\" or \"1m\""
            ))
        })
    }
}

/// A route with every setting filled in and its matchers compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub channels: Vec<String>,
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Matching goes on after this route (`continue = true`).
    pub continue_matching: bool,
    /// The escalation policy of the route's groups, if any.
    pub escalation: Option<String>,
}

/// A rule file read at start: its path and text.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSource {
    pub path: String,
    pub text: String,
}

impl AlertingConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if self.evaluation_interval < Duration::from_secs(1) {
            bail!(
                "key `alerting.evaluation_interval` must be at least \"1s\", like \"1m\", got {:?}",
                self.evaluation_interval
            );
        }
        check_timing(
            "alerting",
            &self.group_by,
            self.group_interval,
            self.repeat_interval,
        )?;
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("alerting.routes[{i}]");
            if r.name.contains('/') || ["default", "nodata", "error"].contains(&r.name.as_str()) {
                bail!(
                    "key `{key}.name` is {:?}; a route name may not contain `/` nor be default, \
                     nodata or error (those routes are built in)",
                    r.name
                );
            }
            for (j, m) in r.matchers.iter().enumerate() {
                Matcher::parse(m).map_err(|e| anyhow!("key `{key}.matchers[{j}]`: {e}"))?;
            }
            check_timing(
                &key,
                r.group_by.as_deref().unwrap_or(&self.group_by),
                r.group_interval.unwrap_or(self.group_interval),
                r.repeat_interval.unwrap_or(self.repeat_interval),
            )?;
        }
        self.validate_inhibit_rules()?;
        Ok(())
    }

    fn validate_inhibit_rules(&self) -> Result<()> {
        for (i, r) in self.inhibit_rules.iter().enumerate() {
            let key = format!("alerting.inhibit_rules[{i}]");
            for (side, list) in [
                ("source_matchers", &r.source_matchers),
                ("target_matchers", &r.target_matchers),
            ] {
                for (j, m) in list.iter().enumerate() {
                    Matcher::parse(m).map_err(|e| anyhow!("key `{key}.{side}[{j}]`: {e}"))?;
                }
            }
            for l in &r.equal {
                if !query::value::is_label_name(l) {
                    bail!("key `{key}.equal`: {l:?} is not a label name; list label names like [\"cluster\"]");
                }
            }
            if !r.lineage && r.source_matchers.is_empty() && r.target_matchers.is_empty() {
                bail!(
                    "key `{key}` has neither `source_matchers` nor `target_matchers`; say which \
                     alerts inhibit which, or set `lineage = true` to inhibit alerts downstream \
                     of a firing one in the lineage graph"
                );
            }
        }
        Ok(())
    }

    /// The inhibit rules, compiled (validated at start).
    pub fn inhibit_rules(&self) -> Vec<crate::lifecycle::inhibit::InhibitRule> {
        let compile = |list: &[String]| -> Vec<Matcher> {
            list.iter().filter_map(|m| Matcher::parse(m).ok()).collect()
        };
        self.inhibit_rules
            .iter()
            .enumerate()
            .map(|(i, r)| crate::lifecycle::inhibit::InhibitRule {
                name: if r.name.is_empty() {
                    format!("inhibit_rules[{i}]")
                } else {
                    r.name.clone()
                },
                source: compile(&r.source_matchers),
                target: compile(&r.target_matchers),
                equal: r.equal.clone(),
                lineage: r.lineage,
            })
            .collect()
    }

    /// Every channel named here must be one of `channels` (`[notifications.channels]`).
    pub(super) fn check_channels(&self, channels: &[&str]) -> Result<()> {
        let check_channels = |key: &str, names: &[String]| -> Result<()> {
            for n in names {
                if !channels.contains(&n.as_str()) {
                    bail!(
                        "key `{key}` names the channel {n:?}, which is not configured; add \
                         [notifications.channels.{n}] or use one of: {}",
                        if channels.is_empty() {
                            "(none configured)".to_string()
                        } else {
                            channels.join(", ")
                        }
                    );
                }
            }
            Ok(())
        };
        check_channels("alerting.channels", &self.channels)?;
        check_channels("alerting.nodata_channels", &self.nodata_channels)?;
        check_channels("alerting.error_channels", &self.error_channels)?;
        for (i, r) in self.routes.iter().enumerate() {
            check_channels(&format!("alerting.routes[{i}].channels"), &r.channels)?;
        }
        Ok(())
    }

    /// The routes in the order they are tried, the default route last (it matches everything).
    pub fn routes(&self) -> Vec<Route> {
        let mut out: Vec<Route> = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| Route {
                name: if r.name.is_empty() {
                    format!("routes[{i}]")
                } else {
                    r.name.clone()
                },
                matchers: r
                    .matchers
                    .iter()
                    .filter_map(|m| Matcher::parse(m).ok())
                    .collect(),
                channels: r.channels.clone(),
                group_by: r.group_by.clone().unwrap_or_else(|| self.group_by.clone()),
                group_wait: r.group_wait.unwrap_or(self.group_wait),
                group_interval: r.group_interval.unwrap_or(self.group_interval),
                repeat_interval: r.repeat_interval.unwrap_or(self.repeat_interval),
                continue_matching: r.continue_matching,
                escalation: r.escalation.clone(),
            })
            .collect();
        let mut default = self.default_route("default", self.channels.clone());
        default.escalation = self.escalation.clone();
        out.push(default);
        out
    }

    /// The default route's timing with other channels (the nodata and error routes).
    pub fn default_route(&self, name: &str, channels: Vec<String>) -> Route {
        Route {
            name: name.into(),
            matchers: Vec::new(),
            channels,
            group_by: self.group_by.clone(),
            group_wait: self.group_wait,
            group_interval: self.group_interval,
            repeat_interval: self.repeat_interval,
            continue_matching: false,
            escalation: None,
        }
    }

    /// Reads every file `rule_files` names (globs expanded, sorted) and lints it; the first
    /// invalid file stops the start with its `file:line:column` errors.
    pub fn load_rule_files(&self) -> Result<Vec<RuleSource>> {
        let mut out = Vec::new();
        for (i, pattern) in self.rule_files.iter().enumerate() {
            let key = format!("alerting.rule_files[{i}]");
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
                tracing::warn!(pattern, "alerting.rule_files: the glob matches no file");
            }
            for p in paths {
                let text = std::fs::read_to_string(&p).with_context(|| {
                    format!("key `{key}`: cannot read the rule file {}", p.display())
                })?;
                let path = p.display().to_string();
                check_rules(&path, &text).with_context(|| format!("key `{key}`"))?;
                out.push(RuleSource { path, text });
            }
        }
        Ok(out)
    }
}

/// Lints a rule file; the error lists every problem as `path:line:column: message`.
pub fn check_rules(path: &str, text: &str) -> Result<()> {
    let parsed = alerting::parse(text);
    if parsed.is_valid() {
        return Ok(());
    }
    let lines: Vec<String> = parsed.errors().map(|d| format!("{path}:{d}")).collect();
    bail!(
        "the rule file {path} is invalid (check it with `pipewatch rules lint {path}`):\n{}",
        lines.join("\n")
    )
}

fn check_timing(
    key: &str,
    group_by: &[String],
    group_interval: Duration,
    repeat_interval: Duration,
) -> Result<()> {
    for l in group_by {
        if l != "..." && !query::value::is_label_name(l) {
            bail!(
                "key `{key}.group_by`: {l:?} is not a label name; list label names like \
                 [\"alertname\", \"job\"], or [\"...\"] for one group per alert"
            );
        }
    }
    if group_interval.is_zero() {
        bail!("key `{key}.group_interval` must be greater than 0, like \"5m\"");
    }
    if repeat_interval.is_zero() {
        bail!("key `{key}.repeat_interval` must be greater than 0, like \"4h\"");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    fn err(toml: &str) -> String {
        format!("{:#}", Config::from_toml_str(toml).unwrap_err())
    }

    const HOOK: &str =
        "[notifications.channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n";

    #[test]
    fn routes_inherit_the_default_timing_and_the_default_route_comes_last() {
        let c = Config::from_toml_str(&format!(
            "{HOOK}[alerting]\nchannels = [\"hook\"]\ngroup_wait = \"5s\"\n\
             [[alerting.routes]]\nname = \"pages\"\nmatchers = ['severity=\"page\"']\n\
             channels = [\"hook\"]\ngroup_interval = \"1m\"\n"
        ))
        .unwrap();
        let routes = c.alerting.routes();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].name, "pages");
        assert_eq!(routes[0].group_wait, Duration::from_secs(5));
        assert_eq!(routes[0].group_interval, Duration::from_secs(60));
        assert_eq!(routes[0].repeat_interval, Duration::from_secs(4 * 3600));
        assert_eq!(routes[1].name, "default");
        assert_eq!(routes[1].group_by, ["alertname"]);
    }

    #[test]
    fn bad_alerting_settings_are_refused_naming_the_key() {
        for (toml, key) in [
            (
                "[alerting]\nevaluation_interval = \"0s\"\n".to_string(),
                "alerting.evaluation_interval",
            ),
            (
                "[alerting]\nchannels = [\"nowhere\"]\n".to_string(),
                "alerting.channels",
            ),
            (
                "[alerting]\ngroup_by = [\"1bad\"]\n".to_string(),
                "alerting.group_by",
            ),
            (
                "[alerting]\nrepeat_interval = \"0s\"\n".to_string(),
                "alerting.repeat_interval",
            ),
            (
                format!(
                    "{HOOK}[[alerting.routes]]\nchannels = [\"hook\"]\nmatchers = [\"severity\"]\n"
                ),
                "alerting.routes[0].matchers[0]",
            ),
            (
                "[[alerting.routes]]\nchannels = [\"gone\"]\n".to_string(),
                "alerting.routes[0].channels",
            ),
            (
                "[alerting]\ngroup_wait = \"soon\"\n".to_string(),
                "alerting.group_wait",
            ),
            (
                "[[alerting.inhibit_rules]]\nsource_matchers = [\"severity\"]\n".to_string(),
                "alerting.inhibit_rules[0].source_matchers[0]",
            ),
            (
                "[[alerting.inhibit_rules]]\ntarget_matchers = ['a=\"b\"']\nequal = [\"1x\"]\n"
                    .to_string(),
                "alerting.inhibit_rules[0].equal",
            ),
            (
                "[[alerting.inhibit_rules]]\nequal = [\"cluster\"]\n".to_string(),
                "alerting.inhibit_rules[0]",
            ),
            (
                "[[alerting.inhibit_rules]]\nlineage = \"yes\"\n".to_string(),
                "alerting.inhibit_rules",
            ),
        ] {
            let e = err(&toml);
            assert!(e.contains(&format!("`{key}")), "{toml:?}: {e}");
        }
    }

    #[test]
    fn inhibit_rules_compile_with_their_names() {
        let c = Config::from_toml_str(
            "[[alerting.inhibit_rules]]\nlineage = true\n\
             [[alerting.inhibit_rules]]\nname = \"crit\"\nsource_matchers = ['severity=\"critical\"']\n\
             equal = [\"cluster\"]\n",
        )
        .unwrap();
        let r = c.alerting.inhibit_rules();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "inhibit_rules[0]");
        assert!(r[0].lineage && r[0].source.is_empty());
        assert_eq!(r[1].name, "crit");
        assert_eq!(r[1].source.len(), 1);
        assert_eq!(r[1].equal, ["cluster"]);
    }

    #[test]
    fn an_invalid_rule_file_stops_the_start_with_line_numbered_errors() {
        let dir = std::env::temp_dir().join(format!("pw-alerting-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("good.yml"),
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("bad.yml"),
            "groups:\n- name: g\n  rules:\n  - alert: B\n    expr: rate(x[5m]\n",
        )
        .unwrap();
        let c = Config::from_toml_str(&format!(
            "[alerting]\nrule_files = [\"{}/good.yml\"]\n",
            dir.display()
        ))
        .unwrap();
        assert_eq!(c.alerting.load_rule_files().unwrap().len(), 1);
        let c = Config::from_toml_str(&format!(
            "[alerting]\nrule_files = [\"{}/*.yml\"]\n",
            dir.display()
        ))
        .unwrap();
        let e = format!("{:#}", c.alerting.load_rule_files().unwrap_err());
        assert!(e.contains("alerting.rule_files[0]"), "{e}");
        assert!(e.contains("bad.yml:5:"), "no line:column in {e}");
        assert!(e.contains("could not parse expression"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
