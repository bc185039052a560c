# Shared by scripts/test: the npm packages the tests run against real peers with —
# oidc-provider (a real OpenID provider for single sign-on). Installs Node.js and npm from
# Debian's packages when missing, then `npm ci` from the checked-in lock file, again only
# when the lock file changed. Usage: . scripts/lib/node.sh; setup_node

setup_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing Node.js and npm (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  local dir=crates/warden/tests/oidc
  local stamp="$dir/node_modules/.warden-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    log "installing npm test packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
