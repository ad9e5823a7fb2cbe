#!/usr/bin/env bash
# One command to see pipewatch: installs what is missing, builds, and runs `pipewatch demo`
# (embedded PostgreSQL under ./pipewatch-data, a simulated pipeline, a day of history).
# Extra arguments go to pipewatch, e.g. scripts/demo.sh --no-backfill
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-site.sh --release
cargo build --release -p pipewatch --bin pipewatch
bin="${CARGO_TARGET_DIR:-target}/release/pipewatch"
exec "$bin" demo "$@"
