#!/usr/bin/env bash
# Starts two `pipewatch demo` instances on free ports with throw-away data dirs, runs the
# Playwright tests in end2end/ against them, and stops them. Assumes build-site.sh and the server
# build have run.
#   PIPEWATCH_URL        the demo as a new user starts it (no fault)
#   PIPEWATCH_FAULT_URL  a demo with an injected fault (a stall at `transform`) and short
#                        analysis/alerting intervals, for the tests that watch a real fault being
#                        detected, alerted and acknowledged (end2end/tests/*fault*.spec.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/debug/pipewatch"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The first admin, for the tests that log in (end2end/tests/auth.spec.ts).
export PIPEWATCH_ADMIN_USER="e2e-admin"
PIPEWATCH_ADMIN_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
export PIPEWATCH_ADMIN_PASSWORD

pids=()
dirs=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "${dirs[@]}"; do rm -rf "$d" 2>/dev/null || true; done
}
trap cleanup EXIT

# start_demo VAR -- [env assignments...] -- [demo args...]: starts a demo, waits until it is
# ready and sets VAR_URL, VAR_DATA and VAR_LOG.
start_demo() {
  local var="$1"; shift
  local data port grpc log
  data="$(mktemp -d)"
  # Traversable, so that when run as root the embedded cluster's `postgres` user keeps its files
  # in "$data/postgres" (where the database URL below is read from) instead of under /var/tmp.
  chmod 755 "$data"
  port="$(free_port)"
  grpc="$(free_port)"
  log="$data/pipewatch.log"
  local envs=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift
  env PIPEWATCH_SERVER__LISTEN="127.0.0.1:$port" PIPEWATCH_SERVER__DATA_DIR="$data" \
    PIPEWATCH_RECEIVERS__OTLP_GRPC_LISTEN="127.0.0.1:$grpc" \
    PIPEWATCH_SERVER__SITE_ROOT="${PIPEWATCH_SITE_ROOT:-$PWD/target/site}" \
    "${envs[@]}" "$bin" demo "$@" >"$log" 2>&1 &
  pids+=("$!")
  dirs+=("$data")
  local pid="$!"
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then echo "pipewatch ($var) exited early:"; cat "$log"; exit 1; fi
    sleep 0.5
  done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "pipewatch ($var) not ready:"; tail -50 "$log"; exit 1; }
  printf -v "${var}_URL" '%s' "http://127.0.0.1:$port"
  printf -v "${var}_DATA" '%s' "$data"
  printf -v "${var}_LOG" '%s' "$log"
}

start_demo MAIN --
# The fault starts 20 s after start-up, so the tests also see the time before it, and ends
# 200 s later: StageStalled (rate over 1m == 0, for 30s) fires about 2 min after start-up,
# which leaves the on-call journey (end2end/tests/oncall-fault.spec.ts) over a minute to
# acknowledge and silence it before the stage recovers and the alert resolves (~4 min).
start_demo FAULT \
  PIPEWATCH_ANALYSIS__INTERVAL=15s \
  PIPEWATCH_ALERTING__EVALUATION_INTERVAL=10s \
  PIPEWATCH_ALERTING__GROUP_WAIT=5s \
  PIPEWATCH_ALERTING__GROUP_INTERVAL=30s \
  -- --inject stall --at transform --after 20s --for 200s
# Let a few scrapes land so the charts have live points.
sleep 12
# The analysis pages' tests seed anomaly and drift rows into the demo's own database.
PIPEWATCH_DATABASE_URL="postgres://pipewatch:$(cat "$MAIN_DATA/postgres/password")@127.0.0.1:$(cat "$MAIN_DATA/postgres/port")/pipewatch"
export PIPEWATCH_DATABASE_URL
cd end2end
export PIPEWATCH_URL="$MAIN_URL" PIPEWATCH_FAULT_URL="$FAULT_URL"
# The on-call journey follows the fault's clock (it must act while the alert fires), so it
# runs beside the other tests instead of after them; everything else runs in file order.
npx playwright test tests/oncall-fault.spec.ts --output ../target/e2e-oncall-results >"$FAULT_DATA/oncall-e2e.log" 2>&1 &
oncall=$!
pids+=("$oncall")
status=0
others=()
for f in tests/*.spec.ts; do [ "$f" = tests/oncall-fault.spec.ts ] || others+=("$f"); done
npx playwright test "${others[@]}" || status=1
wait "$oncall" || status=1
echo "--- on-call journey (tests/oncall-fault.spec.ts) ---"; cat "$FAULT_DATA/oncall-e2e.log"
if [ "$status" -ne 0 ]; then
  echo "--- pipewatch log ---"; tail -80 "$MAIN_LOG"
  echo "--- pipewatch (fault) log ---"; tail -80 "$FAULT_LOG"
  exit 1
fi
