//! Installing a licence, and what administrators see of its use.

use serde_json::json;
use warden_domain::audit::Outcome;
use warden_domain::hosts::HostKind;
use warden_domain::license::{Claims, Here, Standing, standing};
use warden_store::license::InstallRow;
use warden_store::tenancy::PlatformGrant;

use super::{problem_code, unix_now};
use crate::op::rfc3339;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// A licence refused at upload: invalid input (422), whatever the problem's usual status.
fn refused(code: Code, detail: &'static str) -> CoreError {
    CoreError::with_detail(code, detail).unprocessable()
}

/// Verifies a `.lic` file (signature with the operator key, machine, dates, freshness of its
/// issue date) and installs it; it takes effect at once on every node sharing the database.
/// Refusals are audited too.
pub async fn install(ctx: &Ctx, op: &Op, admin: &PlatformGrant, body: &str) -> CoreResult<()> {
    let license = &ctx.license;
    let Some(key) = license.key() else {
        return Err(Code::LicenseNotEnforced.into());
    };
    let now = unix_now(ctx.clock.as_ref());
    let verified = key
        .verify(body)
        .map_err(|_| {
            refused(
                Code::LicenseInvalidSignature,
                "The licence signature is invalid, or it was signed by another operator key.",
            )
        })
        .and_then(|payload| {
            serde_json::from_value::<Claims>(serde_json::Value::Object(payload))
                .map_err(|_| refused(Code::LicenseMalformed, Code::LicenseMalformed.sentence()))
        })
        .and_then(|claims| {
            claims
                .check()
                .map_err(|e| refused(Code::LicenseMalformed, e.0))?;
            let here = Here {
                now,
                fingerprint: license.fingerprint(),
                installed_at: now,
                freshness: license.freshness(),
                clock_tampered: license.clock_watch().tampered_at(now),
            };
            match standing(&claims, &here) {
                Standing::Invalid(p) => {
                    let code = problem_code(p);
                    Err(refused(code, code.sentence()))
                }
                Standing::Valid | Standing::Grace(_) => Ok(claims),
            }
        });
    let claims = match verified {
        Ok(c) => c,
        Err(e) => {
            let mut tx = ctx.store.begin().await?;
            let event = op.event_with(
                "license.install_refused",
                "license",
                None,
                Outcome::Failed,
                json!({ "reason": e.code.as_str() }),
            );
            tx.record(&ctx.audit_key, &event).await?;
            tx.commit().await?;
            return Err(e);
        }
    };
    let mut tx = ctx.store.begin().await?;
    tx.insert_license(&warden_store::license::NewInstall {
        license_id: &claims.jti,
        customer: &claims.customer,
        tier: claims.tier.as_str(),
        expires_at: claims.exp,
        token: body.trim(),
        installed_by: Some(admin.user_id()),
        installed_at: now,
    })
    .await?;
    let event = op.event(
        "license.installed",
        "license",
        Some(claims.jti.clone()),
        json!({ "customer": claims.customer, "tier": claims.tier.as_str(),
                "expires_at": rfc3339(claims.exp.saturating_mul(1_000_000)),
                "user_limit": claims.user_limit, "session_hosts": claims.session_hosts,
                "deploy_hosts": claims.deploy_hosts, "features": claims.features,
                "allowed_domain": claims.allowed_domain }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    license.reload(&ctx.store).await?;
    Ok(())
}

/// How much of a limit is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// In use now.
    pub used: i64,
    /// The licence's limit (none: unlimited).
    pub limit: Option<u32>,
}

/// What administrators see of the licence's use: seats, connected hosts, install history.
#[derive(Debug, Clone)]
pub struct AdminView {
    /// Active users.
    pub users: Usage,
    /// Connected session hosts.
    pub session_hosts: Usage,
    /// Connected deploy hosts.
    pub deploy_hosts: Usage,
    /// The newest installs first (at most 100).
    pub history: Vec<InstallRow>,
}

/// Whether the principal may see the administrators' part of the licence status.
pub async fn is_admin(
    ctx: &Ctx,
    principal: &warden_domain::identity::Principal,
) -> CoreResult<bool> {
    Ok(ctx
        .store
        .platform_permissions(principal.user_id)
        .await?
        .contains(warden_domain::access::Permission::ADMIN_READ))
}

/// The administrators' part of the licence status, as of `op`.
pub async fn admin_view(ctx: &Ctx, op: &Op) -> CoreResult<AdminView> {
    let hosts = &ctx.hosts;
    let license = &ctx.license;
    let since = crate::hosts::connected_since(op.now_us());
    let connected = |kind: HostKind| ctx.store.connected_hosts(kind.as_str(), since);
    Ok(AdminView {
        users: Usage {
            used: ctx.store.count_active_users().await?,
            limit: license.user_limit(),
        },
        session_hosts: Usage {
            used: connected(HostKind::Session).await?,
            limit: license.host_cap(HostKind::Session, hosts.max_session_hosts),
        },
        deploy_hosts: Usage {
            used: connected(HostKind::Deploy).await?,
            limit: license.host_cap(HostKind::Deploy, hosts.max_deploy_hosts),
        },
        history: ctx.store.license_history(100).await?,
    })
}

/// Whom a signed-in person without the right to install a licence should ask: up to five
/// active administrators' emails.
pub async fn contacts(ctx: &Ctx) -> CoreResult<Vec<String>> {
    let mut tx = ctx.store.begin_read().await?;
    let emails = tx.admin_emails(5).await?;
    tx.commit().await?;
    Ok(emails)
}
