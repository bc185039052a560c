//! The device authorization grant (RFC 8628): a terminal (`warden login --device`) or a host
//! agent (`warden-agent enroll`) asks for a code, a signed-in person approves it on the
//! verification page, and the device, polling, redeems it exactly once.
//!
//! - Device codes (`wdc_…`, 256 random bits) and user codes (8 letters of
//!   `BCDFGHJKLMNPQRSTVWXZ`) are stored as hashes; a grant lasts 10 minutes.
//! - Polling faster than the interval answers `slow_down` and adds 5 s to it.
//! - A person may enter at most 5 wrong user codes a minute (per browser session and per
//!   address), then gets 429: 34 bits of code cannot be guessed at that pace.
//! - Approving needs a signed-in session (never a personal access token); enrolling a host
//!   needs the platform permissions to register, approve and assign hosts — checked again when
//!   the agent redeems, so an approver who lost them since enrols nothing.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::device::{
    DEVICE_CODE_PREFIX, DeviceKind, DeviceStatus, EXPIRES_IN_SECS, INTERVAL_SECS,
    MAX_WRONG_CODES_PER_MINUTE, PollError, SLOW_DOWN_SECS, USER_CODE_ALPHABET, USER_CODE_LEN,
    display_user_code, normalize_user_code,
};
use warden_domain::hosts::HostStatus;
use warden_domain::identity::Principal;
use warden_store::device::DeviceGrantRow;
use warden_store::tenancy::PlatformGrant;
use zeroize::Zeroizing;

use super::flows::{self, Grant, Refusal};
use super::tokens::require_session;
use crate::hosts::admin::{NewHostInput, Scope};
use crate::{Code, CoreError, CoreResult, Ctx, Op};

const SECOND_US: i64 = 1_000_000;
const MINUTE_US: i64 = 60 * SECOND_US;
/// Codes a single address may ask for per minute.
const STARTS_PER_MINUTE: u32 = 30;

/// A grant just opened: what the device shows and keeps.
pub struct Started {
    /// The device code (secret: the device keeps it to poll with).
    pub device_code: Zeroizing<String>,
    /// The user code, `XXXX-XXXX`.
    pub user_code: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Seconds between polls.
    pub interval: i64,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("user_code", &self.user_code)
            .finish_non_exhaustive()
    }
}

/// Opens a grant of `kind` for a device describing itself as `client_name` (and, for a host,
/// asking to be registered as `host_name`).
pub async fn start(
    ctx: &Ctx,
    op: &Op,
    kind: &str,
    client_name: Option<&str>,
    host_name: Option<&str>,
) -> CoreResult<Started> {
    let kind = DeviceKind::parse(kind)
        .ok_or_else(|| CoreError::invalid("kind", "must be user or host"))?;
    let host_name = match (kind, host_name) {
        (DeviceKind::Host, Some(name)) => Some(
            warden_domain::hosts::HostName::parse(name)?
                .as_str()
                .to_owned(),
        ),
        (DeviceKind::Host, None) => {
            return Err(CoreError::invalid(
                "host_name",
                "a host asks to be registered under a name",
            ));
        }
        (DeviceKind::User, _) => None,
    };
    let client_name: String = client_name
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(match kind {
            DeviceKind::User => "warden CLI",
            DeviceKind::Host => "warden-agent",
        })
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let now = op.now_us();
    let ip = op.origin.ip_text().unwrap_or_else(|| "unknown".to_owned());
    let mut tx = ctx.store.begin().await?;
    let scope = format!("device-start:{ip}");
    let closes = |n: u32| if n >= STARTS_PER_MINUTE { MINUTE_US } else { 0 };
    if let Some(until) = tx.throttle_reserve(&scope, now, MINUTE_US, closes).await? {
        tx.rollback().await?;
        return Err(CoreError::too_many_attempts(wait(until, now)));
    }
    let device =
        warden_crypto::token::issue(DEVICE_CODE_PREFIX).map_err(|e| CoreError::internal(&e))?;
    let row = DeviceGrantRow {
        id: Uuid::now_v7(),
        kind: kind.as_str().to_owned(),
        client_name,
        host_name,
        requested_ip: op.origin.ip_text(),
        user_agent: op.origin.user_agent.clone(),
        created_at: now,
        expires_at: now + EXPIRES_IN_SECS * SECOND_US,
        interval_secs: INTERVAL_SECS,
        last_polled_at: None,
        status: DeviceStatus::Pending.as_str().to_owned(),
        decided_by: None,
        workspace_ids: String::new(),
    };
    // A live grant never shares its user code: draw again on the (rare) collision.
    let mut user_code = None;
    for _ in 0..5 {
        let code = warden_crypto::token::user_code(USER_CODE_ALPHABET, USER_CODE_LEN)
            .map_err(|e| CoreError::internal(&e))?;
        if tx
            .insert_device_grant(&row, &device.hash, &user_code_hash(&code))
            .await?
        {
            user_code = Some(code);
            break;
        }
    }
    let user_code = user_code.ok_or_else(|| CoreError::internal(&"no free user code"))?;
    let event = op.event(
        "device.code_issued",
        "device_grant",
        Some(row.id.to_string()),
        json!({ "kind": row.kind, "client": row.client_name, "host_name": row.host_name }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(Started {
        device_code: device.secret,
        user_code: display_user_code(&user_code),
        expires_in: EXPIRES_IN_SECS,
        interval: INTERVAL_SECS,
    })
}

fn user_code_hash(canonical: &str) -> [u8; 32] {
    warden_crypto::token::hash(&format!("device-user-code:{canonical}"))
}

fn wait(until: i64, now: i64) -> Duration {
    Duration::from_micros(u64::try_from(until - now).unwrap_or(1).max(1))
}

/// What the verification page shows about a pending grant.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The grant.
    pub grant: DeviceGrantRow,
    /// The code, `XXXX-XXXX`.
    pub user_code: String,
    /// `user` or `host`.
    pub kind: DeviceKind,
}

/// Finds the pending grant a typed user code names, for the signed-in person at `principal`.
/// Every code that names none counts against the person's and the address's 5 a minute.
pub async fn find(ctx: &Ctx, op: &Op, principal: &Principal, typed: &str) -> CoreResult<Pending> {
    require_session(principal)?;
    let now = op.now_us();
    let scopes = guess_scopes(op, principal);
    let mut tx = ctx.store.begin().await?;
    let mut blocked = 0;
    let closes = |n: u32| {
        if n >= MAX_WRONG_CODES_PER_MINUTE {
            MINUTE_US
        } else {
            0
        }
    };
    for scope in &scopes {
        if let Some(until) = tx.throttle_reserve(scope, now, MINUTE_US, closes).await? {
            blocked = blocked.max(until);
        }
    }
    if blocked > now {
        tx.rollback().await?;
        return Err(CoreError::too_many_attempts(wait(blocked, now)));
    }
    let found = match normalize_user_code(typed) {
        Some(code) => tx
            .device_grant_by_user_code(&user_code_hash(&code), now)
            .await?
            .filter(|g| DeviceStatus::from_stored(&g.status) == DeviceStatus::Pending)
            .map(|g| (g, code)),
        None => None,
    };
    let Some((grant, code)) = found else {
        // The reservation stays: a wrong code is counted.
        tx.commit().await?;
        return Err(Code::InvalidUserCode.into());
    };
    for scope in &scopes {
        tx.throttle_refund(scope).await?;
    }
    tx.commit().await?;
    let kind = DeviceKind::parse(&grant.kind).ok_or_else(|| CoreError::internal(&"grant kind"))?;
    Ok(Pending {
        grant,
        user_code: display_user_code(&code),
        kind,
    })
}

fn guess_scopes(op: &Op, principal: &Principal) -> [String; 2] {
    let ip = op.origin.ip_text().unwrap_or_else(|| "unknown".to_owned());
    [
        format!("device-code:session:{}", principal.session_id),
        format!("device-code:ip:{ip}"),
    ]
}

/// The platform grants enrolling a host takes: register, approve, assign to workspaces.
async fn host_grants(ctx: &Ctx, who: &Principal) -> CoreResult<[PlatformGrant; 3]> {
    let mut grants = Vec::with_capacity(3);
    for p in [
        Permission::HOSTS_CREATE,
        Permission::HOSTS_APPROVE,
        Permission::HOSTS_UPDATE,
    ] {
        grants.push(ctx.store.authorize_platform(who, p).await?);
    }
    grants
        .try_into()
        .map_err(|_| CoreError::internal(&"three grants"))
}

/// Whether the signed-in person may approve this grant (a host needs the hosts permissions).
pub async fn may_approve(ctx: &Ctx, principal: &Principal, pending: &Pending) -> bool {
    match pending.kind {
        DeviceKind::User => !principal.is_token(),
        DeviceKind::Host => !principal.is_token() && host_grants(ctx, principal).await.is_ok(),
    }
}

/// Approves (with, for a host, the workspaces it may serve) or denies the grant a typed
/// user code names.
pub async fn decide(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    typed: &str,
    approve: bool,
    workspace_ids: &[String],
) -> CoreResult<Pending> {
    let pending = find(ctx, op, principal, typed).await?;
    let mut workspaces = Vec::new();
    if approve && pending.kind == DeviceKind::Host {
        host_grants(ctx, principal).await?;
        for w in workspace_ids {
            let id: Uuid = w
                .parse()
                .map_err(|_| CoreError::invalid("workspace_ids", "not a workspace id"))?;
            workspaces.push(id.to_string());
        }
    }
    let status = if approve {
        DeviceStatus::Approved
    } else {
        DeviceStatus::Denied
    };
    let mut tx = ctx.store.begin().await?;
    let decided = tx
        .decide_device_grant(
            pending.grant.id,
            status.as_str(),
            principal.user_id,
            &workspaces.join(" "),
            op.now_us(),
        )
        .await?;
    if !decided {
        return Err(Code::InvalidUserCode.into());
    }
    let action = if approve {
        "device.approved"
    } else {
        "device.denied"
    };
    let event = op.event(
        action,
        "device_grant",
        Some(pending.grant.id.to_string()),
        json!({ "kind": pending.grant.kind, "client": pending.grant.client_name,
                "host_name": pending.grant.host_name, "workspace_ids": workspaces,
                "requested_ip": pending.grant.requested_ip }),
    );
    tx.record(&ctx.audit_key, &event).await?;
    tx.commit().await?;
    Ok(pending)
}

/// What a redeemed grant gives the device.
#[derive(Debug)]
pub enum Redeemed {
    /// A signed-in session of the approver.
    User(Grant),
    /// The enrolled host and its key (shown once).
    Host {
        /// The host's id.
        host_id: Uuid,
        /// Its name.
        name: String,
        /// Its key.
        api_key: Zeroizing<String>,
    },
}

/// Why polling did not redeem.
#[derive(Debug)]
pub enum PollRefusal {
    /// An answer of RFC 8628 § 3.5.
    Oauth(PollError),
    /// Anything else (storage, a host that could not be registered).
    Core(CoreError),
}

impl From<CoreError> for PollRefusal {
    fn from(e: CoreError) -> Self {
        Self::Core(e)
    }
}

impl From<warden_store::StoreError> for PollRefusal {
    fn from(e: warden_store::StoreError) -> Self {
        Self::Core(e.into())
    }
}

/// The device polls with its device code: the RFC 8628 answers until the grant is decided,
/// then (once) what it was approved for.
pub async fn poll(ctx: &Ctx, op: &Op, device_code: &str) -> Result<Redeemed, PollRefusal> {
    use PollError as E;
    if !warden_crypto::token::well_formed(device_code, DEVICE_CODE_PREFIX) {
        return Err(PollRefusal::Oauth(E::InvalidGrant));
    }
    let now = op.now_us();
    let mut tx = ctx.store.begin().await?;
    let Some(grant) = tx
        .device_grant_by_device(&warden_crypto::token::hash(device_code))
        .await?
    else {
        return Err(PollRefusal::Oauth(E::InvalidGrant));
    };
    if grant.expires_at <= now {
        return Err(PollRefusal::Oauth(E::ExpiredToken));
    }
    let too_soon = grant
        .last_polled_at
        .is_some_and(|last| now - last < grant.interval_secs * SECOND_US);
    let interval = if too_soon {
        grant.interval_secs + SLOW_DOWN_SECS
    } else {
        grant.interval_secs
    };
    tx.device_grant_polled(grant.id, now, interval).await?;
    let answer = match DeviceStatus::from_stored(&grant.status) {
        _ if too_soon => Some(E::SlowDown),
        DeviceStatus::Pending => Some(E::AuthorizationPending),
        DeviceStatus::Denied => Some(E::AccessDenied),
        DeviceStatus::Redeemed => Some(E::InvalidGrant),
        DeviceStatus::Approved => None,
    };
    if let Some(answer) = answer {
        tx.commit().await?;
        return Err(PollRefusal::Oauth(answer));
    }
    if !tx.redeem_device_grant(grant.id, now).await? {
        tx.commit().await?;
        return Err(PollRefusal::Oauth(E::InvalidGrant));
    }
    let approver = grant
        .decided_by
        .ok_or_else(|| CoreError::internal(&"approved grant without approver"))?;
    let summary = json!({ "kind": grant.kind, "client": grant.client_name,
                          "approved_by": approver.to_string() });
    let event = op.event_by(
        warden_domain::audit::Actor {
            kind: warden_domain::audit::ActorKind::User,
            id: Some(approver.to_string()),
        },
        "device.redeemed",
        "device_grant",
        Some(grant.id.to_string()),
        warden_domain::audit::Outcome::Success,
        summary.clone(),
    );
    tx.record(&ctx.audit_key, &event).await?;
    match DeviceKind::parse(&grant.kind) {
        Some(DeviceKind::User) => {
            let user = tx
                .user_by_id(approver)
                .await?
                .filter(|u| u.active)
                .ok_or(PollRefusal::Oauth(E::AccessDenied))?;
            let mut session_summary = summary;
            session_summary["method"] = json!("device");
            let grant = flows::start_session(ctx, op, tx, &user, session_summary)
                .await
                .map_err(|r: Refusal| PollRefusal::Core(r.into()))?;
            Ok(Redeemed::User(grant))
        }
        Some(DeviceKind::Host) => {
            // Used up first (so two polls cannot both enrol), then enrolled with the
            // approver's authority as it is now; if that fails, the grant is reopened.
            tx.commit().await?;
            match enrol(ctx, op, &grant, approver).await {
                Ok(done) => Ok(done),
                Err(e) => {
                    let mut tx = ctx.store.begin().await?;
                    tx.reopen_device_grant(grant.id).await?;
                    tx.commit().await?;
                    Err(PollRefusal::Core(e))
                }
            }
        }
        None => Err(PollRefusal::Oauth(E::InvalidGrant)),
    }
}

async fn enrol(ctx: &Ctx, op: &Op, grant: &DeviceGrantRow, approver: Uuid) -> CoreResult<Redeemed> {
    let who = Principal::session(approver, Uuid::nil());
    let [create, approve, update] = host_grants(ctx, &who).await?;
    let name = grant.host_name.clone().unwrap_or_default();
    let input = NewHostInput::parse(&name, "session", &[])?;
    let made = crate::hosts::admin::register(ctx, op, Scope::Platform(&create), input).await?;
    let id = made.host.id.to_string();
    crate::hosts::admin::decide(ctx, op, &approve, &id, HostStatus::Approved).await?;
    let workspaces: Vec<String> = grant
        .workspace_ids
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    if !workspaces.is_empty() {
        crate::hosts::admin::set_workspaces(ctx, op, &update, &id, &workspaces).await?;
    }
    Ok(Redeemed::Host {
        host_id: made.host.id,
        name: made.host.name,
        api_key: made.api_key,
    })
}
