//! The LLM gateway's rows: a workspace's policy and upstreams, gateway keys, quota counters,
//! call records, daily usage and the alerts sent.
//!
//! A workspace manages its own rows through its scoped transaction. The gateway's hot path
//! (a key looked up by its hash before any workspace is known, the configuration it caches,
//! quota reservations) and its record writer work under the `warden.llm` scope (PostgreSQL
//! row-level security), through [`LlmTx`].

use uuid::Uuid;

use crate::StoreError;
use crate::db::on_tx;
use crate::tenancy::WorkspaceTx;

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

mod gateway;
pub use gateway::LlmTx;
