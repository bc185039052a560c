//! A PostgreSQL cluster of one test's own, which the test may stop, start and cut off (the
//! shared cluster of `scripts/test` serves every other test and must stay up). Built from the
//! same Debian binaries `scripts/lib/postgres.sh` installs; as root, the cluster belongs to the
//! `postgres` user (PostgreSQL refuses to run as root), as there.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use sqlx::Connection;

/// A running (or stopped) private cluster, removed when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Creates and starts a cluster on a free loopback port.
    pub fn start() -> Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (scripts/test installs it)")?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .context("no initdb under /usr/lib/postgresql")?;
        let as_postgres = rustix::process::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("warden-private-pg")
            .tempdir_in("/tmp")?;
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(dir.path()))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pg = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        pg.pg(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                "warden_test",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )?;
        pg.start_again()?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg(&self, tool: &str, args: &[&str]) -> Result<()> {
        let path = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        run(command.args(args))
    }

    /// Starts it (again), waiting until it accepts connections.
    pub fn start_again(&self) -> Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("server.log").display().to_string(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        )
    }

    /// Stops it the way a restart does: connections are ended, none are accepted.
    pub fn stop(&self) -> Result<()> {
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )
    }

    /// The superuser's URL for database `db`.
    pub fn admin_url(&self, db: &str) -> String {
        format!("postgres://warden_test@127.0.0.1:{}/{db}", self.port)
    }

    /// A new database on it, with the application role as in [`crate::TestDb`]: (application
    /// URL, owner URL).
    pub async fn database(&self) -> Result<(String, String)> {
        crate::fresh_postgres_database_at(&self.admin_url("postgres")).await
    }

    /// Ends every other connection to database `db` (as `pg_terminate_backend` does when an
    /// administrator or a failover cuts them). Returns how many.
    pub async fn cut_connections(&self, db: &str) -> Result<i64> {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url("postgres")).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()) t",
        )
        .bind(db)
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(n)
    }

    /// Its log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

fn run(command: &mut Command) -> Result<()> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
