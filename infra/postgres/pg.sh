#!/usr/bin/env bash
# Local PostgreSQL for running and testing the sportsbook: a private cluster
# (own data dir, own port, 127.0.0.1 only) run with Debian's postgresql
# binaries. It never touches the system's own clusters (pg_ctlcluster, 5432).
#
# Usage: infra/postgres/pg.sh <command>
#   install  apt-get install postgresql if its binaries are missing (root)
#   start    install if needed, initdb if new, start, wait for pg_isready,
#            create role and database `sportsbook` (password `sportsbook`)
#   stop     pg_ctl stop -m fast (exit 0 when not running)
#   status   print state; exit 0 when running, 3 when stopped
#   reset    stop and delete the state dir
#   url      print postgresql://sportsbook:sportsbook@127.0.0.1:$PG_PORT/sportsbook
#   psql     open psql on that URL (extra arguments go to psql)
#   logs     print the tail of the server log
#
# Environment (defaults in brackets):
#   PG_PORT [15432]  PG_AUTH [trust] (or scram-sha-256) for 127.0.0.1 logins
#   PG_STATE_DIR [infra/postgres/.state, or /tmp/sportsbook-pg-$PG_PORT when
#     the repo path is not traversable by the `postgres` user; see README]
#   PG_BIN [newest /usr/lib/postgresql/*/bin]  PG_DURABLE [0]: 1 keeps fsync on
#   PG_START_TIMEOUT [60]
#
# PostgreSQL refuses to run as root: as root, the server and initdb run as the
# `postgres` system user (runuser); as any other user, as that user.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

PG_HOST=127.0.0.1
PG_PORT="${PG_PORT:-15432}"
PG_DB=sportsbook
PG_USER=sportsbook
PG_PASSWORD=sportsbook
PG_AUTH="${PG_AUTH:-trust}"
PG_DURABLE="${PG_DURABLE:-0}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
RUN_AS=postgres
BIN=""
URL="postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB"

T0="${EPOCHREALTIME}"
say() { printf 'postgres: %s\n' "$*" >&2; }
die() { printf 'postgres: ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$T0" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.1fs", b - a }'; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Runs a command as the database owner, from a directory it can read.
as_pg() {
  if is_root; then
    (cd / && runuser -u "$RUN_AS" -- "$@")
  else
    (cd / && "$@")
  fi
}

# The state dir must be reachable by the user the server runs as. The repo's
# own infra/postgres/.state is used when that user can traverse the path to it;
# otherwise (e.g. a checkout under a 0700 home) /tmp/sportsbook-pg-$PG_PORT.
choose_state_dir() {
  if [[ -n "${PG_STATE_DIR:-}" ]]; then
    case "$PG_STATE_DIR" in
      /*) printf '%s\n' "$PG_STATE_DIR" ;;
      *) printf '%s\n' "$PWD/$PG_STATE_DIR" ;;
    esac
    return 0
  fi
  if ! is_root || ! id -u "$RUN_AS" >/dev/null 2>&1 ||
      runuser -u "$RUN_AS" -- test -x "$HERE" 2>/dev/null; then
    printf '%s\n' "$HERE/.state"
  else
    printf '%s\n' "/tmp/sportsbook-pg-$PG_PORT"
  fi
}

STATE_DIR="$(choose_state_dir)"
DATA_DIR="$STATE_DIR/data"
LOG_FILE="$STATE_DIR/postgres.log"
LOCK_FILE="$STATE_DIR/.lock"
# Unix socket path must stay under ~107 bytes.
SOCK_DIR="$STATE_DIR"
if ((${#SOCK_DIR} > 80)); then SOCK_DIR="/tmp/sportsbook-pg-sock-$PG_PORT"; fi

find_bin_dir() {
  if [[ -n "${PG_BIN:-}" ]]; then
    [[ -x "$PG_BIN/pg_ctl" ]] || die "PG_BIN=$PG_BIN has no pg_ctl"
    printf '%s\n' "$PG_BIN"
    return 0
  fi
  local d
  d="$(find /usr/lib/postgresql -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null | sort -V | tail -n 1)"
  if [[ -n "$d" ]]; then
    printf '%s\n' "${d%/pg_ctl}"
    return 0
  fi
  # Not Debian's layout: initdb and pg_ctl on PATH (e.g. a source build).
  if d="$(command -v pg_ctl)" && [[ -x "$(dirname "$d")/initdb" ]]; then
    dirname "$(readlink -f "$d")"
    return 0
  fi
  return 1
}

cmd_install() {
  local bin
  if bin="$(find_bin_dir)"; then
    say "binaries present: $bin ($("$bin/postgres" --version))"
    return 0
  fi
  is_root || die "PostgreSQL is not installed; as root run: apt-get install -y postgresql"
  command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get"
  say "installing Debian's postgresql (apt-get) ..."
  # Do not let the package create and start its own cluster on port 5432.
  mkdir -p /etc/postgresql-common/createcluster.d
  printf 'create_main_cluster = false\n' \
    >/etc/postgresql-common/createcluster.d/sportsbook-no-main-cluster.conf
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bin="$(find_bin_dir)" || die "postgresql installed but no pg_ctl under /usr/lib/postgresql/*/bin"
  say "installed $("$bin/postgres" --version) in $(elapsed)"
}

pg_running() {
  [[ -f "$DATA_DIR/postmaster.pid" ]] || return 1
  as_pg "$BIN/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1
}

port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$PG_HOST/$PG_PORT" 2>/dev/null
}

lock() {
  exec 9>"$LOCK_FILE"
  flock -w 120 9 || die "another pg.sh holds $LOCK_FILE"
}

prepare_state_dir() {
  mkdir -p "$STATE_DIR" "$SOCK_DIR"
  chmod 700 "$STATE_DIR"
  if is_root; then
    id -u "$RUN_AS" >/dev/null 2>&1 || die "no '$RUN_AS' user (it comes with Debian's postgresql package)"
    chown "$RUN_AS:" "$STATE_DIR" "$SOCK_DIR"
    runuser -u "$RUN_AS" -- test -w "$STATE_DIR" ||
      die "user $RUN_AS cannot reach $STATE_DIR; set PG_STATE_DIR (e.g. /tmp/sportsbook-pg-$PG_PORT)"
  fi
}

init_cluster() {
  if [[ -f "$DATA_DIR/PG_VERSION" ]]; then
    local have want
    have="$(cat "$DATA_DIR/PG_VERSION")"
    want="$("$BIN/postgres" --version | awk '{ print $3 }')"
    [[ "${want%%.*}" == "$have" ]] ||
      die "$DATA_DIR was made by PostgreSQL $have, binaries are $want: run '$0 reset'"
    return 0
  fi
  say "initdb $DATA_DIR"
  local out
  if ! out="$(as_pg "$BIN/initdb" -D "$DATA_DIR" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host="$PG_AUTH" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "initdb failed"
  fi
  printf "\ninclude_if_exists = 'sportsbook.conf'\n" | as_pg tee -a "$DATA_DIR/postgresql.conf" >/dev/null
}

# Written on every start so PG_PORT / PG_AUTH / PG_DURABLE take effect.
write_config() {
  {
    printf '# written by infra/postgres/pg.sh on each start\n'
    printf "listen_addresses = '%s'\n" "$PG_HOST"
    printf 'port = %s\n' "$PG_PORT"
    printf "unix_socket_directories = '%s'\n" "$SOCK_DIR"
    printf 'max_connections = 200\n'
    printf "log_destination = 'stderr'\n"
    printf "log_line_prefix = '%%m [%%p] %%q%%u@%%d '\n"
    if [[ "$PG_DURABLE" != 1 ]]; then
      printf '# test instance: trade crash safety for speed (PG_DURABLE=1 to keep it)\n'
      printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
    fi
  } | as_pg tee "$DATA_DIR/sportsbook.conf" >/dev/null
  {
    printf '# written by infra/postgres/pg.sh on each start\n'
    printf 'local all all trust\n'
    printf 'host all all %s/32 %s\n' "$PG_HOST" "$PG_AUTH"
  } | as_pg tee "$DATA_DIR/pg_hba.conf" >/dev/null
}

admin_psql() {
  as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$PG_PORT" -U postgres -d postgres
}

ensure_role_and_db() {
  admin_psql <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
}

cmd_start() {
  cmd_install
  BIN="$(find_bin_dir)"
  prepare_state_dir
  lock
  if pg_running; then
    say "already running on $PG_HOST:$PG_PORT (data $DATA_DIR)"
    return 0
  fi
  if port_open; then
    die "port $PG_HOST:$PG_PORT is taken by another process; set PG_PORT"
  fi
  init_cluster
  write_config
  say "starting $("$BIN/postgres" --version) on $PG_HOST:$PG_PORT (state $STATE_DIR)"
  # 9>&-: the server must not inherit (and so hold forever) the lock fd.
  if ! as_pg "$BIN/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$PG_START_TIMEOUT" \
      >/dev/null 2>&1 9>&-; then
    tail -n 30 "$LOG_FILE" >&2 || true
    die "pg_ctl start failed (log: $LOG_FILE)"
  fi
  local deadline=$((SECONDS + PG_START_TIMEOUT))
  until "$BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -d postgres; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "not accepting connections after ${PG_START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    sleep 0.2
  done
  ensure_role_and_db
  say "ready: $URL ($(elapsed))"
}

cmd_stop() {
  BIN="$(find_bin_dir)" || { say "not installed, so not running"; return 0; }
  if [[ ! -d "$STATE_DIR" ]]; then
    say "not running"
    return 0
  fi
  lock
  if ! pg_running; then
    say "not running"
    return 0
  fi
  say "stopping (fast) ..."
  as_pg "$BIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t 60 >/dev/null
  say "stopped in $(elapsed)"
}

cmd_status() {
  if BIN="$(find_bin_dir)" && [[ -d "$STATE_DIR" ]] && pg_running; then
    printf 'running %s data=%s pid=%s\n' "$URL" "$DATA_DIR" "$(head -n 1 "$DATA_DIR/postmaster.pid")"
    return 0
  fi
  printf 'stopped (url would be %s, state %s)\n' "$URL" "$STATE_DIR"
  return 3
}

cmd_reset() {
  cmd_stop
  case "$STATE_DIR" in
    "" | / | "$HOME" | "$HERE") die "refusing to delete '$STATE_DIR'" ;;
  esac
  rm -rf "$STATE_DIR"
  if [[ "$SOCK_DIR" != "$STATE_DIR" ]]; then rm -rf "$SOCK_DIR"; fi
  say "deleted $STATE_DIR"
}

cmd_psql() {
  local psql
  psql="$(command -v psql || true)"
  if [[ -z "$psql" ]]; then
    BIN="$(find_bin_dir)" || die "psql not found"
    psql="$BIN/psql"
  fi
  exec "$psql" -X "$URL" "$@"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    url) printf '%s\n' "$URL" ;;
    psql) cmd_psql "$@" ;;
    logs) tail -n "${1:-60}" "$LOG_FILE" ;;
    *)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
      exit 2 ;;
  esac
}

main "$@"
