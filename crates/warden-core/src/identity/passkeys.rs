//! Passkeys (WebAuthn): a signed-in person registers credentials kept by their
//! authenticators, and signs in with one — choosing it from the browser's list (a
//! discoverable credential, nothing typed) or after typing their email.
//!
//! - Checks by `webauthn-rs`: challenge, origin (only `public_url`'s), rpIdHash, the
//!   ceremony type (`webauthn.create` never passes for a sign-in), user presence, user
//!   verification (always required) and the signature.
//! - A ceremony's state stays in the database under the SHA-256 of its handle (`wpc_…`, a
//!   namespace of its own), for two minutes, and is deleted when it is first presented, so a
//!   challenge is answered at most once whatever the answer was.
//! - A sign counter that does not increase (when non-zero) refuses the sign-in and flags the
//!   credential: a flagged passkey signs nobody in until its owner removes it; owner and
//!   administrators see the flag.
//! - Registering and removing need a sign-in within the last five minutes (a new sign-in is
//!   the re-authentication) and never a personal access token; a credential id registered
//!   to anyone already is refused (409). In password-free mode the last passkey of an
//!   account without single sign-on cannot be removed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;
use warden_domain::identity::Principal;
use warden_store::passkeys::{CeremonyRow, PasskeyRow};
use warden_store::tenancy::PlatformGrant;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
    WebauthnError,
};
use zeroize::Zeroizing;

use super::flows::{self, Grant, Refusal};
use super::tokens::require_session;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Prefix of a ceremony handle.
pub const CEREMONY_PREFIX: &str = "wpc_";
const SECOND_US: i64 = 1_000_000;
/// How long a ceremony may take.
const CEREMONY_SECS: i64 = 120;
/// How recent the sign-in behind a passkey change must be.
const RECENT_SIGN_IN_US: i64 = 5 * 60 * SECOND_US;
/// Sign-in ceremonies one address may start per minute.
const STARTS_PER_MINUTE: u32 = 60;
/// Passkeys one account may hold.
const MAX_PER_USER: usize = 20;
const REGISTER: &str = "register";
const SIGN_IN: &str = "sign_in";

/// The relying party for `public_url`: its host is the RP id, its origin the only one
/// accepted. `None` when `public_url` names an IP address (WebAuthn needs a domain).
pub fn relying_party(ctx: &Ctx) -> Option<Webauthn> {
    let origin = Url::parse(&ctx.public_url).ok()?;
    let rp_id = origin.domain()?.to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .ok()?
        .rp_name("Warden")
        .timeout(Duration::from_secs(CEREMONY_SECS.unsigned_abs()))
        .build()
        .ok()
}

fn rp(ctx: &Ctx) -> CoreResult<Webauthn> {
    relying_party(ctx).ok_or_else(|| Code::PasskeysUnavailable.into())
}

/// A ceremony begun: the handle to send back, and the options for
/// `navigator.credentials.create()` / `.get()` (`{"publicKey": …}`).
pub struct Ceremony {
    /// The handle (`wpc_…`), presented with the answer.
    pub ceremony: Zeroizing<String>,
    /// The WebAuthn options.
    pub options: Value,
}

impl std::fmt::Debug for Ceremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremony").finish_non_exhaustive()
    }
}

async fn store_ceremony(
    tx: &mut warden_store::Tx,
    op: &Op,
    kind: &str,
    principal: Option<&Principal>,
    state: String,
) -> CoreResult<Zeroizing<String>> {
    let issued =
        warden_crypto::token::issue(CEREMONY_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let now = op.now_us();
    let row = CeremonyRow {
        kind: kind.to_owned(),
        user_id: principal.map(|p| p.user_id),
        session_id: principal.map(|p| p.session_id),
        state,
        expires_at: now + CEREMONY_SECS * SECOND_US,
    };
    tx.insert_webauthn_ceremony(&issued.hash, &row, now).await?;
    Ok(issued.secret)
}

/// Takes (uses up) a ceremony of `kind`, in a transaction of its own: a challenge is spent
/// by its first answer, right or wrong.
async fn take_ceremony(
    ctx: &Ctx,
    op: &Op,
    kind: &str,
    handle: &str,
) -> CoreResult<Option<CeremonyRow>> {
    if !handle.starts_with(CEREMONY_PREFIX) {
        return Ok(None);
    }
    let mut tx = ctx.store.begin().await?;
    let row = tx
        .take_webauthn_ceremony(&warden_crypto::token::hash(handle), kind, op.now_us())
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Refuses unless `principal` is a session signed in within the last five minutes.
async fn require_recent_sign_in(
    tx: &mut warden_store::Tx,
    op: &Op,
    principal: &Principal,
) -> CoreResult<()> {
    require_session(principal)?;
    match tx.session_signed_in_at(principal.session_id).await? {
        Some(at) if op.now_us() - at <= RECENT_SIGN_IN_US => Ok(()),
        _ => Err(Code::ReauthenticationRequired.into()),
    }
}

fn credential_ids(rows: &[PasskeyRow]) -> Vec<webauthn_rs::prelude::CredentialID> {
    rows.iter().map(|r| r.credential_id.clone()).collect()
}

/// Begins registering a passkey for the signed-in person.
pub async fn register_start(ctx: &Ctx, op: &Op, principal: &Principal) -> CoreResult<Ceremony> {
    let rp = rp(ctx)?;
    let mut tx = ctx.store.begin().await?;
    require_recent_sign_in(&mut tx, op, principal).await?;
    let user = tx
        .user_by_id(principal.user_id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| CoreError::from(Code::SessionRequired))?;
    let existing = tx.passkeys_of(user.id).await?;
    if existing.len() >= MAX_PER_USER {
        return Err(CoreError::invalid(
            "passkey",
            "an account holds at most 20 passkeys",
        ));
    }
    let (ccr, state) = rp
        .start_passkey_registration(
            user.id,
            &user.email,
            &user.email,
            Some(credential_ids(&existing)),
        )
        .map_err(|e| CoreError::internal(&e))?;
    let mut options = serde_json::to_value(&ccr).map_err(|e| CoreError::internal(&e))?;
    // Ask for a discoverable credential where the authenticator can keep one, so that it
    // can sign in without an email typed; the checks do not depend on it.
    if let Some(sel) = options["publicKey"]["authenticatorSelection"].as_object_mut() {
        sel.insert("residentKey".to_owned(), json!("preferred"));
    }
    let state = serde_json::to_string(&state).map_err(|e| CoreError::internal(&e))?;
    let ceremony = store_ceremony(&mut tx, op, REGISTER, Some(principal), state).await?;
    tx.commit().await?;
    Ok(Ceremony { ceremony, options })
}

/// A passkey name: 1–64 printable characters.
fn parse_name(name: &str) -> CoreResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid("name", "1 to 64 printable characters"));
    }
    Ok(name.to_owned())
}

/// Finishes a registration with the authenticator's answer (the `PublicKeyCredential` JSON)
/// and keeps the passkey as `name`.
pub async fn register_finish(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    handle: &str,
    name: &str,
    credential: Value,
) -> CoreResult<PasskeyRow> {
    require_session(principal)?;
    let name = parse_name(name)?;
    let rp = rp(ctx)?;
    let Some(ceremony) = take_ceremony(ctx, op, REGISTER, handle).await? else {
        return Err(CoreError::with_detail(
            Code::PasskeyRejected,
            "The registration expired or was already answered; start again.",
        ));
    };
    if ceremony.user_id != Some(principal.user_id)
        || ceremony.session_id != Some(principal.session_id)
    {
        return Err(Code::PasskeyRejected.into());
    }
    let credential: RegisterPublicKeyCredential = serde_json::from_value(credential)
        .map_err(|_| CoreError::invalid("credential", "not a WebAuthn registration response"))?;
    let state: PasskeyRegistration =
        serde_json::from_str(&ceremony.state).map_err(|e| CoreError::internal(&e))?;
    let passkey = rp
        .finish_passkey_registration(&credential, &state)
        .map_err(|e| {
            tracing::info!(reason = %e, "passkey registration refused");
            CoreError::from(Code::PasskeyRejected)
        })?;
    let mut tx = ctx.store.begin().await?;
    require_recent_sign_in(&mut tx, op, principal).await?;
    let row = PasskeyRow {
        id: Uuid::now_v7(),
        user_id: principal.user_id,
        credential_id: passkey.cred_id().to_vec(),
        name,
        passkey: serde_json::to_string(&passkey).map_err(|e| CoreError::internal(&e))?,
        created_at: op.now_us(),
        last_used_at: None,
        flagged_at: None,
        flagged_reason: None,
    };
    if !tx.insert_passkey(&row).await? {
        let event = op.event_with(
            "passkey.registered",
            "passkey",
            None,
            warden_domain::audit::Outcome::Denied,
            json!({"name": row.name, "reason": "credential_registered_already"}),
        );
        tx.record(&ctx.audit_key, &event).await?;
        tx.commit().await?;
        return Err(Code::PasskeyTaken.into());
    }
    let event = op.event(
        "passkey.registered",
        "passkey",
        Some(row.id.to_string()),
        json!({"name": row.name}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(row)
}

/// The signed-in person's passkeys.
pub async fn mine(ctx: &Ctx, principal: &Principal) -> CoreResult<Vec<PasskeyRow>> {
    let mut tx = ctx.store.begin().await?;
    let rows = tx.passkeys_of(principal.user_id).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Every passkey (or one user's), for administrators: flagged ones show their flag.
pub async fn all(
    ctx: &Ctx,
    _grant: &PlatformGrant,
    user_id: Option<Uuid>,
) -> CoreResult<Vec<PasskeyRow>> {
    let mut tx = ctx.store.begin().await?;
    let rows = tx.all_passkeys(user_id, 1000).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Removes one of the signed-in person's passkeys.
pub async fn remove(ctx: &Ctx, op: &Op, principal: &Principal, id: &str) -> CoreResult<()> {
    let id = Uuid::parse_str(id).map_err(|_| CoreError::from(Code::NotFound))?;
    let mut tx = ctx.store.begin().await?;
    require_recent_sign_in(&mut tx, op, principal).await?;
    let mine = tx.passkeys_of(principal.user_id).await?;
    if !mine.iter().any(|p| p.id == id) {
        return Err(Code::NotFound.into());
    }
    let usable = mine.iter().filter(|p| p.flagged_at.is_none()).count();
    let last = usable == 1 && mine.iter().any(|p| p.id == id && p.flagged_at.is_none());
    if last
        && !super::policy::password_sign_in(ctx).await?
        && !tx.user_has_sso(principal.user_id).await?
    {
        return Err(Code::LastPasskey.into());
    }
    let Some(row) = tx.delete_passkey(principal.user_id, id).await? else {
        return Err(Code::NotFound.into());
    };
    let event = op.event(
        "passkey.removed",
        "passkey",
        Some(row.id.to_string()),
        json!({"name": row.name}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// The state of a sign-in ceremony: discoverable (the authenticator says who), or for the
/// account an email named.
#[derive(Serialize, Deserialize)]
enum SignInState {
    Discoverable(DiscoverableAuthentication),
    Named {
        user_id: Uuid,
        state: PasskeyAuthentication,
    },
}

/// Begins a passkey sign-in: with `email`, for that account's passkeys; without, for any
/// discoverable credential. An email without passkeys gets the discoverable kind.
pub async fn sign_in_start(ctx: &Ctx, op: &Op, email: Option<&str>) -> CoreResult<Ceremony> {
    let rp = rp(ctx)?;
    let now = op.now_us();
    let ip = op.origin.ip_text().unwrap_or_else(|| "unknown".to_owned());
    let mut tx = ctx.store.begin().await?;
    let scope = format!("passkey-start:{ip}");
    let minute = 60 * SECOND_US;
    let closes = |n: u32| if n >= STARTS_PER_MINUTE { minute } else { 0 };
    if let Some(until) = tx.throttle_reserve(&scope, now, minute, closes).await? {
        tx.rollback().await?;
        let wait = Duration::from_micros(u64::try_from(until - now).unwrap_or(1).max(1));
        return Err(CoreError::too_many_attempts(wait));
    }
    let mut named = None;
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    let user = match email {
        Some(email) => tx.user_by_email(email).await?.filter(|u| u.active),
        None => None,
    };
    if let Some(user) = user {
        let keys: Vec<Passkey> = tx
            .passkeys_of(user.id)
            .await?
            .iter()
            .filter(|r| r.flagged_at.is_none())
            .filter_map(|r| serde_json::from_str(&r.passkey).ok())
            .collect();
        if !keys.is_empty() {
            named = Some((user.id, keys));
        }
    }
    let (options, state) = match named {
        Some((user_id, keys)) => {
            let (rcr, state) = rp
                .start_passkey_authentication(&keys)
                .map_err(|e| CoreError::internal(&e))?;
            (
                serde_json::to_value(&rcr),
                SignInState::Named { user_id, state },
            )
        }
        None => {
            let (mut rcr, state) = rp
                .start_discoverable_authentication()
                .map_err(|e| CoreError::internal(&e))?;
            // A button press, not the autofill prompt: the browser shows its own dialog.
            rcr.mediation = None;
            (serde_json::to_value(&rcr), SignInState::Discoverable(state))
        }
    };
    let mut options = options.map_err(|e| CoreError::internal(&e))?;
    if let Some(pk) = options["publicKey"].as_object_mut() {
        // The same shape whichever way it began (the extensions asked for are not checked).
        pk.remove("extensions");
        // An email without passkeys (or without an account) is offered a stand-in
        // credential, stable per address: the answer looks like an account's.
        if let (Some(email), SignInState::Discoverable(_)) = (email, &state) {
            let id = ctx.identity.decoy_credential_id(email);
            pk.insert(
                "allowCredentials".to_owned(),
                json!([{"type": "public-key", "id": b64url(&id)}]),
            );
        }
        // Transports would tell a real credential from the stand-in; browsers try them all.
        if let Some(allowed) = pk.get_mut("allowCredentials").and_then(Value::as_array_mut) {
            for c in allowed.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("transports");
            }
        }
    }
    let state = serde_json::to_string(&state).map_err(|e| CoreError::internal(&e))?;
    let ceremony = store_ceremony(&mut tx, op, SIGN_IN, None, state).await?;
    tx.commit().await?;
    Ok(Ceremony { ceremony, options })
}

/// Finishes a passkey sign-in: the authenticator's answer for the ceremony `handle`. Every
/// failure answers alike (401); a counter that went backwards flags the credential.
pub async fn sign_in_finish(
    ctx: &Ctx,
    op: &Op,
    handle: &str,
    credential: Value,
) -> Result<Grant, Refusal> {
    let Some(rp) = relying_party(ctx) else {
        return Err(Refusal::Invalid);
    };
    let Some(ceremony) = take_ceremony(ctx, op, SIGN_IN, handle)
        .await
        .map_err(|e| Refusal::Internal(e.detail.to_owned()))?
    else {
        return Err(Refusal::Invalid);
    };
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential) else {
        return Err(Refusal::Invalid);
    };
    let state: SignInState = serde_json::from_str(&ceremony.state)?;
    let cred_id = credential.get_credential_id().to_vec();
    let mut tx = ctx.store.begin().await?;
    let Some(row) = tx.passkey_by_credential(&cred_id).await? else {
        tx.rollback().await?;
        return Err(Refusal::Invalid);
    };
    let Some(user) = tx.user_by_id(row.user_id).await?.filter(|u| u.active) else {
        tx.rollback().await?;
        return Err(Refusal::Invalid);
    };
    // The token's signature may start now; it is handed out only if everything below holds.
    let signing = flows::begin_signing(ctx, op, user.id);
    let mut passkey: Passkey = serde_json::from_str(&row.passkey)?;
    let result = match state {
        SignInState::Discoverable(state) => {
            match rp.identify_discoverable_authentication(&credential) {
                Ok((handle_user, _)) if handle_user == row.user_id => {
                    rp.finish_discoverable_authentication_v2(&credential, state, &passkey)
                }
                _ => Err(WebauthnError::InvalidUserUniqueId),
            }
        }
        SignInState::Named { user_id, state } if user_id == row.user_id => {
            rp.finish_passkey_authentication(&credential, &state)
        }
        SignInState::Named { .. } => Err(WebauthnError::CredentialNotFound),
    };
    let actor = flows::actor_for(Some(user.id));
    let refused = |reason: &str| {
        op.event_by(
            actor.clone(),
            "auth.sign_in",
            "session",
            None,
            warden_domain::audit::Outcome::Denied,
            json!({"email": user.email, "method": "passkey", "passkey_id": row.id.to_string(), "reason": reason}),
        )
    };
    if row.flagged_at.is_some() {
        tx.record(&ctx.audit_key, &refused("passkey_flagged"))
            .await?;
        tx.commit().await?;
        return Err(Refusal::Invalid);
    }
    let result = match result {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            let reason = "sign_counter_did_not_increase";
            if tx.flag_passkey(row.id, reason, op.now_us()).await? {
                let event = op.event_by(
                    actor.clone(),
                    "passkey.flagged",
                    "passkey",
                    Some(row.id.to_string()),
                    warden_domain::audit::Outcome::Denied,
                    json!({"name": row.name, "user_id": user.id.to_string(), "reason": reason}),
                );
                tx.record(&ctx.audit_key, &event).await?;
            }
            tx.record(&ctx.audit_key, &refused(reason)).await?;
            tx.commit().await?;
            tracing::warn!(passkey = %row.id, "a passkey's sign counter went backwards: flagged");
            return Err(Refusal::Invalid);
        }
        Err(e) => {
            tracing::info!(reason = %e, "passkey sign-in refused");
            tx.record(&ctx.audit_key, &refused("assertion_refused"))
                .await?;
            tx.commit().await?;
            return Err(Refusal::Invalid);
        }
    };
    passkey.update_credential(&result);
    tx.passkey_used(row.id, &serde_json::to_string(&passkey)?, op.now_us())
        .await?;
    let summary =
        json!({"email": user.email, "method": "passkey", "passkey_id": row.id.to_string()});
    flows::start_session_signed(ctx, op, tx, &user, summary, signing).await
}
