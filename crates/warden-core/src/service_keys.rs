//! Service-to-service requests: trusted internal systems sign each request with a key of the
//! workspace instead of holding a person's token.
//!
//! ```text
//! Authorization: WARDEN-HMAC-SHA256 keyId=<key id>, ts=<unix seconds>, nonce=<nonce>, sig=<hex>
//! ```
//!
//! `sig` is the hex HMAC-SHA256, under the key's secret, of the canonical form: seven fields,
//! each written as its length in bytes (decimal), `:`, the field, `\n` —
//! `WARDEN-HMAC-SHA256`, the method, the path as sent, the query as sent (empty when none),
//! `ts`, the workspace id (the tenant) and the hex SHA-256 of the body. The lengths make the
//! form unambiguous: moving bytes between fields (`ab`+`c` against `a`+`bc`) changes it.
//! `ts` must be within 5 minutes of the server's clock either way; a nonce (16–64 characters
//! of `A–Z a–z 0–9 - _`) is accepted once per key on any node. The request then acts for the
//! key's creator, within the key's permissions, in its workspace only.

use aws_lc_rs::{digest, hmac};
use secrecy::SecretString;
use serde_json::json;
use subtle::ConstantTimeEq;
use uuid::Uuid;
use warden_crypto::keyring::Context;
use warden_domain::access::PermissionSet;
use warden_domain::identity::{Principal, TokenLimits};
use warden_domain::tenancy::WorkspaceId;
use warden_store::service_keys::ServiceKeyRow;
use warden_store::tenancy::WorkspaceGrant;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// The scheme name in the `Authorization` header.
pub const SCHEME: &str = "WARDEN-HMAC-SHA256";
/// How far `ts` may be from the server's clock, either way (seconds).
pub const SKEW_SECS: i64 = 300;
/// The prefix of public key ids.
pub const KEY_PREFIX: &str = "wsk_";

/// A parsed `Authorization: WARDEN-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The key's public id.
    pub key_id: String,
    /// Unix seconds.
    pub ts: i64,
    /// Once per key.
    pub nonce: String,
    /// The hex signature.
    pub sig: Vec<u8>,
}

impl Signed {
    /// Parses the header's value; `None` unless it has exactly the four parameters, once each.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix(SCHEME)?.strip_prefix(' ')?;
        let (mut key_id, mut ts, mut nonce, mut sig) = (None, None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            let slot = match k {
                "keyId" => &mut key_id,
                "ts" => &mut ts,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                _ => return None,
            };
            if slot.replace(v.to_owned()).is_some() {
                return None;
            }
        }
        let nonce = nonce?;
        let ok_nonce = (16..=64).contains(&nonce.len())
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let key_id = key_id?;
        if !ok_nonce || !key_id.starts_with(KEY_PREFIX) || key_id.len() > 100 {
            return None;
        }
        let sig = hex::decode(sig?).ok().filter(|s| s.len() == 32)?;
        Some(Self {
            key_id,
            ts: ts?.parse().ok()?,
            nonce,
            sig,
        })
    }
}

/// The canonical form a request is signed over.
pub fn canonical(
    method: &str,
    path: &str,
    query: &str,
    ts: i64,
    tenant: &str,
    body: &[u8],
) -> Vec<u8> {
    let body_hash = hex::encode(digest::digest(&digest::SHA256, body).as_ref());
    let ts = ts.to_string();
    let mut out = Vec::with_capacity(256);
    for field in [
        SCHEME,
        method,
        path,
        query,
        ts.as_str(),
        tenant,
        body_hash.as_str(),
    ] {
        out.extend_from_slice(field.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The hex signature of a canonical form under `secret` (what clients compute).
pub fn sign(secret: &[u8], canonical: &[u8]) -> String {
    hex::encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), canonical).as_ref())
}

pub(crate) fn secret_context(id: Uuid) -> Context {
    Context::new("warden.service_key").with(id.as_bytes())
}

/// A signed request as received.
#[derive(Debug)]
pub struct Request<'a> {
    /// Method.
    pub method: &'a str,
    /// Path as sent.
    pub path: &'a str,
    /// Query as sent (empty when none).
    pub query: &'a str,
    /// The raw body.
    pub body: &'a [u8],
}

/// Checks a signed request; the principal it acts as, or `None` (every failure alike: the
/// caller answers 401). `now` is Unix seconds.
pub async fn authenticate(
    ctx: &Ctx,
    signed: &Signed,
    req: &Request<'_>,
    now: i64,
) -> CoreResult<Option<Principal>> {
    if (now - signed.ts).abs() > SKEW_SECS {
        return Ok(None);
    }
    let Some(key) = ctx.store.service_key_for_signature(&signed.key_id).await? else {
        return Ok(None);
    };
    let now_us = now.saturating_mul(1_000_000);
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|e| e <= now_us) {
        return Ok(None);
    }
    let secret = ctx
        .keyring
        .open(&secret_context(key.id), &key.sealed_secret)
        .map_err(|e| CoreError::internal(&e))?;
    let form = canonical(
        req.method,
        req.path,
        req.query,
        signed.ts,
        &key.workspace_id.to_string(),
        req.body,
    );
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), &form);
    if !bool::from(expected.as_ref().ct_eq(&signed.sig)) {
        return Ok(None);
    }
    // Once per key, across nodes, for as long as the timestamp could be accepted.
    let until = (signed.ts + SKEW_SECS + 1).saturating_mul(1_000_000);
    if !ctx
        .store
        .use_service_nonce(&key.key_id, &signed.nonce, until, now_us)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(Principal {
        user_id: key.created_by,
        session_id: key.id,
        token: Some(TokenLimits {
            permissions: PermissionSet::from_stored(key.permissions.split_whitespace()),
            workspace: Some(WorkspaceId::from_uuid(key.workspace_id)),
        }),
        organization: None,
    }))
}

/// A key shown once.
pub struct NewKey {
    /// The stored key.
    pub row: ServiceKeyRow,
    /// Its secret (base64url), shown this once.
    pub secret: SecretString,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("key_id", &self.row.key_id)
            .finish_non_exhaustive()
    }
}

fn parse_permissions(grant: &WorkspaceGrant, names: &[String]) -> CoreResult<PermissionSet> {
    if names.is_empty() {
        return Err(CoreError::invalid(
            "permissions",
            "name at least one permission",
        ));
    }
    let set = PermissionSet::parse(names.iter().map(String::as_str))
        .map_err(|_| CoreError::invalid("permissions", "names a permission that does not exist"))?;
    if set.iter().any(|p| !grant.holds(p)) {
        return Err(Code::PermissionNotHeld.into());
    }
    Ok(set)
}

async fn issue(
    ctx: &Ctx,
    op: &Op,
    tx: &mut warden_store::tenancy::WorkspaceTx,
    name: &str,
    permissions: PermissionSet,
    by: Uuid,
) -> CoreResult<NewKey> {
    let mut public = [0u8; 12];
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut public).map_err(|_| CoreError::internal(&"no randomness"))?;
    aws_lc_rs::rand::fill(&mut secret).map_err(|_| CoreError::internal(&"no randomness"))?;
    let id = Uuid::now_v7();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let secret_text = b64.encode(secret);
    let row = ServiceKeyRow {
        id,
        workspace_id: tx.workspace().uuid(),
        key_id: format!("{KEY_PREFIX}{}", hex::encode(public)),
        name: name.to_owned(),
        sealed_secret: ctx
            .keyring
            .seal(&secret_context(id), secret_text.as_bytes())
            .map_err(|e| CoreError::internal(&e))?,
        permissions: permissions.names().join(" "),
        created_by: by,
        created_at: op.now_us(),
        expires_at: None,
        revoked_at: None,
    };
    tx.insert_service_key(&row).await?;
    Ok(NewKey {
        row,
        secret: SecretString::from(secret_text),
    })
}

fn check_name(name: &str) -> CoreResult<()> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(())
}

/// Creates a key acting for the caller, within `permissions` (each one the caller holds in
/// this workspace). Its secret is shown once.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    name: &str,
    permissions: &[String],
) -> CoreResult<NewKey> {
    check_name(name)?;
    let set = parse_permissions(grant, permissions)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let key = issue(ctx, op, &mut tx, name.trim(), set, grant.user_id()).await?;
    let event = op.event(
        "service_key.created",
        "service_key",
        Some(key.row.key_id.clone()),
        json!({ "name": key.row.name, "permissions": key.row.permissions }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(key)
}

/// The workspace's keys (never a secret).
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<ServiceKeyRow>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.service_keys().await?;
    tx.commit().await?;
    Ok(rows)
}

/// Replaces a key: a new one with the same name and permissions (acting for the caller), the
/// old one signing for `overlap_secs` more (0: it stops now).
pub async fn rotate(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    key_id: &str,
    overlap_secs: i64,
) -> CoreResult<NewKey> {
    if !(0..=7 * 86_400).contains(&overlap_secs) {
        return Err(CoreError::invalid(
            "overlap_secs",
            "must be 0 to 604800 seconds",
        ));
    }
    let mut tx = ctx.store.scoped(grant).await?;
    let old = tx
        .service_key(key_id)
        .await?
        .filter(|k| k.revoked_at.is_none())
        .ok_or(Code::NotFound)?;
    let set = PermissionSet::from_stored(old.permissions.split_whitespace());
    if set.iter().any(|p| !grant.holds(p)) {
        return Err(Code::PermissionNotHeld.into());
    }
    let key = issue(ctx, op, &mut tx, &old.name, set, grant.user_id()).await?;
    tx.expire_service_key(key_id, op.now_us() + overlap_secs * 1_000_000)
        .await?;
    let event = op.event(
        "service_key.rotated",
        "service_key",
        Some(old.key_id.clone()),
        json!({ "new_key_id": key.row.key_id, "overlap_secs": overlap_secs }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(key)
}

/// Revokes a key at once.
pub async fn revoke(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, key_id: &str) -> CoreResult<()> {
    let mut tx = ctx.store.scoped(grant).await?;
    if !tx.revoke_service_key(key_id, op.now_us()).await? {
        return Err(Code::NotFound.into());
    }
    let event = op.event(
        "service_key.revoked",
        "service_key",
        Some(key_id.to_owned()),
        json!({}),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_bytes_between_fields_changes_the_canonical_form() {
        let t = "9f0c1e2a-0000-4000-8000-000000000001";
        assert_ne!(
            canonical("POST", "/ab", "c", 1, t, b""),
            canonical("POST", "/a", "bc", 1, t, b"")
        );
        assert_ne!(
            canonical("POST", "/a", "", 1, t, b"x"),
            canonical(
                "POST",
                "/a",
                "",
                1,
                "9f0c1e2a-0000-4000-8000-000000000002",
                b"x"
            )
        );
    }

    /// The README's worked example, checked.
    #[test]
    fn the_worked_example_signs_as_documented() {
        let form = canonical(
            "POST",
            "/api/v1/workspaces/0193a5c2-7d4e-7b10-9a3f-2c5d8e1f4a60/automations/0193a5c3-1b2c-7d3e-8f40-5a6b7c8d9e0f/runs",
            "",
            1_767_225_600,
            "0193a5c2-7d4e-7b10-9a3f-2c5d8e1f4a60",
            b"",
        );
        let text = String::from_utf8(form.clone()).unwrap();
        assert!(
            text.starts_with("18:WARDEN-HMAC-SHA256\n4:POST\n"),
            "{text}"
        );
        assert!(
            text.ends_with("64:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n")
        );
        assert_eq!(
            sign(b"Zm9yLWRvY3VtZW50YXRpb24tb25seS0wMTIzNDU2Nzg5", &form),
            README_SIGNATURE
        );
    }

    const README_SIGNATURE: &str =
        "f6689032d000846efee21f9c748c5099cd99f788d3e084408372ea5272626b57";

    #[test]
    fn headers_parse_strictly() {
        let sig = "a".repeat(64);
        let ok =
            format!("WARDEN-HMAC-SHA256 keyId=wsk_0011, ts=5, nonce=abcdefghijklmnop, sig={sig}");
        assert!(Signed::parse(&ok).is_some());
        for bad in [
            format!("WARDEN-HMAC-SHA256 keyId=wsk_0011, ts=5, nonce=short, sig={sig}"),
            format!(
                "WARDEN-HMAC-SHA256 keyId=wsk_0011, keyId=wsk_2, ts=5, nonce=abcdefghijklmnop, sig={sig}"
            ),
            format!("WARDEN-HMAC-SHA256 keyId=other, ts=5, nonce=abcdefghijklmnop, sig={sig}"),
            "WARDEN-HMAC-SHA256 keyId=wsk_0011, ts=5, nonce=abcdefghijklmnop, sig=abcd".to_owned(),
            format!("WARDEN-HMAC-SHA256 keyId=wsk_0011, ts=x, nonce=abcdefghijklmnop, sig={sig}"),
            format!("Bearer keyId=wsk_0011, ts=5, nonce=abcdefghijklmnop, sig={sig}"),
            format!("WARDEN-HMAC-SHA256 keyId=wsk_0011, ts=5, nonce=abcd efghijklmnop, sig={sig}"),
        ] {
            assert!(Signed::parse(&bad).is_none(), "{bad}");
        }
    }
}
