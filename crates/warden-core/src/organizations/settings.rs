//! An organization's own settings: its display name and the email domains its members'
//! addresses must be in (its admins), and how many active workspaces it may hold (platform
//! administrators only — a customer does not raise its own limit).

use serde_json::{Map, Value, json};
use warden_domain::identity::Principal;
use warden_domain::organizations::OrgId;
use warden_store::tenancy::organizations::{OrgRow, OrgSettings};

use super::{check_current, find, licensed, manages_organizations, require_admin};
use crate::sso::providers::domain_list;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// What to change; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    /// A new display name.
    pub name: Option<String>,
    /// New email domains (empty: any address).
    pub email_domains: Option<Vec<String>>,
    /// A new workspace limit (`Some(None)`: none).
    pub max_workspaces: Option<Option<i64>>,
}

/// The organization's settings (its admins, or a platform administrator).
pub async fn get(ctx: &Ctx, principal: &Principal, org: &str) -> CoreResult<OrgRow> {
    let row = find(ctx, org).await?;
    check_current(principal, OrgId::from_uuid(row.id))?;
    require_admin(ctx, principal, OrgId::from_uuid(row.id)).await?;
    Ok(row)
}

/// Changes the organization's settings. Its admins change the name and email domains; only
/// a platform administrator (holding the organization-manager permission) changes the
/// workspace limit. The default organization takes no email domains (everyone belongs to
/// it). Audited with what changed.
pub async fn update(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    org: &str,
    change: SettingsChange,
) -> CoreResult<OrgRow> {
    let row = find(ctx, org).await?;
    let id = OrgId::from_uuid(row.id);
    check_current(principal, id)?;
    licensed(ctx)?;
    require_admin(ctx, principal, id).await?;
    if change.max_workspaces.is_some() && !manages_organizations(ctx, principal).await? {
        return Err(CoreError::with_detail(
            Code::Forbidden,
            "Only a platform administrator changes an organization's workspace limit.",
        ));
    }
    let before = OrgSettings {
        name: row.name.clone(),
        email_domains: row.email_domains.clone(),
        max_workspaces: row.max_workspaces,
    };
    let mut after = before.clone();
    if let Some(name) = &change.name {
        after.name = warden_domain::organizations::parse_name(name).map_err(CoreError::from)?;
    }
    if let Some(domains) = &change.email_domains {
        let domains = domain_list("email_domains", domains)?;
        if id.is_default() && !domains.is_empty() {
            return Err(Code::DefaultOrg.into());
        }
        after.email_domains = domains.join(" ");
    }
    if let Some(limit) = change.max_workspaces {
        if limit.is_some_and(|n| !(0..=1_000_000).contains(&n)) {
            return Err(CoreError::invalid(
                "max_workspaces",
                "must be between 0 and 1000000, or null for no limit",
            ));
        }
        after.max_workspaces = limit;
    }
    if after == before {
        return Ok(row);
    }
    let mut tx = ctx.store.begin().await?;
    if !tx.set_org_settings(id, &after, op.now_us()).await? {
        return Err(Code::NotFound.into());
    }
    let mut changed = Map::new();
    let mut note = |field: &str, old: Value, new: Value| {
        if old != new {
            changed.insert(field.to_owned(), json!({ "old": old, "new": new }));
        }
    };
    note("name", before.name.into(), after.name.clone().into());
    note(
        "email_domains",
        before.email_domains.into(),
        after.email_domains.clone().into(),
    );
    note(
        "max_workspaces",
        before.max_workspaces.into(),
        after.max_workspaces.into(),
    );
    let event = op.event(
        "organization.settings_changed",
        "organization",
        Some(id.to_string()),
        Value::Object(changed),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(OrgRow {
        name: after.name,
        email_domains: after.email_domains,
        max_workspaces: after.max_workspaces,
        ..row
    })
}

/// Whether `email` (already normalised) is in the organization's email domains, if it has
/// any.
pub(crate) fn email_allowed(row: &OrgRow, email: &str) -> bool {
    if row.email_domains.trim().is_empty() {
        return true;
    }
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    row.email_domains
        .split_whitespace()
        .any(|d| d.eq_ignore_ascii_case(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(domains: &str) -> OrgRow {
        OrgRow {
            id: uuid::Uuid::nil(),
            slug: "acme".into(),
            name: "Acme".into(),
            created_by: None,
            created_at: 0,
            email_domains: domains.into(),
            max_workspaces: None,
        }
    }

    #[test]
    fn an_address_must_be_in_one_of_the_domains_exactly() {
        assert!(email_allowed(&org(""), "a@anything.example"));
        let acme = org("acme.example acme.test");
        assert!(email_allowed(&acme, "a@acme.example"));
        assert!(email_allowed(&acme, "a@ACME.test"));
        assert!(!email_allowed(&acme, "a@sub.acme.example"));
        assert!(!email_allowed(&acme, "a@evilacme.example"));
        assert!(!email_allowed(&acme, "acme.example@evil.example"));
        assert!(!email_allowed(&acme, "no-at-sign"));
    }
}
