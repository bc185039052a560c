//! Event sources: a workspace's public webhook URLs, and what they do with a delivery.
//!
//! Each source has a URL `/webhooks/{token}` whose token is 256 random bits, shown once and
//! kept only as its SHA-256; rotating it replaces the hash in one statement, so the old URL
//! stops working on every node at once. A source may hold a signing secret (sealed by the
//! keyring, write-only) and then accepts only deliveries signed as its kind says
//! ([`verify`]). A matching delivery starts the automation the source points at.
//! The intake that answers the URL is [`intake`].

pub mod intake;
pub mod verify;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;
use warden_crypto::keyring::Context;
use warden_store::event_sources::{SourceRow, SourceSpec};
use warden_store::tenancy::WorkspaceGrant;
use zeroize::Zeroizing;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// The prefix of every webhook URL token (so secret scanners recognise a leaked one).
pub const TOKEN_PREFIX: &str = "wwh_";

/// What a person sends to create or change an event source (not its token or secret).
#[derive(Debug, Clone, Default)]
pub struct SourceInput {
    /// Name, unique in the workspace.
    pub name: String,
    /// `generic`, `github`, `stripe` or `standard`.
    pub kind: String,
    /// Default on.
    pub enabled: Option<bool>,
    /// Generic: the signature header (default `X-Signature`).
    pub signature_header: Option<String>,
    /// Generic: a delivery-id header.
    pub delivery_header: Option<String>,
    /// Accept only these event types.
    pub events: Option<Vec<String>>,
    /// Accept only deliveries whose body holds `match_value` at this JSON pointer.
    pub match_pointer: Option<String>,
    /// The JSON value expected there.
    pub match_value: Option<serde_json::Value>,
    /// The automation a matching delivery runs.
    pub automation_id: Option<String>,
    /// Per-minute limit (default from configuration).
    pub rate_per_minute: Option<i64>,
    /// Backlog (default from configuration).
    pub backlog: Option<i64>,
}

const KINDS: [&str; 4] = ["generic", "github", "stripe", "standard"];

/// Request headers that carry credentials: never kept with a delivery (the inbox stores what
/// is kept), so no scheme may read its signature or delivery id from them.
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

fn header_name(field: &'static str, name: &str) -> CoreResult<String> {
    if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(CoreError::invalid(
            field,
            "must not be a credential header (Authorization, Cookie, Proxy-Authorization)",
        ));
    }
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(CoreError::invalid(field, "must be an HTTP header name"))
    }
}

fn spec_of(ctx: &Ctx, input: &SourceInput) -> CoreResult<SourceSpec> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    if !KINDS.contains(&input.kind.as_str()) {
        return Err(CoreError::invalid(
            "kind",
            "must be generic, github, stripe or standard",
        ));
    }
    let generic = input.kind == "generic";
    if !generic && (input.signature_header.is_some() || input.delivery_header.is_some()) {
        return Err(CoreError::invalid(
            "signature_header",
            "only a generic source names its headers; the others use their provider's",
        ));
    }
    let signature_header = input
        .signature_header
        .as_deref()
        .map(|h| header_name("signature_header", h))
        .transpose()?;
    let delivery_header = input
        .delivery_header
        .as_deref()
        .map(|h| header_name("delivery_header", h))
        .transpose()?;
    let filter_events = match &input.events {
        None => None,
        Some(list) => {
            if list.is_empty()
                || list.len() > 50
                || list
                    .iter()
                    .any(|e| e.is_empty() || e.len() > 100 || e.chars().any(char::is_control))
            {
                return Err(CoreError::invalid(
                    "events",
                    "must list 1 to 50 event types of 1 to 100 characters",
                ));
            }
            Some(serde_json::to_string(list).unwrap_or_default())
        }
    };
    let (filter_pointer, filter_value) = match (&input.match_pointer, &input.match_value) {
        (None, None) => (None, None),
        (Some(p), Some(v)) => {
            if !p.starts_with('/') || p.len() > 500 {
                return Err(CoreError::invalid(
                    "match_pointer",
                    "must be a JSON pointer (RFC 6901) such as /action, at most 500 characters",
                ));
            }
            let v = v.to_string();
            if v.len() > 4096 {
                return Err(CoreError::invalid(
                    "match_value",
                    "must be at most 4 KiB of JSON",
                ));
            }
            (Some(p.clone()), Some(v))
        }
        _ => {
            return Err(CoreError::invalid(
                "match_pointer",
                "give match_pointer and match_value together",
            ));
        }
    };
    let automation_id = input
        .automation_id
        .as_deref()
        .map(str::parse::<Uuid>)
        .transpose()
        .map_err(|_| CoreError::invalid("automation_id", "must be an automation id"))?;
    let limit = |field: &'static str, v: Option<i64>, default: i64, why: &'static str| {
        let v = v.unwrap_or(default);
        let max = if field == "backlog" {
            100_000
        } else {
            1_000_000
        };
        if (1..=max).contains(&v) {
            Ok(v)
        } else {
            Err(CoreError::invalid(field, why))
        }
    };
    Ok(SourceSpec {
        name: name.to_owned(),
        kind: input.kind.clone(),
        enabled: input.enabled.unwrap_or(true),
        signature_header,
        delivery_header,
        filter_events,
        filter_pointer,
        filter_value,
        automation_id,
        rate_per_minute: limit(
            "rate_per_minute",
            input.rate_per_minute,
            ctx.automations.webhook_rate_per_minute,
            "must be 1 to 1000000",
        )?,
        backlog: limit(
            "backlog",
            input.backlog,
            ctx.automations.webhook_backlog,
            "must be 1 to 100000",
        )?,
    })
}

/// The associated data a source's secret is sealed with: it opens only for that source.
pub fn secret_context(source: Uuid) -> Context {
    Context::new("warden.event_source_secret").with(source.as_bytes())
}

fn check_secret(kind: &str, secret: &str) -> CoreResult<()> {
    if kind == "standard" {
        let key = verify::key_bytes(&verify::Scheme::Standard, secret.as_bytes());
        if !key.is_some_and(|k| (24..=64).contains(&k.len())) {
            return Err(CoreError::invalid(
                "secret",
                "a Standard Webhooks secret is whsec_ followed by 24 to 64 bytes in base64",
            ));
        }
    } else if !(16..=512).contains(&secret.len()) {
        return Err(CoreError::invalid("secret", "must be 16 to 512 bytes"));
    }
    Ok(())
}

async fn check_automation(
    tx: &mut warden_store::tenancy::WorkspaceTx,
    spec: &SourceSpec,
) -> CoreResult<()> {
    if let Some(a) = spec.automation_id
        && tx.automation(a).await?.is_none()
    {
        return Err(CoreError::invalid(
            "automation_id",
            "names no automation of this workspace",
        ));
    }
    Ok(())
}

/// A token shown once: the URL path's secret part.
pub struct NewToken(pub Zeroizing<String>);

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewToken([redacted])")
    }
}

/// The first characters of a token after its prefix: enough to tell tokens apart in a list
/// or a log, never enough to use.
pub fn token_hint(token: &str) -> String {
    let rest = token.strip_prefix(TOKEN_PREFIX).unwrap_or(token);
    format!(
        "{TOKEN_PREFIX}{}…",
        rest.chars().take(4).collect::<String>()
    )
}

fn source_id(id: &str) -> CoreResult<Uuid> {
    id.parse().map_err(|_| Code::NotFound.into())
}

/// Creates an event source; returns it with its URL token, shown this once.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    input: &SourceInput,
    secret: Option<SecretString>,
) -> CoreResult<(SourceRow, NewToken)> {
    let spec = spec_of(ctx, input)?;
    if let Some(s) = &secret {
        check_secret(&spec.kind, s.expose_secret())?;
    }
    let issued = warden_crypto::token::issue(TOKEN_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let hint = token_hint(&issued.secret);
    let id = Uuid::now_v7();
    let mut tx = ctx.store.scoped(grant).await?;
    check_automation(&mut tx, &spec).await?;
    if !tx
        .insert_event_source(id, &spec, &issued.hash, &hint, op.now_us())
        .await?
    {
        return Err(Code::EventSourceExists.into());
    }
    if let Some(s) = &secret {
        let sealed = ctx
            .keyring
            .seal(&secret_context(id), s.expose_secret().as_bytes())
            .map_err(|e| CoreError::internal(&e))?;
        tx.set_event_source_secret(id, Some(&sealed), op.now_us())
            .await?;
    }
    let event = op.event(
        "event_source.created",
        "event_source",
        Some(id.to_string()),
        json!({ "name": spec.name, "kind": spec.kind, "token": hint,
                "signed": secret.is_some(), "automation_id": spec.automation_id }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    ctx.webhooks.reloaded().await;
    Ok((row, NewToken(issued.secret)))
}

/// The workspace's event sources.
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<SourceRow>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.event_sources().await?;
    tx.commit().await?;
    Ok(rows)
}

/// One event source.
pub async fn get(ctx: &Ctx, grant: &WorkspaceGrant, id: &str) -> CoreResult<SourceRow> {
    let id = source_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// Changes an event source (not its token or secret).
pub async fn update(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: &str,
    input: &SourceInput,
) -> CoreResult<SourceRow> {
    let id = source_id(id)?;
    let spec = spec_of(ctx, input)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let before = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    if before.kind != spec.kind && before.sealed_secret.is_some() {
        return Err(CoreError::invalid(
            "kind",
            "remove the signing secret before changing the kind (secrets differ by kind)",
        ));
    }
    check_automation(&mut tx, &spec).await?;
    if !tx.update_event_source(id, &spec, op.now_us()).await? {
        return Err(Code::EventSourceExists.into());
    }
    let event = op.event(
        "event_source.changed",
        "event_source",
        Some(id.to_string()),
        json!({ "name": spec.name, "kind": spec.kind, "enabled": spec.enabled,
                "automation_id": spec.automation_id }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    ctx.webhooks.reloaded().await;
    Ok(row)
}

/// Sets or (with `None`) removes the signing secret.
pub async fn set_secret(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: &str,
    secret: Option<SecretString>,
) -> CoreResult<SourceRow> {
    let id = source_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    let sealed = match &secret {
        Some(s) => {
            check_secret(&row.kind, s.expose_secret())?;
            Some(
                ctx.keyring
                    .seal(&secret_context(id), s.expose_secret().as_bytes())
                    .map_err(|e| CoreError::internal(&e))?,
            )
        }
        None => None,
    };
    tx.set_event_source_secret(id, sealed.as_deref(), op.now_us())
        .await?;
    let action = if secret.is_some() {
        "event_source.secret_set"
    } else {
        "event_source.secret_removed"
    };
    let event = op.event(action, "event_source", Some(id.to_string()), json!({}));
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// Replaces the URL token; the old one stops working when this returns, on every node.
pub async fn rotate_token(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: &str,
) -> CoreResult<(SourceRow, NewToken)> {
    let id = source_id(id)?;
    let issued = warden_crypto::token::issue(TOKEN_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let hint = token_hint(&issued.secret);
    let mut tx = ctx.store.scoped(grant).await?;
    let before = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    tx.rotate_event_source_token(id, &issued.hash, &hint, op.now_us())
        .await?;
    let event = op.event(
        "event_source.token_rotated",
        "event_source",
        Some(id.to_string()),
        json!({ "old": before.token_prefix, "new": hint }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    ctx.webhooks.reloaded().await;
    Ok((row, NewToken(issued.secret)))
}

/// Deletes an event source and the deliveries it accepted.
pub async fn delete(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: &str) -> CoreResult<()> {
    let id = source_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.event_source(id).await?.ok_or(Code::NotFound)?;
    tx.delete_event_source(id).await?;
    let event = op.event(
        "event_source.deleted",
        "event_source",
        Some(id.to_string()),
        json!({ "name": row.name, "token": row.token_prefix }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    ctx.webhooks.reloaded().await;
    Ok(())
}
