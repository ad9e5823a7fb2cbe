#!/usr/bin/env bash
# Runs every test: unit and golden tests, integration tests against a real PostgreSQL
# (DATABASE_URL, or a private cluster the tests start), HTTP tests, and the Playwright browser
# tests against a real `pipewatch demo`. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/build-site.sh
cargo build -p pipewatch --bin pipewatch

echo "== format and lints =="
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo tests =="
cargo nextest run --workspace --no-fail-fast
cargo test --workspace --doc -q

echo "== fuzz targets compile (stable; running them needs nightly: scripts/fuzz.sh) =="
# fuzz/ is its own workspace, so nothing above builds it; checking it here keeps the targets
# from rotting when the decoders they call change. Incremental in the shared target dir.
cargo check --manifest-path fuzz/Cargo.toml --bins

echo "== browser tests =="
scripts/e2e.sh
