//! SAML 2.0 sign-in (licence feature `sso-saml`). A SAML provider is an `sso_providers` row
//! with protocol `saml` — the same slug, sign-in button, email domains, linking and
//! just-in-time rules as an OpenID provider — plus the IdP's metadata (uploaded, or fetched
//! from its URL under the same address rules as OIDC discovery) and which element it must
//! sign. The protocol (`warden-saml`) verifies; here are Warden's rules:
//!
//! - SP-initiated: `start` stores the request id (single use, 10 minutes) under the
//!   `RelayState`, bound to the browser by a cookie; the response must answer that request.
//! - IdP-initiated only when the provider allows it, and then the response must answer no
//!   request at all.
//! - Every assertion id is spent on first use (all nodes) until it could no longer be
//!   accepted anyway: a replay is refused.
//! - An identity is (IdP entity id, NameID). An email from the assertion links or creates an
//!   account only in one of the provider's allowed domains — an IdP is trusted for its own
//!   organisation's addresses, never for anyone else's.

use serde_json::json;
use uuid::Uuid;
use warden_crypto::token;
use warden_domain::identity::normalize_email;
use warden_domain::license::Feature;
use warden_saml::{Expect, Signed, Sp, Verified};
use warden_store::saml::SamlRow;
use warden_store::sso::ProviderRow;
use warden_store::tenancy::PlatformGrant;

use super::flow::{
    Assertion, BINDING_PREFIX, Failure, SignedIn, Started, audit_failure, login_context, remember,
    sign_in,
};
use super::groups::GROUP_ATTRIBUTES;
use super::providers::{allowed_domains, check_slug, display_name, issuer_free};
use super::{DEFAULT_AFTER, safe_after};
use crate::admin::may_grant_role;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// Email attributes looked for when the provider names none (Entra, Okta, LDAP-style).
const EMAIL_ATTRIBUTES: &[&str] = &[
    "email",
    "mail",
    "emailaddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
];
/// Display-name attributes looked for when the provider names none.
const NAME_ATTRIBUTES: &[&str] = &[
    "displayName",
    "name",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "urn:oid:2.16.840.1.113730.3.1.241",
];

/// This Warden's entity id towards provider `slug` (also its metadata's URL).
pub fn entity_id(ctx: &Ctx, slug: &str) -> String {
    format!("{}/api/v1/auth/saml/{slug}/metadata", ctx.public_url)
}

/// The assertion consumer service URL for provider `slug` (HTTP-POST).
pub fn acs_url(ctx: &Ctx, slug: &str) -> String {
    format!("{}/api/v1/auth/saml/{slug}/acs", ctx.public_url)
}

/// A SAML provider's settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Shown on the sign-in screen.
    pub display_name: String,
    /// The IdP's metadata XML (or `metadata_url`).
    pub metadata_xml: Option<String>,
    /// Where to fetch the IdP's metadata (or `metadata_xml`).
    pub metadata_url: Option<String>,
    /// `assertion` (default), `response` or `either`.
    pub signed: Option<String>,
    /// Accept IdP-initiated sign-in (default off).
    pub idp_initiated: bool,
    /// Attribute names for email, display name and groups (`None`: the usual names).
    pub email_attribute: Option<String>,
    /// See `email_attribute`.
    pub name_attribute: Option<String>,
    /// See `email_attribute`.
    pub groups_attribute: Option<String>,
    /// Email domains this IdP is trusted for (required for linking or just-in-time accounts).
    pub allowed_domains: Vec<String>,
    /// Create accounts on first sign-in.
    pub jit: bool,
    /// Their platform role (default `member`).
    pub default_role: Option<String>,
    /// Link an existing account by email (in an allowed domain).
    pub link_by_email: bool,
    /// Allow the metadata URL on a private address.
    pub allow_private_network: bool,
}

/// A SAML provider: its common row and its SAML settings.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The `sso_providers` row.
    pub row: ProviderRow,
    /// Its SAML settings.
    pub saml: SamlRow,
}

fn licensed(ctx: &Ctx) -> CoreResult<()> {
    if ctx.license.feature(Feature::SsoSaml) {
        Ok(())
    } else {
        Err(Code::FeatureNotLicensed.into())
    }
}

fn attribute(name: Option<&str>) -> CoreResult<String> {
    let name = name.unwrap_or_default().trim();
    if name.len() > 200 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "attributes",
            "attribute names are at most 200 characters",
        ));
    }
    Ok(name.to_owned())
}

async fn metadata(s: &Settings) -> CoreResult<(String, Option<String>)> {
    match (&s.metadata_xml, &s.metadata_url) {
        (Some(xml), None) => Ok((xml.clone(), None)),
        (None, Some(url)) => {
            let http = warden_oidc::http::Client::new(s.allow_private_network)
                .map_err(|e| CoreError::internal(&e))?;
            http.check_url(url).map_err(|_| {
                CoreError::invalid(
                    "metadata_url",
                    "must be an https URL of a public host (or allow_private_network)",
                )
            })?;
            let body = http.get(url).await.map_err(|e| {
                tracing::info!(error = %e, "SAML metadata not fetched");
                CoreError::invalid("metadata_url", "the metadata could not be fetched")
            })?;
            let xml = String::from_utf8(body)
                .map_err(|_| CoreError::invalid("metadata_url", "the metadata is not UTF-8"))?;
            Ok((xml, Some(url.clone())))
        }
        _ => Err(CoreError::invalid(
            "metadata_xml",
            "give the IdP's metadata as metadata_xml or metadata_url (one of them)",
        )),
    }
}

async fn rows(
    s: &Settings,
    id: Uuid,
    slug: &str,
    created_at: i64,
    now: i64,
    keep: Option<&SamlRow>,
) -> CoreResult<Provider> {
    let display_name = display_name(&s.display_name)?;
    let domains = allowed_domains(&s.allowed_domains)?;
    if (s.jit || s.link_by_email) && domains.is_empty() {
        return Err(CoreError::invalid(
            "allowed_domains",
            "name the email domains this IdP is trusted for before it may link or create accounts",
        ));
    }
    let signed = s.signed.clone().unwrap_or_else(|| "assertion".to_owned());
    if Signed::parse(&signed).is_none() {
        return Err(CoreError::invalid(
            "signed",
            "must be assertion, response or either",
        ));
    }
    let (xml, metadata_url) = match keep {
        // Neither given on a change: the stored metadata stays (not fetched again).
        Some(old) if s.metadata_xml.is_none() && s.metadata_url.is_none() => {
            (old.idp_metadata.clone(), old.metadata_url.clone())
        }
        _ => metadata(s).await?,
    };
    let idp = warden_saml::read_metadata(&xml).map_err(|e| match e {
        warden_saml::SamlError::NotBuilt => CoreError::new(Code::SamlNotBuilt),
        other => CoreError::noted(Code::InvalidInput, "metadata_xml", other.to_string()),
    })?;
    let row = ProviderRow {
        id,
        slug: slug.to_owned(),
        display_name,
        issuer: idp.entity_id,
        client_id: String::new(),
        sealed_secret: None,
        scopes: String::new(),
        allowed_domains: domains.join(" "),
        jit: s.jit,
        default_role: s
            .default_role
            .clone()
            .unwrap_or_else(|| "member".to_owned()),
        link_by_email: s.link_by_email,
        allow_private_network: s.allow_private_network,
        created_at,
        updated_at: now,
        protocol: "saml".to_owned(),
        organization_id: None,
    };
    let saml = SamlRow {
        provider_id: id,
        idp_metadata: xml,
        metadata_url,
        sso_url: idp.sso_url,
        signed,
        idp_initiated: s.idp_initiated,
        email_attribute: attribute(s.email_attribute.as_deref())?,
        name_attribute: attribute(s.name_attribute.as_deref())?,
        groups_attribute: attribute(s.groups_attribute.as_deref())?,
    };
    Ok(Provider { row, saml })
}

fn summary(p: &Provider) -> serde_json::Value {
    let mut v = super::providers::summary(&p.row, false);
    if let Some(o) = v.as_object_mut() {
        o.remove("client_id");
        o.remove("client_secret");
        o.remove("scopes");
        o.insert("protocol".into(), json!("saml"));
        o.insert("sso_url".into(), json!(p.saml.sso_url));
        o.insert("metadata_url".into(), json!(p.saml.metadata_url));
        o.insert("signed".into(), json!(p.saml.signed));
        o.insert("idp_initiated".into(), json!(p.saml.idp_initiated));
    }
    v
}

/// Adds a SAML provider.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    slug: &str,
    s: &Settings,
) -> CoreResult<Provider> {
    licensed(ctx)?;
    check_slug(slug)?;
    let now = op.now_us();
    let p = rows(s, Uuid::now_v7(), slug, now, now, None).await?;
    let mut tx = ctx.store.begin().await?;
    may_grant_role(&mut tx, grant, &p.row.default_role).await?;
    issuer_free(&mut tx, &p.row).await?;
    if tx.sso_provider(slug).await?.is_some() {
        return Err(Code::SsoProviderExists.into());
    }
    tx.insert_sso_provider(&p.row).await?;
    tx.put_saml_provider(&p.saml).await?;
    let event = op.event(
        "sso.provider_created",
        "sso_provider",
        Some(p.row.slug.clone()),
        summary(&p),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(p)
}

/// Changes a SAML provider (its metadata too: a rotated IdP certificate is a new upload or
/// fetch; with neither, the stored metadata stays).
pub async fn update(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    slug: &str,
    s: &Settings,
) -> CoreResult<Provider> {
    licensed(ctx)?;
    let old = get(ctx, grant, slug).await?;
    let mut p = rows(
        s,
        old.row.id,
        slug,
        old.row.created_at,
        op.now_us(),
        Some(&old.saml),
    )
    .await?;
    p.row.organization_id = old.row.organization_id;
    let mut tx = ctx.store.begin().await?;
    may_grant_role(&mut tx, grant, &p.row.default_role).await?;
    issuer_free(&mut tx, &p.row).await?;
    if !tx.update_sso_provider(&p.row).await? {
        return Err(Code::NotFound.into());
    }
    tx.put_saml_provider(&p.saml).await?;
    let event = op.event(
        "sso.provider_changed",
        "sso_provider",
        Some(p.row.slug.clone()),
        summary(&p),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(p)
}

async fn load(ctx: &Ctx, slug: &str) -> CoreResult<Option<Provider>> {
    let mut tx = ctx.store.begin_read().await?;
    let Some(row) = tx
        .sso_provider(slug)
        .await?
        .filter(|r| r.protocol == "saml")
    else {
        tx.commit().await?;
        return Ok(None);
    };
    let saml = tx.saml_provider(row.id).await?;
    tx.commit().await?;
    Ok(saml.map(|saml| Provider { row, saml }))
}

/// One SAML provider.
pub async fn get(ctx: &Ctx, _grant: &PlatformGrant, slug: &str) -> CoreResult<Provider> {
    load(ctx, slug).await?.ok_or_else(|| Code::NotFound.into())
}

/// This service provider's metadata for provider `slug` (public: the IdP's administrator
/// registers Warden with it).
pub async fn sp_metadata(ctx: &Ctx, slug: &str) -> CoreResult<String> {
    licensed(ctx)?;
    load(ctx, slug).await?.ok_or(Code::NotFound)?;
    let (entity, acs) = (entity_id(ctx, slug), acs_url(ctx, slug));
    Ok(warden_saml::sp_metadata(&Sp {
        entity_id: &entity,
        acs_url: &acs,
    }))
}

/// Starts an SP-initiated sign-in (from `flow::start`, which checked `after` and the
/// invitation): an AuthnRequest by HTTP-Redirect, its id stored under the RelayState.
pub(crate) async fn start(
    ctx: &Ctx,
    op: &Op,
    row: &ProviderRow,
    after: String,
    invitation_hash: Option<Vec<u8>>,
) -> CoreResult<Started> {
    licensed(ctx)?;
    let mut tx = ctx.store.begin_read().await?;
    let saml = tx.saml_provider(row.id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    let state = token::issue("wss_").map_err(|e| CoreError::internal(&e))?;
    // An XML name: 128 random bits, hex (derived from the RelayState, which travels with it).
    let request_id = format!("_{}", hex::encode(&token::hash(&state.secret)[..16]));
    let (entity, acs) = (entity_id(ctx, &row.slug), acs_url(ctx, &row.slug));
    let sp = Sp {
        entity_id: &entity,
        acs_url: &acs,
    };
    let url = warden_saml::authn_request_url(&sp, &saml.idp_metadata, &request_id, &state.secret)
        .map_err(|e| match e {
        warden_saml::SamlError::NotBuilt => CoreError::new(Code::SamlNotBuilt),
        _ => CoreError::new(Code::SsoProviderUnavailable),
    })?;
    let binding = remember(
        ctx,
        op,
        row,
        &state.secret,
        request_id.as_bytes(),
        after,
        invitation_hash,
    )
    .await?;
    Ok(Started {
        url,
        binding,
        cross_site: true,
    })
}

/// What the IdP posted to the assertion consumer service.
#[derive(Debug, Default)]
pub struct Posted<'a> {
    /// `SAMLResponse` (base64).
    pub response: Option<&'a str>,
    /// `RelayState`.
    pub relay_state: Option<&'a str>,
}

/// Finishes a sign-in at the assertion consumer service of provider `slug`. `binding` is the
/// browser's binding cookie. Every refusal is audited with its reason.
pub async fn acs(
    ctx: &Ctx,
    op: &Op,
    slug: &str,
    posted: Posted<'_>,
    binding: Option<&str>,
) -> Result<SignedIn, Failure> {
    let result = finish(ctx, op, slug, posted, binding).await;
    if let Err(f) = &result {
        audit_failure(ctx, op, slug, "saml", f.reason()).await;
    }
    result
}

/// A sign-in this server started: its request id, where to go, the invitation.
struct Pending {
    request_id: String,
    after: String,
    invitation_hash: Option<Vec<u8>>,
}

async fn pending(
    ctx: &Ctx,
    op: &Op,
    p: &Provider,
    relay_state: &str,
    binding: Option<&str>,
) -> Result<Pending, Failure> {
    let now = op.now_us();
    let state_hash = token::hash(relay_state);
    // Taken at once, whatever follows: a second post of the same response finds nothing.
    let mut tx = ctx.store.begin().await?;
    let login = tx.take_sso_login(&state_hash, now).await?;
    tx.commit().await?;
    let login = login
        .filter(|l| l.provider_id == p.row.id)
        .ok_or(Failure::Refused("unknown_state"))?;
    let bound = binding
        .filter(|b| token::well_formed(b, BINDING_PREFIX))
        .is_some_and(|b| token::hash(b).as_slice() == login.binding_hash.as_slice());
    if !bound {
        return Err(Failure::Refused("browser_mismatch"));
    }
    let opened = ctx
        .keyring
        .open(&login_context(&state_hash), &login.sealed)
        .map_err(|e| Failure::Internal(e.to_string()))?;
    Ok(Pending {
        request_id: String::from_utf8(opened.to_vec())
            .map_err(|e| Failure::Internal(e.to_string()))?,
        after: login.redirect_to,
        invitation_hash: login.invitation_hash,
    })
}

async fn finish(
    ctx: &Ctx,
    op: &Op,
    slug: &str,
    posted: Posted<'_>,
    binding: Option<&str>,
) -> Result<SignedIn, Failure> {
    if !ctx.license.feature(Feature::SsoSaml) {
        return Err(Failure::Refused("feature_not_licensed"));
    }
    let p = load(ctx, slug)
        .await?
        .ok_or(Failure::Refused("unknown_provider"))?;
    let response = posted
        .response
        .filter(|r| !r.is_empty())
        .ok_or(Failure::Refused("missing_response"))?;
    // A RelayState of this server's own shape names a sign-in it started; anything else
    // (or none) is an IdP-initiated sign-in, taken only where the provider allows it.
    let relay = posted.relay_state.unwrap_or_default();
    let pending = if token::well_formed(relay, "wss_") {
        Some(pending(ctx, op, &p, relay, binding).await?)
    } else if p.saml.idp_initiated {
        None
    } else {
        return Err(Failure::Refused("unsolicited_response"));
    };
    let signed = Signed::parse(&p.saml.signed).unwrap_or(Signed::Assertion);
    let verified = {
        let (entity, acs) = (entity_id(ctx, slug), acs_url(ctx, slug));
        let metadata = p.saml.idp_metadata.clone();
        let response = response.to_owned();
        let request_id = pending.as_ref().map(|x| x.request_id.clone());
        tokio::task::spawn_blocking(move || {
            let sp = Sp {
                entity_id: &entity,
                acs_url: &acs,
            };
            let expect = Expect {
                request_id: request_id.as_deref(),
                signed,
            };
            warden_saml::verify(&sp, &metadata, &response, &expect)
        })
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?
    }
    .map_err(|e| {
        tracing::info!(provider = %slug, error = %e, "SAML response refused");
        Failure::Refused(e.reason())
    })?;
    if verified.issuer != p.row.issuer {
        return Err(Failure::Refused("issuer_mismatch"));
    }
    let identity = identity(&p, &verified);
    let expires_at = verified
        .valid_until
        .saturating_mul(1_000_000)
        .clamp(op.now_us(), op.now_us() + 86_400 * 1_000_000);
    let assertion = Assertion {
        issuer: &verified.issuer,
        id: &verified.assertion_id,
        expires_at,
    };
    let (after, invitation) = match pending {
        Some(x) => (x.after, x.invitation_hash),
        None => (
            posted
                .relay_state
                .and_then(safe_after)
                .unwrap_or_else(|| DEFAULT_AFTER.to_owned()),
            None,
        ),
    };
    let grant = sign_in(
        ctx,
        op,
        &p.row,
        &identity,
        invitation.as_deref(),
        "saml",
        Some(assertion),
    )
    .await?;
    // Fails closed: memberships the assertion no longer supports must not outlive the sign-in
    // that showed it (the session just opened is never handed out).
    let configured = [p.saml.groups_attribute.as_str()];
    let names: &[&str] = if configured[0].is_empty() {
        GROUP_ATTRIBUTES
    } else {
        &configured
    };
    let asserted = names
        .iter()
        .find(|n| verified.values(n).next().is_some())
        .map(|n| verified.values(n));
    super::groups::after_sign_in(
        ctx,
        op,
        p.row.id,
        grant.principal.user_id,
        asserted.into_iter().flatten(),
    )
    .await?;
    Ok(SignedIn { grant, after })
}

/// The verified person as the shared sign-in rules read them: the email (from the named or
/// usual attribute, else an email-shaped NameID) counts as verified only in one of the
/// provider's allowed domains.
fn identity(p: &Provider, v: &Verified) -> warden_oidc::Identity {
    let first = |configured: &str, usual: &[&str]| -> Option<String> {
        let names: Vec<&str> = if configured.is_empty() {
            usual.to_vec()
        } else {
            vec![configured]
        };
        names
            .iter()
            .find_map(|n| v.values(n).next().map(str::to_owned))
    };
    let email = first(&p.saml.email_attribute, EMAIL_ATTRIBUTES)
        .or_else(|| Some(v.name_id.clone()))
        .and_then(|e| normalize_email(&e).ok());
    let domains: Vec<&str> = p.row.allowed_domains.split_whitespace().collect();
    let trusted = email.as_deref().is_some_and(|e| {
        let domain = e.rsplit_once('@').map_or("", |(_, d)| d);
        domains.contains(&domain)
    });
    warden_oidc::Identity {
        issuer: v.issuer.clone(),
        subject: v.name_id.clone(),
        email,
        email_verified: trusted,
        name: first(&p.saml.name_attribute, NAME_ATTRIBUTES),
    }
}
