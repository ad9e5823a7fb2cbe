#!/usr/bin/env bash
# Starts `pipewatch demo` on a free port with a throw-away data dir, runs the Playwright tests
# in end2end/ against it, and stops it. Assumes build-site.sh and the server build have run.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/debug/pipewatch"
data="$(mktemp -d)"
# Traversable, so that when run as root the embedded cluster's `postgres` user keeps its files
# in "$data/postgres" (where the database URL below is read from) instead of under /var/tmp.
chmod 755 "$data"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$data/pipewatch.log"
# The first admin, for the tests that log in (end2end/tests/auth.spec.ts).
export PIPEWATCH_ADMIN_USER="e2e-admin"
PIPEWATCH_ADMIN_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
export PIPEWATCH_ADMIN_PASSWORD
PIPEWATCH_SERVER__LISTEN="127.0.0.1:$port" PIPEWATCH_SERVER__DATA_DIR="$data" \
  PIPEWATCH_SERVER__SITE_ROOT="${PIPEWATCH_SITE_ROOT:-$PWD/target/site}" \
  "$bin" demo >"$log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "pipewatch exited early:"; cat "$log"; exit 1; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "pipewatch not ready:"; tail -50 "$log"; exit 1; }
# Let a few scrapes land so the charts have live points.
sleep 12
# The analysis pages' tests seed anomaly and drift rows into the demo's own database.
PIPEWATCH_DATABASE_URL="postgres://pipewatch:$(cat "$data/postgres/password")@127.0.0.1:$(cat "$data/postgres/port")/pipewatch"
export PIPEWATCH_DATABASE_URL
cd end2end
PIPEWATCH_URL="http://127.0.0.1:$port" npx playwright test || { echo "--- pipewatch log ---"; tail -80 "$log"; exit 1; }
