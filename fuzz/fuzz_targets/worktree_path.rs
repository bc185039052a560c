//! The file API's path resolver (`warden-agent`). Invariants: a path that passes the lexical
//! rules is relative, has no empty, `.` or `..` component and nothing in `.git`; and
//! resolving it beneath a worktree that has symlinks planted to the outside (relative,
//! absolute, through a directory) and to its `.git` pointer never reads or lists anything
//! outside the worktree, nor the pointer (which names the host's work repository).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_agent::files::Worktree;

const SENTINEL: &[u8] = b"OUTSIDE-THE-WORKTREE";
const POINTER: &[u8] = b"gitdir: /srv/warden/work/repo.git/worktrees/s1\n";

struct Fixture {
    _dir: PathBuf,
    tree: Worktree,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("warden-fuzz-worktree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let outside = dir.join("outside");
        let root = dir.join("worktree");
        std::fs::create_dir_all(outside.join("deeper")).unwrap();
        std::fs::create_dir_all(root.join("src/nested")).unwrap();

        std::fs::write(outside.join("secret"), SENTINEL).unwrap();
        std::fs::write(outside.join("deeper/secret"), SENTINEL).unwrap();
        std::fs::write(root.join("src/main.rs"), b"fn main() {}\n").unwrap();
        // As in every git worktree, `.git` is a file pointing at the repository.
        std::fs::write(root.join(".git"), POINTER).unwrap();
        symlink("../outside", root.join("up")).unwrap();
        symlink("../outside/secret", root.join("secret")).unwrap();
        symlink(outside.join("secret"), root.join("abs")).unwrap();
        symlink("../../../outside", root.join("src/nested/out")).unwrap();
        symlink("/", root.join("slash")).unwrap();
        symlink(".git", root.join("git")).unwrap();
        symlink("../worktree/.git", root.join("src/pointer")).unwrap();
        let tree = Worktree::open(&root).unwrap();
        Fixture { _dir: dir, tree }
    })
}

fuzz_target!(|raw: &str| {
    let f = fixture();
    let Ok(p) = Worktree::path(raw) else { return };
    let s = p.as_str();
    assert!(!s.is_empty() && !s.starts_with('/'), "{s:?}");
    for c in s.split('/') {
        assert!(!c.is_empty() && c != "." && c != "..", "{s:?}");
        assert!(!c.eq_ignore_ascii_case(".git"), "{s:?}");
    }
    if let Ok(data) = f.tree.read(&p, 1 << 20) {
        assert!(
            !data.windows(SENTINEL.len()).any(|w| w == SENTINEL),
            "read outside the worktree through {s:?}"
        );
        assert_ne!(data, POINTER, "read the .git pointer through {s:?}");
    }
    if let Ok(entries) = f.tree.list(Some(&p)) {
        assert!(
            !entries
                .iter()
                .any(|e| e.name == "secret" || e.name == "deeper"),
            "listed outside the worktree through {s:?}: {entries:?}"
        );
    }
});
