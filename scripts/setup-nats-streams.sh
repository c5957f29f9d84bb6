#!/usr/bin/env bash
# Creates or updates the streams and consumers declared in scripts/streams.yaml
# (AUTH_EVENTS on auth.>, the DLQ dead-letter stream on dlq.>, ...).
# Idempotent: run it as often as you like; it reports what it created, what it
# changed (field by field) and what was already as declared.
#
#   ./scripts/setup-nats-streams.sh [specs-file] [connection flags...]
#   NATS_URL=nats://host:4222 ./scripts/setup-nats-streams.sh
#   ./scripts/setup-nats-streams.sh scripts/streams.yaml -context prod
#   ./scripts/setup-nats-streams.sh scripts/streams.yaml -server tls://nats:4222 -creds app.creds -tlsca ca.pem
#
# It runs `jetevents streams apply`, which connects to -server, else $NATS_URL,
# else the nats CLI's selected context, else nats://127.0.0.1:4222 (see
# `jetevents streams apply -h` for -creds, -nkey, -user/-password, -token,
# -tlscert/-tlskey/-tlsca, -context). The binary is $JETEVENTS_BIN when set
# (an installed or prebuilt jetevents), else `go run ./cmd/jetevents`.
# No server yet? `go run ./cmd/jetevents server` starts one (or docker-compose up -d nats).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
spec="$root/scripts/streams.yaml"
if [[ $# -gt 0 && "$1" != -* ]]; then
	spec="$1"
	shift
fi
# A relative specs-file is relative to where the script was called from, not
# to the module root that `go run` needs.
case "$spec" in
/*) ;;
*) spec="$PWD/$spec" ;;
esac
if [[ -n "${JETEVENTS_BIN:-}" ]]; then
	exec "$JETEVENTS_BIN" streams apply -f "$spec" "$@"
fi
cd "$root"
exec go run ./cmd/jetevents streams apply -f "$spec" "$@"
