//! `warden-agent`: runs on a host, dials out to Warden (so hosts behind NAT work),
//! authenticates with the host key, heartbeats, and reconnects with backoff and jitter.
//!
//! The key comes from `WARDEN_HOST_KEY` or `--key-file`, never from the command line (it would
//! show in the process list). After the first welcome the agent reconnects with its session
//! ticket, which costs the server no key derivation.

mod backoff;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use zeroize::Zeroizing;

/// Connects this host to Warden and keeps it connected.
#[derive(Debug, Parser)]
#[command(name = "warden-agent", version)]
struct Cli {
    /// Warden's address, `https://…` (or `http://…` on a trusted network).
    #[arg(long, env = "WARDEN_URL")]
    url: String,
    /// A file holding the host key (`whk_…`); otherwise `WARDEN_HOST_KEY`.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// An extra CA certificate (PEM) to trust for Warden's TLS certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Connect once and exit after the welcome (for checking a set-up).
    #[arg(long)]
    once: bool,
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
        let key = key(&cli)?;
        let target = session::Target::new(&cli.url, cli.ca_file.as_deref())?;
        session::run(&target, &key, cli.once).await
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warden-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}
