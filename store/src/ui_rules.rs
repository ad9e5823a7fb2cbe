//! Rule groups made on the Rules page (`ui_rule_groups`, migration 0092): stored as the text
//! of a rule file with one group, read by the lifecycle engine beside the rule files. This
//! module only stores and reads; linting and naming rules are the server's.

use crate::error::DbContext;
use crate::{sql_ms, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// One stored rule group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiRuleGroup {
    pub name: String,
    /// A rule file (`groups:`) holding this one group.
    pub text: String,
    pub created_by: String,
    pub updated_by: String,
    pub updated_at_ms: i64,
}

/// What a save found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    Created,
    Updated,
    /// Creating: a group of that name exists already.
    NameTaken,
    /// Editing: there is no group of the original name (any more).
    Missing,
}

impl Store {
    /// Every stored group, by name.
    pub async fn ui_rule_groups(&self) -> Result<Vec<UiRuleGroup>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT name, text, created_by, updated_by, {} AS updated_ms
             FROM ui_rule_groups ORDER BY name",
            sql_ms("updated_at")
        ))
        .fetch_all(self.pool())
        .await
        .context("reading the rule groups made on the Rules page")?;
        Ok(rows
            .iter()
            .map(|r| UiRuleGroup {
                name: r.get("name"),
                text: r.get("text"),
                created_by: r.get("created_by"),
                updated_by: r.get("updated_by"),
                updated_at_ms: r.get("updated_ms"),
            })
            .collect())
    }

    /// Creates the group `name` (`original: None`) or replaces the group `original` with it
    /// (renaming it when the names differ).
    pub async fn save_ui_rule_group(
        &self,
        original: Option<&str>,
        name: &str,
        text: &str,
        actor: &str,
    ) -> Result<SaveOutcome, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a rule group save")?;
        if original != Some(name) {
            let taken: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM ui_rule_groups WHERE name = $1 FOR UPDATE")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await
                    .context("looking up a rule group name")?;
            if taken.is_some() {
                return Ok(SaveOutcome::NameTaken);
            }
        }
        let outcome = match original {
            None => {
                sqlx::query(
                    "INSERT INTO ui_rule_groups (name, text, created_by, updated_by)
                     VALUES ($1, $2, $3, $3)",
                )
                .bind(name)
                .bind(text)
                .bind(actor)
                .execute(&mut *tx)
                .await
                .context("creating a rule group")?;
                SaveOutcome::Created
            }
            Some(orig) => {
                let n = sqlx::query(
                    "UPDATE ui_rule_groups SET name = $2, text = $3, updated_by = $4,
                         updated_at = now()
                     WHERE name = $1",
                )
                .bind(orig)
                .bind(name)
                .bind(text)
                .bind(actor)
                .execute(&mut *tx)
                .await
                .context("updating a rule group")?
                .rows_affected();
                if n == 0 {
                    return Ok(SaveOutcome::Missing);
                }
                SaveOutcome::Updated
            }
        };
        tx.commit().await.context("committing a rule group save")?;
        Ok(outcome)
    }

    /// Deletes the group `name`; false when there is none.
    pub async fn delete_ui_rule_group(&self, name: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM ui_rule_groups WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .context("deleting a rule group")?
            .rows_affected();
        Ok(n > 0)
    }
}
