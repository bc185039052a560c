//! `warden-agent`: runs on a host, dials out to Warden (so hosts behind NAT work),
//! authenticates with the host key, heartbeats, and reconnects with backoff and jitter.
//!
//! The key comes from `WARDEN_HOST_KEY` or `--key-file`, never from the command line (it would
//! show in the process list). After the first welcome the agent reconnects with its session
//! ticket, which costs the server no key derivation.

use warden_agent::connection as session;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use zeroize::Zeroizing;

/// Connects this host to Warden and keeps it connected.
#[derive(Debug, Parser)]
#[command(name = "warden-agent", version)]
struct Cli {
    /// Warden's address, `https://…` (or `http://…` on a trusted network); or several nodes
    /// of one installation, comma-separated, tried in turn when a connection is lost.
    #[arg(long, env = "WARDEN_URL")]
    url: Option<String>,
    /// A file holding the host key (`whk_…`); otherwise `WARDEN_HOST_KEY`.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// An extra CA certificate (PEM) to trust for Warden's TLS certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Connect once and exit after the welcome (for checking a set-up).
    #[arg(long)]
    once: bool,
    /// Where to keep repository mirrors, session worktrees and temporary directories (default
    /// /var/lib/warden-agent as root, else ~/.local/share/warden-agent).
    #[arg(long, env = "WARDEN_AGENT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The unprivileged user session processes run as when the agent runs as root.
    #[arg(long, default_value = "nobody")]
    run_as: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Enrol this host without pasting a key: prints a code for an administrator to approve
    /// in Warden (choosing the workspaces the host serves), then saves the host key it
    /// receives (mode 0600) for `--key-file` to use.
    Enroll {
        /// Warden's address, `https://…` (or `http://…` on a trusted network).
        #[arg(long, env = "WARDEN_URL")]
        server: String,
        /// The name to register the host under (default: this machine's host name).
        #[arg(long)]
        name: Option<String>,
        /// Where to save the host key (must not exist yet).
        #[arg(long)]
        key_file: PathBuf,
        /// An extra CA certificate (PEM) to trust for Warden's TLS certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
}

fn runner(cli: &Cli) -> Result<warden_agent::work::Runner> {
    let root = warden_agent::sandbox::is_root();
    let data_dir = match &cli.data_dir {
        Some(d) => d.clone(),
        None if root => PathBuf::from("/var/lib/warden-agent"),
        None => PathBuf::from(std::env::var("HOME").context("HOME is not set; pass --data-dir")?)
            .join(".local/share/warden-agent"),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let run_as = if root {
        Some(
            warden_agent::sandbox::lookup_user(&cli.run_as).with_context(|| {
                format!("no user '{}' to run sessions as (see --run-as)", cli.run_as)
            })?,
        )
    } else {
        None
    };
    let launcher = std::env::current_exe().context("cannot find this program's path")?;
    Ok(warden_agent::work::Runner::new(data_dir, launcher, run_as))
}

fn key(cli: &Cli) -> Result<Zeroizing<String>> {
    let raw = match &cli.key_file {
        Some(path) => Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the host key from {}", path.display()))?,
        ),
        None => Zeroizing::new(std::env::var("WARDEN_HOST_KEY").context(
            "no host key: set WARDEN_HOST_KEY or pass --key-file (the key is shown once when \
             the host is registered)",
        )?),
    };
    let key = Zeroizing::new(raw.trim().to_owned());
    if !key.starts_with("whk_") {
        bail!("the host key must start with whk_");
    }
    Ok(key)
}

fn main() -> ExitCode {
    // The launcher of a confined session process: confine, then become the command.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(warden_agent::sandbox::LAUNCHER_ARG) {
        let e = warden_agent::sandbox::enter(&args[2..]);
        eprintln!("warden-agent: cannot start the session process: {e}");
        return ExitCode::from(126);
    }
    let cli = Cli::parse();
    // Plain lines on standard error: "warden-agent: INFO connected as host …".
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .fmt_fields(tracing_subscriber::fmt::format::DefaultFields::new())
        .event_format(
            tracing_subscriber::fmt::format()
                .without_time()
                .with_target(false)
                .with_ansi(false)
                .compact(),
        )
        .init();
    if let Err(why) = warden_agent::sandbox::landlock_support() {
        eprintln!(
            "warden-agent: {why}; session processes will run without file-system confinement \
             (process group, no_new_privs, limits and an unprivileged user only), and each \
             session records the isolation it got"
        );
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(agent(cli)),
        Err(e) => {
            eprintln!("warden-agent: cannot start the async runtime: {e}");
            ExitCode::from(2)
        }
    }
}

async fn agent(cli: Cli) -> ExitCode {
    let run = async {
        if let Some(Command::Enroll {
            server,
            name,
            key_file,
            ca_file,
        }) = &cli.command
        {
            return warden_agent::enroll::enroll(
                server,
                name.as_deref(),
                key_file,
                ca_file.as_deref(),
            )
            .await;
        }
        let key = key(&cli)?;
        let url = cli
            .url
            .as_deref()
            .context("no server: pass --url or set WARDEN_URL")?;
        let target = session::Target::new(url, cli.ca_file.as_deref())?;
        let runner = std::sync::Arc::new(runner(&cli)?);
        let cleaned = runner.recover().await?;
        if !cleaned.is_empty() {
            tracing::warn!(sessions = ?cleaned, "ended what a previous agent left running");
        }
        session::run(&target, &key, cli.once, runner).await
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}
