//! Server-side time of the single sign-on callback with warm provider keys: Warden (in
//! process, embedded SQLite, access tokens signed ES256 as by default, or RS256 with the RSA size given)
//! against a provider at
//! the network boundary on loopback that answers at once (`forger`), so what is measured is
//! Warden's own work — the state lookup, the code exchange round trip on loopback, the ID-token
//! checks, the session. Also counts discovery/key fetches: one, for the first sign-in.
//! `cargo run --release -p warden-testkit --example sso_callback [N] [ES256|2048|3072]`

use std::time::Instant;

use serde_json::json;
use warden_testkit::TestApp;
use warden_testkit::forger::{keys, rs256, start_forger};

#[tokio::main]
#[allow(clippy::print_stdout, clippy::unwrap_used)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    // The key of the access tokens each sign-in signs: ES256 is Warden's default.
    let key = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "ES256".to_owned());
    let app = TestApp::spawn_with(warden_testkit::AppOptions {
        env: warden_testkit::signing_key_env(&key),
        ..Default::default()
    })
    .await?;
    let admin = &app
        .first_admin("ops@example.com", "bench password 7781 heron")
        .await?;
    let k = keys();
    let kid = k.jwk.kid.clone();
    let f = start_forger(json!({"keys": [serde_json::to_value(&k.jwk)?]})).await;
    let (code, body) = app
        .call(
            admin,
            reqwest::Method::POST,
            "/api/v1/admin/sso/providers",
            Some(
                json!({"slug": "bench", "display_name": "Bench", "preset": "oidc",
                        "issuer": f.base, "client_id": "warden", "client_secret": "s",
                        "jit": true, "allow_private_network": true}),
            ),
        )
        .await;
    anyhow::ensure!(code == 201, "provider: {body}");
    let client = warden_testkit::no_redirect_client();
    let clock = warden_domain::clock::SystemClock;
    let mut times = Vec::with_capacity(n);
    let mut fetches_after_first = 0;
    for i in 0..n + 20 {
        let res = client
            .get(app.url("/api/v1/auth/sso/bench/start"))
            .send()
            .await?;
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("__Host-warden_sso="))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let url = url::Url::parse(res.headers()["location"].to_str()?)?;
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        let (state, nonce) = (param("state"), param("nonce"));
        let now = warden_domain::clock::Clock::now(&clock).unix_timestamp();
        *f.next.lock().unwrap() = rs256(
            &k,
            &kid,
            &json!({"iss": f.base, "sub": "person-1", "aud": "warden", "exp": now + 300,
                    "iat": now, "nonce": nonce, "email": "person@example.com",
                    "email_verified": true}),
        );
        let started = Instant::now();
        let res = client
            .get(app.url(&format!(
                "/api/v1/auth/sso/bench/callback?code=c&state={state}"
            )))
            .header("cookie", cookie)
            .send()
            .await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(res.status() == 303, "callback {}", res.status());
        if i == 0 {
            fetches_after_first = app.server.state().ctx.oidc.fetches();
        }
        if i >= 20 {
            times.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "callback (n={n}, access tokens signed with {key}): p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms; discovery/key fetches: {} \
         after the first sign-in, {} after all",
        q(0.5),
        q(0.9),
        q(0.99),
        fetches_after_first,
        app.server.state().ctx.oidc.fetches()
    );
    Ok(())
}
