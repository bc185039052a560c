//! Home-realm discovery: from someone's email address, the single sign-on providers trusted
//! for its domain, so the sign-in screen sends them to their organization's provider instead
//! of asking them to pick a button.
//!
//! The rules:
//! - The answer depends on the domain alone, never on whether an account exists, so it tells
//!   nobody who has an account. Which domains a provider serves is no secret: the provider's
//!   own sign-in page shows it, and the sign-in screen lists every provider already.
//! - A provider serves the domains in its `allowed_domains`, exactly (no subdomains): the same
//!   list that decides whose email it may vouch for. A provider with none is reached by its
//!   button only.

use warden_domain::identity::normalize_email;

use super::providers::public_list;
use crate::{CoreError, CoreResult, Ctx};

/// A provider someone can sign in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    /// Its slug.
    pub slug: String,
    /// Its name on the sign-in screen.
    pub name: String,
    /// `oidc` or `saml`.
    pub protocol: String,
    /// Where signing in with it starts (`/api/v1/auth/sso/{slug}/start`).
    pub start: String,
}

/// The providers trusted for `email`'s domain, by name; empty when none is. 422 (field
/// `email`) when it is not an email address.
pub async fn discover(ctx: &Ctx, email: &str) -> CoreResult<Vec<Realm>> {
    let email = normalize_email(email)
        .map_err(|_| CoreError::invalid("email", "must be an email address"))?;
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    let mut found: Vec<Realm> = public_list(ctx)
        .await?
        .into_iter()
        .filter(|p| p.allowed_domains.split_whitespace().any(|d| d == domain))
        .map(|p| Realm {
            start: format!("/api/v1/auth/sso/{}/start", p.slug),
            slug: p.slug,
            name: p.display_name,
            protocol: p.protocol,
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.slug.cmp(&b.slug)));
    Ok(found)
}

/// Whether any provider serves a domain, so the sign-in screen offers to find it by email.
pub async fn offered(ctx: &Ctx) -> CoreResult<bool> {
    Ok(public_list(ctx)
        .await?
        .iter()
        .any(|p| !p.allowed_domains.trim().is_empty()))
}
