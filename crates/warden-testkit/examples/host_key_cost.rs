//! Cost of one host-key verification (PBKDF2-HMAC-SHA256, 100,000 iterations): the price of a
//! full key check, by design (BENCHMARKS.md). `host_key_cost [N]`
#![allow(clippy::print_stdout)]

use std::time::Instant;

use anyhow::{Context as _, Result};
use warden_crypto::host_key;

fn main() -> Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(50), |a| a.parse())?;
    let key = host_key::generate()?;
    let presented = host_key::parse(&key.key).context("parse")?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        assert!(host_key::verify(&presented, &key.salt, &key.hash));
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[n / 2];
    let p99 = times[(n * 99 / 100).min(n - 1)];
    println!(
        "host key verification (PBKDF2-HMAC-SHA256, {} iterations): median {:.1} ms, p99 {:.1} ms over {n}",
        host_key::ITERATIONS,
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    let tickets = warden_crypto::host_ticket::TicketKey::new(&[9u8; 32]);
    let ticket = warden_crypto::host_ticket::issue(&tickets, [1u8; 16], &key.key_id, i64::MAX)
        .context("ticket")?;
    let rounds = 100_000;
    let t = Instant::now();
    for _ in 0..rounds {
        assert!(warden_crypto::host_ticket::verify(&tickets, &ticket, 0).is_some());
    }
    println!(
        "host ticket verification (HMAC-SHA256): {:.2} µs each over {rounds}",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    );
    Ok(())
}
