#!/usr/bin/env bash
# A throwaway PostgreSQL cluster (Debian's postgresql 15) on 127.0.0.1: the real database the PostgreSQL metadata
# store is tested and benchmarked against.
#
#   scripts/postgres.sh start DIR [PORT]   # cluster in DIR, listening on 127.0.0.1:PORT (default 5432); prints
#                                          # `export WHARF_TEST_POSTGRES=postgres://…` on stdout (logs go to stderr)
#   scripts/postgres.sh stop DIR [--keep]  # fast shutdown by the postmaster's PID; removes DIR unless --keep
#
# PostgreSQL refuses to run as root: run as root, the cluster belongs to an unprivileged system user (PG_USER,
# default `postgres`, created as a system user when missing); run as anyone else, to that user. DIR's parent must be
# traversable by that user. The admin is the superuser `wharf` with a random password (PG_PASSWORD to choose one);
# the URL printed may CREATE DATABASE. Knobs: PG_BIN (default /usr/lib/postgresql/15/bin), PG_START_TIMEOUT (s,
# default 60), PG_MAX_CONNECTIONS (default 200: every test Wharf holds a pool), PG_FSYNC (default on, as in
# production and for benchmarks; CI's test cluster sets off: fsync guards against the *machine* crashing, and no test
# crashes the machine — a killed Wharf or a killed postgres leaves its writes in the page cache either way, and
# every commit is still written before it returns, synchronous_commit staying on).
set -uo pipefail

usage() { echo "usage: $0 start DIR [PORT] | stop DIR [--keep]" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
shift
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# Runs a command as the cluster's owner (root may not run postgres; a non-root caller is the owner itself).
as_owner() {
  if [ "$(id -u)" = 0 ]; then setpriv --reuid="$OWNER" --regid="$(id -g "$OWNER")" --init-groups -- "$@"; else "$@"; fi
}

start() {
  set -euo pipefail
  local D PORT
  D=$(realpath -m "$1")
  PORT=${2:-5432}
  local TIMEOUT=${PG_START_TIMEOUT:-60}
  for b in initdb pg_ctl postgres; do
    [ -x "$BIN/$b" ] || { echo "postgres.sh: missing $BIN/$b (apt-get install postgresql)" >&2; exit 2; }
  done
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo "postgres.sh: 127.0.0.1:$PORT already in use" >&2; exit 2; fi
  if [ "$(id -u)" = 0 ]; then
    OWNER=${PG_USER:-postgres}
    if ! id -u "$OWNER" >/dev/null 2>&1; then
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OWNER"
    fi
  else
    OWNER=$(id -un)
  fi
  [ ! -e "$D/data/PG_VERSION" ] || { echo "postgres.sh: $D already holds a cluster; stop it and use a fresh dir" >&2; exit 2; }
  mkdir -p "$D"
  chown "$OWNER" "$D"
  chmod 700 "$D"
  as_owner test -w "$D" || { echo "postgres.sh: user $OWNER cannot reach $D (make its parent directories traversable)" >&2; exit 2; }

  local PASSWORD=${PG_PASSWORD:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
  printf '%s\n' "$PASSWORD" | as_owner tee "$D/pwfile" >/dev/null
  chmod 600 "$D/pwfile"
  local t0=$SECONDS
  # Password (SCRAM) over TCP; peer over the socket in DIR, for the owner only.
  as_owner "$BIN/initdb" -D "$D/data" -U wharf --pwfile="$D/pwfile" --auth-host=scram-sha-256 --auth-local=peer \
    -E UTF8 --locale=C.UTF-8 >"$D/initdb.log" 2>&1 || { cat "$D/initdb.log" >&2; exit 1; }
  rm -f "$D/pwfile"
  cat >>"$D/data/postgresql.conf" <<EOF
# Written by scripts/postgres.sh: loopback only, a socket in the cluster's own directory.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$D'
max_connections = ${PG_MAX_CONNECTIONS:-200}
fsync = ${PG_FSYNC:-on}
full_page_writes = ${PG_FSYNC:-on}
synchronous_commit = on
shared_buffers = 64MB
EOF
  as_owner "$BIN/pg_ctl" -D "$D/data" -l "$D/postgres.log" -w -t "$TIMEOUT" start >&2 || { tail -n 20 "$D/postgres.log" >&2; exit 1; }
  echo "[postgres.sh] cluster in $D on 127.0.0.1:$PORT (pid $(head -n1 "$D/data/postmaster.pid")), up in $((SECONDS - t0)) s" >&2
  echo "export WHARF_TEST_POSTGRES=postgres://wharf:$PASSWORD@127.0.0.1:$PORT/postgres"
}

stop() {
  local D
  D=$(realpath -m "$1")
  local keep=${2:-}
  local pidfile=$D/data/postmaster.pid
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(head -n1 "$pidfile")
    # SIGINT: fast shutdown (open sessions are ended, the checkpoint is written).
    if kill -INT "$pid" 2>/dev/null; then
      for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "[postgres.sh] pid $pid ignored fast shutdown for 30 s; SIGQUIT" >&2
        kill -QUIT "$pid" 2>/dev/null || true
        sleep 1
      fi
    fi
  fi
  if [ "$keep" != --keep ]; then rm -rf "$D"; fi
}

case "$cmd" in
  start) [ $# -ge 1 ] || usage; start "$@" ;;
  stop) stop "$@" ;;
  *) usage ;;
esac
