//! The LLM gateway's rows: a workspace's policy and upstreams, gateway keys, quota counters,
//! call records, daily usage and the alerts sent.
//!
//! A workspace manages its own rows through its scoped transaction. The gateway's hot path
//! (a key looked up by its hash before any workspace is known, the configuration it caches,
//! quota reservations) and its record writer work under the `warden.llm` scope (PostgreSQL
//! row-level security), through [`LlmTx`].

use uuid::Uuid;

use crate::db::on_tx;
use crate::tenancy::{WorkspaceTx, set_scope};
use crate::{Store, StoreError, Tx};

/// A workspace's gateway policy as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PolicyRow {
    /// Workspace.
    pub workspace_id: Uuid,
    /// Whether the gateway serves this workspace (the workspace's kill switch).
    pub enabled: bool,
    /// Whether sessions get the gateway URL and a token instead of the provider key.
    pub session_gateway: bool,
    /// Quotas, filters, prices and capture, as JSON.
    pub policy: String,
    /// Last change (µs).
    pub updated_at: i64,
}

/// An upstream as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UpstreamRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Name, unique in the workspace.
    pub name: String,
    /// `openai`, `anthropic` or `openai_compatible`.
    pub kind: String,
    /// Base URL (`https://api.openai.com/v1`, …).
    pub base_url: String,
    /// The provider key, sealed (none for a self-hosted model that needs none).
    pub sealed_key: Option<Vec<u8>>,
    /// Models served, as a JSON array.
    pub models: String,
    /// Aliases (name → model), as a JSON object.
    pub aliases: String,
    /// Whether the base URL may be a private address.
    pub allow_private_network: bool,
    /// Created (µs).
    pub created_at: i64,
    /// Last change (µs).
    pub updated_at: i64,
}

/// A gateway key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// The user it belongs to (none for a workspace key).
    pub user_id: Option<Uuid>,
    /// The agent session it was minted for.
    pub session_id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// The secret's last characters, to recognise it by.
    pub hint: String,
    /// Who created it.
    pub created_by: Uuid,
    /// Created (µs).
    pub created_at: i64,
    /// Ends then (µs).
    pub expires_at: Option<i64>,
    /// Revoked (µs).
    pub revoked_at: Option<i64>,
}

const KEY_COLUMNS: &str = "id, workspace_id, user_id, session_id, name, hint, created_by, created_at, expires_at, \
     revoked_at";
const UPSTREAM_COLUMNS: &str = "id, workspace_id, name, kind, base_url, sealed_key, models, \
     aliases, allow_private_network, created_at, updated_at";
const CALL_COLUMNS: &str = "id, workspace_id, key_id, user_id, session_id, automation_run_id, \
     request_id, endpoint, model, upstream_id, status, latency_us, tokens_in, tokens_out, cost, \
     decisions, sealed_content, created_at";

/// One call's record.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CallRow {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// The gateway key used.
    pub key_id: Uuid,
    /// The user the key belongs to, or the session's owner.
    pub user_id: Option<Uuid>,
    /// The agent session, for a session's token.
    pub session_id: Option<Uuid>,
    /// The automation run that started that session.
    pub automation_run_id: Option<Uuid>,
    /// The correlation id (`x-request-id`).
    pub request_id: String,
    /// `chat.completions`, `completions`, `embeddings`, `messages`.
    pub endpoint: String,
    /// The model asked for (after aliases).
    pub model: String,
    /// The upstream it went to.
    pub upstream_id: Option<Uuid>,
    /// The status answered.
    pub status: i32,
    /// Time spent (µs).
    pub latency_us: i64,
    /// Tokens in, as the upstream reported.
    pub tokens_in: i64,
    /// Tokens out.
    pub tokens_out: i64,
    /// Cost, in millionths.
    pub cost: i64,
    /// The filters' decisions, as JSON.
    pub decisions: String,
    /// Prompt and response, sealed, when captured.
    pub sealed_content: Option<Vec<u8>>,
    /// When (µs).
    pub created_at: i64,
}

/// Daily usage of one user and model.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    /// Day (days since 1970-01-01).
    pub day: i32,
    /// User (the zero id for a workspace key).
    pub user_id: Uuid,
    /// Model.
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Tokens in.
    pub tokens_in: i64,
    /// Tokens out.
    pub tokens_out: i64,
    /// Cost, in millionths.
    pub cost: i64,
}

/// One quota counter: whose, which period, which period's start.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterKey {
    /// Workspace.
    pub workspace_id: Uuid,
    /// `w`, or a user id.
    pub subject: String,
    /// `minute`, `day` or `month`.
    pub period: &'static str,
    /// The period's start (µs).
    pub start: i64,
}

/// Requests, tokens and cost, in that order.
pub type Amounts = [i64; 3];

/// What a reservation asks of one counter.
#[derive(Debug, Clone)]
pub struct Take {
    /// Which counter.
    pub key: CounterKey,
    /// What the call needs: refused when it does not fit under the limits.
    pub need: Amounts,
    /// What the node would like to hold (at least `need`; more is a lease).
    pub want: Amounts,
    /// The limits (none: no limit on that amount).
    pub limits: [Option<i64>; 3],
}

impl WorkspaceTx {
    /// The workspace's policy, if it set one.
    pub async fn llm_policy(&mut self) -> Result<Option<PolicyRow>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, PolicyRow>(
            "SELECT workspace_id, enabled, session_gateway, policy, updated_at \
             FROM llm_policies WHERE workspace_id = $1"
        )
        .bind(ws)
        .fetch_optional(c)
        .await)?)
    }

    /// Sets the workspace's policy.
    pub async fn put_llm_policy(&mut self, p: &PolicyRow) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO llm_policies (workspace_id, enabled, session_gateway, policy, \
             updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id) DO UPDATE SET \
             enabled = excluded.enabled, session_gateway = excluded.session_gateway, \
             policy = excluded.policy, updated_at = excluded.updated_at"
        )
        .bind(ws)
        .bind(p.enabled)
        .bind(p.session_gateway)
        .bind(&p.policy)
        .bind(p.updated_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The workspace's upstreams, by name.
    pub async fn llm_upstreams(&mut self) -> Result<Vec<UpstreamRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {UPSTREAM_COLUMNS} FROM llm_upstreams WHERE workspace_id = $1 ORDER BY name"
        );
        Ok(on_tx!(self.tx_mut(), |c| {
            sqlx::query_as::<_, UpstreamRow>(sqlx::AssertSqlSafe(sql))
                .bind(ws)
                .fetch_all(c)
                .await
        })?)
    }

    /// Adds an upstream, or replaces the one with its id. `false` when its name is taken by
    /// another.
    pub async fn put_llm_upstream(&mut self, u: &UpstreamRow) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        let taken = on_tx!(self.tx_mut(), |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM llm_upstreams WHERE workspace_id = $1 AND name = $2 \
             AND id <> $3"
        )
        .bind(ws)
        .bind(&u.name)
        .bind(u.id)
        .fetch_one(c)
        .await)?;
        if taken > 0 {
            return Ok(false);
        }
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO llm_upstreams (id, workspace_id, name, kind, base_url, sealed_key, \
             models, aliases, allow_private_network, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE \
             SET name = excluded.name, kind = excluded.kind, base_url = excluded.base_url, \
             sealed_key = excluded.sealed_key, models = excluded.models, \
             aliases = excluded.aliases, allow_private_network = excluded.allow_private_network, \
             updated_at = excluded.updated_at"
        )
        .bind(u.id)
        .bind(ws)
        .bind(&u.name)
        .bind(&u.kind)
        .bind(&u.base_url)
        .bind(&u.sealed_key)
        .bind(&u.models)
        .bind(&u.aliases)
        .bind(u.allow_private_network)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(true)
    }

    /// Removes an upstream (`true` when it existed).
    pub async fn delete_llm_upstream(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query(
            "DELETE FROM llm_upstreams WHERE workspace_id = $1 AND id = $2"
        )
        .bind(ws)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Stores a new gateway key under the SHA-256 of its secret.
    pub async fn insert_llm_key(&mut self, k: &KeyRow, hash: &[u8]) -> Result<(), StoreError> {
        let ws = self.workspace().uuid();
        on_tx!(self.tx_mut(), |c| sqlx::query(
            "INSERT INTO llm_keys (id, workspace_id, user_id, session_id, name, hash, hint, \
             created_by, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)"
        )
        .bind(k.id)
        .bind(ws)
        .bind(k.user_id)
        .bind(k.session_id)
        .bind(&k.name)
        .bind(hash)
        .bind(&k.hint)
        .bind(k.created_by)
        .bind(k.created_at)
        .bind(k.expires_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The workspace's keys (of one user, when given), newest first; sessions' tokens are
    /// left out.
    pub async fn llm_keys(&mut self, user: Option<Uuid>) -> Result<Vec<KeyRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM llm_keys WHERE workspace_id = $1 AND session_id IS NULL \
             AND ($2 IS NULL OR user_id = $2) ORDER BY created_at DESC LIMIT 500"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, KeyRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(user)
        .fetch_all(c)
        .await)?)
    }

    /// One key of the workspace.
    pub async fn llm_key(&mut self, id: Uuid) -> Result<Option<KeyRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!("SELECT {KEY_COLUMNS} FROM llm_keys WHERE workspace_id = $1 AND id = $2");
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, KeyRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Revokes live keys by id (`ids` of this workspace only) and logs each revocation, so
    /// every node refuses them at once; returns those it revoked.
    pub async fn revoke_llm_keys(
        &mut self,
        ids: &[Uuid],
        now: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let ws = self.workspace().uuid();
        let mut done = Vec::new();
        for id in ids {
            let n = on_tx!(self.tx_mut(), |c| sqlx::query(
                "UPDATE llm_keys SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2 \
                 AND revoked_at IS NULL"
            )
            .bind(ws)
            .bind(*id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            if n == 1 {
                self.tx_mut().log_revocation("session", *id, now).await?;
                done.push(*id);
            }
        }
        Ok(done)
    }

    /// The live tokens of an agent session.
    pub async fn llm_session_keys(&mut self, session: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM llm_keys WHERE workspace_id = $1 AND session_id = $2 \
             AND revoked_at IS NULL"
        )
        .bind(ws)
        .bind(session)
        .fetch_all(c)
        .await)?)
    }

    /// Call records, newest first, before the record `before` (a cursor).
    pub async fn llm_calls(
        &mut self,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<CallRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM llm_calls WHERE workspace_id = $1 \
             AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, CallRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(before)
        .bind(limit)
        .fetch_all(c)
        .await)?)
    }

    /// One call record.
    pub async fn llm_call(&mut self, id: Uuid) -> Result<Option<CallRow>, StoreError> {
        let ws = self.workspace().uuid();
        let sql =
            format!("SELECT {CALL_COLUMNS} FROM llm_calls WHERE workspace_id = $1 AND id = $2");
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, CallRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Usage between two days (inclusive), by day, user and model.
    pub async fn llm_usage(&mut self, from: i32, to: i32) -> Result<Vec<UsageRow>, StoreError> {
        let ws = self.workspace().uuid();
        Ok(on_tx!(self.tx_mut(), |c| sqlx::query_as::<_, UsageRow>(
            "SELECT day, user_id, model, requests, tokens_in, tokens_out, cost FROM llm_usage \
             WHERE workspace_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, user_id, model"
        )
        .bind(ws)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await)?)
    }
}

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
