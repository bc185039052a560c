//! The LLM stub provider (see `warden_testkit::llm_stub`) as a process of its own, for the
//! gateway benchmark: every answer after a fixed DELAY_MS, requests not kept.
//! `llm_stub_server <ADDR> <DELAY_MS>`

#![allow(clippy::print_stdout)]

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let delay: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let stub = warden_testkit::llm_stub::LlmStub::start_on(&addr).await?;
    stub.set_delay_ms(delay);
    stub.stop_recording();
    println!("{}", stub.addr);
    std::future::pending::<()>().await;
    Ok(())
}
