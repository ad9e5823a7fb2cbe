#!/usr/bin/env bash
# Fuzzes every decoder that reads untrusted bytes with cargo-fuzz (libFuzzer), each target for
# SECONDS (default 300), seeded from the test fixtures. Prints executions per target and
# leaves any crashing input in fuzz/artifacts/<target>/ (copy it to
# collectors/tests/fixtures/fuzz/<target>/ so it becomes a regression test).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]; FUZZ_JOBS=1 (default) runs one libFuzzer job.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true

say() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

# Seeds per target: fixture files whose format the target reads.
seeds() {
  case "$1" in
    prometheus_text) ls collectors/tests/fixtures/prometheus/*.txt ;;
    remote_write) find collectors/tests/fixtures/remote_write -name '*.bin' ;;
    otlp_protobuf) find collectors/tests/fixtures/otlp -name '*.pb' ;;
    otlp_json) find collectors/tests/fixtures/otlp -name '*.json' ! -name '*.expected.json' ! -name '*.headers.json' ;;
    dq) find collectors/tests/fixtures/dq -name '*.json' ! -name expected.json ;;
    openlineage) find collectors/tests/fixtures/openlineage -name '*.json' 2>/dev/null || true ;;
    alerts) find collectors/tests/fixtures/alertmanager -name '*.json' 2>/dev/null || true ;;
  esac
}

# Targets whose seeds are lines of the PromQL corpus rather than files: one seed file per line
# (query_params: the line with a start, end and step after it, as the query API gets them).
line_seeds() {
  local t="$1" i=0
  case "$t" in selectors|query_params|promql_eval) ;; *) return ;; esac
  grep -v '^#' tests/fixtures/promql/corpus.promql | grep -v '^\s*$' | head -200 | while IFS= read -r q; do
    i=$((i + 1))
    if [ "$t" = query_params ]; then
      printf '%s\n%s\n%s\n%s' "$q" 0 600 15s >"fuzz/corpus/$t/seed-$i"
    else
      printf '%s' "$q" >"fuzz/corpus/$t/seed-$i"
    fi
  done
}

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list); fi
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  for f in $(seeds "$t"); do cp -n "$f" "fuzz/corpus/$t/" 2>/dev/null || true; done
  line_seeds "$t"
  say "$t: ${secs}s, $(ls "fuzz/corpus/$t" | wc -l) corpus files"
  rm -f fuzz/fuzz-*.log
  (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
      -jobs="${FUZZ_JOBS:-1}" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1) \
      >"fuzz/logs/$t.log" 2>&1 && status=ok || status="FAILED (see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
  # With -jobs, libFuzzer's worker writes its own log (fuzz-<n>.log) in the working directory.
  cat fuzz/fuzz-*.log >>"fuzz/logs/$t.log" 2>/dev/null || true
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  say "$t: $status, $execs executions, corpus now $(ls "fuzz/corpus/$t" | wc -l) files"
done
