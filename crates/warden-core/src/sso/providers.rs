//! Administrators configure OpenID Connect providers: a display name, the issuer (from a
//! preset for Google or Microsoft Entra, or any issuer URL), the client id and secret (sealed
//! by the keyring, write-only), scopes, the email domains accepted for linking and
//! provisioning, just-in-time accounts (off by default) with their role, whether an
//! existing account may be linked by verified email, and whether the provider may live on a
//! private network. Audited without the secret.

use serde_json::json;
use uuid::Uuid;
use warden_crypto::Context;
use warden_store::sso::ProviderRow;
use warden_store::tenancy::PlatformGrant;

use crate::admin::may_grant_role;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// Where the issuer comes from.
#[derive(Debug, Clone)]
pub enum Issuer {
    /// Google (`https://accounts.google.com`).
    Google,
    /// Microsoft Entra ID for one tenant (`https://login.microsoftonline.com/{tenant}/v2.0`).
    Entra {
        /// The directory (tenant) id or domain.
        tenant: String,
    },
    /// Any OpenID Connect provider by its issuer URL.
    Url(String),
}

impl Issuer {
    fn url(&self) -> CoreResult<String> {
        match self {
            Self::Google => Ok("https://accounts.google.com".to_owned()),
            Self::Entra { tenant } => {
                let ok = !tenant.is_empty()
                    && tenant.len() <= 64
                    && tenant
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
                if !ok {
                    return Err(CoreError::invalid(
                        "tenant",
                        "must be a directory (tenant) id or domain",
                    ));
                }
                Ok(format!("https://login.microsoftonline.com/{tenant}/v2.0"))
            }
            Self::Url(u) => Ok(u.trim().trim_end_matches('/').to_owned()),
        }
    }
}

/// A provider's settings, as an administrator gives them.
#[derive(Clone)]
pub struct Settings {
    /// Shown on the sign-in screen.
    pub display_name: String,
    /// The issuer.
    pub issuer: Issuer,
    /// The client id.
    pub client_id: String,
    /// The client secret: `None` keeps the stored one (on a change).
    pub client_secret: Option<String>,
    /// Scopes (default `openid email profile`).
    pub scopes: Option<Vec<String>>,
    /// Email domains accepted for linking and provisioning (empty: any).
    pub allowed_domains: Vec<String>,
    /// Just-in-time accounts.
    pub jit: bool,
    /// Their platform role (default `member`).
    pub default_role: Option<String>,
    /// Whether an existing account may be linked by verified email.
    pub link_by_email: bool,
    /// Whether the provider may live on private, loopback or link-local addresses.
    pub allow_private_network: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("display_name", &self.display_name)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn secret_context(id: Uuid) -> Context {
    Context::new("warden.sso_client_secret").with(id.as_bytes())
}

pub(crate) fn check_slug(slug: &str) -> CoreResult<()> {
    let ok = (1..=40).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "slug",
            "must be 1 to 40 lower-case letters, digits or hyphens",
        ))
    }
}

/// The email domains a provider is trusted for, checked and lower-cased.
pub(crate) fn allowed_domains(list: &[String]) -> CoreResult<Vec<String>> {
    domain_list("allowed_domains", list)
}

/// A list of email domains (`example.com`, an `@` in front allowed), checked and lower-cased;
/// `field` names it in the refusal.
pub(crate) fn domain_list(field: &'static str, list: &[String]) -> CoreResult<Vec<String>> {
    let mut domains = Vec::new();
    for d in list {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.contains('.')
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !ok {
            return Err(CoreError::invalid(
                field,
                "must be domain names such as example.com",
            ));
        }
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    Ok(domains)
}

/// Refuses an issuer another provider has when either is SAML. Identities are (issuer,
/// subject) whichever provider vouched; an OpenID provider's keys follow from its issuer, but a
/// SAML provider's come from the metadata it was given — so a second provider claiming an
/// issuer already in use, with keys of its own, could sign in as that issuer's people.
pub(crate) async fn issuer_free(tx: &mut warden_store::Tx, row: &ProviderRow) -> CoreResult<()> {
    let norm = |s: &str| s.trim_end_matches('/').to_owned();
    let clash = tx.sso_providers().await?.into_iter().any(|o| {
        o.id != row.id
            && norm(&o.issuer) == norm(&row.issuer)
            && (o.protocol == "saml" || row.protocol == "saml")
    });
    if clash {
        return Err(CoreError::invalid(
            "issuer",
            "another provider has this issuer (a SAML IdP's entity id): a SAML provider's must be its own",
        ));
    }
    Ok(())
}

/// A display name: 1 to 100 characters, trimmed.
pub(crate) fn display_name(name: &str) -> CoreResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CoreError::invalid(
            "display_name",
            "must be 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// Checks the settings and turns them into a row (the secret sealed; `keep` is the stored
/// sealed secret when none is given).
fn row(
    ctx: &Ctx,
    id: Uuid,
    slug: &str,
    s: &Settings,
    keep: Option<Vec<u8>>,
    created_at: i64,
    now: i64,
) -> CoreResult<ProviderRow> {
    let display_name = display_name(&s.display_name)?;
    let issuer = s.issuer.url()?;
    let http = warden_oidc::http::Client::new(s.allow_private_network)
        .map_err(|e| CoreError::internal(&e))?;
    http.check_url(&issuer).map_err(|_| {
        CoreError::invalid(
            "issuer",
            "must be an https URL of a public host (or allow_private_network for one inside \
             your network)",
        )
    })?;
    if s.client_id.trim().is_empty() || s.client_id.len() > 500 {
        return Err(CoreError::invalid(
            "client_id",
            "must be 1 to 500 characters",
        ));
    }
    let scopes = s
        .scopes
        .clone()
        .unwrap_or_else(|| ["openid", "email", "profile"].map(str::to_owned).to_vec());
    let scope_ok =
        |sc: &String| !sc.is_empty() && sc.len() <= 100 && sc.chars().all(|c| c.is_ascii_graphic());
    if scopes.len() > 20 || !scopes.iter().all(scope_ok) {
        return Err(CoreError::invalid("scopes", "must be up to 20 scope names"));
    }
    let mut scopes = scopes;
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    let domains = allowed_domains(&s.allowed_domains)?;
    let sealed_secret = match &s.client_secret {
        Some(secret) if !secret.is_empty() => Some(
            ctx.keyring
                .seal(&secret_context(id), secret.as_bytes())
                .map_err(|e| CoreError::internal(&e))?,
        ),
        Some(_) => None,
        None => keep,
    };
    Ok(ProviderRow {
        id,
        slug: slug.to_owned(),
        display_name,
        issuer,
        client_id: s.client_id.trim().to_owned(),
        sealed_secret,
        scopes: scopes.join(" "),
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
        protocol: "oidc".to_owned(),
        organization_id: None,
    })
}

pub(crate) fn summary(r: &ProviderRow, secret_changed: bool) -> serde_json::Value {
    json!({
        "slug": r.slug, "display_name": r.display_name, "issuer": r.issuer,
        "client_id": r.client_id, "client_secret": if secret_changed { "[changed]" } else { "[unchanged]" },
        "scopes": r.scopes, "allowed_domains": r.allowed_domains, "jit": r.jit,
        "default_role": r.default_role, "link_by_email": r.link_by_email,
        "allow_private_network": r.allow_private_network,
    })
}

/// Adds a provider. A just-in-time role above the caller's own is refused.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    slug: &str,
    s: &Settings,
) -> CoreResult<ProviderRow> {
    check_slug(slug)?;
    let now = op.now_us();
    let r = row(ctx, Uuid::now_v7(), slug, s, None, now, now)?;
    let mut tx = ctx.store.begin().await?;
    may_grant_role(&mut tx, grant, &r.default_role).await?;
    issuer_free(&mut tx, &r).await?;
    if tx.sso_provider(slug).await?.is_some() {
        return Err(Code::SsoProviderExists.into());
    }
    tx.insert_sso_provider(&r).await?;
    let event = op.event(
        "sso.provider_created",
        "sso_provider",
        Some(r.slug.clone()),
        summary(&r, s.client_secret.is_some()),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(r)
}

/// Changes a provider (a missing secret keeps the stored one).
pub async fn update(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    slug: &str,
    s: &Settings,
) -> CoreResult<ProviderRow> {
    let mut tx = ctx.store.begin().await?;
    let old = tx.sso_provider(slug).await?.ok_or(Code::NotFound)?;
    if old.protocol != "oidc" {
        return Err(CoreError::invalid(
            "preset",
            "this is a SAML provider: change it at /api/v1/admin/saml/providers/{slug}",
        ));
    }
    let mut r = row(
        ctx,
        old.id,
        slug,
        s,
        old.sealed_secret.clone(),
        old.created_at,
        op.now_us(),
    )?;
    r.organization_id = old.organization_id;
    may_grant_role(&mut tx, grant, &r.default_role).await?;
    issuer_free(&mut tx, &r).await?;
    tx.update_sso_provider(&r).await?;
    let event = op.event(
        "sso.provider_changed",
        "sso_provider",
        Some(r.slug.clone()),
        summary(&r, s.client_secret.is_some()),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(r)
}

/// Removes a provider and unlinks its identities (the accounts stay).
pub async fn delete(ctx: &Ctx, op: &Op, grant: &PlatformGrant, slug: &str) -> CoreResult<()> {
    // What the provider's groups granted ends with it: their mappings and members, read first
    // (deleting the provider deletes its groups).
    let mut read = ctx.store.begin_read().await?;
    let old = read.sso_provider(slug).await?.ok_or(Code::NotFound)?;
    let (groups, members) = read.sso_groups_of_provider(old.id).await?;
    read.commit().await?;
    let mappings = if groups.is_empty() {
        Vec::new()
    } else {
        ctx.store.directory_mappings_of(&groups).await?
    };
    let mut tx = ctx.store.begin().await?;
    tx.delete_sso_provider(old.id).await?;
    let event = op.event(
        "sso.provider_deleted",
        "sso_provider",
        Some(old.slug.clone()),
        json!({"slug": old.slug}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    if !mappings.is_empty() {
        // Acting for the one deleting it, or else for the mappings' authors.
        let mut acting: Vec<_> = mappings
            .iter()
            .map(|m| warden_store::scim::mappings::GroupMappingRow {
                configured_by: grant.user_id(),
                ..m.clone()
            })
            .collect();
        acting.extend(mappings);
        crate::scim::workspaces::sync(ctx, op, &acting, &members).await?;
    }
    Ok(())
}

/// Every provider.
pub async fn list(ctx: &Ctx, _grant: &PlatformGrant) -> CoreResult<Vec<ProviderRow>> {
    public_list(ctx).await
}

/// Every provider, for the sign-in screen (slugs and display names are public).
pub async fn public_list(ctx: &Ctx) -> CoreResult<Vec<ProviderRow>> {
    let mut tx = ctx.store.begin_read().await?;
    let rows = tx.sso_providers().await?;
    tx.commit().await?;
    Ok(rows)
}

/// One provider.
pub async fn get(ctx: &Ctx, _grant: &PlatformGrant, slug: &str) -> CoreResult<ProviderRow> {
    let mut tx = ctx.store.begin_read().await?;
    let row = tx.sso_provider(slug).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(row)
}
