//! `warden workspace …` and `warden user list|disable|enable|role`: workspace and user
//! administration from a terminal, through the API with the credentials `warden login` saved,
//! so every change is authorised and audited exactly as in the console. Secret values are
//! read from standard input, never from the command line (where `ps` and shell history see
//! them).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::cli::{MembersCommand, SecretsCommand, UserCommand, VariablesCommand, WorkspaceCommand};
use crate::client::{Api, connect, text};
use crate::output::print;

/// A path segment from the command line: refused if it could change the path.
pub(crate) fn segment(what: &str, value: &str) -> Result<String> {
    if value.is_empty() || value.contains(['/', '?', '#', '%', '\\']) || value == ".." {
        bail!("not a valid {what}: {value:?}");
    }
    Ok(value.to_owned())
}

/// Whether `s` looks like a Warden id (a UUID).
fn is_id(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Every page of a paginated list.
async fn all_pages(api: &Api, path: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
            None => format!("{path}{sep}limit=200"),
        };
        let page = api.call(Method::GET, &page_path, None).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
            _ => return Ok(items),
        }
    }
}

/// A workspace named by id, or by its (unique) name among those the caller sees.
pub(crate) async fn workspace_id(api: &Api, named: &str) -> Result<String> {
    if is_id(named) {
        return segment("workspace id", named);
    }
    let found: Vec<Value> = all_pages(api, "/api/v1/workspaces")
        .await?
        .into_iter()
        .filter(|w| w["name"] == named)
        .collect();
    match found.as_slice() {
        [one] => Ok(text(&one["id"])),
        [] => bail!("no workspace of yours is named {named:?} (use its id)"),
        _ => bail!("several workspaces are named {named:?}: use the id"),
    }
}

/// A member of `ws` named by email or user id.
async fn member_id(api: &Api, ws: &str, named: &str) -> Result<String> {
    if is_id(named) {
        return segment("user id", named);
    }
    let members = api
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/members"),
            None,
        )
        .await?;
    members
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(named))
        })
        .map(|m| text(&m["user_id"]))
        .with_context(|| format!("{named} is not a member of this workspace"))
}

/// A user named by email or id (through the administrators' user list).
async fn user_id(api: &Api, named: &str) -> Result<String> {
    if is_id(named) {
        return segment("user id", named);
    }
    all_pages(api, "/api/v1/admin/users")
        .await?
        .into_iter()
        .find(|u| {
            u["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(named))
        })
        .map(|u| text(&u["id"]))
        .with_context(|| format!("no user has the email {named}"))
}

/// One secret value from standard input (a trailing newline dropped).
pub(crate) fn secret_from_stdin(what: &str) -> Result<Zeroizing<String>> {
    let mut value = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut value)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let trimmed = Zeroizing::new(value.trim_end_matches(['\n', '\r']).to_owned());
    if trimmed.is_empty() {
        bail!("the {what} is empty: pipe it in on standard input");
    }
    Ok(trimmed)
}

fn print_workspace(w: &Value) {
    let repo = match &w["repository"] {
        Value::Null => "-".to_owned(),
        Value::Object(o) => o.values().map(text).collect::<Vec<_>>().join(" "),
        other => text(other),
    };
    print(&format!(
        "id: {}\nname: {}\nrole: {}\narchived: {}\nrepository: {repo}\nhooks: {}\ncreated: {}",
        text(&w["id"]),
        text(&w["name"]),
        text(&w["my_role"]),
        text(&w["archived"]),
        w["hooks"],
        text(&w["created_at"]),
    ));
}

fn print_secrets(list: &Value) {
    print("NAME  SET BY  SET AT");
    for s in list.as_array().into_iter().flatten() {
        print(&format!(
            "{}  {}  {}",
            text(&s["name"]),
            text(&s["set_by"]),
            text(&s["set_at"])
        ));
    }
}

/// Runs a `warden workspace` command.
/// `warden workspace members …`.
async fn members(api: &Api, workspace: &str, command: Option<MembersCommand>) -> Result<()> {
    let ws = workspace_id(api, workspace).await?;
    let base = format!("/api/v1/workspaces/{ws}/members");
    match command.unwrap_or(MembersCommand::List) {
        MembersCommand::List => {
            let members = api.call(Method::GET, &base, None).await?;
            print("USER ID                               EMAIL  ROLE  ADDED");
            for m in members.as_array().into_iter().flatten() {
                print(&format!(
                    "{}  {}  {}  {}",
                    text(&m["user_id"]),
                    text(&m["email"]),
                    text(&m["role"]),
                    text(&m["added_at"])
                ));
            }
        }
        MembersCommand::Add { user, role } => {
            let body = if is_id(&user) {
                json!({ "user_id": user, "role": role })
            } else {
                json!({ "email": user, "role": role })
            };
            let m = api.call(Method::POST, &base, Some(body)).await?;
            print(&format!(
                "{} is now {} of workspace {ws}",
                text(&m["email"]),
                text(&m["role"])
            ));
        }
        MembersCommand::Role { user, role } => {
            let id = member_id(api, &ws, &user).await?;
            let m = api
                .call(
                    Method::PATCH,
                    &format!("{base}/{id}"),
                    Some(json!({ "role": role })),
                )
                .await?;
            print(&format!(
                "{} is now {} of workspace {ws}",
                text(&m["email"]),
                text(&m["role"])
            ));
        }
        MembersCommand::Remove { user } => {
            let id = member_id(api, &ws, &user).await?;
            api.call(Method::DELETE, &format!("{base}/{id}"), None)
                .await?;
            print(&format!("{user} removed from workspace {ws}"));
        }
    }
    Ok(())
}

/// `warden workspace secrets …`.
async fn secrets(api: &Api, workspace: &str, command: Option<SecretsCommand>) -> Result<()> {
    let ws = workspace_id(api, workspace).await?;
    let base = format!("/api/v1/workspaces/{ws}");
    match command.unwrap_or(SecretsCommand::List) {
        SecretsCommand::List => {
            let keys = api
                .call(Method::GET, &format!("{base}/provider-keys"), None)
                .await?;
            print("provider keys:");
            print_secrets(&keys);
            let pat = api.call(Method::GET, &format!("{base}/pat"), None).await?;
            print(&format!(
                "git access token: {}",
                if pat.is_null() || pat["set"] == false {
                    "not set".to_owned()
                } else {
                    format!(
                        "set by {} at {}",
                        text(&pat["set_by"]),
                        text(&pat["set_at"])
                    )
                }
            ));
        }
        SecretsCommand::SetProviderKey { provider } => {
            let provider = segment("provider", &provider)?;
            let value = secret_from_stdin("provider key")?;
            api.call(
                Method::PUT,
                &format!("{base}/provider-keys/{provider}"),
                Some(json!({ "value": value.as_str() })),
            )
            .await?;
            print(&format!(
                "provider key for {provider} set (stored encrypted)"
            ));
        }
        SecretsCommand::RemoveProviderKey { provider } => {
            let provider = segment("provider", &provider)?;
            api.call(
                Method::DELETE,
                &format!("{base}/provider-keys/{provider}"),
                None,
            )
            .await?;
            print(&format!("provider key for {provider} removed"));
        }
        SecretsCommand::SetPat => {
            let value = secret_from_stdin("access token")?;
            api.call(
                Method::PUT,
                &format!("{base}/pat"),
                Some(json!({ "value": value.as_str() })),
            )
            .await?;
            print("git access token set (stored encrypted)");
        }
        SecretsCommand::RemovePat => {
            api.call(Method::DELETE, &format!("{base}/pat"), None)
                .await?;
            print("git access token removed");
        }
    }
    Ok(())
}

pub async fn run(credentials: Option<PathBuf>, command: WorkspaceCommand) -> Result<()> {
    let api = connect(credentials).await?;
    match command {
        WorkspaceCommand::Create { name } => {
            let w = api
                .call(
                    Method::POST,
                    "/api/v1/workspaces",
                    Some(json!({ "name": name })),
                )
                .await?;
            print(&format!(
                "workspace {} created: {}",
                text(&w["name"]),
                text(&w["id"])
            ));
        }
        WorkspaceCommand::List { all, archived } => {
            let path = format!("/api/v1/workspaces?all={all}&archived={archived}");
            print("ID                                    NAME  ROLE  ARCHIVED");
            for w in all_pages(&api, &path).await? {
                print(&format!(
                    "{}  {}  {}  {}",
                    text(&w["id"]),
                    text(&w["name"]),
                    text(&w["my_role"]),
                    text(&w["archived"])
                ));
            }
        }
        WorkspaceCommand::Show { workspace } => {
            let ws = workspace_id(&api, &workspace).await?;
            let w = api
                .call(Method::GET, &format!("/api/v1/workspaces/{ws}"), None)
                .await?;
            print_workspace(&w);
        }
        WorkspaceCommand::SetRepo {
            workspace,
            repository,
            clear,
        } => {
            let ws = workspace_id(&api, &workspace).await?;
            let current = api
                .call(Method::GET, &format!("/api/v1/workspaces/{ws}"), None)
                .await?;
            // The settings are replaced as a whole: keep what this command does not change.
            let repository = if clear { None } else { repository };
            let body = json!({
                "repository": repository,
                "hooks": current["hooks"],
                "ticket_config": current["ticket_config"],
            });
            api.call(
                Method::PUT,
                &format!("/api/v1/workspaces/{ws}/settings"),
                Some(body),
            )
            .await?;
            match repository {
                Some(r) => print(&format!("workspace {ws}: repository set to {r}")),
                None => print(&format!("workspace {ws}: repository removed")),
            }
        }
        WorkspaceCommand::Members { workspace, command } => {
            members(&api, &workspace, command).await?;
        }
        WorkspaceCommand::Secrets { workspace, command } => {
            secrets(&api, &workspace, command).await?;
        }
        WorkspaceCommand::Variables { workspace, command } => {
            let ws = workspace_id(&api, &workspace).await?;
            let base = format!("/api/v1/workspaces/{ws}/variables");
            match command.unwrap_or(VariablesCommand::List) {
                VariablesCommand::List => {
                    let vars = api.call(Method::GET, &base, None).await?;
                    print_secrets(&vars);
                }
                VariablesCommand::Set { name } => {
                    let name = segment("variable name", &name)?;
                    let value = secret_from_stdin("variable's value")?;
                    api.call(
                        Method::PUT,
                        &format!("{base}/{name}"),
                        Some(json!({ "value": value.as_str() })),
                    )
                    .await?;
                    print(&format!("variable {name} set (stored encrypted)"));
                }
                VariablesCommand::Remove { name } => {
                    let name = segment("variable name", &name)?;
                    api.call(Method::DELETE, &format!("{base}/{name}"), None)
                        .await?;
                    print(&format!("variable {name} removed"));
                }
            }
        }
    }
    Ok(())
}

/// Runs `warden user list|disable|enable|role` (not `create`, which works on the database).
pub async fn run_user(credentials: Option<PathBuf>, command: UserCommand) -> Result<()> {
    let api = connect(credentials).await?;
    match command {
        UserCommand::Create { .. } => bail!("`warden user create` works on the database"),
        UserCommand::List => {
            print("ID                                    EMAIL  ROLE  ACTIVE  CREATED");
            for u in all_pages(&api, "/api/v1/admin/users").await? {
                print(&format!(
                    "{}  {}  {}  {}  {}",
                    text(&u["id"]),
                    text(&u["email"]),
                    text(&u["platform_role"]),
                    text(&u["active"]),
                    text(&u["created_at"])
                ));
            }
        }
        UserCommand::Disable { user } => {
            let id = user_id(&api, &user).await?;
            api.call(
                Method::POST,
                &format!("/api/v1/admin/users/{id}/deactivate"),
                None,
            )
            .await?;
            print(&format!(
                "{user} deactivated: signed out everywhere, and cannot sign in"
            ));
        }
        UserCommand::Enable { user } => {
            let id = user_id(&api, &user).await?;
            api.call(
                Method::POST,
                &format!("/api/v1/admin/users/{id}/reactivate"),
                None,
            )
            .await?;
            print(&format!("{user} reactivated"));
        }
        UserCommand::Role { user, role } => {
            let id = user_id(&api, &user).await?;
            api.call(
                Method::PUT,
                &format!("/api/v1/admin/users/{id}/role"),
                Some(json!({ "platform_role": role })),
            )
            .await?;
            print(&format!("{user} now has the platform role {role}"));
        }
    }
    Ok(())
}
