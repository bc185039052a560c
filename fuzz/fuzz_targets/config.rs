//! The configuration loader (TOML file + `WARDEN_*` environment). Invariants: any file is
//! loaded or refused with a message (no panic); and no secret reaches what an operator sees —
//! with a password planted in every database and SMTP URL and a master key in the
//! environment (valid or not), neither `warden config check`'s output nor any refusal
//! message contains them.
//!
//! Settings naming files the loader reads (`*_file`) are dropped from the input: a fuzzer
//! pointing them at `/dev/zero` or a named pipe tests the machine, not the parser.
#![no_main]

use std::io::Write as _;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_server::config::{Config, Overrides};

const PASSWORD: &str = "pw-Planted-7f1c2b9e";
/// 64 hex characters (low in entropy, so no secret scanner takes it for a real key).
const KEY_VALID: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const KEY_INVALID: &str = "not-a-key-Planted-4b7d";

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("warden-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// The URL with `PASSWORD` as its password (kept as is when it has no user).
fn plant(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{}://{user}:{PASSWORD}@{}", &url[..i], &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

fn scrub(table: &mut toml::Table) {
    table.retain(|k, _| !k.ends_with("_file"));
    for (k, v) in table.iter_mut() {
        match v {
            toml::Value::Table(t) => scrub(t),
            toml::Value::String(s) if k == "url" || k == "owner_url" => *s = plant(s),
            _ => {}
        }
    }
}

fn check(text: &str, key: &str) {
    let path = scratch().join("warden.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    let env = [("WARDEN_ENCRYPTION_KEY".to_owned(), key.to_owned())];
    let shown = match Config::load(Some(&path), env, &Overrides::default()) {
        Ok(c) => {
            let shown = c.redacted_toml();
            toml::from_str::<toml::Table>(&shown).expect("config check prints TOML");
            shown
        }
        Err(e) => e.to_string(),
    };
    for secret in [PASSWORD, KEY_VALID, KEY_INVALID] {
        assert!(!shown.contains(secret), "a secret is shown: {shown}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let key = if pick & 1 == 0 {
        KEY_VALID
    } else {
        KEY_INVALID
    };
    match toml::from_str::<toml::Table>(text) {
        Ok(mut table) => {
            scrub(&mut table);
            check(&toml::to_string(&table).expect("TOML renders"), key);
        }
        // Not TOML: the loader must say so without panicking (nothing planted to leak).
        Err(_) if !text.contains("_file") => check(text, key),
        Err(_) => {}
    }
});
