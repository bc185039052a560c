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

