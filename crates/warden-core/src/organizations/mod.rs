//! Organizations (multi-tenant mode, licence flag `multi-tenant`): creating them, their
//! members, and switching the organization a sign-in acts in.
//!
//! A sign-in acts in one organization at a time; its access tokens name it, and every
//! workspace route answers only for that organization's workspaces (the store's grant and, on
//! PostgreSQL, row-level security). A route naming an organization — in its path, or in the
//! `x-org-id` header the edge checks — must name that one ([`check_current`]). Platform
//! administrators holding [`ORG_MANAGER`] create organizations and manage anyone's
//! membership; an organization's own admins change and remove its members.

pub mod audit;
pub mod settings;
pub mod usage;

use serde_json::json;
use uuid::Uuid;
use warden_domain::identity::{Principal, normalize_email};
use warden_domain::license::Feature;
use warden_domain::organizations::{ORG_MANAGER, OrgId, OrgRole, OrgSlug};
use warden_store::tenancy::PlatformGrant;
use warden_store::tenancy::organizations::{MyOrgRow, OrgMemberRow, OrgRow};

use crate::identity::tokens::require_session;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// An organization as a person sees it in their list.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The organization.
    pub row: MyOrgRow,
    /// Whether the caller's sign-in acts in it now.
    pub current: bool,
}

/// The organizations the caller may act in: the default one and those they belong to — or,
/// for a holder of [`ORG_MANAGER`], every organization.
pub async fn mine(ctx: &Ctx, principal: &Principal) -> CoreResult<Vec<Listed>> {
    let manages = manages_organizations(ctx, principal).await?;
    let mut tx = ctx.store.begin_read().await?;
    let mut rows = tx.organizations_of(principal.user_id).await?;
    if manages {
        let all = tx.organizations().await?;
        for org in all {
            if !rows.iter().any(|r| r.id == org.id) {
                rows.push(MyOrgRow {
                    id: org.id,
                    slug: org.slug,
                    name: org.name,
                    role: None,
                });
            }
        }
    }
    tx.commit().await?;
    let current = principal.organization.map(OrgId::uuid);
    Ok(rows
        .into_iter()
        .map(|row| Listed {
            current: Some(row.id) == current,
            row,
        })
        .collect())
}

/// Creates an organization (needs `admin.create` and the `multi-tenant` licence flag). The
/// creator does not join it: its members are added next.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    slug: &OrgSlug,
    name: &str,
) -> CoreResult<OrgRow> {
    licensed(ctx)?;
    let name = warden_domain::organizations::parse_name(name).map_err(CoreError::from)?;
    let row = OrgRow {
        id: OrgId::generate().uuid(),
        slug: slug.as_str().to_owned(),
        name,
        created_by: Some(grant.user_id()),
        created_at: op.now_us(),
        email_domains: String::new(),
        max_workspaces: None,
    };
    let mut tx = ctx.store.begin().await?;
    if tx.organization(slug.as_str()).await?.is_some() {
        return Err(Code::OrgExists.into());
    }
    match tx.insert_organization(&row).await {
        Err(e) if e.is_unique_violation() => return Err(Code::OrgExists.into()),
        other => other?,
    }
    let event = op.event(
        "organization.created",
        "organization",
        Some(row.id.to_string()),
        json!({ "slug": row.slug, "name": row.name }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(row)
}

/// Refuses a request naming an organization other than the one the credential acts in (a
/// credential bound to one workspace acts in no organization it could name).
pub fn check_current(principal: &Principal, org: OrgId) -> CoreResult<()> {
    if principal.organization == Some(org) {
        Ok(())
    } else {
        Err(Code::OrgMismatch.into())
    }
}

/// An organization's members (its admins, or a holder of [`ORG_MANAGER`]).
pub async fn members(
    ctx: &Ctx,
    principal: &Principal,
    org: &str,
) -> CoreResult<(OrgRow, Vec<OrgMemberRow>)> {
    let row = find(ctx, org).await?;
    let org = OrgId::from_uuid(row.id);
    check_current(principal, org)?;
    require_admin(ctx, principal, org).await?;
    let mut tx = ctx.store.begin_read().await?;
    let members = tx.org_members(org).await?;
    tx.commit().await?;
    Ok((row, members))
}

/// Adds a person (by email) to an organization, or changes their role. Adding needs
/// [`ORG_MANAGER`] (an organization admin cannot look accounts up across the installation);
/// an organization's admins change their members' roles. An organization keeps an admin.
pub async fn put_member(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    org: &str,
    email: &str,
    role: OrgRole,
) -> CoreResult<OrgMemberRow> {
    let row = find(ctx, org).await?;
    let org = OrgId::from_uuid(row.id);
    check_current(principal, org)?;
    if org.is_default() {
        return Err(Code::DefaultOrg.into());
    }
    licensed(ctx)?;
    let manager = manages_organizations(ctx, principal).await?;
    if !manager {
        require_admin(ctx, principal, org).await?;
    }
    let email =
        normalize_email(email).map_err(|_| CoreError::invalid("email", "not an email address"))?;
    let mut tx = ctx.store.begin().await?;
    let Some(user) = tx.user_by_email(&email).await? else {
        return Err(if manager {
            CoreError::invalid("email", "no account has this address")
        } else {
            Code::NotFound.into()
        });
    };
    let before = tx.org_member_role(org, user.id).await?;
    if before.is_none() && !manager {
        // Not yet a member: only a platform administrator adds people.
        return Err(Code::NotFound.into());
    }
    if before.is_none() && !settings::email_allowed(&row, &user.email) {
        return Err(Code::OrgEmailDomain.into());
    }
    if before == Some(OrgRole::Admin)
        && role != OrgRole::Admin
        && tx.count_org_admins(org).await? <= 1
    {
        return Err(Code::LastOrgAdmin.into());
    }
    tx.put_org_member(org, user.id, role, principal.user_id, op.now_us())
        .await?;
    let event = op.event(
        if before.is_some() {
            "organization.member_changed"
        } else {
            "organization.member_added"
        },
        "organization",
        Some(org.to_string()),
        json!({ "user_id": user.id.to_string(), "role": role.as_str() }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    let member = tx
        .org_members(org)
        .await?
        .into_iter()
        .find(|m| m.user_id == user.id)
        .ok_or_else(|| CoreError::internal(&"member vanished"))?;
    tx.commit().await?;
    Ok(member)
}

/// Removes a member (an organization admin or a holder of [`ORG_MANAGER`]). Their sign-ins
/// acting in the organization lose it on their next request and go back to the default one
/// at their next refresh.
pub async fn remove_member(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    org: &str,
    user: &str,
) -> CoreResult<()> {
    let row = find(ctx, org).await?;
    let org = OrgId::from_uuid(row.id);
    check_current(principal, org)?;
    if org.is_default() {
        return Err(Code::DefaultOrg.into());
    }
    require_admin(ctx, principal, org).await?;
    let user: Uuid = user.parse().map_err(|_| Code::NotFound)?;
    let mut tx = ctx.store.begin().await?;
    let before = tx.org_member_role(org, user).await?;
    if before.is_none() {
        return Err(Code::NotFound.into());
    }
    if before == Some(OrgRole::Admin) && tx.count_org_admins(org).await? <= 1 {
        return Err(Code::LastOrgAdmin.into());
    }
    tx.remove_org_member(org, user).await?;
    let event = op.event(
        "organization.member_removed",
        "organization",
        Some(org.to_string()),
        json!({ "user_id": user.to_string() }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// A sign-in now acting in another organization.
#[derive(Debug)]
pub struct Switched {
    /// The organization.
    pub org: OrgRow,
    /// A fresh access token naming it.
    pub access_token: String,
    /// Its lifetime, seconds.
    pub expires_in: i64,
}

/// Makes the caller's sign-in act in `org` (id or slug): the default organization always;
/// another one if the licence has `multi-tenant` and the caller belongs to it (or holds
/// [`ORG_MANAGER`]). The session keeps it across refreshes; a fresh access token names it at
/// once. Personal access tokens act in the organization they were made in.
pub async fn switch(ctx: &Ctx, op: &Op, principal: &Principal, org: &str) -> CoreResult<Switched> {
    require_session(principal)?;
    let row = find(ctx, org).await?;
    let target = OrgId::from_uuid(row.id);
    if !target.is_default() {
        licensed(ctx)?;
        if ctx
            .store
            .org_role(target, principal.user_id)
            .await?
            .is_none()
            && !manages_organizations(ctx, principal).await?
        {
            return Err(Code::NotOrgMember.into());
        }
    }
    let mut tx = ctx.store.begin().await?;
    if !tx
        .set_session_org(principal.session_id, principal.user_id, target)
        .await?
    {
        return Err(Code::Unauthenticated.into());
    }
    let event = op.event(
        "session.organization_switched",
        "organization",
        Some(target.to_string()),
        json!({
            "from": principal.organization.map(|o| o.to_string()),
            "slug": row.slug,
        }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    let next = principal.clone().in_org(target);
    let identity = ctx.identity.clone();
    let now = op.now;
    let (access_token, expires_in) =
        tokio::task::spawn_blocking(move || identity.issue_access_token(&next, now))
            .await
            .map_err(|e| CoreError::internal(&e))?
            .map_err(|e| CoreError::internal(&e))?;
    Ok(Switched {
        org: row,
        access_token,
        expires_in,
    })
}

/// Gives a single sign-on provider (OpenID or SAML) to the organization the caller acts in,
/// or (`assign` false) takes it back to the installation: its sign-ins then act in that
/// organization, and a person signing in through it for the first time joins it. Needs the
/// route's `settings.update` and [`ORG_MANAGER`].
pub async fn set_provider(
    ctx: &Ctx,
    op: &Op,
    grant: &PlatformGrant,
    org: &str,
    slug: &str,
    assign: bool,
) -> CoreResult<()> {
    let row = find(ctx, org).await?;
    let org = OrgId::from_uuid(row.id);
    if grant.organization() != org {
        return Err(Code::OrgMismatch.into());
    }
    if !grant.platform().contains(ORG_MANAGER) {
        return Err(Code::Forbidden.into());
    }
    licensed(ctx)?;
    let mut tx = ctx.store.begin().await?;
    let provider = tx.sso_provider(slug).await?.ok_or(Code::NotFound)?;
    let stored = (!org.is_default()).then(|| org.uuid());
    if !assign && provider.organization_id != stored {
        return Err(Code::NotFound.into());
    }
    tx.set_sso_provider_org(provider.id, if assign { stored } else { None })
        .await?;
    let event = op.event(
        if assign {
            "sso.provider_organization_set"
        } else {
            "sso.provider_organization_cleared"
        },
        "sso_provider",
        Some(provider.slug.clone()),
        json!({ "organization": org.to_string(), "slug": row.slug }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(())
}

async fn find(ctx: &Ctx, org: &str) -> CoreResult<OrgRow> {
    let mut tx = ctx.store.begin_read().await?;
    let row = tx.organization(org).await?;
    tx.commit().await?;
    row.ok_or_else(|| Code::NotFound.into())
}

fn licensed(ctx: &Ctx) -> CoreResult<()> {
    if ctx.license.feature(Feature::MultiTenant) {
        Ok(())
    } else {
        Err(Code::FeatureNotLicensed.into())
    }
}

async fn manages_organizations(ctx: &Ctx, principal: &Principal) -> CoreResult<bool> {
    Ok(ctx
        .store
        .platform_permissions(principal.user_id)
        .await?
        .intersect(principal.ceiling())
        .contains(ORG_MANAGER))
}

async fn require_admin(ctx: &Ctx, principal: &Principal, org: OrgId) -> CoreResult<()> {
    if manages_organizations(ctx, principal).await? {
        return Ok(());
    }
    match ctx.store.org_role(org, principal.user_id).await? {
        Some(OrgRole::Admin) => Ok(()),
        Some(OrgRole::Member) => Err(Code::Forbidden.into()),
        None => Err(Code::NotFound.into()),
    }
}
