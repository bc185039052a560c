# Shared by scripts/test and scripts/bench-audit: installs PostgreSQL from Debian's packages
# when missing and starts a throw-away cluster on a loopback port, owned by a non-root user and
# removed when the calling script exits. Sets TESTKIT_POSTGRES_URL and PGDIR.
# Usage: . scripts/lib/postgres.sh; start_postgres [extra postgres -c options]

log() { printf '\n== %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1
  fi
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
  log "installing PostgreSQL (Debian package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(pg_bin)

# PostgreSQL refuses to run as root: the cluster belongs to an unprivileged user.
if [ "$(id -u)" = 0 ]; then
  PGUSER_OS=postgres
  id "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home "$PGUSER_OS"
  run_pg() { runuser -u "$PGUSER_OS" -- "$@"; }
else
  PGUSER_OS=$(id -un)
  run_pg() { "$@"; }
fi

PGDIR=$(mktemp -d /tmp/warden-pg.XXXXXX)
chown "$PGUSER_OS" "$PGDIR"
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  run_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT

start_postgres() {
  log "starting PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT"
  run_pg "$PGBIN/initdb" -D "$PGDIR/data" -U warden_test --auth=trust -E UTF8 >/dev/null
  run_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c max_connections=300 $*" \
    start >/dev/null
  export TESTKIT_POSTGRES_URL="postgres://warden_test@127.0.0.1:$PGPORT/postgres"
}


# A test certificate authority and a server certificate for 127.0.0.1 signed by it (EC P-256,
# a day long), so the cluster also accepts TLS: tests connect with sslmode=verify-full and
# this CA (TESTKIT_POSTGRES_CA). Plain connections keep working. Sets PG_TLS_OPTIONS, the
# postgres options that turn it on.
# Usage: postgres_tls; start_postgres $PG_TLS_OPTIONS …
postgres_tls() {
  if ! command -v openssl >/dev/null 2>&1; then
    log "installing openssl (Debian package)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  local d="$PGDIR/tls"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=Warden test CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 1 -extfile "$d/ext" -out "$d/server.crt" 2>/dev/null
  chown -R "$PGUSER_OS" "$d"
  chmod 0600 "$d/server.key" "$d/ca.key"
  chmod 0644 "$d/ca.crt"
  export TESTKIT_POSTGRES_CA="$d/ca.crt"
  PG_TLS_OPTIONS="-c ssl=on -c ssl_cert_file=$d/server.crt -c ssl_key_file=$d/server.key"
}
