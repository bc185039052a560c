//! Command-line definitions, apart from the commands they run.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod operator;
pub use operator::{AuditCommand, ConfigCommand, ExportArgs, KeysCommand};

/// Warden: a self-hosted control plane for AI coding agents.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration file (also WARDEN_CONFIG). Environment variables WARDEN_* override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (embedded SQLite in ./warden-data unless configured otherwise).
    Serve {
        /// Address to listen on (also WARDEN_LISTEN); default 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Copy the embedded SQLite database to FILE while Warden serves (a consistent point in
    /// time), then check the copy: integrity, the master key opens it, the audit chain
    /// verifies. The file is private (mode 0600); keep the master key apart from it.
    Backup {
        /// The backup file to create (never overwritten).
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
    },
    /// Put a backup in place of the database, once a copy of it has passed the same checks
    /// as `warden backup` with the configured master key. Stop Warden first.
    Restore {
        /// The backup file (from `warden backup`).
        #[arg(long, short, value_name = "FILE")]
        input: PathBuf,
        /// Replace an existing database; it is kept beside the restored one.
        #[arg(long)]
        replace: bool,
    },
    /// Work with the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage users: `create` works on the database directly (for headless setups: create
    /// the first administrator here); `list`, `disable`, `enable` and `role` go through the API
    /// with the credentials `warden login` saved.
    User {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage workspaces, their repository, members, secrets and variables through the API,
    /// with the credentials `warden login` saved. Secret values are read from standard input,
    /// never from the command line.
    Workspace {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Sign in to a Warden server from this machine; keeps the refresh token in a file only
    /// you can read (mode 0600). The password is read from standard input.
    Login(LoginArgs),
    /// Manage hosts through the API, with the credentials `warden login` saved.
    Host {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        #[command(subcommand)]
        command: HostCommand,
    },
    /// Open, follow, stop and close agent sessions of a workspace through the API, with the
    /// credentials `warden login` saved.
    Session {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        /// The workspace id (also WARDEN_WORKSPACE).
        #[arg(
            long,
            short,
            env = "WARDEN_WORKSPACE",
            global = true,
            value_name = "ID"
        )]
        workspace: Option<String>,
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// A workspace's tickets: write, search, read, move through the workflow, delete.
    Ticket {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        /// The workspace id or name (also WARDEN_WORKSPACE).
        #[arg(
            long,
            short,
            env = "WARDEN_WORKSPACE",
            global = true,
            value_name = "WORKSPACE"
        )]
        workspace: Option<String>,
        #[command(subcommand)]
        command: crate::ticket::TicketCommand,
    },
    /// A workspace's workflows: definitions, runs step by step, approvals.
    Workflow {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        /// The workspace id or name (also WARDEN_WORKSPACE).
        #[arg(
            long,
            short,
            env = "WARDEN_WORKSPACE",
            global = true,
            value_name = "WORKSPACE"
        )]
        workspace: Option<String>,
        #[command(subcommand)]
        command: crate::workflow::WorkflowCommand,
    },
    /// A workspace's automations: agent sessions started by schedule, by hand or by a webhook.
    Automation {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        /// The workspace id or name (also WARDEN_WORKSPACE).
        #[arg(
            long,
            short,
            env = "WARDEN_WORKSPACE",
            global = true,
            value_name = "WORKSPACE"
        )]
        workspace: Option<String>,
        #[command(subcommand)]
        command: AutomationCommand,
    },
    /// A workspace's event sources: public webhook URLs that trigger automations.
    EventSource {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        /// The workspace id or name (also WARDEN_WORKSPACE).
        #[arg(
            long,
            short,
            env = "WARDEN_WORKSPACE",
            global = true,
            value_name = "WORKSPACE"
        )]
        workspace: Option<String>,
        #[command(subcommand)]
        command: EventSourceCommand,
    },
    /// Manage single sign-on (OpenID Connect) providers through the API, with the credentials
    /// `warden login` saved. A client secret is read from standard input.
    Sso {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        #[command(subcommand)]
        command: SsoCommand,
    },
    /// Manage the tokens directories provision accounts with over SCIM (`/scim/v2`), through
    /// the API with the credentials `warden login` saved.
    Scim {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        #[command(subcommand)]
        command: crate::scim::ScimCommand,
    },
    /// Organizations (multi-tenant mode): list them, switch the one this sign-in acts in,
    /// create them and manage their members, through the API with the credentials
    /// `warden login` saved.
    Org {
        /// The credentials file; default as for `warden login`.
        #[arg(long, value_name = "FILE", global = true)]
        credentials: Option<PathBuf>,
        #[command(subcommand)]
        command: crate::org::OrgCommand,
    },
    /// Manage the keys that sign access tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Operator tooling for offline licences (needs no server or configuration).
    License {
        #[command(subcommand)]
        command: LicenseCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Create the operator's P-256 key pair: DIR/operator.key (private, mode 0600) and
    /// DIR/operator.pub (give it to customers as license.public_key_file).
    Keygen {
        /// Directory to write the key files into (created if missing).
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
    /// Sign a licence (.lic) for a customer.
    Sign(Box<SignArgs>),
    /// Print a licence's claims and whether its signature verifies.
    Inspect {
        /// The .lic file.
        file: PathBuf,
        /// The operator public key to verify against.
        #[arg(long, value_name = "PEM")]
        public_key: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The operator private key (from `warden license keygen`).
    #[arg(long, value_name = "PEM")]
    pub key: PathBuf,
    /// `standard` (bound to one machine) or `enterprise` (any machine, optional domain).
    #[arg(long)]
    pub tier: String,
    /// The customer's machine-info.json (standard tier; refused for enterprise).
    #[arg(long, value_name = "FILE")]
    pub machine_info: Option<PathBuf>,
    /// Customer name.
    #[arg(long)]
    pub customer: String,
    /// Licence id.
    #[arg(long)]
    pub license_id: String,
    /// Expiry: a date (YYYY-MM-DD, end of that day UTC) or an RFC 3339 time.
    #[arg(long)]
    pub expires: String,
    /// Start (default: now), as for --expires but the start of the day.
    #[arg(long)]
    pub starts: Option<String>,
    /// Days after expiry during which everything still works, with a warning (default 0).
    #[arg(long, default_value_t = 0)]
    pub grace_days: u32,
    /// Most active users (default: no limit).
    #[arg(long)]
    pub user_limit: Option<u32>,
    /// Most session hosts connected at once (default: no limit).
    #[arg(long)]
    pub session_hosts: Option<u32>,
    /// Most deploy hosts connected at once (default: no limit).
    #[arg(long)]
    pub deploy_hosts: Option<u32>,
    /// A feature flag to grant (repeat for several).
    #[arg(long = "feature", value_name = "FLAG")]
    pub features: Vec<String>,
    /// Enterprise only: the host names it may serve, e.g. `*.acme.internal`.
    #[arg(long)]
    pub allowed_domain: Option<String>,
    /// How old machine-info.json may be, in days.
    #[arg(long, default_value_t = 7)]
    pub freshness_days: u32,
    /// Where to write the licence (default: <license-id>.lic).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server, e.g. https://warden.example.com.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Your email address, to sign in with a password read from standard input. Without it
    /// (or with `--device`, or when standard input has no password to give) the device flow
    /// is used: approve the printed code in a browser where you are signed in.
    #[arg(long)]
    pub email: Option<String>,
    /// Sign in by approving a code in the browser (RFC 8628) instead of with a password.
    #[arg(long)]
    pub device: bool,
    /// Where to keep the credentials; default $XDG_CONFIG_HOME/warden/credentials.json
    /// (or ~/.config/warden/credentials.json).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input (one line), never from the
    /// command line.
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Make the user a platform administrator (same as `--role admin`).
        #[arg(long, conflicts_with = "role")]
        admin: bool,
        /// Platform role: admin, member (the default), auditor, or a custom role.
        #[arg(long)]
        role: Option<String>,
    },
    /// Every user (through the API; platform administrators).
    List,
    /// Deactivate a user: signed out everywhere at once, and no new sign-in.
    Disable {
        /// Email or user id.
        user: String,
    },
    /// Reactivate a deactivated user.
    Enable {
        /// Email or user id.
        user: String,
    },
    /// Change a user's platform role.
    Role {
        /// Email or user id.
        user: String,
        /// admin, member, auditor or a custom role.
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Every host with its status, whether it is online, last seen, version, OS and address.
    List,
    /// Let a host receive work.
    Approve {
        /// Host id.
        id: String,
    },
    /// Refuse a host work and end its connection.
    Reject {
        /// Host id.
        id: String,
    },
    /// Issue a new key (printed once); the old one keeps working for the grace period.
    RotateKey {
        /// Host id.
        id: String,
        /// Minutes the old key keeps working (0–10080).
        #[arg(long, default_value_t = 60)]
        grace_minutes: i64,
    },
    /// Delete a host with every key it had and end its connection.
    Delete {
        /// Host id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SsoCommand {
    /// Every provider: slug, protocol, name, issuer, client id, just-in-time, linking,
    /// redirect URI.
    List,
    /// Add a provider, or with --replace change one (its client secret, if any, is read
    /// from standard input with --client-secret-stdin).
    Add(Box<SsoArgs>),
    /// Add a SAML 2.0 provider from the IdP's metadata (file or URL), or with --replace
    /// change one. Prints what to register with the IdP.
    AddSaml(Box<crate::sso::SamlArgs>),
    /// Remove a provider; accounts linked to it stay, unlinked.
    Remove {
        /// The provider's slug.
        slug: String,
    },
    /// Which providers an email address's domain signs in with (home-realm discovery, as the
    /// sign-in page finds them).
    Discover {
        /// The address, e.g. alice@contoso.com.
        email: String,
    },
    /// Map a group a SAML provider asserts to a workspace with a role: each sign-in through
    /// the provider then adds, re-roles or removes the person there.
    MapGroup {
        /// The workspace's id.
        #[arg(short, long)]
        workspace: String,
        /// The SAML provider's slug.
        #[arg(short, long)]
        provider: String,
        /// The group as the provider asserts it (Entra ID: its object id; Okta: its name).
        #[arg(short, long)]
        group: String,
        /// owner, maintainer, member or viewer.
        #[arg(short, long, default_value = "member")]
        role: String,
    },
    /// Remove a SAML group's mapping from a workspace (the memberships it granted end).
    UnmapGroup {
        /// The workspace's id.
        #[arg(short, long)]
        workspace: String,
        /// The SAML provider's slug.
        #[arg(short, long)]
        provider: String,
        /// The group as mapped.
        #[arg(short, long)]
        group: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct SsoArgs {
    /// Short name in URLs, e.g. `entra`.
    pub slug: String,
    /// Shown on the sign-in screen.
    #[arg(long)]
    pub name: String,
    /// google, entra (with --tenant) or oidc (with --issuer).
    #[arg(long, default_value = "oidc")]
    pub preset: String,
    /// Microsoft Entra directory (tenant) id or domain.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Issuer URL (preset oidc).
    #[arg(long)]
    pub issuer: Option<String>,
    /// Client id registered with the provider.
    #[arg(long)]
    pub client_id: String,
    /// Read the client secret from standard input (one line).
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// A scope (repeat; default openid email profile).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// An email domain accepted for linking and provisioning (repeat; default any).
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Create accounts for people signing in for the first time.
    #[arg(long)]
    pub jit: bool,
    /// Their platform role (default member).
    #[arg(long)]
    pub role: Option<String>,
    /// Link existing accounts by the provider's verified email.
    #[arg(long)]
    pub link_by_email: bool,
    /// Allow a provider on a private, loopback or link-local address.
    #[arg(long)]
    pub allow_private_network: bool,
    /// Change the existing provider with this slug instead of adding one.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Open a session: a host prepares a worktree on a branch of its own and runs the
    /// provider there. Prints the session id.
    Create {
        /// claude-code, gemini-cli, codex, opencode, kilo-cli, qwen-code, or command (give the
        /// program and its arguments after `--`; no shell sees them).
        #[arg(long, short)]
        provider: String,
        /// What to ask the agent.
        #[arg(long, default_value = "")]
        prompt: String,
        /// chat, develop (the default: the worktree goes when the session closes) or bot.
        #[arg(long)]
        mode: Option<String>,
        /// A particular host (default: any approved host the workspace may use).
        #[arg(long, value_name = "ID")]
        host: Option<String>,
        /// Follow the output until the session ends; exit with the provider's status.
        #[arg(long, short)]
        follow: bool,
        /// For the command provider: program and arguments.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// The workspace's sessions, newest first.
    List,
    /// One session's record.
    Show {
        /// Session id.
        id: String,
    },
    /// Print a session's output (from the start, or after a sequence number).
    Logs {
        /// Session id.
        id: String,
        /// Only output after this sequence number.
        #[arg(long, default_value_t = -1)]
        after: i64,
        /// Keep printing until the session ends; exit with the provider's status.
        #[arg(long, short)]
        follow: bool,
    },
    /// End a session's processes (a waiting session is canceled).
    Stop {
        /// Session id.
        id: String,
    },
    /// Close an ended session: its worktree and branch are removed.
    Close {
        /// Session id.
        id: String,
    },
    /// The worktree's changes against the branch it started from.
    Diff {
        /// Session id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace; you become its owner.
    Create {
        /// Display name.
        name: String,
    },
    /// Your workspaces (`--all`: every workspace, for platform administrators).
    List {
        /// Every workspace, not only yours.
        #[arg(long)]
        all: bool,
        /// Include archived workspaces.
        #[arg(long)]
        archived: bool,
    },
    /// A workspace's settings.
    Show {
        /// Workspace id or name.
        workspace: String,
    },
    /// Set (or with --clear, remove) the repository; hooks and ticket settings are kept.
    SetRepo {
        /// Workspace id or name.
        workspace: String,
        /// `https://…`, `ssh://…`, `git@host:path` or an absolute local path.
        #[arg(required_unless_present = "clear")]
        repository: Option<String>,
        /// Remove the repository.
        #[arg(long, conflicts_with = "repository")]
        clear: bool,
    },
    /// List, add, remove members or change their role.
    Members {
        /// Workspace id or name.
        workspace: String,
        #[command(subcommand)]
        command: Option<MembersCommand>,
    },
    /// Write-only secrets: provider keys and the git access token (values from standard input).
    Secrets {
        /// Workspace id or name.
        workspace: String,
        #[command(subcommand)]
        command: Option<SecretsCommand>,
    },
    /// Write-only environment variables of sessions (values from standard input).
    Variables {
        /// Workspace id or name.
        workspace: String,
        #[command(subcommand)]
        command: Option<VariablesCommand>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AutomationCommand {
    /// The workspace's automations.
    List,
    /// An automation and its latest runs.
    Show {
        /// Automation id.
        id: String,
    },
    /// Create an automation. The schedule option chooses its kind: --cron, --at, --every,
    /// --on-event, or none of them for one that runs only when asked.
    Create(AutomationSpec),
    /// Replace an automation's definition (its runs then act for you).
    Update {
        /// Automation id.
        id: String,
        #[command(flatten)]
        spec: AutomationSpec,
    },
    /// Queue a run now.
    Run {
        /// Automation id.
        id: String,
    },
    /// Delete an automation and its runs.
    Delete {
        /// Automation id.
        id: String,
    },
}

/// What an automation starts, and when.
#[derive(Debug, clap::Args)]
pub struct AutomationSpec {
    /// Name, unique in the workspace.
    #[arg(long)]
    pub name: String,
    /// Five cron fields, e.g. "30 2 * * 1-5".
    #[arg(long, group = "schedule")]
    pub cron: Option<String>,
    /// IANA time zone of --cron (default UTC).
    #[arg(long, requires = "cron")]
    pub timezone: Option<String>,
    /// Once, at this RFC 3339 time.
    #[arg(long, group = "schedule")]
    pub at: Option<String>,
    /// A loop: start again this many seconds after each run ends …
    #[arg(long, group = "schedule", requires = "times")]
    pub every: Option<i64>,
    /// … this many runs in all.
    #[arg(long, requires = "every")]
    pub times: Option<i64>,
    /// Run when an event source pointed at it accepts a delivery.
    #[arg(long, group = "schedule")]
    pub on_event: bool,
    /// The prompt template ({{ event.field }} reads a triggering delivery).
    #[arg(long, conflicts_with = "prompt_name")]
    pub prompt: Option<String>,
    /// One of the workspace's stored prompt templates.
    #[arg(long)]
    pub prompt_name: Option<String>,
    /// claude-code, gemini-cli, codex, opencode, kilo-cli, qwen-code or command.
    #[arg(long)]
    pub provider: String,
    /// chat, develop (default) or bot.
    #[arg(long)]
    pub mode: Option<String>,
    /// Run on this host only.
    #[arg(long)]
    pub host: Option<String>,
    /// Run once for instants missed while no server ran (default: skip them).
    #[arg(long)]
    pub run_missed: bool,
    /// Create it switched off.
    #[arg(long)]
    pub disabled: bool,
    /// For --provider command: the program and its arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum EventSourceCommand {
    /// The workspace's event sources and their counters.
    List,
    /// An event source.
    Show {
        /// Event source id.
        id: String,
    },
    /// Create an event source; prints its URL once.
    Create {
        /// Name, unique in the workspace.
        #[arg(long)]
        name: String,
        /// generic, github, stripe or standard (Standard Webhooks).
        #[arg(long, default_value = "generic")]
        kind: String,
        /// The automation a matching delivery runs.
        #[arg(long)]
        automation: Option<String>,
        /// Accept only these event types (repeat, or comma-separated).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Read a signing secret from standard input.
        #[arg(long)]
        secret_stdin: bool,
        /// Deliveries accepted per minute (default 60).
        #[arg(long)]
        rate_per_minute: Option<i64>,
        /// Deliveries waiting at once per node (default 100).
        #[arg(long)]
        backlog: Option<i64>,
        /// Generic: the signature header (default X-Signature).
        #[arg(long)]
        signature_header: Option<String>,
        /// Generic: a delivery-id header.
        #[arg(long)]
        delivery_header: Option<String>,
    },
    /// Replace the URL token (the old URL stops at once); prints the new URL once.
    RotateToken {
        /// Event source id.
        id: String,
    },
    /// Set the signing secret, read from standard input.
    SetSecret {
        /// Event source id.
        id: String,
    },
    /// Remove the signing secret (unsigned deliveries are then accepted).
    RemoveSecret {
        /// Event source id.
        id: String,
    },
    /// Delete an event source.
    Delete {
        /// Event source id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List the members (the default).
    List,
    /// Add a user by email or id.
    Add {
        /// Email or user id.
        user: String,
        /// owner, maintainer, member or viewer.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Change a member's role.
    Role {
        /// Email or user id of a member.
        user: String,
        /// owner, maintainer, member or viewer.
        role: String,
    },
    /// Remove a member.
    Remove {
        /// Email or user id of a member.
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Which secrets are set (never their values; the default).
    List,
    /// Set a provider's API key (claude-code, codex, …), read from standard input.
    SetProviderKey {
        /// Provider.
        provider: String,
    },
    /// Remove a provider's API key.
    RemoveProviderKey {
        /// Provider.
        provider: String,
    },
    /// Set the git access token, read from standard input.
    SetPat,
    /// Remove the git access token.
    RemovePat,
}

#[derive(Debug, Subcommand)]
pub enum VariablesCommand {
    /// Which variables are set (never their values; the default).
    List,
    /// Set a variable, its value read from standard input.
    Set {
        /// Variable name.
        name: String,
    },
    /// Remove a variable.
    Remove {
        /// Variable name.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kid is a base64url thumbprint: one in 64 begins with `-`, and the operator pasting
    /// it from the JWKS must not be told it is an unknown option.
    #[test]
    fn a_kid_beginning_with_a_hyphen_is_taken_as_the_kid() {
        let cli = Cli::try_parse_from(["warden", "keys", "revoke-signing", "-mQx0_a-b"]).unwrap();
        match cli.command {
            Command::Keys {
                command: KeysCommand::RevokeSigning { kid },
            } => assert_eq!(kid, "-mQx0_a-b"),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_command_line_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
