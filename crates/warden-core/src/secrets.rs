//! A workspace's write-only values: environment variables, the personal access token and
//! provider keys. Each is sealed by the keyring, bound to its workspace, kind and name, so a
//! sealed value moved anywhere else no longer opens. Listings show names, who set them and
//! when — never a value, and no audit event carries one.

use serde_json::json;
use warden_crypto::keyring::Context;
use warden_domain::tenancy::{
    Provider, TOKEN_MAX, VARIABLE_VALUE_MAX, VariableName, WorkspaceId, check_secret_value,
};
use warden_store::tenancy::{SecretKind, SecretMeta, WorkspaceGrant};

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// The associated data that binds a sealed value to its place: moved to another workspace,
/// kind or name, it no longer opens.
pub fn context(workspace: WorkspaceId, kind: SecretKind, name: &str) -> Context {
    Context::new("warden.workspace_secret")
        .with(workspace.uuid().as_bytes())
        .with(kind.as_str())
        .with(name)
}

/// Opens a sealed workspace value for use (a session's environment, a tracker's token). The
/// error names no value.
pub(crate) fn open_value(
    ctx: &Ctx,
    workspace: WorkspaceId,
    kind: SecretKind,
    name: &str,
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<String>, &'static str> {
    let plain = ctx
        .keyring
        .open(&context(workspace, kind, name), sealed)
        .map_err(|_| "a workspace secret could not be opened")?;
    String::from_utf8(plain.to_vec())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| "a workspace secret is not text")
}

/// Which write-only value.
#[derive(Debug, Clone)]
pub struct Slot {
    kind: SecretKind,
    name: String,
}

impl Slot {
    /// An environment variable, by its name (`[A-Z_][A-Z0-9_]*`).
    pub fn variable(name: &str) -> CoreResult<Self> {
        let name = VariableName::parse(name)?;
        Ok(Self {
            kind: SecretKind::Variable,
            name: name.as_str().to_owned(),
        })
    }

    /// The workspace's personal access token.
    pub fn pat() -> Self {
        Self {
            kind: SecretKind::Pat,
            name: "pat".to_owned(),
        }
    }

    /// A provider's API key; an unknown provider is not found.
    pub fn provider(name: &str) -> CoreResult<Self> {
        let provider = Provider::parse(name).ok_or(Code::NotFound)?;
        Ok(Self {
            kind: SecretKind::Provider,
            name: provider.as_str().to_owned(),
        })
    }

    fn max_len(&self) -> usize {
        match self.kind {
            SecretKind::Variable => VARIABLE_VALUE_MAX,
            SecretKind::Pat | SecretKind::Provider => TOKEN_MAX,
        }
    }
}

/// Whether setting a value created it or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// It was new.
    Created,
    /// It replaced a value.
    Replaced,
}

impl Saved {
    /// From the store's "replaced" flag.
    pub fn of(replaced: bool) -> Self {
        if replaced {
            Self::Replaced
        } else {
            Self::Created
        }
    }
}

/// The values of one kind, described without their values.
pub async fn list(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    kind: SecretKind,
) -> CoreResult<Vec<SecretMeta>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.secrets(kind).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Seals `value` for its slot, stores it and records the change, without the value, in one
/// transaction.
pub async fn set(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    slot: &Slot,
    value: &str,
) -> CoreResult<Saved> {
    check_secret_value("value", value, slot.max_len())?;
    let mut tx = ctx.store.scoped(grant).await?;
    let sealed = ctx
        .keyring
        .seal(
            &context(tx.workspace(), slot.kind, &slot.name),
            value.as_bytes(),
        )
        .map_err(|e| CoreError::internal(&e))?;
    let replaced = tx
        .put_secret(slot.kind, &slot.name, &sealed, op.now_us())
        .await?;
    let event = op.event(
        "workspace.secret_set",
        "workspace_secret",
        Some(format!("{}:{}", slot.kind.as_str(), slot.name)),
        json!({
            "kind": slot.kind.as_str(),
            "name": slot.name,
            "value": "[changed]",
            "replaced": replaced,
        }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(Saved::of(replaced))
}

/// Deletes a value; 404 when it was not set.
pub async fn remove(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, slot: &Slot) -> CoreResult<()> {
    let mut tx = ctx.store.scoped(grant).await?;
    if !tx.delete_secret(slot.kind, &slot.name).await? {
        return Err(Code::NotFound.into());
    }
    let event = op.event(
        "workspace.secret_deleted",
        "workspace_secret",
        Some(format!("{}:{}", slot.kind.as_str(), slot.name)),
        json!({ "kind": slot.kind.as_str(), "name": slot.name }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}
