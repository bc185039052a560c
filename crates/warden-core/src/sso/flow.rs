//! The sign-in: `start` sends the browser to the provider (code flow with PKCE S256, `state`
//! and `nonce`), binding the attempt to the browser with a short-lived cookie; `callback`
//! takes the attempt once (10 minutes), checks the cookie, has `warden-oidc` exchange the
//! code and verify the ID token, and then applies Warden's rules: an identity is its
//! (issuer, subject); an email is trusted — to link an existing account (when the provider
//! may link) or to create one (just-in-time, when on) — only when the provider asserts it
//! verified it and its domain is allowed. A provider asserting someone else's address never
//! reaches their account otherwise. Success opens the same session as a password sign-in.
//! Every refusal is audited with its reason.

use serde_json::json;
use uuid::Uuid;
use warden_crypto::{Context, token};
use warden_domain::audit::Outcome;
use warden_domain::identity::normalize_email;
use warden_domain::license::Feature;
use warden_domain::organizations::{OrgId, OrgRole};
use warden_store::sso::{LoginRow, ProviderRow};

use super::providers::secret_context;
use super::{DEFAULT_AFTER, safe_after};
use crate::identity::flows::{
    Grant, Refusal, actor_for, begin_signing, begin_signing_in, start_session_signed,
};
use crate::identity::users::admit_user;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// How long a started sign-in may take.
pub const LOGIN_TTL_SECS: i64 = 600;
/// Prefix of the browser-binding cookie's value.
pub(crate) const BINDING_PREFIX: &str = "wsb_";

pub(crate) fn login_context(state_hash: &[u8]) -> Context {
    Context::new("warden.sso_login").with(state_hash)
}

/// The redirect URI registered with providers for `slug`.
pub fn callback_url(ctx: &Ctx, slug: &str) -> String {
    format!("{}/api/v1/auth/sso/{slug}/callback", ctx.public_url)
}

fn provider(ctx: &Ctx, row: &ProviderRow) -> Result<warden_oidc::Provider, CoreError> {
    let secret = match &row.sealed_secret {
        Some(sealed) => Some(
            String::from_utf8(
                ctx.keyring
                    .open(&secret_context(row.id), sealed)
                    .map_err(|e| CoreError::internal(&e))?
                    .to_vec(),
            )
            .map_err(|e| CoreError::internal(&e))?,
        ),
        None => None,
    };
    Ok(warden_oidc::Provider {
        issuer: row.issuer.clone(),
        client_id: row.client_id.clone(),
        client_secret: secret,
        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
        allow_private_network: row.allow_private_network,
        redirect_uri: callback_url(ctx, &row.slug),
    })
}

/// A started sign-in: where to send the browser, and the value of its binding cookie.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorization URL.
    pub url: String,
    /// The browser-binding cookie's value (10 minutes).
    pub binding: zeroize::Zeroizing<String>,
    /// Whether the provider comes back with a cross-site POST (SAML's HTTP-POST binding), so
    /// the binding cookie must be `SameSite=None` to come back with it.
    pub cross_site: bool,
}

/// Starts a sign-in with provider `slug`; `after` is where to go afterwards (refused unless
/// it is an allowed same-origin path). With `invitation` (a pending invitation's token), the
/// sign-in accepts it: the invited address gets its account through this provider.
pub async fn start(
    ctx: &Ctx,
    op: &Op,
    slug: &str,
    after: Option<&str>,
    invitation: Option<&str>,
) -> CoreResult<Started> {
    let invitation_hash = match invitation {
        Some(secret) => {
            if crate::invitations::pending(ctx, op, secret)
                .await
                .map_err(CoreError::from)?
                .is_none()
            {
                return Err(Code::InvalidLink.into());
            }
            Some(token::hash(secret).to_vec())
        }
        None => None,
    };
    let after = match after {
        Some(a) => safe_after(a).ok_or_else(|| {
            CoreError::invalid("redirect", "must be a path of this site such as /console")
        })?,
        None => DEFAULT_AFTER.to_owned(),
    };
    let mut tx = ctx.store.begin_read().await?;
    let row = tx.sso_provider(slug).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    if row.protocol == "saml" {
        return super::saml::start(ctx, op, &row, after, invitation_hash).await;
    }
    let begun = ctx
        .oidc
        .begin(&provider(ctx, &row)?, op.now.unix_timestamp())
        .await
        .map_err(|e| {
            tracing::warn!(provider = %slug, error = %e, "single sign-on provider unavailable");
            CoreError::new(Code::SsoProviderUnavailable)
        })?;
    let secrets = format!("{}\n{}", begun.nonce, begun.pkce_verifier);
    let binding = remember(
        ctx,
        op,
        &row,
        &begun.state,
        secrets.as_bytes(),
        after,
        invitation_hash,
    )
    .await?;
    Ok(Started {
        url: begun.url,
        binding,
        cross_site: false,
    })
}

/// Stores a sign-in under way (10 minutes, single use) under the hash of its `state`: the
/// protocol's `secrets` sealed, where to go after, the invitation it accepts — bound to the
/// browser by a new cookie, whose value this returns.
pub(crate) async fn remember(
    ctx: &Ctx,
    op: &Op,
    row: &ProviderRow,
    state: &str,
    secrets: &[u8],
    after: String,
    invitation_hash: Option<Vec<u8>>,
) -> CoreResult<zeroize::Zeroizing<String>> {
    let binding = token::issue(BINDING_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let state_hash = token::hash(state);
    let sealed = ctx
        .keyring
        .seal(&login_context(&state_hash), secrets)
        .map_err(|e| CoreError::internal(&e))?;
    let now = op.now_us();
    let mut tx = ctx.store.begin().await?;
    let login = warden_store::sso::LoginRow {
        provider_id: row.id,
        binding_hash: binding.hash.to_vec(),
        sealed,
        redirect_to: after,
        invitation_hash,
    };
    tx.insert_sso_login(&state_hash, &login, now, now + LOGIN_TTL_SECS * 1_000_000)
        .await?;
    tx.commit().await?;
    Ok(binding.secret)
}

/// What the provider sent back to the callback.
#[derive(Debug, Default)]
pub struct Callback<'a> {
    /// `state`.
    pub state: Option<&'a str>,
    /// `code`.
    pub code: Option<&'a str>,
    /// `error`, when the provider refused.
    pub error: Option<&'a str>,
    /// `iss` (RFC 9207), when the provider sends it: must be this provider's issuer, so a
    /// response from another provider cannot be passed off as this one's.
    pub iss: Option<&'a str>,
}

/// A finished sign-in.
#[derive(Debug)]
pub struct SignedIn {
    /// The session.
    pub grant: Grant,
    /// Where to send the browser.
    pub after: String,
}

/// Why a callback did not sign anyone in (audited as the reason).
#[derive(Debug)]
pub enum Failure {
    /// Refused for this reason (`unknown_state`, `id_token_invalid`, `no_account`, …).
    Refused(&'static str),
    /// The provider could not be reached.
    Unavailable,
    /// Something broke; the cause is logged.
    Internal(String),
}

impl Failure {
    /// The reason the audit log gives.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Refused(r) => r,
            Self::Unavailable => "provider_unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Internal(e) => Self::Internal(e),
            other => Self::Internal(format!("{other:?}")),
        }
    }
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        Self::Internal(e.detail.to_owned())
    }
}

impl From<warden_store::StoreError> for Failure {
    fn from(e: warden_store::StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Finishes a sign-in with provider `slug`. `binding` is the browser's binding cookie.
pub async fn callback(
    ctx: &Ctx,
    op: &Op,
    slug: &str,
    cb: Callback<'_>,
    binding: Option<&str>,
) -> Result<SignedIn, Failure> {
    let result = finish(ctx, op, slug, cb, binding).await;
    if let Err(f) = &result {
        audit_failure(ctx, op, slug, "sso", f.reason()).await;
    }
    result
}

async fn finish(
    ctx: &Ctx,
    op: &Op,
    slug: &str,
    cb: Callback<'_>,
    binding: Option<&str>,
) -> Result<SignedIn, Failure> {
    let state = cb.state.ok_or(Failure::Refused("missing_state"))?;
    let now = op.now_us();
    let state_hash = token::hash(state);
    // Read here, taken below while the code is exchanged: whatever follows, only the one
    // callback whose take succeeds goes on, so a replayed callback finds nothing.
    let mut read = ctx.store.begin_read().await?;
    let login = read.sso_login(&state_hash, now).await?;
    let row = read.sso_provider(slug).await?;
    read.commit().await?;
    let Some(login) = login else {
        return Err(Failure::Refused("unknown_state"));
    };
    // Taken once, whatever follows — a refused callback too.
    let take = async {
        let mut tx = ctx.store.begin().await?;
        let taken = tx.take_sso_login(&state_hash, now).await?;
        tx.commit().await?;
        Ok::<_, warden_store::StoreError>(taken.is_some())
    };
    let (row, code, secrets) = match checked(ctx, &login, row, binding, &cb, &state_hash) {
        Ok(checked) => checked,
        Err(refused) => {
            take.await?;
            return Err(refused);
        }
    };
    let (nonce, verifier) = secrets
        .split_once('\n')
        .ok_or_else(|| Failure::Internal("a stored sign-in is malformed".into()))?;
    let oidc = provider(ctx, &row)?;
    let exchange = ctx
        .oidc
        .finish(&oidc, code, nonce, verifier, op.now.unix_timestamp());
    let (taken, identity) = tokio::join!(take, exchange);
    if !taken? {
        // Another callback with the same state took it first.
        return Err(Failure::Refused("unknown_state"));
    }
    let identity = identity.map_err(|e| {
        tracing::info!(provider = %slug, error = %e, "single sign-on refused");
        match e {
            warden_oidc::OidcError::Provider(_) => Failure::Unavailable,
            warden_oidc::OidcError::Exchange(_) => Failure::Refused("exchange_refused"),
            warden_oidc::OidcError::IdToken(_) => Failure::Refused("id_token_invalid"),
        }
    })?;
    let grant = sign_in(
        ctx,
        op,
        &row,
        &identity,
        login.invitation_hash.as_deref(),
        "sso",
        None,
    )
    .await?;
    Ok(SignedIn {
        grant,
        after: login.redirect_to,
    })
}

/// Signs in the person a provider vouched for: the account linked to the identity, or — the
/// first time — the one its invitation creates, or the one the provider's rules link or
/// create; then the same session as a password sign-in. `method` names the protocol in the
/// audit log; a SAML `assertion` is spent in the same transaction (a replay is refused).
pub(crate) async fn sign_in(
    ctx: &Ctx,
    op: &Op,
    row: &ProviderRow,
    identity: &warden_oidc::Identity,
    invitation_hash: Option<&[u8]>,
    method: &'static str,
    assertion: Option<Assertion<'_>>,
) -> Result<Grant, Failure> {
    let now = op.now_us();
    // A known identity's access token starts signing now, beside the writes that follow.
    let mut read = ctx.store.begin_read().await?;
    let known = read
        .sso_identity_user(&identity.issuer, &identity.subject)
        .await?;
    read.commit().await?;
    let signing = known.map(|id| begin_signing(ctx, op, id));
    let mut tx = ctx.store.begin().await?;
    if let Some(a) = assertion
        && !tx
            .use_saml_assertion(a.issuer, a.id, a.expires_at, now)
            .await?
    {
        return Err(Failure::Refused("assertion_replayed"));
    }
    let user_id = match tx
        .sso_identity(&identity.issuer, &identity.subject, now)
        .await?
    {
        Some(id) => id,
        None => match invitation_hash {
            Some(hash) => accept_invitation(ctx, op, &mut tx, row, identity, hash).await?,
            None => first_sign_in(ctx, op, &mut tx, row, identity).await?,
        },
    };
    let user = tx
        .user_by_id(user_id)
        .await?
        .filter(|u| u.active)
        .ok_or(Failure::Refused("account_inactive"))?;
    let summary = json!({"email": user.email, "method": method, "provider": row.slug});
    let org = provider_org(ctx, op, &mut tx, row, user.id, known.is_none()).await?;
    match signing.filter(|_| known == Some(user.id) && org.is_default()) {
        Some(signing) => Ok(start_session_signed(ctx, op, tx, &user, summary, signing).await?),
        None => {
            let signing = begin_signing_in(ctx, op, user.id, org);
            Ok(start_session_signed(ctx, op, tx, &user, summary, signing).await?)
        }
    }
}

/// The organization a sign-in through `row` acts in: the provider's organization (multi-tenant
/// mode) when the account belongs to it — and an identity signing in through it for the first
/// time (just linked or made) joins it as a member — otherwise the default one.
async fn provider_org(
    ctx: &Ctx,
    op: &Op,
    tx: &mut warden_store::Tx,
    row: &ProviderRow,
    user: Uuid,
    first_time: bool,
) -> Result<OrgId, Failure> {
    let Some(org) = row.organization_id.map(OrgId::from_uuid) else {
        return Ok(OrgId::DEFAULT);
    };
    if !ctx.license.feature(Feature::MultiTenant) {
        return Ok(OrgId::DEFAULT);
    }
    if tx.org_member_role(org, user).await?.is_some() {
        return Ok(org);
    }
    if !first_time {
        return Ok(OrgId::DEFAULT);
    }
    tx.put_org_member(org, user, OrgRole::Member, user, op.now_us())
        .await?;
    let event = op.acting_as(actor_for(Some(user))).event(
        "organization.member_added",
        "organization",
        Some(org.to_string()),
        json!({ "user_id": user.to_string(), "role": "member", "provider": row.slug }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    Ok(org)
}

/// A SAML assertion used by a sign-in: refused if it was used before (any node), kept
/// until `expires_at` (µs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Assertion<'a> {
    pub issuer: &'a str,
    pub id: &'a str,
    pub expires_at: i64,
}

/// The callback's checks before the code exchange: the attempt belongs to this provider
/// and this browser, the provider reported no error, a code came back. Returns the provider,
/// the code and the attempt's opened secrets (nonce and PKCE verifier).
fn checked<'a>(
    ctx: &Ctx,
    login: &LoginRow,
    row: Option<ProviderRow>,
    binding: Option<&str>,
    cb: &Callback<'a>,
    state_hash: &[u8],
) -> Result<(ProviderRow, &'a str, String), Failure> {
    let row = row
        .filter(|row| row.id == login.provider_id && row.protocol == "oidc")
        .ok_or(Failure::Refused("unknown_state"))?;
    let bound = binding
        .filter(|b| token::well_formed(b, BINDING_PREFIX))
        .is_some_and(|b| token::hash(b).as_slice() == login.binding_hash.as_slice());
    if !bound {
        return Err(Failure::Refused("browser_mismatch"));
    }
    if cb
        .iss
        .is_some_and(|iss| iss.trim_end_matches('/') != row.issuer.trim_end_matches('/'))
    {
        return Err(Failure::Refused("issuer_mismatch"));
    }
    if cb.error.is_some() {
        return Err(Failure::Refused("provider_error"));
    }
    let code = cb.code.ok_or(Failure::Refused("missing_code"))?;
    let secrets = ctx
        .keyring
        .open(&login_context(state_hash), &login.sealed)
        .map_err(|e| Failure::Internal(e.to_string()))?;
    let secrets =
        String::from_utf8(secrets.to_vec()).map_err(|e| Failure::Internal(e.to_string()))?;
    Ok((row, code, secrets))
}

/// An identity seen for the first time: link it to the account with its email (when the
/// provider may link) or create one (when just-in-time is on) — only for an email the
/// provider verified, in an allowed domain.
async fn first_sign_in(
    ctx: &Ctx,
    op: &Op,
    tx: &mut warden_store::Tx,
    row: &ProviderRow,
    identity: &warden_oidc::Identity,
) -> Result<Uuid, Failure> {
    let email = identity
        .email
        .as_deref()
        .and_then(|e| normalize_email(e).ok())
        .ok_or(Failure::Refused("no_email"))?;
    if !identity.email_verified {
        return Err(Failure::Refused("email_unverified"));
    }
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    let allowed = row.allowed_domains.split_whitespace().collect::<Vec<_>>();
    if !allowed.is_empty() && !allowed.contains(&domain) {
        return Err(Failure::Refused("domain_not_allowed"));
    }
    let now = op.now_us();
    let (user_id, action) = match tx.user_by_email(&email).await? {
        Some(existing) if row.link_by_email => (existing.id, "sso.identity_linked"),
        Some(_) => return Err(Failure::Refused("account_not_linkable")),
        None if row.jit => {
            admit_user(&ctx.license, tx)
                .await
                .map_err(|_| Failure::Refused("user_limit_reached"))?;
            let id = Uuid::now_v7();
            tx.create_sso_user(id, &email, &row.default_role, now)
                .await?;
            // The provider's name for them, when it is one a person could have chosen.
            let name = identity.name.as_deref().map(str::trim).filter(|n| {
                !n.is_empty() && n.chars().count() <= 100 && !n.chars().any(char::is_control)
            });
            if name.is_some() {
                tx.set_display_name(id, name, now).await?;
            }
            (id, "sso.user_provisioned")
        }
        None => return Err(Failure::Refused("no_account")),
    };
    tx.link_sso_identity(&identity.issuer, &identity.subject, user_id, row.id, now)
        .await?;
    let event = op.event_by(
        actor_for(Some(user_id)),
        action,
        "user",
        Some(user_id.to_string()),
        Outcome::Success,
        json!({"email": email, "provider": row.slug, "issuer": identity.issuer,
               "subject": identity.subject, "platform_role": row.default_role}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    Ok(user_id)
}

/// A first sign-in that accepts an invitation: the provider must have verified the invited
/// address itself; the account gets the invited role (just-in-time or not) and the identity
/// is linked; the invitation is used up.
async fn accept_invitation(
    ctx: &Ctx,
    op: &Op,
    tx: &mut warden_store::Tx,
    row: &ProviderRow,
    identity: &warden_oidc::Identity,
    invitation_hash: &[u8],
) -> Result<Uuid, Failure> {
    let now = op.now_us();
    let invitation = tx
        .pending_invitation(invitation_hash, now)
        .await?
        .ok_or(Failure::Refused("invitation_not_pending"))?;
    let email = identity
        .email
        .as_deref()
        .and_then(|e| normalize_email(e).ok())
        .ok_or(Failure::Refused("no_email"))?;
    if !identity.email_verified {
        return Err(Failure::Refused("email_unverified"));
    }
    if email != invitation.email {
        return Err(Failure::Refused("invitation_email_mismatch"));
    }
    if tx.user_by_email(&email).await?.is_some() {
        return Err(Failure::Refused("account_exists"));
    }
    admit_user(&ctx.license, tx)
        .await
        .map_err(|_| Failure::Refused("user_limit_reached"))?;
    let user_id = Uuid::now_v7();
    tx.create_sso_user(user_id, &email, &invitation.platform_role, now)
        .await?;
    tx.link_sso_identity(&identity.issuer, &identity.subject, user_id, row.id, now)
        .await?;
    if !tx.accept_invitation(invitation_hash, user_id, now).await? {
        return Err(Failure::Refused("invitation_not_pending"));
    }
    let event = op.event_by(
        actor_for(Some(user_id)),
        "invitation.accepted",
        "invitation",
        Some(invitation.id.to_string()),
        Outcome::Success,
        json!({"email": email, "platform_role": invitation.platform_role, "user_id": user_id,
               "method": "sso", "provider": row.slug}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    Ok(user_id)
}

pub(crate) async fn audit_failure(ctx: &Ctx, op: &Op, slug: &str, method: &str, reason: &str) {
    let record = async {
        let mut tx = ctx.store.begin().await?;
        let event = op.event_by(
            actor_for(None),
            "auth.sign_in",
            "sso_provider",
            Some(slug.to_owned()),
            Outcome::Failed,
            json!({"method": method, "provider": slug, "reason": reason}),
        );
        tx.record(&ctx.audit_key, &event).await?;
        tx.commit().await?;
        Ok::<_, warden_store::StoreError>(())
    };
    if let Err(e) = record.await {
        tracing::error!(error = %e, "cannot audit a refused single sign-on");
    }
}

/// The provider list for the sign-in screen: slug, display name and start path.
pub async fn methods(ctx: &Ctx) -> CoreResult<Vec<(String, String, String)>> {
    Ok(super::providers::public_list(ctx)
        .await?
        .into_iter()
        .map(|r| {
            let start = format!("/api/v1/auth/sso/{}/start", r.slug);
            (r.slug, r.display_name, start)
        })
        .collect())
}
