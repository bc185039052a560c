//! The sign-in policy: password sign-in on, or off for everyone but one break-glass account
//! (password-free mode). Turning it off is refused when no administrator would have another
//! way in: mail that reaches people (SMTP configured, so magic links work), an active
//! administrator linked to single sign-on, or one named as the break-glass account. The bootstrap paths (the one-time setup link,
//! `warden user create` on the server machine) stay as they are.

use serde_json::json;
use uuid::Uuid;
use warden_domain::identity::normalize_email;
use warden_store::sign_in::SignInPolicy;
use warden_store::tenancy::PlatformGrant;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// The policy as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether password sign-in is on for everyone.
    pub password_sign_in: bool,
    /// The break-glass account's email, if one is named.
    pub break_glass_email: Option<String>,
}

/// The current policy.
pub async fn get(ctx: &Ctx, _grant: &PlatformGrant) -> CoreResult<Policy> {
    let mut tx = ctx.store.begin_read().await?;
    let p = tx.sign_in_policy().await?;
    let email = match p.break_glass_user {
        Some(id) => tx.user_by_id(id).await?.map(|u| u.email),
        None => None,
    };
    tx.commit().await?;
    Ok(Policy {
        password_sign_in: p.password_sign_in,
        break_glass_email: email,
    })
}

/// Whether password sign-in is on for everyone (for `GET /api/v1/auth/methods`).
pub async fn password_sign_in(ctx: &Ctx) -> CoreResult<bool> {
    let mut tx = ctx.store.begin_read().await?;
    let p = tx.sign_in_policy().await?;
    tx.commit().await?;
    Ok(p.password_sign_in)
}

/// Sets the policy. The break-glass account must be an active administrator; turning
/// password sign-in off needs mail that reaches people or a break-glass administrator.
pub async fn set(
    ctx: &Ctx,
    op: &Op,
    _grant: &PlatformGrant,
    password_sign_in: bool,
    break_glass_email: Option<&str>,
) -> CoreResult<Policy> {
    let mut tx = ctx.store.begin().await?;
    tx.lock_admin_changes().await?;
    let break_glass: Option<(Uuid, String)> = match break_glass_email {
        Some(email) => {
            let email = normalize_email(email)
                .map_err(|_| CoreError::new(Code::InvalidEmail).on_field("break_glass_email"))?;
            let user = tx
                .user_by_email(&email)
                .await?
                .filter(|u| u.active && u.platform_role == "admin")
                .ok_or_else(|| {
                    CoreError::invalid(
                        "break_glass_email",
                        "must be the email of an active administrator",
                    )
                })?;
            Some((user.id, user.email))
        }
        None => None,
    };
    if !password_sign_in
        && break_glass.is_none()
        && ctx.mail.config.url.is_none()
        && tx.admins_with_sso().await? == 0
    {
        return Err(CoreError::with_detail(
            Code::NoOtherWayIn,
            "with password sign-in off, administrators would have no way in: configure \
             smtp.url (so magic links reach them), link an administrator to single sign-on, \
             or name a break-glass administrator",
        ));
    }
    tx.set_sign_in_policy(
        SignInPolicy {
            password_sign_in,
            break_glass_user: break_glass.as_ref().map(|(id, _)| *id),
        },
        op.now_us(),
    )
    .await?;
    let email = break_glass.map(|(_, e)| e);
    let event = op.event(
        "auth.sign_in_policy_changed",
        "sign_in_policy",
        None,
        json!({"password_sign_in": password_sign_in, "break_glass_email": email}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(Policy {
        password_sign_in,
        break_glass_email: email,
    })
}
