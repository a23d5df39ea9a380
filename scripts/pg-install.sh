#!/usr/bin/env bash
# pg-install.sh: makes sure the PostgreSQL server binaries (initdb, pg_ctl) are on this machine,
# for scripts/pg-tmp.sh (make demo, make test) and .ci/run.
#   - Found (in /usr/lib/postgresql/*/bin, the Debian/Ubuntu place, or on PATH): exit 0, silent.
#   - Missing, on a machine with apt-get where we are root or sudo needs no password: installs the
#     Debian package `postgresql` (apt-get update, apt-get install -y postgresql), says so first,
#     and exits 0 once initdb and pg_ctl are found.
#   - Otherwise (or with BILLING_PG_INSTALL=no): prints exactly what to run instead and exits 1.
# Environment:
#   BILLING_PG_INSTALL=no  never install, only tell what to run
#   BILLING_PG_BINDIRS     where to look before PATH (a shell glob; default /usr/lib/postgresql/*/bin)
set -euo pipefail

# find_bin NAME: the path of a PostgreSQL server binary, newest version first. pg-tmp.sh has
# the same search.
find_bin() {
  local name=$1 dir
  for dir in $(ls -d ${BILLING_PG_BINDIRS:-/usr/lib/postgresql/*/bin} 2>/dev/null | sort -V -r); do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
  done
  command -v "$name" 2>/dev/null && return 0
  return 1
}
have_pg() { find_bin initdb >/dev/null && find_bin pg_ctl >/dev/null; }

have_pg && exit 0

SUDO=""
can_install=no
if command -v apt-get >/dev/null 2>&1 && [ "${BILLING_PG_INSTALL:-}" != no ]; then
  if [ "$(id -u)" -eq 0 ]; then
    can_install=yes
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    can_install=yes; SUDO="sudo"
  fi
fi

if [ "$can_install" = yes ]; then
  echo "pg-install.sh: the PostgreSQL server is not installed; installing it:" \
       "${SUDO:+$SUDO }apt-get update && ${SUDO:+$SUDO }apt-get install -y postgresql" \
       "(BILLING_PG_INSTALL=no to never do this)" >&2
  log=$(mktemp "${TMPDIR:-/tmp}/billing-pg-install.XXXXXX")
  trap 'rm -f "$log"' EXIT
  # The package's own start of a cluster on port 5432 may fail where no init system runs (a
  # container): pg-tmp.sh does not use that cluster, so only the binaries count.
  if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >"$log" 2>&1 ||
     ! have_pg; then
    echo "pg-install.sh: installing the PostgreSQL server failed; apt-get said:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  echo "pg-install.sh: installed $(dirname "$(find_bin initdb)")" >&2
  exit 0
fi

{
  echo "pg-install.sh: the PostgreSQL server (initdb, pg_ctl) is not installed: looked in" \
       "${BILLING_PG_BINDIRS:-/usr/lib/postgresql/*/bin} and on PATH."
  if command -v apt-get >/dev/null 2>&1; then
    if [ "${BILLING_PG_INSTALL:-}" = no ]; then
      echo "Not installing it, since BILLING_PG_INSTALL=no. Either install it:"
    else
      echo "It can't be installed from here (not root, and sudo is missing or asks for a password). Either install it:"
    fi
    echo "    sudo apt-get update && sudo apt-get install -y postgresql"
  else
    echo "Either install the PostgreSQL server so that initdb and pg_ctl are on PATH"
    echo "(this machine has no apt-get; e.g. Fedora: sudo dnf install postgresql-server, macOS: brew install postgresql),"
  fi
  echo "or set DATABASE_URL to a server where the tests may create databases, e.g."
  echo "    DATABASE_URL='postgres://USER:PASSWORD@HOST:5432/postgres?sslmode=disable' make test"
} >&2
exit 1
