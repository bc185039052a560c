# Shared by scripts/test and scripts/check-supply-chain: the cargo subcommands the supply-chain
# check runs, built from crates.io at pinned versions (`cargo install --locked`) into a
# directory kept outside the clone, so consecutive runs on one machine reuse them. A fresh
# machine builds them once (about four minutes of CPU); scripts/test starts that in the
# background at once so it overlaps the rest of the run.
# Usage: . scripts/lib/rust_tools.sh; install_rust_tools   (then "$RUST_TOOLS/bin" is on PATH)

RUST_TOOLS="${WARDEN_RUST_TOOLS:-/var/tmp/warden-rust-tools}"
RUST_TOOL_VERSIONS="cargo-deny@0.20.2 cargo-cyclonedx@0.5.9"

install_rust_tools() {
  mkdir -p "$RUST_TOOLS"
  (
    # One installer at a time (the background one scripts/test starts, and this).
    flock 9
    if [ "$(cat "$RUST_TOOLS/.versions" 2>/dev/null)" != "$RUST_TOOL_VERSIONS" ]; then
      for spec in $RUST_TOOL_VERSIONS; do
        env -u CARGO_TARGET_DIR cargo install -q --locked --force --root "$RUST_TOOLS" "${spec%@*}" --version "=${spec#*@}"
      done
      echo "$RUST_TOOL_VERSIONS" >"$RUST_TOOLS/.versions"
    fi
  ) 9>"$RUST_TOOLS/.lock"
  export PATH="$RUST_TOOLS/bin:$PATH"
}
