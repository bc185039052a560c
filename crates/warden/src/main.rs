//! The `warden` binary: a thin shell that parses the command line and calls the server crate.

mod automation;
mod cli;
mod client;
mod commands;
mod host;
mod keys;
mod license;
mod login;
mod org;
mod output;
mod scim;
mod session;
mod sso;
mod ticket;
mod workflow;
mod workspace;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: steadier under many small per-request allocations than glibc's malloc
/// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The launcher of a confined session process of the local host: confine, then become the
    // command (see warden_agent::sandbox).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(warden_agent::sandbox::LAUNCHER_ARG) {
        let e = warden_agent::sandbox::enter(&args[2..]);
        eprintln!("warden: cannot start the session process: {e}");
        return ExitCode::from(126);
    }
    // Both rustls crypto providers can end up in the build; choose one before any TLS use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
