//! The host side of Warden's agent sessions, as a library the `warden-agent` binary runs:
//! per-workspace git mirrors and per-session worktrees ([`worktree`]), confined session
//! processes ([`sandbox`], [`run`]) and the traversal-proof file API ([`files`]).

pub mod files;
pub mod run;
pub mod sandbox;
pub mod work;
pub mod worktree;
