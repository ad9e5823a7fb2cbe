#!/usr/bin/env bash
# pipewatch's own CPU per ingested sample and its durable ingest rate, for two or more
# pipewatch binaries in alternating runs on the same machine (issue 10, BENCHMARKS.md
# "Issue 10: ingest CPU per sample").
#
# For each repetition, protocol (remote_write, OTLP/HTTP protobuf) and binary, in an order that
# alternates between repetitions: a fresh database on a private PostgreSQL cluster, a fresh
# pipewatch, one ingest-load run, then a wait until pipewatch's
# pipewatch_ingest_samples_written_total has caught up with everything it queued. Reported per
# run, as one JSON line:
#   cpu_s          pipewatch's utime+stime from before the first request until durable
#   us_per_sample  cpu_s / samples accepted, in microseconds
#   durable_s      ingest-load's wall time plus the time from its exit until durable
#   durable_rate   samples accepted / durable_s
# Only the pipewatch process is counted (PostgreSQL's CPU is not in it).
#
# Usage: IL=<ingest-load binary> bash scripts/ingest-cpu.sh REPS NAME=BINARY [NAME=BINARY ...]
# Env:   SERIES=10000 SAMPLES=100 BATCH=500 CONC=4  (ingest-load's workload flags)
#        PROTOCOLS="rw otlp"  PGBIN=<PostgreSQL bin dir>  PORT_PG=15577
#        PERF=<dir>: record `perf record -F 499 -g` of every run into <dir>/<name>-<proto>-<rep>.data
#        PERF_ARGS="--call-graph dwarf -F 199": other perf record options (dwarf call graphs:
#                  the release build has no frame pointers)
set -euo pipefail
REPS=${1:?usage: ingest-cpu.sh REPS NAME=BINARY [NAME=BINARY ...]}
shift
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || { echo "name at least one NAME=BINARY" >&2; exit 1; }
: "${IL:?set IL to the ingest-load binary (built as the README of ingest-load says)}"
SERIES=${SERIES:-10000} SAMPLES=${SAMPLES:-100} BATCH=${BATCH:-500} CONC=${CONC:-4}
PROTOCOLS=${PROTOCOLS:-"rw otlp"}
PGBIN=${PGBIN:-$(pg_config --bindir)}
PORT_PG=${PORT_PG:-15577}
PERF=${PERF:-}
WORK=$(mktemp -d -t pw-ingest-cpu.XXXXXX)
chmod 755 "$WORK"
TICK=$(getconf CLK_TCK)
PID=""

# PostgreSQL refuses to run as root; the Debian package's user runs it then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop() {  # the one process we started: TERM, then KILL after 30 s
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
finish() {
  stop "$PID"
  [ -f "$WORK/pg/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null
  rm -rf "$WORK"
}
trap finish EXIT
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
psql_pg() { psql -X -q -At -h 127.0.0.1 -p "$PORT_PG" -U postgres "$@"; }
counters() {  # $1 = port: "enqueued written queue_depth" from /metrics; fails when it lacks them
  curl -sf "http://127.0.0.1:$1/metrics" | awk '
    $1 == "pipewatch_ingest_samples_enqueued_total" {e = $2; n++}
    $1 == "pipewatch_ingest_samples_written_total" {w = $2; n++}
    $1 == "pipewatch_ingest_queue_depth_samples" {d = $2; n++}
    END {print e + 0, w + 0, d + 0; exit n != 3}'
}
wait_up() {
  for _ in $(seq 400); do curl -sf "$1" >/dev/null && return 0; sleep 0.25; done
  echo "not up: $1" >&2; return 1
}

mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/pg" "$WORK"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres -A trust -E UTF8 --no-locale >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w \
  -o "-p $PORT_PG -k $WORK -c listen_addresses=127.0.0.1" start >/dev/null

run() {  # $1 = name, $2 = binary, $3 = rw|otlp, $4 = repetition
  local db="pw_$1_$3_$4" port
  psql_pg -c "CREATE DATABASE $db" >/dev/null
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf "$WORK/data" && mkdir -p "$WORK/data"
  # /metrics needs the viewer role unless anonymous users have it.
  PIPEWATCH_AUTH__ANONYMOUS_ROLE=viewer \
  DATABASE_URL="postgres://postgres@127.0.0.1:$PORT_PG/$db" PIPEWATCH_SERVER__LISTEN="127.0.0.1:$port" \
    PIPEWATCH_SERVER__DATA_DIR="$WORK/data" PIPEWATCH_RECEIVERS__OTLP_GRPC_LISTEN="" \
    "$2" serve >"$WORK/pw.log" 2>&1 &
  PID=$!
  wait_up "http://127.0.0.1:$port/readyz"
  local url="http://127.0.0.1:$port/api/v1/write" args=()
  [ "$3" = otlp ] && url="http://127.0.0.1:$port/v1/metrics" args=(--protocol otlp)
  local perf_pid=""
  if [ -n "$PERF" ]; then
    mkdir -p "$PERF"
    perf record ${PERF_ARGS:--F 499 -g} -p "$PID" -o "$PERF/$1-$3-$4.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
  fi
  local c0 res t_exit t_durable
  c0=$(ticks "$PID")
  res=$("$IL" --json --series "$SERIES" --samples-per-series "$SAMPLES" --batch "$BATCH" \
    --concurrency "$CONC" "${args[@]}" --url "$url") || true
  t_exit=$(date +%s.%N)
  # Durable: the queue is empty and everything queued has been written.
  local e w d c
  for _ in $(seq 6000); do
    c=$(counters "$port") ||
      { echo "pipewatch's /metrics lacks the ingest counters: $(tail -3 "$WORK/pw.log")" >&2; exit 1; }
    read -r e w d <<<"$c"
    if [ "$d" = 0 ] && awk "BEGIN{exit !($w >= $e && $e > 0)}"; then break; fi
    sleep 0.05
  done
  t_durable=$(date +%s.%N)
  local c1; c1=$(ticks "$PID")
  [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
  stop "$PID"; PID=""
  psql_pg -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
  python3 - "$1" "$3" "$4" "$c0" "$c1" "$TICK" "$t_exit" "$t_durable" "$res" <<'PY'
import json, sys
name, proto, rep, c0, c1, tick, t_exit, t_durable, res = sys.argv[1:]
r = json.loads(res or "{}")
accepted = r.get("samples_accepted", 0)
cpu = (float(c1) - float(c0)) / float(tick)
durable = r.get("wall_s", 0) + float(t_durable) - float(t_exit)
print(json.dumps({
    "binary": name, "protocol": proto, "rep": int(rep), "accepted": accepted,
    "cpu_s": round(cpu, 2), "us_per_sample": round(cpu * 1e6 / max(accepted, 1), 2),
    "durable_s": round(durable, 2), "durable_rate": round(accepted / max(durable, 1e-9)),
    "ack_rate": round(r.get("samples_per_s", 0)), "loadavg": open("/proc/loadavg").read().split()[0],
}), flush=True)
PY
}

for rep in $(seq "$REPS"); do
  for proto in $PROTOCOLS; do
    # Alternate which binary goes first, so drift in the machine's load hits both alike.
    order=("${BINS[@]}")
    if [ $((rep % 2)) = 0 ]; then
      order=(); for ((i = ${#BINS[@]} - 1; i >= 0; i--)); do order+=("${BINS[$i]}"); done
    fi
    for nb in "${order[@]}"; do
      run "${nb%%=*}" "${nb#*=}" "$proto" "$rep"
    done
  done
done
