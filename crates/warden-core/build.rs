//! Embeds the distribution's operator public keys, if the build names them: set
//! `WARDEN_OPERATOR_KEYS_FILE` to a PEM file of one or more `PUBLIC KEY` blocks when building.
//! A build with embedded keys always enforces licences; configuration can add keys, never
//! remove enforcement. Without it, the build embeds none.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=WARDEN_OPERATOR_KEYS_FILE");
    let text = match std::env::var_os("WARDEN_OPERATOR_KEYS_FILE") {
        Some(path) if !path.is_empty() => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&path).display());
            match std::fs::read_to_string(&path) {
                Ok(text) if text.contains("-----BEGIN PUBLIC KEY-----") => text,
                Ok(_) => fail(&format!(
                    "WARDEN_OPERATOR_KEYS_FILE {} holds no PUBLIC KEY block",
                    PathBuf::from(&path).display()
                )),
                Err(e) => fail(&format!(
                    "WARDEN_OPERATOR_KEYS_FILE {}: {e}",
                    PathBuf::from(&path).display()
                )),
            }
        }
        _ => String::new(),
    };
    let Some(out) = std::env::var_os("OUT_DIR") else {
        fail("OUT_DIR is not set");
    };
    if let Err(e) = std::fs::write(PathBuf::from(out).join("operator_keys.pem"), text) {
        fail(&format!("cannot write the embedded operator keys: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
