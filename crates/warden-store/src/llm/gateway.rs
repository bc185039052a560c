//! The gateway's side of its rows, under the `warden.llm` scope: a key by its hash, the
//! configuration the hot path caches, quota reservations, call records and daily usage, the
//! alerts sent, retention, the platform's switch.

use uuid::Uuid;

use super::{Amounts, CallRow, CounterKey, KeyRow, PolicyRow, Take, UpstreamRow};
use super::{KEY_COLUMNS, UPSTREAM_COLUMNS};
use crate::db::on_tx;
use crate::tenancy::set_scope;
use crate::{Store, StoreError, Tx};

/// A transaction of the gateway (the `warden.llm` scope): across workspaces.
#[derive(Debug)]
pub struct LlmTx(Tx);

impl Store {
    /// Starts a gateway transaction.
    pub async fn begin_llm(&self) -> Result<LlmTx, StoreError> {
        let mut tx = self.begin().await?;
        set_scope(&mut tx, "warden.llm", "on").await?;
        Ok(LlmTx(tx))
    }

    /// A key by the SHA-256 of its secret, with the user of the session it was minted for.
    pub async fn llm_key_by_hash(&self, hash: &[u8]) -> Result<Option<KeyRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.llm", "on").await?;
        let sql = format!("SELECT {KEY_COLUMNS} FROM llm_keys WHERE hash = $1");
        let row = on_tx!(tx, |c| sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(
            sql
        ))
        .bind(hash)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(row)
    }

    /// What the gateway needs of a workspace: its policy and upstreams.
    pub async fn llm_config(
        &self,
        workspace: Uuid,
    ) -> Result<(Option<PolicyRow>, Vec<UpstreamRow>), StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.llm", "on").await?;
        let policy = on_tx!(tx, |c| sqlx::query_as::<_, PolicyRow>(
            "SELECT workspace_id, enabled, session_gateway, policy, updated_at \
             FROM llm_policies WHERE workspace_id = $1"
        )
        .bind(workspace)
        .fetch_optional(c)
        .await)?;
        let sql = format!(
            "SELECT {UPSTREAM_COLUMNS} FROM llm_upstreams WHERE workspace_id = $1 ORDER BY name"
        );
        let upstreams = on_tx!(tx, |c| sqlx::query_as::<_, UpstreamRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(workspace)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok((policy, upstreams))
    }
}

impl Store {
    /// The role a user holds in a workspace, if they are an active member.
    pub async fn llm_member_role(
        &self,
        workspace: Uuid,
        user: Uuid,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.workspace_id", &workspace.to_string()).await?;
        let role = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
            "SELECT m.role FROM workspace_members m JOIN users u ON u.id = m.user_id \
             JOIN workspaces w ON w.id = m.workspace_id \
             WHERE m.workspace_id = $1 AND m.user_id = $2 AND u.active = TRUE \
             AND w.archived_at IS NULL"
        )
        .bind(workspace)
        .bind(user)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(role)
    }

    /// The automation run that started an agent session, if one did.
    pub async fn automation_run_of_session(
        &self,
        session: Uuid,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.jobs", "on").await?;
        let run = on_tx!(tx, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM automation_runs WHERE session_id = $1"
        )
        .bind(session)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(run)
    }

    /// Revokes the live tokens of an agent session (it ended) and logs each revocation.
    /// Returns how many.
    pub async fn llm_end_session_keys(&self, session: Uuid, now: i64) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        set_scope(&mut tx, "warden.llm", "on").await?;
        let ids = on_tx!(tx, |c| sqlx::query_scalar::<_, Uuid>(
            "UPDATE llm_keys SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL \
             RETURNING id"
        )
        .bind(session)
        .bind(now)
        .fetch_all(c)
        .await)?;
        for id in &ids {
            tx.log_revocation("session", *id, now).await?;
        }
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Whether the platform's kill switch lets the gateway serve.
    pub async fn llm_enabled(&self) -> Result<bool, StoreError> {
        let mut tx = self.begin_read().await?;
        let on = on_tx!(tx, |c| sqlx::query_scalar::<_, bool>(
            "SELECT enabled FROM llm_switch WHERE id = 1"
        )
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(on.unwrap_or(true))
    }

    /// Sets the platform's kill switch, in the caller's transaction.
    pub async fn set_llm_enabled(tx: &mut Tx, enabled: bool, now: i64) -> Result<(), StoreError> {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO llm_switch (id, enabled, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, \
             updated_at = excluded.updated_at"
        )
        .bind(enabled)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Every sealed value a workspace stores (kind, name, sealed): the filters look for them
    /// in prompts.
    pub async fn llm_workspace_secrets(
        &self,
        workspace: Uuid,
    ) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.workspace_id", &workspace.to_string()).await?;
        let rows = on_tx!(tx, |c| sqlx::query_as::<_, (String, String, Vec<u8>)>(
            "SELECT kind, name, sealed FROM workspace_secrets WHERE workspace_id = $1"
        )
        .bind(workspace)
        .fetch_all(c)
        .await)?;
        tx.commit().await?;
        Ok(rows)
    }
}

impl LlmTx {
    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().await
    }

    /// The transaction, for recording audit events in it.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.0
    }

    /// Takes from each counter what its call needs (and up to what the node wants), all or
    /// nothing: `None` when any counter cannot fit the need (the caller rolls back by
    /// dropping the transaction). Returns what was granted, counter by counter.
    pub async fn take(&mut self, takes: &[Take]) -> Result<Option<Vec<Amounts>>, StoreError> {
        let mut granted = Vec::with_capacity(takes.len());
        for t in takes {
            let k = &t.key;
            on_tx!(self.0, |c| sqlx::query(
                "INSERT INTO llm_counters (workspace_id, subject, period, start, requests, \
                 tokens, cost) VALUES ($1, $2, $3, $4, 0, 0, 0) ON CONFLICT DO NOTHING"
            )
            .bind(k.workspace_id)
            .bind(&k.subject)
            .bind(k.period)
            .bind(k.start)
            .execute(c)
            .await
            .map(drop))?;
            let lock = match self.0.backend() {
                crate::Backend::Postgres => " FOR UPDATE",
                crate::Backend::Sqlite => "",
            };
            let sql = format!(
                "SELECT requests, tokens, cost FROM llm_counters WHERE workspace_id = $1 \
                 AND subject = $2 AND period = $3 AND start = $4{lock}"
            );
            let used: (i64, i64, i64) =
                on_tx!(self.0, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(k.workspace_id)
                    .bind(&k.subject)
                    .bind(k.period)
                    .bind(k.start)
                    .fetch_one(c)
                    .await)?;
            let used = [used.0, used.1, used.2];
            let mut grant = [0i64; 3];
            for i in 0..3 {
                match t.limits[i] {
                    Some(limit) => {
                        if used[i] + t.need[i] > limit {
                            return Ok(None);
                        }
                        grant[i] = t.want[i].max(t.need[i]).min(limit - used[i]);
                    }
                    None => grant[i] = t.need[i],
                }
            }
            self.add(k, grant).await?;
            granted.push(grant);
        }
        Ok(Some(granted))
    }

    /// Adds to a counter (negative amounts give back, never below zero).
    pub async fn add(&mut self, k: &CounterKey, a: Amounts) -> Result<(), StoreError> {
        let backend = self.0.backend();
        on_tx!(self.0, |c| sqlx::query(
            "INSERT INTO llm_counters (workspace_id, subject, period, start, requests, tokens, \
             cost) VALUES ($1, $2, $3, $4, MAX(0, $5), MAX(0, $6), MAX(0, $7)) \
             ON CONFLICT (workspace_id, subject, period, start) DO UPDATE SET \
             requests = MAX(0, llm_counters.requests + $5), \
             tokens = MAX(0, llm_counters.tokens + $6), cost = MAX(0, llm_counters.cost + $7)"
                .replace_max(backend)
        )
        .bind(k.workspace_id)
        .bind(&k.subject)
        .bind(k.period)
        .bind(k.start)
        .bind(a[0])
        .bind(a[1])
        .bind(a[2])
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Writes call records and adds them to the daily usage (one update per workspace, day,
    /// user and model of the batch).
    pub async fn insert_calls(&mut self, calls: &[CallRow]) -> Result<(), StoreError> {
        let mut usage: std::collections::BTreeMap<(Uuid, i32, Uuid, &str), [i64; 4]> =
            std::collections::BTreeMap::new();
        for r in calls {
            on_tx!(self.0, |c| sqlx::query(
                "INSERT INTO llm_calls (id, workspace_id, key_id, user_id, session_id, \
                 automation_run_id, request_id, endpoint, model, upstream_id, status, \
                 latency_us, tokens_in, tokens_out, cost, decisions, sealed_content, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18)"
            )
            .bind(r.id)
            .bind(r.workspace_id)
            .bind(r.key_id)
            .bind(r.user_id)
            .bind(r.session_id)
            .bind(r.automation_run_id)
            .bind(&r.request_id)
            .bind(&r.endpoint)
            .bind(&r.model)
            .bind(r.upstream_id)
            .bind(r.status)
            .bind(r.latency_us)
            .bind(r.tokens_in)
            .bind(r.tokens_out)
            .bind(r.cost)
            .bind(&r.decisions)
            .bind(&r.sealed_content)
            .bind(r.created_at)
            .execute(c)
            .await
            .map(drop))?;
            let day = i32::try_from(r.created_at.div_euclid(86_400_000_000)).unwrap_or(0);
            let sum = usage
                .entry((
                    r.workspace_id,
                    day,
                    r.user_id.unwrap_or(Uuid::nil()),
                    &r.model,
                ))
                .or_default();
            sum[0] += 1;
            sum[1] += r.tokens_in;
            sum[2] += r.tokens_out;
            sum[3] += r.cost;
        }
        for ((ws, day, user, model), [n, tin, tout, cost]) in usage {
            on_tx!(self.0, |c| sqlx::query(
                "INSERT INTO llm_usage (workspace_id, day, user_id, model, requests, tokens_in, \
                 tokens_out, cost) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (workspace_id, day, user_id, model) DO UPDATE SET \
                 requests = llm_usage.requests + excluded.requests, \
                 tokens_in = llm_usage.tokens_in + excluded.tokens_in, \
                 tokens_out = llm_usage.tokens_out + excluded.tokens_out, \
                 cost = llm_usage.cost + excluded.cost"
            )
            .bind(ws)
            .bind(day)
            .bind(user)
            .bind(model)
            .bind(n)
            .bind(tin)
            .bind(tout)
            .bind(cost)
            .execute(c)
            .await
            .map(drop))?;
        }
        Ok(())
    }

    /// Usage from day `from` on, of the workspace (or of one user in it): requests, tokens
    /// (in and out together) and cost.
    pub async fn usage_since(
        &mut self,
        workspace: Uuid,
        user: Option<Uuid>,
        from: i32,
    ) -> Result<Amounts, StoreError> {
        let (r, t, c): (i64, i64, i64) = on_tx!(self.0, |c| sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT), \
             CAST(COALESCE(SUM(tokens_in + tokens_out), 0) AS BIGINT), \
             CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM llm_usage \
             WHERE workspace_id = $1 AND day >= $2 AND ($3 IS NULL OR user_id = $3)"
        )
        .bind(workspace)
        .bind(from)
        .bind(user)
        .fetch_one(c)
        .await)?;
        Ok([r, t, c])
    }

    /// Where a quota alert goes: the workspace's active owners and maintainers, and the user
    /// whose quota it is.
    pub async fn workspace_admin_emails(
        &mut self,
        workspace: Uuid,
        user: Option<Uuid>,
    ) -> Result<Vec<String>, StoreError> {
        set_scope(&mut self.0, "warden.workspace_id", &workspace.to_string()).await?;
        Ok(on_tx!(self.0, |c| sqlx::query_scalar::<_, String>(
            "SELECT u.email FROM users u JOIN workspace_members m ON m.user_id = u.id \
             WHERE m.workspace_id = $1 AND u.active = TRUE \
             AND (m.role IN ('owner', 'maintainer') OR m.user_id = $2) ORDER BY u.email"
        )
        .bind(workspace)
        .bind(user)
        .fetch_all(c)
        .await)?)
    }

    /// Notes an alert as sent; `false` when it was sent before.
    pub async fn note_alert(
        &mut self,
        workspace: Uuid,
        subject: &str,
        metric: &str,
        month: i32,
        threshold: i32,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query(
            "INSERT INTO llm_alerts (workspace_id, subject, metric, month, threshold, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
        )
        .bind(workspace)
        .bind(subject)
        .bind(metric)
        .bind(month)
        .bind(threshold)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Every workspace's stored policy (for retention).
    pub async fn policies(&mut self) -> Result<Vec<(Uuid, String)>, StoreError> {
        Ok(on_tx!(self.0, |c| sqlx::query_as::<_, (Uuid, String)>(
            "SELECT workspace_id, policy FROM llm_policies"
        )
        .fetch_all(c)
        .await)?)
    }

    /// Forgets the records of `workspace` (or of every workspace without a policy) older
    /// than `before`, and captured content older than `content_before` (µs). Returns records
    /// removed.
    pub async fn prune_calls(
        &mut self,
        workspace: Option<Uuid>,
        before: i64,
        content_before: i64,
    ) -> Result<u64, StoreError> {
        const SCOPE: &str = "(($1 IS NOT NULL AND workspace_id = $1) OR ($1 IS NULL AND \
             workspace_id NOT IN (SELECT workspace_id FROM llm_policies)))";
        let sql = format!(
            "UPDATE llm_calls SET sealed_content = NULL WHERE {SCOPE} AND created_at < $2 \
             AND sealed_content IS NOT NULL"
        );
        on_tx!(self.0, |c| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace)
            .bind(content_before)
            .execute(c)
            .await
            .map(drop))?;
        let sql = format!("DELETE FROM llm_calls WHERE {SCOPE} AND created_at < $2");
        Ok(on_tx!(self.0, |c| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspace)
            .bind(before)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// Drops counters of periods that began before `before` (µs).
    pub async fn prune_counters(&mut self, before: i64) -> Result<(), StoreError> {
        on_tx!(self.0, |c| sqlx::query(
            "DELETE FROM llm_counters WHERE start < $1"
        )
        .bind(before)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }
}

/// `MAX(a, b)` is SQLite's two-argument maximum; PostgreSQL calls it `GREATEST`.
trait ReplaceMax {
    fn replace_max(self, backend: crate::Backend) -> sqlx::AssertSqlSafe<String>;
}

impl ReplaceMax for &str {
    fn replace_max(self, backend: crate::Backend) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(match backend {
            crate::Backend::Postgres => self.replace("MAX(", "GREATEST("),
            crate::Backend::Sqlite => self.to_owned(),
        })
    }
}
