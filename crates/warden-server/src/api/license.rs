//! The licence routes. All three are recovery routes: they answer with no valid licence.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::license::{install, machine, unix_now};
use warden_domain::access::{Access, Permission};
use warden_domain::license::{BANNER_DAYS, DAY, Standing, Tier, days_left};

use super::me::rfc3339;
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

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
    UserOp(op): UserOp,
    caller: Caller,
) -> Result<Json<LicenseStatus>, ApiError> {
    Ok(Json(status_view(&state, &op, &caller).await?))
}

/// The licence status as `caller` may see it (the API's answer and the console's page).
pub(crate) async fn status_view(
    state: &AppState,
    op: &warden_core::Op,
    caller: &Caller,
) -> Result<LicenseStatus, ApiError> {
    let now = unix_now(state.ctx.clock.as_ref());
    let admin = install::is_admin(&state.ctx, &caller.principal).await?;
    let license = &state.ctx.license;
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
        let view = install::admin_view(&state.ctx, op).await?;
        let usage = |u: install::Usage| Usage {
            used: u.used,
            limit: u.limit,
        };
        status.users = Some(usage(view.users));
        status.session_hosts = Some(usage(view.session_hosts));
        status.deploy_hosts = Some(usage(view.deploy_hosts));
        if claims.is_none_or(|c| c.tier == Tier::Standard) {
            status.machine_id = Some(license.fingerprint().to_owned());
        }
        status.history = view
            .history
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
    Ok(status)
}

/// `machine-info.json`: what the operator needs to sign a standard licence for this machine.
#[utoipa::path(get, path = "/api/v1/license/machine-info", tag = "license",
    responses((status = 200, description = "machine-info.json (a download)", body = MachineInfo)))]
pub(crate) async fn machine_info(
    State(state): State<AppState>,
    _admin: PlatformAccess,
) -> Result<Response, ApiError> {
    if state.ctx.license.fingerprint().is_empty() {
        return Err(ApiError::from(
            warden_core::Code::MachineIdentityUnavailable,
        ));
    }
    let info = MachineInfo {
        fingerprint: state.ctx.license.fingerprint().to_owned(),
        hostname: machine::hostname(),
        generated_at: rfc3339(warden_core::identity::now_us(state.ctx.clock.as_ref())),
        warden_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut res = Json(info).into_response();
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"machine-info.json\""),
    );
    Ok(res)
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
    UserOp(op): UserOp,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    body: String,
) -> Result<Json<LicenseStatus>, ApiError> {
    install::install(&state.ctx, &op, &grant, &body).await?;
    license_status(State(state), UserOp(op), caller).await
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
