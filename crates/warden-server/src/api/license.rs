//! The licence routes. All three are recovery routes: they answer with no valid licence.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_domain::access::{Access, Permission};
use warden_domain::audit::Outcome;
use warden_domain::hosts::HostKind;
use warden_domain::license::{BANNER_DAYS, Claims, DAY, Here, Standing, Tier, days_left, standing};

use super::me::rfc3339;
use crate::audit::request::RequestMeta;
use crate::http::authz::PlatformAccess;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;
use warden_core::identity::now_us;
use warden_core::license::{machine, unix_now};

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::SignedIn, routes!(license_status))
        .add_recovery(
            Access::Platform(Permission::ADMIN_READ),
            routes!(machine_info),
        )
        .add_recovery(
            Access::Platform(Permission::ADMIN_UPDATE),
            routes!(upload_license),
        )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}

/// Used and allowed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    /// In use now.
    pub used: i64,
    /// Allowed (absent: no limit).
    pub limit: Option<u32>,
}

/// A past install.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstallView {
    /// Licence id.
    pub license_id: String,
    /// Customer.
    pub customer: String,
    /// Tier.
    pub tier: String,
    /// Expiry (RFC 3339).
    pub expires_at: String,
    /// When it was installed (RFC 3339).
    pub installed_at: String,
    /// Who installed it (absent: the command line).
    pub installed_by: Option<String>,
}

/// Why the licence does not hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemView {
    /// Stable code (`license-expired`, `machine-identity-changed`, …).
    pub code: &'static str,
    /// In words.
    pub message: &'static str,
}

/// The licence as this node enforces it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseStatus {
    /// `unlicensed` (no operator key built in or configured: everything on), `valid`,
    /// `grace` (expired, within the grace period: everything works) or `invalid`.
    pub state: &'static str,
    /// Where the keys that enforce licences come from: `embedded` (built into this binary:
    /// configuration cannot turn enforcement off), `configured` (`license.public_key_file`)
    /// or `none` (an unlicensed build: every feature is on).
    pub enforcement: &'static str,
    /// Why it is invalid.
    pub problem: Option<ProblemView>,
    /// Whether administrators should see an expiry banner.
    pub banner: bool,
    /// Active features (every feature when unlicensed).
    pub features: Vec<&'static str>,
    /// Licence id.
    pub license_id: Option<String>,
    /// Customer.
    pub customer: Option<String>,
    /// `standard` or `enterprise`.
    pub tier: Option<&'static str>,
    /// Expiry (RFC 3339).
    pub expires_at: Option<String>,
    /// Whole days left before expiry.
    pub days_left: Option<i64>,
    /// End of the grace period (RFC 3339), when there is one.
    pub grace_ends_at: Option<String>,
    /// Active users and the limit (administrators only).
    pub users: Option<Usage>,
    /// Session hosts connected and the cap (administrators only).
    pub session_hosts: Option<Usage>,
    /// Deploy hosts connected and the cap (administrators only).
    pub deploy_hosts: Option<Usage>,
    /// This machine's fingerprint (standard tier; administrators only).
    pub machine_id: Option<String>,
    /// Domain binding (enterprise tier).
    pub allowed_domain: Option<String>,
    /// Installs, newest first (administrators only).
    pub history: Vec<InstallView>,
}

/// Where the licence stands: state, limits and usage, features, install history. Every signed-in
/// user may read the state and features (the console hides what is not licensed); the rest is
/// for administrators.
#[utoipa::path(get, path = "/api/v1/license", tag = "license",
    responses((status = 200, description = "Licence status", body = LicenseStatus)))]
pub(crate) async fn license_status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<LicenseStatus>, ApiError> {
    let now = unix_now(state.clock.as_ref());
    let admin = state
        .store
        .platform_permissions(caller.principal.user_id)
        .await
        .map_err(internal)?
        .contains(Permission::ADMIN_READ);
    let license = &state.license;
    let installed = license.installed();
    let standing = license.standing(now);
    let (state_name, problem) = match standing {
        None => ("unlicensed", None),
        Some(Standing::Valid) => ("valid", None),
        Some(Standing::Grace(_)) => ("grace", None),
        Some(Standing::Invalid(p)) => ("invalid", Some(p)),
    };
    let features = if license.enforced() {
        match (&installed, problem) {
            (Some(i), None) => i.features.names(),
            _ => Vec::new(),
        }
    } else {
        warden_domain::license::FeatureSet::all().names()
    };
    let claims = installed.as_ref().map(|i| &i.claims);
    let banner =
        admin && claims.is_some_and(|c| c.exp - now <= BANNER_DAYS * DAY) && license.enforced();
    let mut status = LicenseStatus {
        state: state_name,
        enforcement: license.enforcement().as_str(),
        problem: problem.map(|p| {
            let code = warden_core::license::problem_code(p);
            ProblemView {
                code: code.as_str(),
                message: code.sentence(),
            }
        }),
        banner,
        features,
        license_id: claims.map(|c| c.jti.clone()),
        customer: claims.map(|c| c.customer.clone()),
        tier: claims.map(|c| c.tier.as_str()),
        expires_at: claims.map(|c| rfc3339(c.exp.saturating_mul(1_000_000))),
        days_left: claims.map(|c| days_left(c.exp, now)),
        grace_ends_at: claims
            .filter(|c| c.grace_days > 0)
            .map(|c| rfc3339(c.ends_at().saturating_mul(1_000_000))),
        users: None,
        session_hosts: None,
        deploy_hosts: None,
        machine_id: None,
        allowed_domain: claims.and_then(|c| c.allowed_domain.clone()),
        history: Vec::new(),
    };
    if admin {
        let fresh = i64::try_from((crate::agent::HEARTBEAT * 3).as_micros()).unwrap_or(i64::MAX);
        let since = now_us(state.clock.as_ref()) - fresh;
        let hosts = |kind: HostKind| {
            let store = state.store.clone();
            async move { store.connected_hosts(kind.as_str(), since).await }
        };
        status.users = Some(Usage {
            used: state.store.count_active_users().await.map_err(internal)?,
            limit: license.user_limit(),
        });
        status.session_hosts = Some(Usage {
            used: hosts(HostKind::Session).await.map_err(internal)?,
            limit: license.host_cap(HostKind::Session, state.hosts.max_session_hosts),
        });
        status.deploy_hosts = Some(Usage {
            used: hosts(HostKind::Deploy).await.map_err(internal)?,
            limit: license.host_cap(HostKind::Deploy, state.hosts.max_deploy_hosts),
        });
        if claims.is_none_or(|c| c.tier == Tier::Standard) {
            status.machine_id = Some(license.fingerprint().to_owned());
        }
        status.history = state
            .store
            .license_history(100)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|r| InstallView {
                license_id: r.license_id,
                customer: r.customer,
                tier: r.tier,
                expires_at: rfc3339(r.expires_at.saturating_mul(1_000_000)),
                installed_at: rfc3339(r.installed_at.saturating_mul(1_000_000)),
                installed_by: r.installed_by.map(|u| u.to_string()),
            })
            .collect();
    }
    Ok(Json(status))
}

/// `machine-info.json`: what the operator needs to sign a standard licence for this machine.
#[utoipa::path(get, path = "/api/v1/license/machine-info", tag = "license",
    responses((status = 200, description = "machine-info.json (a download)", body = MachineInfo)))]
pub(crate) async fn machine_info(
    State(state): State<AppState>,
    _admin: PlatformAccess,
) -> Result<Response, ApiError> {
    if state.license.fingerprint().is_empty() {
        return Err(ApiError::from(
            warden_core::Code::MachineIdentityUnavailable,
        ));
    }
    let info = MachineInfo {
        fingerprint: state.license.fingerprint().to_owned(),
        hostname: machine::hostname(),
        generated_at: rfc3339(now_us(state.clock.as_ref())),
        warden_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut res = Json(info).into_response();
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"machine-info.json\""),
    );
    Ok(res)
}

/// A licence refused at upload: invalid input (422), whatever the problem's usual status.
fn refused(code: warden_core::Code, detail: &'static str) -> ApiError {
    ApiError(warden_core::CoreError::with_detail(code, detail).unprocessable())
}

/// Installs a licence: the body is the `.lic` file. It is verified (signature with the
/// configured operator key, machine, dates, freshness of its issue date) and takes effect at
/// once, on every node sharing the database. Refusals are audited too.
#[utoipa::path(put, path = "/api/v1/license", tag = "license",
    request_body(content = String, content_type = "application/jwt", description = "The .lic file"),
    responses((status = 200, description = "Installed", body = LicenseStatus),
        (status = 409, description = "No operator key is configured", content_type = "application/problem+json"),
        (status = 422, description = "Refused, with the reason", content_type = "application/problem+json")))]
pub(crate) async fn upload_license(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    _admin: PlatformAccess,
    body: String,
) -> Result<Json<LicenseStatus>, ApiError> {
    let license = &state.license;
    let Some(key) = license.key() else {
        return Err(ApiError::from(warden_core::Code::LicenseNotEnforced));
    };
    let now = unix_now(state.clock.as_ref());
    let verified = key
        .verify(&body)
        .map_err(|_| {
            refused(
                warden_core::Code::LicenseInvalidSignature,
                "The licence signature is invalid, or it was signed by another operator key.",
            )
        })
        .and_then(|payload| {
            serde_json::from_value::<Claims>(serde_json::Value::Object(payload)).map_err(|_| {
                refused(
                    warden_core::Code::LicenseMalformed,
                    warden_core::Code::LicenseMalformed.sentence(),
                )
            })
        })
        .and_then(|claims| {
            claims
                .check()
                .map_err(|e| refused(warden_core::Code::LicenseMalformed, e.0))?;
            let here = Here {
                now,
                fingerprint: license.fingerprint(),
                installed_at: now,
                freshness: license.freshness(),
                clock_tampered: license.clock_watch().tampered_at(now),
            };
            match standing(&claims, &here) {
                Standing::Invalid(p) => {
                    let code = warden_core::license::problem_code(p);
                    Err(refused(code, code.sentence()))
                }
                Standing::Valid | Standing::Grace(_) => Ok(claims),
            }
        });
    let claims = match verified {
        Ok(c) => c,
        Err(e) => {
            let mut tx = state.store.begin().await.map_err(internal)?;
            let event = meta.event(
                state.clock.now(),
                caller.actor(),
                "license.install_refused",
                "license",
                None,
                Outcome::Failed,
                json!({ "reason": e.code().as_str() }),
            );
            tx.record(&state.audit_key, &event)
                .await
                .map_err(internal)?;
            tx.commit().await.map_err(internal)?;
            return Err(e);
        }
    };
    let mut tx = state.store.begin().await.map_err(internal)?;
    tx.insert_license(&warden_store::license::NewInstall {
        license_id: &claims.jti,
        customer: &claims.customer,
        tier: claims.tier.as_str(),
        expires_at: claims.exp,
        token: body.trim(),
        installed_by: Some(caller.principal.user_id),
        installed_at: now,
    })
    .await
    .map_err(internal)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "license.installed",
        "license",
        Some(claims.jti.clone()),
        Outcome::Success,
        json!({ "customer": claims.customer, "tier": claims.tier.as_str(),
                "expires_at": rfc3339(claims.exp.saturating_mul(1_000_000)),
                "user_limit": claims.user_limit, "session_hosts": claims.session_hosts,
                "deploy_hosts": claims.deploy_hosts, "features": claims.features,
                "allowed_domain": claims.allowed_domain }),
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    license.reload(&state.store).await.map_err(internal)?;
    license_status(State(state), caller).await
}

/// What an administrator sends the operator to get a standard licence.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineInfo {
    /// The machine fingerprint (hashed machine id).
    pub fingerprint: String,
    /// Host name.
    pub hostname: String,
    /// When this file was generated (RFC 3339); the operator refuses stale ones.
    pub generated_at: String,
    /// Warden version.
    pub warden_version: String,
}
