# Shared by scripts/test and scripts/bench-saml: what SAML needs on this machine. Building
# with the `saml` feature needs libxml2 and xmlsec1 headers and libclang (samael generates its
# xmlsec bindings with bindgen) — Debian's libxml2-dev, libxmlsec1-dev, libclang-dev and
# pkg-config; the test identity provider (pysaml2) signs with Debian's xmlsec1 command.
# Installs whichever is missing. Usage: . scripts/lib/saml.sh; setup_saml

setup_saml() {
  local missing="" pkg
  for pkg in libxml2-dev libxmlsec1-dev libclang-dev pkg-config xmlsec1; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    log "installing$missing (Debian packages, for SAML)"
    as_root apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
}
