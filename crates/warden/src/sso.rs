//! `warden sso …`: single sign-on providers from a terminal, through the API with the
//! credentials `warden login` saved. The client secret comes from standard input, never the
//! command line.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::cli::{SsoArgs, SsoCommand};
use crate::client::{connect, text};
use crate::output::print;
use crate::workspace::secret_from_stdin;

/// Runs a `warden sso` command.
pub async fn run(credentials: Option<PathBuf>, command: SsoCommand) -> Result<()> {
    let api = connect(credentials).await?;
    match command {
        SsoCommand::List => {
            let all = api
                .call(reqwest::Method::GET, "/api/v1/admin/sso/providers", None)
                .await?;
            print("SLUG  NAME  ISSUER  CLIENT  JIT  LINK-BY-EMAIL  REDIRECT URI");
            for p in all.as_array().into_iter().flatten() {
                print(&format!(
                    "{}  {}  {}  {}  {}  {}  {}",
                    text(&p["slug"]),
                    text(&p["display_name"]),
                    text(&p["issuer"]),
                    text(&p["client_id"]),
                    text(&p["jit"]),
                    text(&p["link_by_email"]),
                    text(&p["redirect_uri"]),
                ));
            }
        }
        SsoCommand::Add(args) => {
            let SsoArgs {
                slug,
                name,
                preset,
                tenant,
                issuer,
                client_id,
                client_secret_stdin,
                scopes,
                domains,
                jit,
                role,
                link_by_email,
                allow_private_network,
                replace,
            } = *args;
            let secret = if client_secret_stdin {
                Some(secret_from_stdin("client secret")?)
            } else {
                None
            };
            let mut body = json!({
                "slug": slug, "display_name": name, "preset": preset, "tenant": tenant,
                "issuer": issuer, "client_id": client_id, "allowed_domains": domains,
                "jit": jit, "default_role": role, "link_by_email": link_by_email,
                "allow_private_network": allow_private_network,
            });
            if !scopes.is_empty() {
                body["scopes"] = json!(scopes);
            }
            if let Some(secret) = &secret {
                body["client_secret"] = json!(secret.as_str());
            }
            let (method, path) = if replace {
                (
                    reqwest::Method::PUT,
                    format!("/api/v1/admin/sso/providers/{slug}"),
                )
            } else {
                (
                    reqwest::Method::POST,
                    "/api/v1/admin/sso/providers".to_owned(),
                )
            };
            let p = api.call(method, &path, Some(body)).await?;
            print(&format!(
                "provider {} ({}); register this redirect URI with it: {}",
                text(&p["slug"]),
                text(&p["issuer"]),
                text(&p["redirect_uri"])
            ));
        }
        SsoCommand::Remove { slug } => {
            api.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/admin/sso/providers/{slug}"),
                None,
            )
            .await?;
            print(&format!("provider {slug} removed"));
        }
    }
    Ok(())
}
