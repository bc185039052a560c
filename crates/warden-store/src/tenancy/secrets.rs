//! A workspace's write-only values (sealed by the caller; stored and returned only sealed)
//! and its prompt templates, inside its own transaction.

use super::{PromptRow, SecretKind, SecretMeta, WorkspaceTx};
use crate::StoreError;
use crate::db::on_tx;

impl WorkspaceTx {
    /// Names (never values) of the write-only values of `kind`.
    pub async fn secrets(&mut self, kind: SecretKind) -> Result<Vec<SecretMeta>, StoreError> {
        let ws = self.workspace.uuid();
        Ok(on_tx!(self.tx, |c| sqlx::query_as::<_, SecretMeta>(
            "SELECT kind, name, set_by, set_at FROM workspace_secrets \
             WHERE workspace_id = $1 AND kind = $2 ORDER BY name"
        )
        .bind(ws)
        .bind(kind.as_str())
        .fetch_all(c)
        .await)?)
    }

    /// Stores a sealed value. Returns whether it replaced one.
    pub async fn put_secret(
        &mut self,
        kind: SecretKind,
        name: &str,
        sealed: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace.uuid();
        let by = self.user_id;
        let replaced = on_tx!(self.tx, |c| sqlx::query(
            "DELETE FROM workspace_secrets WHERE workspace_id = $1 AND kind = $2 AND name = $3"
        )
        .bind(ws)
        .bind(kind.as_str())
        .bind(name)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        on_tx!(self.tx, |c| sqlx::query(
            "INSERT INTO workspace_secrets (workspace_id, kind, name, sealed, set_by, set_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(ws)
        .bind(kind.as_str())
        .bind(name)
        .bind(sealed)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(replaced == 1)
    }

    /// The sealed value, for the code that hands it to an agent session.
    pub async fn sealed_secret(
        &mut self,
        kind: SecretKind,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let ws = self.workspace.uuid();
        Ok(on_tx!(self.tx, |c| sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT sealed FROM workspace_secrets \
             WHERE workspace_id = $1 AND kind = $2 AND name = $3"
        )
        .bind(ws)
        .bind(kind.as_str())
        .bind(name)
        .fetch_optional(c)
        .await)?)
    }

    /// Deletes a value. Returns whether there was one.
    pub async fn delete_secret(
        &mut self,
        kind: SecretKind,
        name: &str,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace.uuid();
        let n = on_tx!(self.tx, |c| sqlx::query(
            "DELETE FROM workspace_secrets WHERE workspace_id = $1 AND kind = $2 AND name = $3"
        )
        .bind(ws)
        .bind(kind.as_str())
        .bind(name)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Prompt templates.
    pub async fn prompts(&mut self) -> Result<Vec<PromptRow>, StoreError> {
        let ws = self.workspace.uuid();
        Ok(on_tx!(self.tx, |c| sqlx::query_as::<_, PromptRow>(
            "SELECT name, template, updated_by, updated_at FROM workspace_prompts \
             WHERE workspace_id = $1 ORDER BY name"
        )
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// One prompt template.
    pub async fn prompt(&mut self, name: &str) -> Result<Option<PromptRow>, StoreError> {
        let ws = self.workspace.uuid();
        Ok(on_tx!(self.tx, |c| sqlx::query_as::<_, PromptRow>(
            "SELECT name, template, updated_by, updated_at FROM workspace_prompts \
             WHERE workspace_id = $1 AND name = $2"
        )
        .bind(ws)
        .bind(name)
        .fetch_optional(c)
        .await)?)
    }

    /// Creates or replaces a prompt template. Returns whether it replaced one.
    pub async fn put_prompt(
        &mut self,
        name: &str,
        template: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace.uuid();
        let by = self.user_id;
        let replaced = on_tx!(self.tx, |c| sqlx::query(
            "DELETE FROM workspace_prompts WHERE workspace_id = $1 AND name = $2"
        )
        .bind(ws)
        .bind(name)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        on_tx!(self.tx, |c| sqlx::query(
            "INSERT INTO workspace_prompts (workspace_id, name, template, updated_by, \
             updated_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(ws)
        .bind(name)
        .bind(template)
        .bind(by)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(replaced == 1)
    }

    /// Deletes a prompt template. Returns whether there was one.
    pub async fn delete_prompt(&mut self, name: &str) -> Result<bool, StoreError> {
        let ws = self.workspace.uuid();
        let n = on_tx!(self.tx, |c| sqlx::query(
            "DELETE FROM workspace_prompts WHERE workspace_id = $1 AND name = $2"
        )
        .bind(ws)
        .bind(name)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
