//! The groups a SAML provider asserts, as directory groups: a workspace maps a provider's group
//! with a role (`crate::scim::workspaces::put_sso`), and each sign-in through the provider sets
//! the account's memberships among that provider's mapped groups to those the assertion
//! carried, then brings its workspace memberships in line — by the same rules as SCIM groups
//! (`crate::scim::workspaces`): only memberships the directory granted change, the mapping's
//! author must still manage members, no group reaches a platform role.
//!
//! A group the assertion leaves out ends the membership it granted at that sign-in; until the
//! person signs in again the IdP cannot tell Warden (use SCIM for removal the moment it
//! happens).

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::identity::flows::actor_for;
use crate::scim::workspaces::{Synced, sync};
use crate::{CoreResult, Ctx, Op};

/// The attributes Entra ID, Okta and LDAP-backed IdPs put groups in, tried in order when the
/// provider names none.
pub(crate) const GROUP_ATTRIBUTES: &[&str] = &[
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    "groups",
    "memberOf",
];

/// At most this many asserted groups are read (an IdP can send thousands; only mapped ones
/// matter, and a workspace maps a handful).
const MAX_ASSERTED: usize = 2_000;

/// After `user` signed in through `provider`, which asserted `asserted`: their memberships
/// among the provider's groups become those, and their workspace memberships follow.
pub(crate) async fn after_sign_in(
    ctx: &Ctx,
    op: &Op,
    provider: Uuid,
    user: Uuid,
    asserted: impl Iterator<Item = &str>,
) -> CoreResult<Synced> {
    let asserted: BTreeSet<String> = asserted
        .take(MAX_ASSERTED)
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    let mut tx = ctx.store.begin().await?;
    let changed = tx.set_sso_memberships(provider, user, &asserted).await?;
    tx.commit().await?;
    if changed.is_empty() {
        return Ok(Synced::default());
    }
    let mappings = ctx.store.directory_mappings_of(&changed).await?;
    sync(
        ctx,
        &op.acting_as(actor_for(Some(user))),
        &mappings,
        &[user],
    )
    .await
}
