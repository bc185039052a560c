//! `warden sso …`: single sign-on providers from a terminal, through the API with the
//! credentials `warden login` saved. The client secret comes from standard input, never the
//! command line. SAML providers are added from the IdP's metadata (a file or its URL).

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
            print("SLUG  PROTOCOL  NAME  ISSUER  CLIENT  JIT  LINK-BY-EMAIL  REDIRECT URI");
            for p in all.as_array().into_iter().flatten() {
                print(&format!(
                    "{}  {}  {}  {}  {}  {}  {}  {}",
                    text(&p["slug"]),
                    text(&p["protocol"]),
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
        SsoCommand::AddSaml(args) => add_saml(&api, *args).await?,
        SsoCommand::Remove { slug } => {
            api.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/admin/sso/providers/{slug}"),
                None,
            )
            .await?;
            print(&format!("provider {slug} removed"));
        }
        SsoCommand::Discover { email } => {
            let found = api
                .call(
                    reqwest::Method::POST,
                    "/api/v1/auth/sso/discover",
                    Some(json!({ "email": email })),
                )
                .await?;
            let providers = found["providers"].as_array().cloned().unwrap_or_default();
            if providers.is_empty() {
                print("no single sign-on provider serves that domain");
            }
            print_realms(&providers);
        }
        SsoCommand::MapGroup {
            workspace,
            provider,
            group,
            role,
        } => {
            let path = format!("/api/v1/workspaces/{workspace}/directory-groups");
            let body = json!({ "provider": provider, "group": group, "role": role });
            let v = api.call(reqwest::Method::POST, &path, Some(body)).await?;
            print(&format!(
                "{} group {} mapped as {} (id {}): {} added, {} changed, {} removed, {} skipped",
                text(&v["mapping"]["provider"]),
                text(&v["mapping"]["display_name"]),
                text(&v["mapping"]["role"]),
                text(&v["mapping"]["group_id"]),
                text(&v["synced"]["added"]),
                text(&v["synced"]["changed"]),
                text(&v["synced"]["removed"]),
                text(&v["synced"]["skipped"]),
            ));
        }
        SsoCommand::UnmapGroup {
            workspace,
            provider,
            group,
        } => {
            let path = format!("/api/v1/workspaces/{workspace}/directory-groups");
            let all = api.call(reqwest::Method::GET, &path, None).await?;
            let id = all
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["provider"] == provider.as_str() && m["display_name"] == group.as_str())
                .map(|m| text(&m["group_id"]))
                .ok_or_else(|| anyhow::anyhow!("{provider} group {group} is not mapped there"))?;
            let v = api
                .call(reqwest::Method::DELETE, &format!("{path}/{id}"), None)
                .await?;
            print(&format!(
                "group unmapped: {} removed, {} changed, {} skipped",
                text(&v["removed"]),
                text(&v["changed"]),
                text(&v["skipped"]),
            ));
        }
    }
    Ok(())
}

fn print_realms(providers: &[serde_json::Value]) {
    for p in providers {
        print(&format!(
            "{}  {}  {}  {}",
            text(&p["slug"]),
            text(&p["protocol"]),
            text(&p["name"]),
            text(&p["start"]),
        ));
    }
}

/// `warden sso add-saml`.
#[derive(Debug, clap::Args)]
pub struct SamlArgs {
    /// Short name in URLs, e.g. `okta`.
    pub slug: String,
    /// Shown on the sign-in screen.
    #[arg(long)]
    pub name: String,
    /// The IdP's metadata XML file.
    #[arg(long, value_name = "FILE", conflicts_with = "metadata_url")]
    pub metadata_file: Option<PathBuf>,
    /// Or the URL Warden fetches the IdP's metadata from (https).
    #[arg(long, value_name = "URL")]
    pub metadata_url: Option<String>,
    /// What the IdP must sign: assertion (default), response or either.
    #[arg(long)]
    pub signed: Option<String>,
    /// Accept sign-ins the IdP starts.
    #[arg(long)]
    pub idp_initiated: bool,
    /// The attribute carrying the email (default: the usual names, else the NameID).
    #[arg(long, value_name = "NAME")]
    pub email_attribute: Option<String>,
    /// An email domain the IdP is trusted for (repeat; needed for --jit and --link-by-email).
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Create accounts for people signing in for the first time.
    #[arg(long)]
    pub jit: bool,
    /// Their platform role (default member).
    #[arg(long)]
    pub role: Option<String>,
    /// Link existing accounts by email in one of the domains.
    #[arg(long)]
    pub link_by_email: bool,
    /// Allow --metadata-url on a private, loopback or link-local address.
    #[arg(long)]
    pub allow_private_network: bool,
    /// Change the existing provider with this slug instead of adding one.
    #[arg(long)]
    pub replace: bool,
}

async fn add_saml(api: &crate::client::Api, a: SamlArgs) -> Result<()> {
    let metadata_xml = match &a.metadata_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?,
        ),
        None => None,
    };
    let body = json!({
        "slug": a.slug, "display_name": a.name, "metadata_xml": metadata_xml,
        "metadata_url": a.metadata_url, "signed": a.signed, "idp_initiated": a.idp_initiated,
        "email_attribute": a.email_attribute, "allowed_domains": a.domains, "jit": a.jit,
        "default_role": a.role, "link_by_email": a.link_by_email,
        "allow_private_network": a.allow_private_network,
    });
    let (method, path) = if a.replace {
        (
            reqwest::Method::PUT,
            format!("/api/v1/admin/saml/providers/{}", a.slug),
        )
    } else {
        (
            reqwest::Method::POST,
            "/api/v1/admin/saml/providers".to_owned(),
        )
    };
    let p = api.call(method, &path, Some(body)).await?;
    print(&format!(
        "SAML provider {} (IdP {}). Register with the IdP: entity id (audience) {}, \
         assertion consumer service (HTTP-POST) {}; or give it the metadata at that entity id.",
        text(&p["slug"]),
        text(&p["issuer"]),
        text(&p["sp_entity_id"]),
        text(&p["redirect_uri"]),
    ));
    Ok(())
}
