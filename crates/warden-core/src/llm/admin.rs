//! Administering the gateway: a workspace's policy and upstreams, gateway keys, the tokens
//! agent sessions get, call records and their captured content, usage reports, and the
//! platform's kill switch. Every change is audited; provider keys are write-only.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_llm::upstream::{Kind, check_base_url};
use warden_store::llm::{KeyRow, PolicyRow, UpstreamRow};
use warden_store::tenancy::{PlatformGrant, WorkspaceGrant, WorkspaceTx};
use zeroize::Zeroizing;

use super::policy::Policy;
use super::{KEY_PREFIX, upstream_key_context};
use crate::{Code, CoreError, CoreResult, Ctx, Op};

const DAY_US: i64 = 86_400_000_000;

/// A workspace's gateway settings, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    /// Whether the gateway serves the workspace.
    pub enabled: bool,
    /// Whether agent sessions get the gateway URL and a token instead of provider keys.
    pub session_gateway: bool,
    /// Quotas, prices, filters, capture.
    pub policy: Policy,
}

/// Reads a workspace's settings (defaults when never set).
pub async fn policy(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<PolicyView> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.llm_policy().await?;
    tx.commit().await?;
    Ok(match row {
        Some(r) => PolicyView {
            enabled: r.enabled,
            session_gateway: r.session_gateway,
            policy: Policy::from_stored(&r.policy),
        },
        None => PolicyView {
            enabled: true,
            session_gateway: false,
            policy: Policy::default(),
        },
    })
}

/// Sets a workspace's settings.
pub async fn set_policy(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    view: PolicyView,
) -> CoreResult<PolicyView> {
    view.policy.check()?;
    let mut tx = ctx.store.scoped(grant).await?;
    tx.put_llm_policy(&PolicyRow {
        workspace_id: grant.workspace().uuid(),
        enabled: view.enabled,
        session_gateway: view.session_gateway,
        policy: serde_json::to_string(&view.policy).map_err(|e| CoreError::internal(&e))?,
        updated_at: op.now_us(),
    })
    .await?;
    let f = &view.policy.filters;
    let event = op.event(
        "llm.policy_updated",
        "workspace",
        Some(grant.workspace().to_string()),
        json!({
            "enabled": view.enabled,
            "session_gateway": view.session_gateway,
            "quotas": view.policy.quotas,
            "filters": {
                "secrets": f.secrets.as_str(),
                "personal_data": f.personal_data.as_str(),
                "deny_list_phrases": f.deny_list.len(),
                "deny_action": f.deny_action.as_str(),
                "prompt_injection": f.prompt_injection.as_str(),
                "responses": f.responses,
            },
            "capture": view.policy.capture,
            "priced_models": view.policy.prices.len(),
        }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    ctx.llm.forget_workspace(grant.workspace().uuid());
    Ok(view)
}

/// An upstream, as shown (never its key).
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// `openai`, `anthropic`, `openai_compatible`.
    pub kind: &'static str,
    /// Base URL.
    pub base_url: String,
    /// Whether a provider key is stored.
    pub has_key: bool,
    /// Models served.
    pub models: Vec<String>,
    /// Aliases (name → model).
    pub aliases: BTreeMap<String, String>,
    /// Whether the base URL may be private.
    pub allow_private_network: bool,
    /// Last change.
    pub updated_at: String,
}

fn upstream_view(r: &UpstreamRow) -> UpstreamView {
    UpstreamView {
        id: r.id,
        name: r.name.clone(),
        kind: Kind::parse(&r.kind).map_or("openai_compatible", Kind::as_str),
        base_url: r.base_url.clone(),
        has_key: r.sealed_key.is_some(),
        models: serde_json::from_str(&r.models).unwrap_or_default(),
        aliases: serde_json::from_str(&r.aliases).unwrap_or_default(),
        allow_private_network: r.allow_private_network,
        updated_at: crate::op::rfc3339(r.updated_at),
    }
}

/// What an administrator sends for an upstream.
#[derive(Debug, Clone)]
pub struct UpstreamInput {
    /// Name (1–64 characters of `a-z 0-9 - _`).
    pub name: String,
    /// Protocol.
    pub kind: String,
    /// Base URL (the preset's when absent).
    pub base_url: Option<String>,
    /// The provider key: absent keeps the stored one, empty removes it.
    pub api_key: Option<Zeroizing<String>>,
    /// Models served (at least one).
    pub models: Vec<String>,
    /// Aliases.
    pub aliases: BTreeMap<String, String>,
    /// Whether the base URL may be a private address (needs the operator's permission,
    /// `llm.allow_private_upstreams`).
    pub allow_private_network: bool,
}

/// The workspace's upstreams.
pub async fn upstreams(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<UpstreamView>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.llm_upstreams().await?;
    tx.commit().await?;
    Ok(rows.iter().map(upstream_view).collect())
}

fn model_name_ok(m: &str) -> bool {
    !m.is_empty() && m.len() <= 200 && !m.chars().any(char::is_control)
}

/// Adds (`id` absent) or changes an upstream.
pub async fn put_upstream(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: Option<Uuid>,
    input: UpstreamInput,
) -> CoreResult<UpstreamView> {
    let name = input.name.trim().to_owned();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(CoreError::invalid(
            "name",
            "1 to 64 characters of a-z, 0-9, '-' and '_'.",
        ));
    }
    let kind = Kind::parse(&input.kind).ok_or_else(|| {
        CoreError::invalid("kind", "One of openai, anthropic, openai_compatible.")
    })?;
    let base_url = match input.base_url.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => u.to_owned(),
        _ => kind
            .default_base_url()
            .ok_or_else(|| {
                CoreError::invalid(
                    "base_url",
                    "An OpenAI-compatible upstream needs its base URL.",
                )
            })?
            .to_owned(),
    };
    if input.allow_private_network && !ctx.llm.config.allow_private_upstreams {
        return Err(CoreError::invalid(
            "allow_private_network",
            "This server does not allow upstreams on private networks (llm.allow_private_upstreams).",
        ));
    }
    check_base_url(&base_url, input.allow_private_network).map_err(|_| {
        CoreError::invalid(
            "base_url",
            "Use an https URL of a public host, without credentials or query (a private host \
             only where this server allows it; never a link-local address).",
        )
    })?;
    if input.models.is_empty()
        || input.models.len() > 200
        || !input.models.iter().all(|m| model_name_ok(m))
    {
        return Err(CoreError::invalid(
            "models",
            "Name 1 to 200 models the upstream serves.",
        ));
    }
    if input.aliases.len() > 200
        || input
            .aliases
            .iter()
            .any(|(a, m)| !model_name_ok(a) || !input.models.contains(m))
    {
        return Err(CoreError::invalid(
            "aliases",
            "Each alias names one of the upstream's models.",
        ));
    }
    let mut tx = ctx.store.scoped(grant).await?;
    let ws = grant.workspace().uuid();
    let existing = match id {
        Some(id) => Some(
            tx.llm_upstreams()
                .await?
                .into_iter()
                .find(|u| u.id == id)
                .ok_or(Code::NotFound)?,
        ),
        None => None,
    };
    let id = id.unwrap_or_else(Uuid::now_v7);
    let sealed_key = match (&input.api_key, &existing) {
        (Some(k), _) if k.is_empty() => None,
        (Some(k), _) => {
            if k.len() > 4096 || k.chars().any(char::is_control) {
                return Err(CoreError::invalid(
                    "api_key",
                    "At most 4096 printable characters.",
                ));
            }
            Some(
                ctx.keyring
                    .seal(&upstream_key_context(ws, id), k.as_bytes())
                    .map_err(|e| CoreError::internal(&e))?,
            )
        }
        (None, Some(e)) => e.sealed_key.clone(),
        (None, None) => None,
    };
    let now = op.now_us();
    let row = UpstreamRow {
        id,
        workspace_id: ws,
        name,
        kind: kind.as_str().to_owned(),
        base_url,
        sealed_key,
        models: serde_json::to_string(&input.models).map_err(|e| CoreError::internal(&e))?,
        aliases: serde_json::to_string(&input.aliases).map_err(|e| CoreError::internal(&e))?,
        allow_private_network: input.allow_private_network,
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    if !tx.put_llm_upstream(&row).await? {
        return Err(CoreError::new(Code::LlmUpstreamNameTaken).on_field("name"));
    }
    let event = op.event(
        if existing.is_some() {
            "llm.upstream_updated"
        } else {
            "llm.upstream_created"
        },
        "llm_upstream",
        Some(id.to_string()),
        json!({
            "name": row.name, "kind": row.kind, "base_url": row.base_url,
            "models": input.models, "key_changed": input.api_key.is_some(),
            "allow_private_network": row.allow_private_network,
        }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    ctx.llm.forget_workspace(ws);
    Ok(upstream_view(&row))
}

/// Removes an upstream.
pub async fn delete_upstream(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: Uuid,
) -> CoreResult<()> {
    let mut tx = ctx.store.scoped(grant).await?;
    if !tx.delete_llm_upstream(id).await? {
        return Err(Code::NotFound.into());
    }
    let event = op.event(
        "llm.upstream_deleted",
        "llm_upstream",
        Some(id.to_string()),
        json!({}),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    ctx.llm.forget_workspace(grant.workspace().uuid());
    Ok(())
}

/// A gateway key, as shown (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// `workspace` or `user`.
    pub scope: &'static str,
    /// The user, for a user's key.
    pub user_id: Option<Uuid>,
    /// The secret's last characters.
    pub hint: String,
    /// Created.
    pub created_at: String,
    /// Ends.
    pub expires_at: Option<String>,
    /// Revoked.
    pub revoked_at: Option<String>,
}

fn key_view(r: &KeyRow) -> KeyView {
    KeyView {
        id: r.id,
        name: r.name.clone(),
        scope: if r.user_id.is_some() {
            "user"
        } else {
            "workspace"
        },
        user_id: r.user_id,
        hint: r.hint.clone(),
        created_at: crate::op::rfc3339(r.created_at),
        expires_at: r.expires_at.map(crate::op::rfc3339),
        revoked_at: r.revoked_at.map(crate::op::rfc3339),
    }
}

/// A key just made: shown once.
pub struct NewKey {
    /// What is stored.
    pub view: KeyView,
    /// The secret.
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

async fn issue(
    tx: &mut WorkspaceTx,
    user: Option<Uuid>,
    session: Option<Uuid>,
    name: &str,
    by: Uuid,
    now: i64,
    expires_at: Option<i64>,
) -> CoreResult<(KeyRow, Zeroizing<String>)> {
    let issued =
        warden_crypto::token::issue_checked(KEY_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let hint: String = issued
        .secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let row = KeyRow {
        id: Uuid::now_v7(),
        workspace_id: tx.workspace().uuid(),
        user_id: user,
        session_id: session,
        name: name.to_owned(),
        hint,
        created_by: by,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    tx.insert_llm_key(&row, &issued.hash).await?;
    Ok((row, issued.secret))
}

/// Creates a key: a user's own (`llm.create`), or the workspace's (`llm.update`).
pub async fn create_key(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    name: &str,
    workspace_key: bool,
    expires_in_days: Option<i64>,
) -> CoreResult<NewKey> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid("name", "1 to 100 characters."));
    }
    if workspace_key && !grant.holds(Permission::LLM_UPDATE) {
        return Err(Code::PermissionNotHeld.into());
    }
    if let Some(d) = expires_in_days
        && !(1..=366).contains(&d)
    {
        return Err(CoreError::invalid("expires_in_days", "1 to 366 days."));
    }
    let now = op.now_us();
    let mut tx = ctx.store.scoped(grant).await?;
    let user = (!workspace_key).then(|| grant.user_id());
    let (row, secret) = issue(
        &mut tx,
        user,
        None,
        name,
        grant.user_id(),
        now,
        expires_in_days.map(|d| now + d * DAY_US),
    )
    .await?;
    let event = op.event(
        "llm.key_created",
        "llm_key",
        Some(row.id.to_string()),
        json!({ "name": row.name, "scope": if workspace_key { "workspace" } else { "user" },
                "expires_at": row.expires_at.map(crate::op::rfc3339) }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(NewKey {
        view: key_view(&row),
        secret,
    })
}

/// The keys the caller may see: all of the workspace's with `llm.read`, else their own (with
/// `llm.create`, which lets them have keys). The route asks only for `workspaces.read`, so an
/// archived workspace's keys can still be listed.
pub async fn keys(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<KeyView>> {
    if !grant.holds(Permission::LLM_READ) && !grant.holds(Permission::LLM_CREATE) {
        return Err(Code::Forbidden.into());
    }
    let mut tx = ctx.store.scoped(grant).await?;
    let only = (!grant.holds(Permission::LLM_READ)).then(|| grant.user_id());
    let rows = tx.llm_keys(only).await?;
    tx.commit().await?;
    Ok(rows.iter().map(key_view).collect())
}

/// Revokes a key: one's own, or any with `llm.delete`. Every node refuses it at once.
pub async fn revoke_key(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: Uuid) -> CoreResult<()> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.llm_key(id).await?.ok_or(Code::NotFound)?;
    let own = row.user_id == Some(grant.user_id());
    if !own && !grant.holds(Permission::LLM_DELETE) {
        return Err(Code::NotFound.into());
    }
    if tx.revoke_llm_keys(&[id], op.now_us()).await?.is_empty() {
        return Err(Code::NotFound.into());
    }
    let event = op.event(
        "llm.key_revoked",
        "llm_key",
        Some(id.to_string()),
        json!({ "name": row.name }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    ctx.llm.forget_keys();
    ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
    Ok(())
}

/// Mints the token an agent session uses instead of the provider key (inside the session's
/// transaction). It ends when the session does, and after a day at most.
pub async fn mint_session_token(
    tx: &mut WorkspaceTx,
    session: Uuid,
    owner: Uuid,
    now: i64,
) -> CoreResult<Zeroizing<String>> {
    let (_, secret) = issue(
        tx,
        Some(owner),
        Some(session),
        "agent session",
        owner,
        now,
        Some(now + DAY_US),
    )
    .await?;
    Ok(secret)
}

/// Whether a workspace gives its sessions a gateway token.
pub async fn sessions_use_gateway(tx: &mut WorkspaceTx) -> CoreResult<bool> {
    Ok(tx
        .llm_policy()
        .await?
        .is_some_and(|p| p.enabled && p.session_gateway))
}

/// A session ended: its gateway tokens end with it, on every node.
pub async fn session_ended(ctx: &Ctx, session: Uuid, now: i64) {
    match ctx.store.llm_end_session_keys(session, now).await {
        Ok(0) => {}
        Ok(_) => {
            ctx.llm.forget_keys();
            ctx.identity.propagate(&ctx.store, ctx.clock.as_ref()).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot end a session's gateway tokens"),
    }
}

/// Ends a session's tokens (when the session ends), in the caller's transaction.
pub async fn end_session_tokens(
    tx: &mut WorkspaceTx,
    session: Uuid,
    now: i64,
) -> CoreResult<usize> {
    let ids = tx.llm_session_keys(session).await?;
    Ok(tx.revoke_llm_keys(&ids, now).await?.len())
}

/// The platform's kill switch.
pub async fn switch(ctx: &Ctx) -> CoreResult<bool> {
    Ok(ctx.store.llm_enabled().await?)
}

/// Turns the gateway on or off for every workspace.
pub async fn set_switch(
    ctx: &Ctx,
    op: &Op,
    _admin: &PlatformGrant,
    enabled: bool,
) -> CoreResult<bool> {
    let mut tx = ctx.store.begin().await?;
    warden_store::Store::set_llm_enabled(&mut tx, enabled, op.now_us()).await?;
    let event = op.event(
        if enabled {
            "llm.gateway_enabled"
        } else {
            "llm.gateway_disabled"
        },
        "platform",
        None,
        json!({ "enabled": enabled }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    ctx.llm.forget_switch();
    Ok(enabled)
}

/// Applies retention: each workspace's record and content periods (defaults for those
/// without a policy), and counters of periods long over.
pub async fn prune(ctx: &Ctx, now: i64) {
    let result = async {
        let mut tx = ctx.store.begin_llm().await?;
        let policies: HashMap<Uuid, Policy> = tx
            .policies()
            .await?
            .into_iter()
            .map(|(w, p)| (w, Policy::from_stored(&p)))
            .collect();
        for (ws, p) in &policies {
            tx.prune_calls(
                Some(*ws),
                now - p.record_retention_days * DAY_US,
                now - p.capture.retention_days * DAY_US,
            )
            .await?;
        }
        let d = Policy::default();
        tx.prune_calls(
            None,
            now - d.record_retention_days * DAY_US,
            now - d.capture.retention_days * DAY_US,
        )
        .await?;
        tx.prune_counters(now - 40 * DAY_US).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot prune LLM call records");
    }
}
