//! Measures SAML response verification (`scripts/bench-saml` drives it): the screen, every
//! signature with xmlsec1, the signed-element, audience, recipient and time checks, on a real
//! response from pysaml2. Usage:
//!   verify_bench METADATA_FILE RESPONSE_B64_FILE SP_ENTITY_ID ACS_URL [ITERATIONS]
//! Prints p50, p90, p99 and the rate on one thread, and the same for the screen alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use warden_saml::{Expect, Signed, Sp};

fn percentiles(mut us: Vec<f64>) -> (f64, f64, f64) {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.9), at(0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() >= 5,
        "usage: verify_bench METADATA RESPONSE_B64 SP_ENTITY ACS [N]"
    );
    let metadata = std::fs::read_to_string(&args[1]).unwrap();
    let response = std::fs::read_to_string(&args[2]).unwrap();
    let n: usize = args.get(5).map_or(2000, |s| s.parse().unwrap());
    let sp = Sp {
        entity_id: &args[3],
        acs_url: &args[4],
    };
    let expect = Expect {
        request_id: None,
        signed: Signed::Assertion,
    };
    let verified = warden_saml::verify(&sp, &metadata, &response, &expect).expect("verifies");
    println!(
        "verified: NameID {} from {}",
        verified.name_id, verified.issuer
    );
    for _ in 0..50 {
        warden_saml::verify(&sp, &metadata, &response, &expect).unwrap();
    }
    let mut times = Vec::with_capacity(n);
    let all = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        warden_saml::verify(&sp, &metadata, &response, &expect).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let rate = n as f64 / all.elapsed().as_secs_f64();
    let (p50, p90, p99) = percentiles(times);
    println!(
        "verify: n={n} p50={:.3} ms p90={:.3} ms p99={:.3} ms rate={rate:.0}/s",
        p50 / 1e3,
        p90 / 1e3,
        p99 / 1e3
    );
    use base64::Engine as _;
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(response.trim())
            .unwrap(),
    )
    .unwrap();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        warden_saml::screen(&xml).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, _, p99) = percentiles(times);
    println!("screen alone: p50={p50:.1} us p99={p99:.1} us");
}
