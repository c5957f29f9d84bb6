#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, postgres) are on this
# machine, for the outbox and inbox tests: they start a throwaway cluster
# themselves (eventstest.NewPostgres), so nothing needs to run beforehand.
# Installs Debian's package when they are missing. With $PG_URL set (tests
# use that server instead) or $PG_BIN pointing at the binaries, it does
# nothing.
set -euo pipefail

have_postgres() {
  [ -n "${PG_URL:-}" ] && return 0
  [ -n "${PG_BIN:-}" ] && [ -x "${PG_BIN}/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null 2>&1 && return 0
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  return 1
}

if have_postgres; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-postgres: no PostgreSQL server binaries and no apt-get: install PostgreSQL (15 or later), or set PG_URL to a server, or PG_BIN to its bin directory" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
echo "ensure-postgres: installing PostgreSQL (Debian package) for the outbox and inbox tests" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq postgresql-15 >/dev/null || $sudo apt-get install -y -qq postgresql >/dev/null
if ! have_postgres; then
  echo "ensure-postgres: the postgresql package installed no initdb under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
