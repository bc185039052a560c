//! Test helpers: a fresh database on either backend, and the whole app started in-process on
//! port 0 with its own database and data directory.
//!
//! The backend comes from `TESTKIT_BACKEND` (`sqlite`, the default, or `postgres`); PostgreSQL
//! tests need `TESTKIT_POSTGRES_URL`, a URL of a role that may create databases. The test
//! script (`scripts/test`) runs the suite once per backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sqlx::Connection;
use tempfile::TempDir;
use warden_crypto::MasterKey;
use warden_domain::clock::{Clock, SystemClock};
use warden_server::boot::{self, Boot, Running};
use warden_server::config::{Config, Overrides};
use warden_server::http::routes::Routes;
use warden_server::state::AppState;
use warden_store::{Backend, ConnectOptions, Store};

pub mod agent;
pub mod azure_stub;
pub mod browser;
pub mod forger;
pub mod github_stub;
pub mod llm_stub;
pub mod oidc;
pub mod passkey;
pub mod private_postgres;
pub mod protocol_host;
pub mod saml;
pub mod smtp;
pub mod storm;
pub mod tls;
pub mod wrk;

/// A client that does not follow redirects (to see where Warden or a provider sends a
/// browser) and ignores proxy settings.
#[allow(clippy::expect_used)]
pub fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// The backend this test run uses.
pub fn backend() -> Backend {
    match std::env::var("TESTKIT_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// A fresh, empty database and a scratch directory, both owned by one test.
///
/// On PostgreSQL the database has two URLs, as in production: `url` connects as the
/// application role (`warden_test_app`, a member of `warden_app` that owns nothing, so
/// row-level security binds it), `owner_url` as the role that owns the tables and migrates
/// them. On SQLite both are the same file.
#[derive(Debug)]
pub struct TestDb {
    /// URL Warden serves through.
    pub url: String,
    /// URL of the role that owns the tables (migrations, and tests that tamper with rows).
    pub owner_url: String,
    /// Which backend.
    pub backend: Backend,
    /// Scratch directory (SQLite file, data directory).
    pub dir: TempDir,
}

impl TestDb {
    /// A new empty database on the backend of this run.
    pub async fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let backend = backend();
        let (url, owner_url) = match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("warden.db").display());
                (url.clone(), url)
            }
            Backend::Postgres => fresh_postgres_database().await?,
        };
        Ok(Self {
            url,
            owner_url,
            backend,
            dir,
        })
    }

    /// Connects a store to this database as the application role (not migrated).
    pub async fn connect(&self) -> Result<Store> {
        Ok(Store::connect(&ConnectOptions::new(self.url.clone())).await?)
    }

    /// Connects a store as the owning role (not migrated).
    pub async fn connect_owner(&self) -> Result<Store> {
        Ok(Store::connect(&ConnectOptions::new(self.owner_url.clone())).await?)
    }

    /// Migrates as the owner, then connects as the application role.
    pub async fn store(&self) -> Result<Store> {
        let owner = self.connect_owner().await?;
        owner.migrate(&SystemClock).await?;
        owner.close().await;
        self.connect().await
    }

    /// The `WARDEN_DATABASE_*` settings for a server on this database.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("WARDEN_DATABASE_URL".to_owned(), self.url.clone())];
        if self.backend == Backend::Postgres {
            env.push((
                "WARDEN_DATABASE_OWNER_URL".to_owned(),
                self.owner_url.clone(),
            ));
        }
        env
    }

    /// The data directory to give the server.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

/// The login role tests serve through: a member of `warden_app` that owns nothing.
pub const TEST_APP_ROLE: &str = "warden_test_app";

/// Creates `warden_app` and the test login role once per cluster. Roles are cluster-wide and
/// several test processes may race, so a lost race is simply retried.
async fn ensure_roles(conn: &mut sqlx::PgConnection) -> Result<()> {
    const SQL: &str = "DO $$ BEGIN \
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_app') THEN \
             CREATE ROLE warden_app NOLOGIN; END IF; \
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_test_app') THEN \
             CREATE ROLE warden_test_app LOGIN IN ROLE warden_app; END IF; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$";
    for _ in 0..20 {
        sqlx::raw_sql(SQL).execute(&mut *conn).await?;
        let both: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_roles WHERE rolname IN ('warden_app', 'warden_test_app')",
        )
        .fetch_one(&mut *conn)
        .await?;
        if both == 2 {
            return Ok(());
        }
    }
    bail!("could not create the test roles warden_app and warden_test_app")
}

/// A new database owned by the `TESTKIT_POSTGRES_URL` role: (application URL, owner URL).
async fn fresh_postgres_database() -> Result<(String, String)> {
    let admin = std::env::var("TESTKIT_POSTGRES_URL")
        .context("TESTKIT_BACKEND=postgres needs TESTKIT_POSTGRES_URL (run scripts/test)")?;
    fresh_postgres_database_at(&admin).await
}

/// [`fresh_postgres_database`] on the cluster the superuser URL `admin` reaches.
pub(crate) async fn fresh_postgres_database_at(admin: &str) -> Result<(String, String)> {
    let admin = admin.to_owned();
    let name = format!("warden_t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    ensure_roles(&mut conn).await?;
    let sql = format!("CREATE DATABASE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let Some((base, _db)) = admin.rsplit_once('/') else {
        bail!("TESTKIT_POSTGRES_URL must end with /DATABASE");
    };
    let owner = format!("{base}/{name}");
    let Some((_, host)) = base.rsplit_once('@') else {
        bail!("TESTKIT_POSTGRES_URL must name its user: postgres://USER@HOST:PORT/DATABASE");
    };
    let app = format!("postgres://{TEST_APP_ROLE}@{host}/{name}");
    Ok((app, owner))
}

/// Settings for the key that signs access tokens, as the benchmarks name it: `ES256` (the
/// default) or an RSA size (`2048`, `3072`, `4096`) for RS256.
pub fn signing_key_env(key: &str) -> Vec<(String, String)> {
    if key.eq_ignore_ascii_case("ES256") {
        vec![(
            "WARDEN_AUTH_SIGNING_ALGORITHM".to_owned(),
            "ES256".to_owned(),
        )]
    } else {
        vec![
            (
                "WARDEN_AUTH_SIGNING_ALGORITHM".to_owned(),
                "RS256".to_owned(),
            ),
            ("WARDEN_AUTH_SIGNING_KEY_BITS".to_owned(), key.to_owned()),
        ]
    }
}

/// A fresh random master key, as hex.
pub fn random_key_hex() -> String {
    MasterKey::generate()
        .map(|k| k.to_hex().to_string())
        .unwrap_or_default()
}

/// How to start a test app.
pub struct AppOptions {
    /// Extra environment variables (`WARDEN_*`) on top of the test defaults.
    pub env: Vec<(String, String)>,
    /// Routes added to Warden's own.
    pub extra_routes: Routes<AppState>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Operator public keys (PEM) as a build would embed them (`WARDEN_OPERATOR_KEYS_FILE`
    /// at build time); `None`: this build's own.
    pub embedded_operator_keys: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            extra_routes: Routes::new(),
            clock: Arc::new(SystemClock),
            embedded_operator_keys: None,
        }
    }
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions").finish_non_exhaustive()
    }
}

/// Warden running in-process on 127.0.0.1 with a port of its own.
#[derive(Debug)]
pub struct TestApp {
    /// The running server.
    pub server: Running,
    /// Its database.
    pub db: TestDb,
    /// An HTTP client for it.
    pub client: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The master encryption key the app runs with (hex).
    pub master_key_hex: String,
}

impl TestApp {
    /// Starts Warden with the test defaults.
    pub async fn spawn() -> Result<Self> {
        Self::spawn_with(AppOptions::default()).await
    }

    /// Starts Warden with extra settings or routes.
    pub async fn spawn_with(options: AppOptions) -> Result<Self> {
        install_crypto_provider();
        let db = TestDb::new().await?;
        let mut env = vec![
            ("WARDEN_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("WARDEN_DATA_DIR".to_owned(), path_string(&db.data_dir())),
            ("WARDEN_ENCRYPTION_KEY".to_owned(), random_key_hex()),
            // Were a test to choose RS256, a 3072-bit key (that size's default) takes ~0.4 s
            // to make; tests make hundreds. The default algorithm, ES256, is instant.
            ("WARDEN_AUTH_SIGNING_KEY_BITS".to_owned(), "2048".to_owned()),
        ];
        env.extend(db.env());
        for (k, v) in options.env {
            env.retain(|(name, _)| *name != k);
            // An empty value removes the setting: the built-in default applies.
            if !v.is_empty() {
                env.push((k, v));
            }
        }
        let master_key_hex = env
            .iter()
            .find(|(k, _)| k == "WARDEN_ENCRYPTION_KEY")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut config = Config::load(None, env, &Overrides::default())?;
        if let Some(keys) = options.embedded_operator_keys {
            config.license.embedded_keys = keys;
        }
        let server = boot::start(Boot {
            config,
            clock: options.clock,
            extra_routes: options.extra_routes,
        })
        .await?;
        let base = server.base_url();
        let client = reqwest::Client::builder().no_proxy().build()?;
        Ok(Self {
            server,
            db,
            client,
            base,
            master_key_hex,
        })
    }

    /// What another node of this installation is started with: the same database and
    /// master key.
    pub fn cluster_env(&self) -> Vec<(String, String)> {
        let mut env = self.db.env();
        env.push((
            "WARDEN_ENCRYPTION_KEY".to_owned(),
            self.master_key_hex.clone(),
        ));
        env
    }

    /// Another node of this installation, in this process.
    pub async fn another_node(&self) -> Result<TestApp> {
        Self::spawn_with(AppOptions {
            env: self.cluster_env(),
            ..AppOptions::default()
        })
        .await
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The OpenAPI document the server publishes (`GET /api/v1/openapi.json`, public).
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        Ok(self
            .client
            .get(self.url("/api/v1/openapi.json"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Creates the first administrator through the setup link, then signs them in: their
    /// access token.
    pub async fn first_admin(&self, email: &str, password: &str) -> Result<String> {
        let link = self
            .server
            .setup_link()
            .context("setup is over")?
            .to_owned();
        let token = link.split("token=").nth(1).context("a setup link")?;
        let res = self
            .client
            .post(self.url("/setup"))
            .form(&[("token", token), ("email", email), ("password", password)])
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("setup answered {}", res.status());
        }
        self.sign_in(email, password).await
    }

    /// Signs in with a password: the access token.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<String> {
        let res: serde_json::Value = self
            .client
            .post(self.url("/api/v1/auth/sign-in"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await?
            .json()
            .await?;
        res["access_token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("sign-in refused: {res}"))
    }

    /// The typed API client the command line uses, on this app.
    pub fn api(&self) -> warden_client::Client {
        warden_client::Client::with(self.client.clone(), self.base.clone())
    }

    /// Calls the API with a bearer token: the status and the JSON body (`Null` when none).
    /// Panics only when the server cannot be reached.
    #[allow(clippy::panic)]
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        match self
            .api()
            .send(Some(token), method, path, body.as_ref())
            .await
        {
            Ok(answer) => (answer.status, answer.body),
            Err(e) => panic!("{path}: {e}"),
        }
    }

    /// [`Self::call`] that must succeed (2xx): the JSON body. Panics naming the path, the
    /// status and the body otherwise.
    #[allow(clippy::panic)]
    pub async fn ok(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let (status, v) = self.call(token, method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }
}

/// A git repository at `dir` (created) on branch `main`, with one commit holding a
/// README: what a workspace's sessions start from.
#[allow(clippy::panic)]
pub fn git_repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    std::fs::write(dir.join("README.md"), "# demo\n").unwrap_or_else(|e| panic!("{e}"));
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "git init -q -b main && git add -A && \
             git -c user.name=t -c user.email=t@example.com commit -q -m init",
        )
        .current_dir(dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "git init in {}", dir.display());
}

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

/// Chooses aws-lc-rs as rustls's provider for this process (both may be linked).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

impl TestApp {
    /// The audit chain key the app uses (loaded the way the server loads it).
    pub async fn audit_key(&self) -> Result<warden_store::audit::ChainKey> {
        let master = MasterKey::from_hex(&self.master_key_hex)?;
        let store = self.server.store();
        let ring = warden_store::keyring::load_or_create(store, &master, &SystemClock).await?;
        Ok(warden_store::audit::ChainKey::load_or_create(store, &ring, &SystemClock).await?)
    }
}
