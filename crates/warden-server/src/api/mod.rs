//! The HTTP API, one module per area. Each area exposes `routes()`, registering every handler
//! with its access rule; [`routes`] gathers them all.

pub mod admin;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod automations;
pub mod bots;
pub mod cluster;
pub mod device;
pub mod directory_groups;
pub mod event_sources;
pub mod health;
pub mod hosts;
pub mod invitations;
pub mod jobs;
pub mod license;
pub mod links;
pub mod llm;
pub mod mail;
pub mod me;
pub mod metrics;
pub mod openapi;
pub mod organization_admin;
pub mod organizations;
pub mod passkeys;
pub mod roles;
pub mod saml;
pub mod scim_tokens;
pub mod service_keys;
pub mod session_files;
pub mod session_messages;
pub mod sessions;
pub mod setup;
pub mod sign_in_policy;
pub mod sso;
pub mod sso_discovery;
pub mod ticket_sync;
pub mod tickets;
pub mod tokens;
pub mod webhooks;
pub mod workflows;
pub mod workspace_settings;
pub mod workspaces;

use crate::http::routes::Routes;
use crate::state::AppState;

/// Every route Warden serves, the LLM gateway where it is by default (on the main listener,
/// under [`crate::llm::DEFAULT_PREFIX`]).
pub fn routes() -> Routes<AppState> {
    routes_but_gateway().merge(crate::llm::routes(crate::llm::DEFAULT_PREFIX))
}

/// Every route of the main listener but the LLM gateway's, which go where `llm.path_prefix`
/// and `llm.listen` put them ([`crate::llm::routes`]).
pub fn routes_but_gateway() -> Routes<AppState> {
    Routes::new()
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(automations::routes())
        .merge(event_sources::routes())
        .merge(jobs::routes())
        .merge(service_keys::routes())
        .merge(webhooks::routes())
        .merge(llm::routes())
        .merge(auth::routes())
        .merge(device::routes())
        .merge(links::routes())
        .merge(invitations::routes())
        .merge(sign_in_policy::routes())
        .merge(sso::routes())
        .merge(sso_discovery::routes())
        .merge(saml::routes())
        .merge(mail::routes())
        .merge(me::routes())
        .merge(tokens::routes())
        .merge(passkeys::routes())
        .merge(assets::routes())
        .merge(crate::console::routes())
        .merge(setup::routes())
        .merge(roles::routes())
        .merge(organizations::routes())
        .merge(organization_admin::routes())
        .merge(workspaces::routes())
        .merge(workspace_settings::routes())
        .merge(hosts::routes())
        .merge(license::routes())
        .merge(sessions::routes())
        .merge(session_files::routes())
        .merge(session_messages::routes())
        .merge(tickets::routes())
        .merge(ticket_sync::routes())
        .merge(workflows::routes())
        .merge(bots::routes())
        .merge(crate::mcp::routes())
        .merge(crate::scim::routes())
        .merge(scim_tokens::routes())
        .merge(directory_groups::routes())
        .merge(health::routes())
        .merge(cluster::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
}

#[cfg(test)]
mod tests {
    use warden_domain::access::Access;

    /// An archived workspace refuses every permission that changes something, so a page of it
    /// gated by such a permission would vanish when the workspace is archived (listing one's
    /// gateway keys did: 409 on a GET).
    #[test]
    fn every_workspace_read_route_is_gated_by_a_read_permission() {
        let (_, _, table) = super::routes().into_parts();
        let wrong: Vec<String> = table
            .entries()
            .filter(|(method, _, access)| {
                *method == "GET" && matches!(access, Access::Workspace(p) if !p.is_read_only())
            })
            .map(|(method, path, access)| format!("{method} {path} {access:?}"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
