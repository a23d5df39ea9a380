#!/usr/bin/env bash
# pg-tmp.sh COMMAND [ARGS...]
#
# Runs COMMAND with DATABASE_URL pointing at a PostgreSQL server.
#   - DATABASE_URL already set: runs COMMAND against it, nothing else.
#   - Otherwise: finds the local PostgreSQL server binaries (initdb, pg_ctl: in
#     /usr/lib/postgresql/*/bin or on PATH; when they are missing, scripts/pg-install.sh installs
#     them if it can, as root or with passwordless sudo, or says what to run and we stop),
#     starts a private throwaway cluster in a temp dir on a free loopback port (as a non-root
#     user when run as root: PostgreSQL refuses to run as root),
#     exports DATABASE_URL (and BILLING_PG_RESTART, a script that crash-restarts the server),
#     runs COMMAND, and always stops the server and removes the temp dir, also when COMMAND
#     fails or the script is interrupted.
# The throwaway server runs with fsync, synchronous_commit and full_page_writes off (tests
# and benchmarks need no durability); PG_TMP_DURABLE=1 leaves them on, as a production
# server runs (the benchmarks "fsync on").
# Exit status: COMMAND's.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

if [ -n "${DATABASE_URL:-}" ]; then
  exec "$@"
fi

# find_bin NAME: the path of a PostgreSQL server binary, newest version first (the same search as
# pg-install.sh's; BILLING_PG_BINDIRS, a shell glob, replaces the Debian folders).
find_bin() {
  local name=$1 dir
  for dir in $(ls -d ${BILLING_PG_BINDIRS:-/usr/lib/postgresql/*/bin} 2>/dev/null | sort -V -r); do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
  done
  command -v "$name" 2>/dev/null && return 0
  return 1
}

if ! INITDB=$(find_bin initdb) || ! PG_CTL=$(find_bin pg_ctl); then
  # Installs the server when it can, or prints what to run (apt-get, or DATABASE_URL).
  "$(dirname "$0")/pg-install.sh" || { echo "pg-tmp.sh: no PostgreSQL server; stopping" >&2; exit 1; }
  INITDB=$(find_bin initdb) && PG_CTL=$(find_bin pg_ctl) || {
    echo "pg-tmp.sh: initdb and pg_ctl still not found after pg-install.sh" >&2; exit 1; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/billing-pg.XXXXXX")
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then
  PGUSER_OS=postgres
  getent passwd postgres >/dev/null || PGUSER_OS=nobody
  chown "$PGUSER_OS" "$TMP"
  if ! command -v runuser >/dev/null; then
    echo "pg-tmp.sh: running as root needs runuser (package util-linux) to start PostgreSQL as $PGUSER_OS" >&2
    rm -rf "$TMP"; exit 1
  fi
  RUN_AS=(runuser -u "$PGUSER_OS" --)
fi

started=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ "$started" -eq 1 ]; then
    "${RUN_AS[@]}" "$PG_CTL" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
  exit "$rc"
}
child=""
# On a signal, stop the command too (it may not share our process group, e.g. under
# make or CI), then clean up through the EXIT trap.
on_signal() {
  local code=$1
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  exit "$code"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

"${RUN_AS[@]}" "$INITDB" -D "$TMP/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$TMP/initdb.log" 2>&1 || {
  echo "pg-tmp.sh: initdb failed:" >&2; cat "$TMP/initdb.log" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for attempt in 1 2 3 4 5 6 7 8 9 10; do
  PORT=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
  port_free "$PORT" || continue
  PG_OPTS="-p $PORT -k $TMP -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB"
  if [ "${PG_TMP_DURABLE:-}" != 1 ]; then
    PG_OPTS="$PG_OPTS -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  if "${RUN_AS[@]}" "$PG_CTL" -D "$TMP/data" -l "$TMP/server.log" -w -t 60 -o "$PG_OPTS" start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [ "$started" -ne 1 ]; then
  echo "pg-tmp.sh: could not start PostgreSQL; server log:" >&2
  cat "$TMP/server.log" >&2 2>/dev/null || true
  exit 1
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
# A crash-restart of this server (immediate stop, no checkpoint, then start with the same options
# and log) for tests that check the engine survives one (internal/crashtest).
{
  echo '#!/usr/bin/env bash'
  printf 'exec'; [ "${#RUN_AS[@]}" -eq 0 ] || printf ' %q' "${RUN_AS[@]}"
  printf ' %q -D %q -l %q -m immediate -w -t 60 -o %q restart\n' "$PG_CTL" "$TMP/data" "$TMP/server.log" "$PG_OPTS"
} >"$TMP/restart.sh"
chmod +x "$TMP/restart.sh"
export BILLING_PG_RESTART="$TMP/restart.sh"
echo "pg-tmp.sh: throwaway PostgreSQL on 127.0.0.1:$PORT (removed on exit)" >&2
# The command runs in the background so that a signal reaches our traps at once instead of
# after the command ends; `wait` returns its exit status.
set +e
"$@" &
child=$!
wait "$child"
rc=$?
child=""
set -e
exit "$rc"
