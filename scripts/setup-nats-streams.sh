#!/usr/bin/env bash
# Creates or updates the streams and consumers declared in scripts/streams.yaml
# (AUTH_EVENTS on auth.>, the DLQ dead-letter stream on dlq.>, ...).
# Idempotent: run it as often as you like; it reports what it created, what it
# changed (field by field) and what was already as declared.
#
#   NATS_URL=nats://host:4222 ./scripts/setup-nats-streams.sh [specs-file]
#
# It runs `jetevents streams apply`: the binary named by $JETEVENTS_BIN when
# set (an installed or prebuilt jetevents), else `go run ./cmd/jetevents`.
# No server yet? `go run ./cmd/jetevents server` starts one (or docker-compose up -d nats).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
spec="${1:-$root/scripts/streams.yaml}"
# A relative specs-file is relative to where the script was called from, not
# to the module root that `go run` needs.
case "$spec" in
/*) ;;
*) spec="$PWD/$spec" ;;
esac
server="${NATS_URL:-nats://127.0.0.1:4222}"
if [[ -n "${JETEVENTS_BIN:-}" ]]; then
	exec "$JETEVENTS_BIN" streams apply -server "$server" -f "$spec"
fi
cd "$root"
exec go run ./cmd/jetevents streams apply -server "$server" -f "$spec"
