//! The commands that work on the installation itself (configuration, keys, audit trail),
//! apart from those that go through the API.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate the master encryption key while Warden serves: a new data key sealed by the new
    /// master key seals every new value from now on (running servers pick it up within a
    /// second), and every stored value is re-encrypted with it, with a progress bar. Safe to
    /// stop at any point: run it again with the same file to resume. Then configure the new
    /// key on every node and run `warden keys finish-rotation`.
    RotateMaster {
        /// The new master key: a file holding 64 hexadecimal characters, mode 0600
        /// (`umask 077; openssl rand -hex 32 > FILE`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        /// Values re-encrypted per transaction (smaller holds the database's write lock for
        /// less time).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch_size: u32,
    },
    /// End a master-key rotation once every value is re-encrypted: the older data keys are
    /// deleted, so the old master key opens nothing. Refused while any value is left, or
    /// while the configured key is still the old one.
    FinishRotation,
    /// Add a new signing key and sign with it from now on; the old public key stays
    /// published until every token it signed has expired.
    RotateSigning,
    /// Emergency: withdraw a signing key at once. It leaves the JWKS, every running server
    /// drops it and its cached verifications, and each token it signed is refused on its next
    /// request. When it was the key signing, a new key signs from now on.
    RevokeSigning {
        /// The key id (`kid`), as published in /.well-known/jwks.json. A kid is a base64url
        /// thumbprint and may begin with `-`; it is taken as the kid, not as an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole audit chain; name the first event edited, deleted, inserted or
    /// reordered. Exits 1 when the chain is broken.
    Verify,
    /// Export audit events as CSV (oldest first), with a progress bar on a terminal.
    Export(Box<ExportArgs>),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to this file (created only once the export is complete); `-` for standard output.
    #[arg(long, short, default_value = "-", value_name = "FILE")]
    pub output: PathBuf,
    /// Only this kind of actor: user, host, api_key or system.
    #[arg(long)]
    pub actor_kind: Option<String>,
    /// Only this actor id.
    #[arg(long)]
    pub actor_id: Option<String>,
    /// Only actions starting with this, e.g. `user.`.
    #[arg(long)]
    pub action: Option<String>,
    /// Only this resource type.
    #[arg(long)]
    pub resource_type: Option<String>,
    /// Only this resource id.
    #[arg(long)]
    pub resource_id: Option<String>,
    /// Only this workspace.
    #[arg(long)]
    pub workspace_id: Option<String>,
    /// Only this outcome: success, denied or failed.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets redacted.
    Check,
}
