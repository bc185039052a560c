//! What an organization uses: per workspace, its members, agent sessions, automation runs and
//! language-model traffic. Read for the organization's admins; each workspace is entered the
//! way a request enters it (on PostgreSQL, row-level security bounds every count to it).

use uuid::Uuid;
use warden_domain::organizations::OrgId;
use warden_domain::tenancy::WorkspaceId;

use super::decide::{enter_workspace, set_scope};
use crate::db::on_tx;
use crate::{Store, StoreError};

/// The most workspaces one usage report lists (an organization's report is one page).
pub const USAGE_WORKSPACES: i64 = 1_000;

/// One workspace's use since a given instant (sessions, runs) or day (model traffic).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct WorkspaceUsage {
    /// The workspace.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Its members.
    pub members: i64,
    /// Agent sessions started in the period.
    pub sessions: i64,
    /// Agent sessions waiting or running now.
    pub active_sessions: i64,
    /// Automation runs started in the period.
    pub automation_runs: i64,
    /// Model calls through the gateway in the period.
    pub llm_requests: i64,
    /// Their tokens, in and out.
    pub llm_tokens: i64,
    /// Their cost (the price table's units).
    pub llm_cost: i64,
}

#[derive(sqlx::FromRow)]
struct Listed {
    id: Uuid,
    name: String,
    archived: bool,
}

const COUNTS_SQL: &str = "SELECT \
    (SELECT COUNT(*) FROM workspace_members WHERE workspace_id = $1) AS members, \
    (SELECT COUNT(*) FROM agent_sessions WHERE workspace_id = $1 AND created_at >= $2) AS sessions, \
    (SELECT COUNT(*) FROM agent_sessions WHERE workspace_id = $1 \
        AND status IN ('waiting', 'running')) AS active_sessions, \
    (SELECT COUNT(*) FROM automation_runs WHERE workspace_id = $1 AND created_at >= $2) AS runs, \
    (SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM llm_usage \
        WHERE workspace_id = $1 AND day >= $3) AS llm_requests, \
    (SELECT CAST(COALESCE(SUM(tokens_in + tokens_out), 0) AS BIGINT) FROM llm_usage \
        WHERE workspace_id = $1 AND day >= $3) AS llm_tokens, \
    (SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM llm_usage \
        WHERE workspace_id = $1 AND day >= $3) AS llm_cost";

impl Store {
    /// The use of `org`'s workspaces (at most [`USAGE_WORKSPACES`], by name) since `since_us`
    /// (sessions and runs) and day `since_day` (model traffic, days since the epoch).
    pub async fn org_usage(
        &self,
        org: OrgId,
        since_us: i64,
        since_day: i32,
    ) -> Result<Vec<WorkspaceUsage>, StoreError> {
        let mut tx = self.begin_read().await?;
        set_scope(&mut tx, "warden.org_id", &org.to_string()).await?;
        set_scope(&mut tx, "warden.platform", "on").await?;
        let listed = on_tx!(tx, |c| sqlx::query_as::<_, Listed>(
            "SELECT id, name, archived_at IS NOT NULL AS archived FROM workspaces \
             WHERE organization_id = $1 ORDER BY name, id LIMIT $2"
        )
        .bind(org.uuid())
        .bind(USAGE_WORKSPACES)
        .fetch_all(c)
        .await)?;
        set_scope(&mut tx, "warden.platform", "").await?;
        let mut out = Vec::with_capacity(listed.len());
        for ws in listed {
            enter_workspace(&mut tx, WorkspaceId::from_uuid(ws.id), Some(org)).await?;
            let counts: (i64, i64, i64, i64, i64, i64, i64) =
                on_tx!(tx, |c| sqlx::query_as(COUNTS_SQL)
                    .bind(ws.id)
                    .bind(since_us)
                    .bind(since_day)
                    .fetch_one(c)
                    .await)?;
            out.push(WorkspaceUsage {
                id: ws.id,
                name: ws.name,
                archived: ws.archived,
                members: counts.0,
                sessions: counts.1,
                active_sessions: counts.2,
                automation_runs: counts.3,
                llm_requests: counts.4,
                llm_tokens: counts.5,
                llm_cost: counts.6,
            });
        }
        tx.commit().await?;
        Ok(out)
    }
}
