//! Rule groups made on the Rules page (`store::ui_rules`): checked with the rule-file linter
//! before they are stored ([`check`]), previewed over the last day with the backtest
//! ([`preview`]), and picked up by the engine while it leads: every [`POLL_MS`] it reads the
//! table and, when a group was created, edited or deleted, rebuilds its groups (file groups
//! first) and reads its state back as after a take-over, so alerts of unchanged rules carry on
//! and alerts of deleted rules resolve.

use super::{Engine, EngineSettings};
use crate::promql::QueryLimits;
use alerting::RuleGroup;
use std::collections::HashSet;
use store::ui_rules::SaveOutcome;
use store::Store;
use tracing::{info, warn};

/// The `file` the Rules page and `rule_status` show for groups made on the page.
pub const UI_FILE: &str = app::rules::PAGE_FILE;

/// How often the leading engine looks for changed page-made groups.
pub const POLL_MS: i64 = 2_000;

/// How far back the preview replays.
pub const PREVIEW_MS: i64 = 24 * 3_600_000;

/// The preview's step for a group without an `interval` (the pages do not know the
/// configured evaluation interval; a minute keeps a day at 1,440 steps).
pub const DEFAULT_PREVIEW_STEP_MS: i64 = 60_000;

/// Reads a page-made group: the text must lint (each error with its line and column, as
/// `pipewatch rules lint` prints it), hold exactly one group, and not reuse the name of a
/// group of the rule files (`file_groups`). Returns the group.
pub fn check(text: &str, file_groups: &HashSet<String>) -> Result<RuleGroup, Vec<String>> {
    let parsed = alerting::parse(text);
    let mut errors: Vec<String> = parsed.errors().map(|d| format!("line {d}")).collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut groups = parsed.file.map(|f| f.groups).unwrap_or_default();
    if groups.len() != 1 {
        errors.push(format!(
            "the text has {} groups: write exactly one (`groups:` with one `- name: ...` and its `rules:`)",
            groups.len()
        ));
        return Err(errors);
    }
    let g = groups.remove(0);
    if g.rules.is_empty() {
        errors.push(format!(
            "line {}: group {:?} has no rules: add at least one under `rules:`",
            g.pos, g.name
        ));
    }
    if file_groups.contains(&g.name) {
        errors.push(format!(
            "line {}: a rule file already has a group named {:?}: choose another name",
            g.pos, g.name
        ));
    }
    if errors.is_empty() {
        Ok(g)
    } else {
        Err(errors)
    }
}

/// The groups of the rule files the engine evaluates, by name (from `rule_status`, which
/// the leading engine fills), so a page-made group cannot take one's name.
pub async fn file_group_names(store: &Store) -> Result<HashSet<String>, String> {
    Ok(store
        .rule_statuses()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|s| s.group_file != UI_FILE)
        .map(|s| s.group_name)
        .collect())
}

/// What `text` would have done over the last [`PREVIEW_MS`] up to `now_ms`, replayed at the
/// group's interval (else `default_step_ms`).
pub async fn preview(
    store: &Store,
    limits: &QueryLimits,
    text: &str,
    now_ms: i64,
    default_step_ms: i64,
) -> anyhow::Result<Vec<super::backtest::GroupReplay>> {
    let b = super::backtest::Backtest {
        from_ms: now_ms - PREVIEW_MS,
        to_ms: now_ms,
        step_ms: None,
        default_step_ms,
        external_url: String::new(),
    };
    super::backtest::run_text(store, limits, text, &b).await
}

/// The page-made groups as the Rules page lists them.
pub async fn rows(store: &Store) -> Result<Vec<app::rules::UiRuleGroupRow>, String> {
    Ok(store
        .ui_rule_groups()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|g| app::rules::UiRuleGroupRow {
            name: g.name,
            text: g.text,
            updated_by: g.updated_by,
            updated_at_ms: g.updated_at_ms,
        })
        .collect())
}

/// Lints and stores a page-made group: a new one (`original: None`) or the replacement of
/// `original`. Returns its name and the audit action (`rules.create` / `rules.update`).
pub async fn save(
    store: &Store,
    actor: &str,
    original: Option<&str>,
    text: &str,
) -> Result<(String, &'static str), String> {
    let files = file_group_names(store).await?;
    let group = check(text, &files).map_err(|e| e.join("\n"))?;
    let name = group.name;
    match store
        .save_ui_rule_group(original, &name, text, actor)
        .await
        .map_err(|e| e.to_string())?
    {
        SaveOutcome::Created => Ok((name, "rules.create")),
        SaveOutcome::Updated => Ok((name, "rules.update")),
        SaveOutcome::NameTaken => Err(format!(
            "a group named {name:?} was made on this page already: edit that one, or choose another name"
        )),
        SaveOutcome::Missing => Err(format!(
            "there is no group {:?} made on this page (deleted meanwhile?): save it as a new group",
            original.unwrap_or_default()
        )),
    }
}

/// Deletes a page-made group.
pub async fn delete(store: &Store, name: &str) -> Result<(), String> {
    if store
        .delete_ui_rule_group(name)
        .await
        .map_err(|e| e.to_string())?
    {
        Ok(())
    } else {
        Err(format!(
            "there is no group {name:?} made on this page (rule file groups are edited in their files)"
        ))
    }
}

/// The preview as the Rules page shows it; lint errors come one per line.
pub async fn preview_view(
    store: &Store,
    limits: &QueryLimits,
    text: &str,
) -> Result<app::rules::RulePreview, String> {
    let files = file_group_names(store).await?;
    check(text, &files).map_err(|e| e.join("\n"))?;
    let now = model::clock::now_ms();
    let replays = preview(store, limits, text, now, DEFAULT_PREVIEW_STEP_MS)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let mut out = app::rules::RulePreview {
        from_ms: now - PREVIEW_MS,
        to_ms: now,
        step_ms: replays
            .first()
            .map_or(DEFAULT_PREVIEW_STEP_MS, |g| g.step_ms),
        episodes: Vec::new(),
        notes: Vec::new(),
    };
    for g in replays {
        out.episodes.extend(g.replay.episodes.into_iter().map(|e| {
            app::rules::PreviewEpisode {
                rule: e.rule,
                labels: e
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "alertname")
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                active_at_ms: e.active_at_ms,
                fired_at_ms: e.fired_at_ms,
                resolved_at_ms: e.resolved_at_ms,
            }
        }));
        out.notes.extend(
            g.replay
                .skipped
                .into_iter()
                .map(|(r, why)| format!("rule {r}: not replayed: {why}")),
        );
        out.notes
            .extend(g.replay.errors.into_iter().map(|(r, n, msg)| {
                format!("rule {r}: its evaluation failed at {n} steps, first: {msg}")
            }));
    }
    Ok(out)
}

impl Engine {
    /// Reads the page-made groups when [`POLL_MS`] has passed (or `force`); true when they
    /// changed, after which `self.groups` holds the file groups and then them. A group that
    /// no longer lints (written by an older version) or takes a file group's name is left out
    /// with a warning. A failed read changes nothing.
    pub(super) async fn refresh_ui_rules(&mut self, now_ms: i64, force: bool) -> bool {
        if !force && self.ui_checked_ms.saturating_add(POLL_MS) > now_ms {
            return false;
        }
        self.ui_checked_ms = now_ms;
        let stored = match self.store.ui_rule_groups().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "could not read the rule groups made on the Rules page");
                return false;
            }
        };
        let texts: Vec<(String, String)> = stored.into_iter().map(|g| (g.name, g.text)).collect();
        let first = !self.ui_loaded;
        self.ui_loaded = true;
        if !first && texts == self.ui_texts {
            return false;
        }
        let file_names: HashSet<String> = self
            .file_groups
            .iter()
            .map(|(_, g)| g.name.clone())
            .collect();
        let mut groups = self.file_groups.clone();
        for (name, text) in &texts {
            match check(text, &file_names) {
                Ok(g) => groups.push((UI_FILE.to_string(), g)),
                Err(errors) => {
                    warn!(group = %name, errors = %errors.join("; "), "a rule group made on the Rules page is not evaluated")
                }
            }
        }
        let changed = !first || !texts.is_empty();
        if changed {
            info!(
                groups = groups.len() - self.file_groups.len(),
                "rule groups made on the Rules page loaded"
            );
        }
        self.ui_texts = texts;
        self.groups = groups;
        changed
    }
}

/// The settings' rule files as groups, as [`Engine::new`] reads them.
pub(super) fn file_groups(settings: &EngineSettings) -> anyhow::Result<Vec<(String, RuleGroup)>> {
    use anyhow::Context;
    let mut groups = Vec::new();
    for src in &settings.rules {
        crate::config::check_rule_file(&src.path, &src.text)?;
        let parsed = alerting::parse(&src.text);
        let file = parsed
            .file
            .with_context(|| format!("the rule file {} has no groups", src.path))?;
        for g in file.groups {
            groups.push((src.path.clone(), g));
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_made_group_must_lint_hold_one_group_and_keep_clear_of_file_group_names() {
        let files = HashSet::from(["etl".to_string()]);
        let ok = "groups:\n- name: mine\n  rules:\n  - alert: Lag\n    expr: lag > 10\n";
        assert_eq!(check(ok, &files).unwrap().name, "mine");

        let bad = "groups:\n- name: mine\n  rules:\n  - alert: Lag\n    expr: lag >\n";
        let e = check(bad, &files).unwrap_err();
        assert!(e[0].starts_with("line 5:"), "{e:?}");

        let two = "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up == 0\n- name: b\n  rules:\n  - alert: B\n    expr: up == 0\n";
        assert!(check(two, &files).unwrap_err()[0].contains("has 2 groups"));

        let taken = "groups:\n- name: etl\n  rules:\n  - alert: Lag\n    expr: lag > 10\n";
        let e = check(taken, &files).unwrap_err();
        assert!(
            e[0].contains("a rule file already has a group named \"etl\""),
            "{e:?}"
        );

        let empty = "groups:\n- name: mine\n  rules: []\n";
        assert!(check(empty, &files).unwrap_err()[0].contains("has no rules"));
    }
}
