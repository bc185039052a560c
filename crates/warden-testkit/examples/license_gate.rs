//! The licence's cost (BENCHMARKS.md, licensing): the per-request gate (`License::gate`, what
//! the access guard runs on every routed request) with a valid licence, with a domain-bound
//! one, and unlicensed; then one licence verification (signature, claims) and a full reload
//! from the database (what a node does at boot and after an install).
//!
//! `cargo run --release -p warden-testkit --example license_gate [N]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use warden_core::license::License;
use warden_crypto::license::SigningKey;
use warden_domain::clock::{Clock, SystemClock};
use warden_domain::license::{Feature, LicenseRule};
use warden_server::config::{Config, LicenseConfig};
use warden_store::license::NewInstall;
use warden_store::{ConnectOptions, Store};

fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5_000_000);
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&ConnectOptions::new(format!(
        "sqlite://{}",
        dir.path().join("warden.db").display()
    )))
    .await?;
    store.migrate(&SystemClock).await?;
    let (key, _) = SigningKey::generate()?;
    std::fs::write(dir.path().join("operator.pub"), key.public_key().to_pem())?;
    std::fs::write(
        dir.path().join("machine-id"),
        "5f1c0b7e9a2d4c3b8e6f0a1b2c3d4e5f\n",
    )?;
    let config = LicenseConfig {
        public_key_file: Some(dir.path().join("operator.pub")),
        machine_id_file: Some(dir.path().join("machine-id")),
        public_host: Some("api.acme.internal".to_owned()),
        ..Config::defaults()?.license
    };
    let now = SystemClock.now().unix_timestamp();
    let license = License::new(&config).map_err(anyhow::Error::msg)?;
    let install = |claims: serde_json::Value| {
        let token = key.sign(&claims).unwrap();
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            tx.insert_license(&NewInstall {
                license_id: claims["jti"].as_str().unwrap(),
                customer: "Acme",
                tier: claims["tier"].as_str().unwrap(),
                expires_at: claims["exp"].as_i64().unwrap(),
                token: &token,
                installed_by: None,
                installed_at: now,
            })
            .await
            .unwrap();
            tx.commit().await.unwrap();
            token
        }
    };
    let standard = install(json!({
        "jti": "BENCH-1", "customer": "Acme", "tier": "standard", "iat": now,
        "exp": now + 86_400 * 365, "features": ["workflows", "bots"],
        "fingerprint": license.fingerprint(),
    }))
    .await;
    license.reload(&store).await?;
    license.observe_clock(&store, now).await?;
    let clock = SystemClock;
    let gate = |rule| {
        black_box(
            license
                .gate(&clock, black_box("/api/v1/hosts"), rule)
                .is_ok(),
        )
    };
    assert!(gate(LicenseRule::Required));
    let valid = per_op(n, || {
        gate(LicenseRule::Required);
    });
    let feature = per_op(n, || {
        gate(LicenseRule::Feature(Feature::Bots));
    });
    let clock_only = per_op(n, || {
        black_box(clock.now().unix_timestamp());
    });

    let domain_bound = install(json!({
        "jti": "BENCH-2", "customer": "Acme", "tier": "enterprise", "iat": now,
        "exp": now + 86_400 * 365, "features": ["workflows"],
        "allowedDomain": "*.acme.internal",
    }))
    .await;
    license.reload(&store).await?;
    let domain = || {
        black_box(
            license
                .gate(&clock, black_box("/api/v1/hosts"), LicenseRule::Required)
                .is_ok(),
        )
    };
    assert!(domain());
    let with_domain = per_op(n, || {
        domain();
    });

    let unlicensed = License::new(&Config::defaults()?.license).map_err(anyhow::Error::msg)?;
    let free = per_op(n, || {
        black_box(
            unlicensed
                .gate(&clock, black_box("/api/v1/hosts"), LicenseRule::Required)
                .is_ok(),
        );
    });

    let public = key.public_key().clone();
    let verify_us = per_op(2_000, || {
        black_box(public.verify(black_box(&standard)).is_ok());
    }) / 1000.0;
    let _ = domain_bound;
    let reload_started = Instant::now();
    for _ in 0..200 {
        license.reload(&store).await?;
    }
    let reload_us = reload_started.elapsed().as_micros() as f64 / 200.0;

    println!("licence gate, {n} calls each (release, this machine):");
    println!("  valid licence, API route:          {valid:7.1} ns/request");
    println!("  valid licence, feature route:      {feature:7.1} ns/request");
    println!("  domain-bound licence, Host match:  {with_domain:7.1} ns/request");
    println!("  unlicensed:                        {free:7.1} ns/request");
    println!("  (of which the clock read:          {clock_only:7.1} ns)");
    println!("licence verification (ES256 + header checks): {verify_us:.1} µs");
    println!("reload from the database (read, verify, swap): {reload_us:.1} µs");
    store.close().await;
    Ok(())
}
