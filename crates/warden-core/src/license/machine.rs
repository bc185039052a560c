//! This machine's identity, as a licence binds to it: the operating system's machine id
//! (`/etc/machine-id`, written once at installation: stable across restarts and upgrades,
//! new after a reinstall), hashed with a Warden-specific prefix so the fingerprint reveals
//! nothing else about the machine.

use std::path::{Path, PathBuf};

use aws_lc_rs::digest;

const DEFAULT_SOURCES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
const DOMAIN: &[u8] = b"warden-machine-fingerprint-v1\0";

/// The fingerprint of the machine whose id is in `file` (or the operating system's default
/// places).
pub fn fingerprint(file: Option<&Path>) -> Result<String, String> {
    let sources: Vec<PathBuf> = match file {
        Some(f) => vec![f.to_path_buf()],
        None => DEFAULT_SOURCES.iter().map(PathBuf::from).collect(),
    };
    for source in &sources {
        if let Ok(text) = std::fs::read_to_string(source) {
            let id = text.trim();
            if id.len() >= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                let mut ctx = digest::Context::new(&digest::SHA256);
                ctx.update(DOMAIN);
                ctx.update(id.to_ascii_lowercase().as_bytes());
                return Ok(hex::encode(ctx.finish()));
            }
            return Err(format!(
                "license.machine_id_file: {} does not hold a machine id (hex digits)",
                source.display()
            ));
        }
    }
    Err(format!(
        "license: cannot read the machine identity from {}; set license.machine_id_file",
        sources
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    ))
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_a_stable_hash_of_the_machine_id_and_reveals_nothing_of_it() {
        let dir = std::env::temp_dir().join(format!("warden-mid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("machine-id");
        std::fs::write(&file, "0123456789abcdef0123456789abcdef\n").unwrap();
        let a = fingerprint(Some(&file)).unwrap();
        assert_eq!(a, fingerprint(Some(&file)).unwrap());
        assert_eq!(a.len(), 64);
        assert!(!a.contains("0123456789abcdef"));
        std::fs::write(&file, "fedcba9876543210fedcba9876543210\n").unwrap();
        assert_ne!(a, fingerprint(Some(&file)).unwrap(), "reinstall: new id");
        std::fs::write(&file, "not an id").unwrap();
        assert!(fingerprint(Some(&file)).is_err());
        assert!(fingerprint(Some(&dir.join("missing"))).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
