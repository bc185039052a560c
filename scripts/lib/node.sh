# Shared by scripts/test: the npm packages the tests run against real peers with —
# oidc-provider (a real OpenID provider for single sign-on) and playwright-core (drives
# Debian's Chromium through Warden's pages; it downloads no browser). Installs Node.js, npm
# and Chromium from Debian's packages when missing, then `npm ci` from each checked-in lock
# file, again only when the lock file changed. Usage: . scripts/lib/node.sh; setup_node

NODE_TEST_DIRS="crates/warden/tests/oidc crates/warden/tests/browser"

setup_node() {
  local missing=""
  command -v node >/dev/null 2>&1 || missing="$missing nodejs"
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  if [ -n "$missing" ]; then
    log "installing$missing (Debian packages)"
    as_root apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  local dir stamp
  for dir in $NODE_TEST_DIRS; do
    stamp="$dir/node_modules/.warden-lock"
    if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
      log "installing npm test packages in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --silent)
      cp "$dir/package-lock.json" "$stamp"
    fi
  done
}
