//! The grants the access guard leaves for handlers. A route declared `Workspace(p)` or
//! `Platform(p)` reaches its handler only after the guard's check, and the handler receives
//! the proof of that check here: the only way to open a workspace-scoped transaction.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use warden_store::tenancy::{PlatformGrant, WorkspaceGrant};

use super::problem::ApiError;
use crate::state::AppState;

/// The guard's proof that the caller holds the route's permission in the path's workspace.
#[derive(Debug)]
pub struct WorkspaceAccess(pub WorkspaceGrant);

impl<S: Send + Sync> FromRequestParts<S> for WorkspaceAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .remove::<WorkspaceGrant>()
            .map(Self)
            .ok_or_else(|| ApiError::internal(&"workspace handler on a route without a grant"))
    }
}

/// The guard's proof that the caller's platform role grants the route's permission.
#[derive(Debug)]
pub struct PlatformAccess(pub PlatformGrant);

impl<S: Send + Sync> FromRequestParts<S> for PlatformAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .remove::<PlatformGrant>()
            .map(Self)
            .ok_or_else(|| ApiError::internal(&"platform handler on a route without a grant"))
    }
}

/// The host the guard authenticated by its key, on a route declared `Access::Host`.
#[derive(Debug)]
pub struct HostAccess(pub warden_core::hosts::HostCaller);

impl<S: Send + Sync> FromRequestParts<S> for HostAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .remove::<warden_core::hosts::HostCaller>()
            .map(Self)
            .ok_or_else(|| ApiError::internal(&"host handler on a route without a host"))
    }
}

/// The signed-in caller's operation: who (the caller), from where (the request), when (one
/// clock reading). What a handler passes to the core.
#[derive(Debug)]
pub struct UserOp(pub warden_core::Op);

impl FromRequestParts<AppState> for UserOp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = crate::identity::Caller::from_request_parts(parts, state).await?;
        let Ok(meta) = crate::audit::request::RequestMeta::from_request_parts(parts, state).await;
        Ok(Self(meta.op(caller.actor(), state.ctx.clock.as_ref())))
    }
}

/// The operation of a request with no principal yet (sign-in, refresh, setup): its audit
/// events name the account they concern.
#[derive(Debug)]
pub struct AnonymousOp(pub warden_core::Op);

impl FromRequestParts<AppState> for AnonymousOp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        let Ok(meta) = crate::audit::request::RequestMeta::from_request_parts(parts, state).await;
        let nobody = warden_domain::audit::Actor {
            kind: warden_domain::audit::ActorKind::User,
            id: None,
        };
        Ok(Self(meta.op(nobody, state.ctx.clock.as_ref())))
    }
}
