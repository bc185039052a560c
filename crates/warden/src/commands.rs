//! What each command does. Errors come back as one line for `main` to print.

use std::sync::Arc;

use anyhow::{Context, Result};
use warden_domain::clock::SystemClock;
use warden_server::boot::{self, Boot};
use warden_server::config::{Config, KeySource, Overrides};
use warden_server::http::routes::Routes;
use warden_server::logging;

use crate::cli::{AuditCommand, Cli, Command, ConfigCommand, KeysCommand, UserCommand};

pub async fn run(cli: Cli) -> Result<()> {
    // The operator's licence tooling works on a machine with no server and no configuration.
    if let Command::License { command } = cli.command {
        return crate::license::run(command);
    }
    let overrides = match &cli.command {
        Command::Serve { listen } => Overrides {
            listen: listen.clone(),
        },
        _ => Overrides::default(),
    };
    let config = Config::load(cli.config.as_deref(), std::env::vars(), &overrides)?;
    match cli.command {
        Command::Serve { .. } => serve(config).await,
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            print(&format!(
                "# configuration is valid\n{}",
                config.redacted_toml()
            ));
            Ok(())
        }
        Command::Migrate => migrate(config).await,
        Command::Backup { output } => backup(config, &output).await,
        Command::Restore { input, replace } => restore(config, &input, replace).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => audit_verify(config).await,
        Command::Audit {
            command: AuditCommand::Export(args),
        } => audit_export(config, *args).await,
        Command::User {
            command: UserCommand::Create { email, admin, role },
            ..
        } => {
            let role = match (admin, role) {
                (true, _) => "admin".to_owned(),
                (false, Some(role)) => role,
                (false, None) => "member".to_owned(),
            };
            user_create(config, &email, &role).await
        }
        Command::Keys {
            command: KeysCommand::RotateSigning,
        } => rotate_signing(config).await,
        Command::Keys {
            command:
                KeysCommand::RotateMaster {
                    new_key_file,
                    batch_size,
                },
        } => crate::keys::rotate_master(config, &new_key_file, batch_size).await,
        Command::Keys {
            command: KeysCommand::FinishRotation,
        } => crate::keys::finish_rotation(config).await,
        Command::Keys {
            command: KeysCommand::RevokeSigning { kid },
        } => revoke_signing(config, &kid).await,
        Command::Login(args) => crate::login::login(args).await,
        Command::User {
            credentials,
            command,
        } => crate::workspace::run_user(credentials, command).await,
        Command::Workspace {
            credentials,
            command,
        } => crate::workspace::run(credentials, command).await,
        Command::Host {
            credentials,
            command,
        } => crate::host::run(credentials, command).await,
        Command::Scim {
            credentials,
            command,
        } => crate::scim::run(credentials, command).await,
        Command::Org {
            credentials,
            command,
        } => crate::org::run(credentials, command).await,
        Command::Sso {
            credentials,
            command,
        } => crate::sso::run(credentials, command).await,
        Command::Session {
            credentials,
            workspace,
            command,
        } => crate::session::run(credentials, workspace, command).await,
        Command::Ticket {
            credentials,
            workspace,
            command,
        } => crate::ticket::run(credentials, workspace, command).await,
        Command::Workflow {
            credentials,
            workspace,
            command,
        } => crate::workflow::run(credentials, workspace, command).await,
        Command::Automation {
            credentials,
            workspace,
            command,
        } => crate::automation::run_automation(credentials, workspace, command).await,
        Command::EventSource {
            credentials,
            workspace,
            command,
        } => crate::automation::run_event_source(credentials, workspace, command).await,
        Command::License { .. } => {
            anyhow::bail!("licence commands run before the configuration loads")
        }
    }
}

pub(crate) use crate::output::print;

/// Starts the local host: a `warden-agent` connection loop in this process, with a key that
/// lives only in memory, confining its sessions through this binary.
async fn start_local_host(
    running: &boot::Running,
    url: &str,
    data_dir: &std::path::Path,
    tls_cert: Option<&std::path::Path>,
) -> Result<tokio::task::JoinHandle<()>> {
    let key = warden_core::hosts::admin::local_host_key(&running.state().ctx)
        .await
        .map_err(|e| anyhow::anyhow!("local host: {e}"))?;
    let target = warden_agent::connection::Target::new(url, tls_cert)?;
    let run_as = if warden_agent::sandbox::is_root() {
        Some(
            warden_agent::sandbox::lookup_user("nobody")
                .context("local host: no 'nobody' user to run sessions as")?,
        )
    } else {
        None
    };
    // As root, sessions run as `nobody`, who must reach their worktrees: not through the data
    // directory, which stays private (0700) to this server. Each data directory gets a local
    // host directory of its own there, so servers side by side never touch each other's
    // sessions.
    let host_dir = if run_as.is_some() {
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            dir.as_os_str().as_encoded_bytes(),
        );
        let name: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::path::PathBuf::from("/var/lib/warden-local-host").join(name)
    } else {
        data_dir.join("local-host")
    };
    std::fs::create_dir_all(&host_dir)
        .with_context(|| format!("cannot create {}", host_dir.display()))?;
    if run_as.is_some() {
        // Traversable by the session user whatever the umask this server was started with
        // (under `umask 077` both were made private, and every session failed to reach its
        // repository).
        use std::os::unix::fs::PermissionsExt;
        for dir in [host_dir.parent(), Some(host_dir.as_path())]
            .into_iter()
            .flatten()
        {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot open {} to the session user", dir.display()))?;
        }
    }
    let host_dir_shown = host_dir.display().to_string();
    let runner = Arc::new(warden_agent::work::Runner::new(
        host_dir,
        std::env::current_exe().context("cannot find this program's path")?,
        run_as,
    ));
    let cleaned = runner
        .recover()
        .await
        .with_context(|| format!("local host in {}", host_dir_shown))?;
    if !cleaned.is_empty() {
        tracing::warn!(sessions = ?cleaned, "local host: ended what it left running before");
    }
    Ok(tokio::spawn(async move {
        if let Err(e) = warden_agent::connection::run(&target, &key, false, runner).await {
            tracing::error!(error = %e, "the local host stopped");
        }
    }))
}

async fn serve(config: Config) -> Result<()> {
    logging::init_serving(&config.log).map_err(anyhow::Error::msg)?;
    let data_dir = config.data_dir.clone();
    let embedded_key = matches!(config.encryption_key, KeySource::DataDir(_));
    let local_host = config.local_host;
    let tls_cert = config.tls.as_ref().map(|t| t.cert_file.clone());
    let mut signals = ShutdownSignals::install()?;
    let mut running = boot::start(Boot {
        config,
        clock: Arc::new(SystemClock),
        extra_routes: Routes::new(),
    })
    .await?;
    let url = running.base_url();
    // The server runs without its local host rather than not at all.
    let local = if local_host {
        match start_local_host(&running, &url, &data_dir, tls_cert.as_deref()).await {
            Ok(task) => Some(task),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the local host could not start");
                None
            }
        }
    } else {
        None
    };
    let sign_in = match running.setup_link() {
        Some(link) => format!(
            "no administrator exists yet: open this one-time link within an hour to create \
             one\n    {link}\n    (or run `warden user create --email ADDRESS --admin`)"
        ),
        None => format!(
            "sign in with your account at {}/sign-in, or `warden login`",
            running.state().ctx.public_url
        ),
    };
    print(&format!(
        "Warden is ready at {url}\n\
         \x20 console: open {console}/console in a browser\n\
         \x20 health {url}/healthz · readiness {url}/readyz · API {url}/api/v1/openapi.json\n\
         \x20 LLM gateway: {llm}/v1 (OpenAI clients) · {llm}/anthropic (Anthropic clients)\n\
         \x20 data directory: {dir}{key}\n\
         \x20 sessions: {sessions}\n\
         \x20 sign-in: {sign_in}\n\
         \x20 licence: {licence}\n\
         \x20 stop with Ctrl-C",
        console = running.state().ctx.public_url,
        llm = running.state().ctx.llm.config.url,
        licence = match running.state().ctx.license.enforcement() {
            warden_core::license::Enforcement::Embedded => {
                "enforced with the operator keys built into this binary"
            }
            warden_core::license::Enforcement::Configured => {
                "enforced with license.public_key_file"
            }
            warden_core::license::Enforcement::None => {
                "unlicensed build (no operator key built in or configured): every feature is on"
            }
        },
        dir = data_dir.display(),
        sign_in = sign_in,
        sessions = if local.is_some() {
            "this server also runs a local host (\"local\"); turn it off with WARDEN_LOCAL_HOST=false"
        } else {
            "no local host (turned off, or it could not start: see the log); connect hosts with warden-agent"
        },
        key = if embedded_key {
            " (holds the generated encryption key: fine for trying Warden, not for production)"
        } else {
            ""
        },
    ));
    tokio::select! {
        res = running.wait() => res?,
        () = signals.recv() => {
            tracing::info!("shutdown requested: no new connections, finishing in-flight requests");
            if let Some(local) = &local {
                local.abort();
            }
            running.shutdown().await?;
            tracing::info!("stopped cleanly");
        }
    }
    // The exporter's batch thread blocks while it sends: off the async workers.
    tokio::task::spawn_blocking(logging::flush_traces).await?;
    Ok(())
}

async fn migrate(config: Config) -> Result<()> {
    logging::init(&config.log);
    let report = boot::migrate_only(&config).await?;
    print(&format!(
        "database schema at version {} (was {})",
        report.to, report.from
    ));
    Ok(())
}

/// SIGINT and SIGTERM, listened for from before the ready line is printed: a supervisor
/// that signals as soon as it reads that line must get a clean shutdown, not the default
/// action of a signal nobody handles yet.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
    }
}

async fn backup(config: Config, output: &std::path::Path) -> Result<()> {
    logging::init(&config.log);
    let checked = boot::backup::backup(&config, output).await?;
    print(&format!(
        "backed up to {} (schema {}, audit chain intact: {} events); keep the master key \
         apart from it: the backup cannot be read without it",
        output.display(),
        checked.schema_version,
        checked.audit_events
    ));
    Ok(())
}

async fn restore(config: Config, input: &std::path::Path, replace: bool) -> Result<()> {
    logging::init(&config.log);
    let done = boot::backup::restore(&config, input, replace).await?;
    print(&format!(
        "restored {} to {} (schema {}, audit chain intact: {} events)",
        input.display(),
        done.database.display(),
        done.checked.schema_version,
        done.checked.audit_events
    ));
    if let Some(kept) = done.kept {
        print(&format!(
            "the database it replaced is kept at {}",
            kept.display()
        ));
    }
    Ok(())
}

async fn audit_verify(config: Config) -> Result<()> {
    logging::init(&config.log);
    let (store, key, signer) = boot::open_existing(&config).await?;
    let checked = boot::verify_chain(&store, &key, &signer).await;
    store.close().await;
    print(&format!("audit chain intact: {} events verified", checked?));
    Ok(())
}

async fn audit_export(config: Config, args: crate::cli::ExportArgs) -> Result<()> {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures_util::StreamExt;
    use warden_server::audit::filter::AuditQuery;

    logging::init(&config.log);
    let mut signals = ShutdownSignals::install()?;
    let parsed = AuditQuery {
        actor_kind: args.actor_kind,
        actor_id: args.actor_id,
        action: args.action,
        resource_type: args.resource_type,
        resource_id: args.resource_id,
        workspace_id: args.workspace_id,
        outcome: args.outcome,
        since: args.since,
        until: args.until,
        ..AuditQuery::default()
    }
    .parse()?;
    let (store, key, _signer) = boot::open_existing(&config).await?;
    store.chain_audit(&key).await?;
    let total = store.audit_count(&parsed.filter).await?;
    let done = Arc::new(AtomicU64::new(0));
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(u64::try_from(total).unwrap_or(0)),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );

    // A file appears only when the export is complete: write beside it, rename at the end.
    let to_stdout = args.output.as_os_str() == "-";
    let partial = args.output.with_file_name(format!(
        ".{}.partial",
        args.output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audit.csv".to_owned())
    ));
    let mut sink: Box<dyn Write + Send> = if to_stdout {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        Box::new(std::io::BufWriter::new(std::fs::File::create(&partial)?))
    };
    let mut chunks = Box::pin(warden_core::audit::csv::stream(
        store.clone(),
        parsed.filter,
        Some(done.clone()),
    ));
    let copy = async {
        while let Some(chunk) = chunks.next().await {
            sink.write_all(&chunk?)?;
            bar.set_position(done.load(Ordering::Relaxed));
        }
        sink.flush()?;
        Ok::<(), anyhow::Error>(())
    };
    let outcome = tokio::select! {
        r = copy => r,
        () = signals.recv() => Err(anyhow::anyhow!("export interrupted; nothing was written")),
    };
    drop(sink);
    bar.finish_and_clear();
    store.close().await;
    match outcome {
        Ok(()) => {
            if !to_stdout {
                std::fs::rename(&partial, &args.output)?;
                eprintln!(
                    "exported {} events to {}",
                    done.load(Ordering::Relaxed),
                    args.output.display()
                );
            }
            Ok(())
        }
        Err(e) => {
            if !to_stdout {
                let _ = std::fs::remove_file(&partial);
            }
            Err(e)
        }
    }
}

async fn user_create(config: Config, email: &str, role: &str) -> Result<()> {
    use std::io::BufRead;
    logging::init(&config.log);
    let mut password = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let (store, _keyring, key) = boot::open_for_admin(&config).await?;
    let license =
        warden_core::license::License::new(&config.license).map_err(|e| anyhow::anyhow!("{e}"))?;
    license.reload(&store).await?;
    let created =
        warden_core::identity::users::create_offline(&store, &license, &key, email, password, role)
            .await;
    store.close().await;
    let user = created.map_err(|e| anyhow::anyhow!("{e}"))?;
    print(&format!(
        "created user {} ({}) with platform role {}",
        user.email, user.id, user.platform_role
    ));
    Ok(())
}

async fn rotate_signing(config: Config) -> Result<()> {
    logging::init(&config.log);
    let (store, keyring, key) = boot::open_for_admin(&config).await?;
    let kid =
        warden_core::identity::keys::rotate(&store, &keyring, &key, &config.auth, &SystemClock)
            .await;
    store.close().await;
    let kid = kid?;
    print(&format!(
        "new signing key {kid}: published now, signing from one minute on (every running \
         server has loaded it by then); the previous key stays published until its tokens \
         have expired"
    ));
    Ok(())
}

async fn revoke_signing(config: Config, kid: &str) -> Result<()> {
    logging::init(&config.log);
    let (store, keyring, key) = boot::open_for_admin(&config).await?;
    let revoked = warden_core::identity::keys::revoke(
        &store,
        &keyring,
        &key,
        &config.auth,
        &SystemClock,
        kid,
    )
    .await;
    store.close().await;
    let Some(revoked) = revoked? else {
        anyhow::bail!(
            "no published signing key has the id {kid}; the published ones are listed at \
             /.well-known/jwks.json"
        );
    };
    if let Some(new) = &revoked.replacement {
        print(&format!("new signing key {new} signs from now on"));
    }
    if revoked.applied_everywhere {
        print(&format!(
            "signing key {kid} revoked: withdrawn from every running server; the tokens it \
             signed are refused from now on"
        ));
        Ok(())
    } else {
        anyhow::bail!(
            "signing key {kid} revoked, but not every running server confirmed within 10 s; \
             those that did not will apply it when they next reach the database"
        )
    }
}
