//! Runs wrk (a load generator the benchmark scripts install) with a Lua script and reads its
//! report: the benchmarks' one way to drive HTTP load.

/// What wrk reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Requests per second.
    pub rate: String,
    /// Median latency.
    pub p50: String,
    /// 99th percentile latency.
    pub p99: String,
    /// Answers that were not 2xx or 3xx.
    pub non2xx: String,
}

/// Runs wrk against `url` for `secs` seconds with `threads` threads and `conns` connections,
/// the request shaped by `lua` (written to a scratch file).
pub fn run(url: &str, lua: &str, threads: u32, conns: u32, secs: u64) -> Report {
    let dir = std::env::temp_dir().join(format!("warden-wrk-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let script = dir.join("request.lua");
    let _ = std::fs::write(&script, lua);
    let text = match std::process::Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--timeout",
            "10s",
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout).to_string(),
        Err(e) => format!("wrk did not run ({e}); the benchmark scripts install it"),
    };
    let field = |pick: &dyn Fn(&str) -> Option<String>| {
        text.lines()
            .find_map(pick)
            .unwrap_or_else(|| "-".to_owned())
    };
    let non2xx = field(&|l: &str| {
        l.trim()
            .strip_prefix("Non-2xx or 3xx responses:")
            .map(|v| v.trim().to_owned())
    });
    Report {
        rate: field(&|l: &str| l.strip_prefix("Requests/sec:").map(|v| v.trim().to_owned())),
        p50: field(&|l: &str| l.trim().strip_prefix("50%").map(|v| v.trim().to_owned())),
        p99: field(&|l: &str| l.trim().strip_prefix("99%").map(|v| v.trim().to_owned())),
        non2xx: if non2xx == "-" {
            "0".to_owned()
        } else {
            non2xx
        },
    }
}
