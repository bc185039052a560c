# Shared by scripts/test: the Python tools the tests run against real peers with — aiosmtpd
# (a real SMTP server for licence alerts) and joserfc (a standard JOSE library that verifies
# Warden's licence files), the official `openai` and `anthropic` SDKs (clients of the LLM
# gateway), the official MCP SDK `mcp` (an agent calling the MCP endpoint) and the official
# Prometheus client `prometheus-client` (its parser judges `/metrics`) and the OpenTelemetry
# protobuf definitions `opentelemetry-proto` (they decode the traces Warden exports), and
# `schemathesis` (it judges every API operation against the OpenAPI document) and
# `scim2-tester` (it judges the SCIM 2.0 service, /scim/v2) and `pysaml2` (a real SAML identity
# provider, signing with Debian's xmlsec1). Installed
# from PyPI into a virtual environment kept outside the clone, so consecutive runs reuse it;
# exports WARDEN_TEST_PYTHON.
# Usage: . scripts/lib/python.sh; setup_python

PY_PACKAGES="aiosmtpd==1.4.6 joserfc==1.8.0 openai==3.60.0 anthropic==2.16.0 mcp==2.3.0 prometheus-client==0.26.0 opentelemetry-proto==1.45.2 schemathesis==4.32.5 scim2-tester[httpx2]==0.5.2 pysaml2==7.5.5"

setup_python() {
  local venv="${WARDEN_TEST_VENV:-/var/tmp/warden-test-venv}"
  local stamp="$venv/.warden-packages"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$PY_PACKAGES" ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      log "installing python3-venv (Debian package)"
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    log "installing Python test tools: $PY_PACKAGES"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q --disable-pip-version-check $PY_PACKAGES
    echo "$PY_PACKAGES" >"$stamp"
  fi
  export WARDEN_TEST_PYTHON="$venv/bin/python"
}
