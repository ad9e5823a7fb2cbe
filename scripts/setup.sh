#!/usr/bin/env bash
# Installs what pipewatch needs to build, run and test, skipping whatever is already present,
# so repeat runs take seconds. Usage: scripts/setup.sh [--test]   (--test adds the browser-test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "need root for: $*  (run it yourself, then re-run this script)" >&2; exit 1; fi; }
apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "please install these packages with your package manager: $*" >&2; exit 1
  fi
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

command -v cargo >/dev/null || { echo "Rust is required: install it from https://rustup.rs and re-run" >&2; exit 1; }

# PostgreSQL server binaries for the embedded database (any version >= 14).
pg_bin=""
if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_bin="$(pg_config --bindir)"; fi
if [ -z "$pg_bin" ]; then pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"; fi
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  say "installing PostgreSQL server binaries"
  apt_install postgresql
else
  say "PostgreSQL binaries: $pg_bin"
fi

# Browser bundle tools (wasm32 target, wasm-bindgen-cli, binaryen) are installed by build-site.sh.

if [ $want_test = 1 ]; then
  if ! command -v chromium >/dev/null; then
    say "installing Chromium for the browser tests"
    apt_install chromium
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  if ! command -v prometheus >/dev/null; then
    # The remote_write live test runs Debian's Prometheus (2.42) itself, on a temp dir and a
    # free loopback port; no node-exporter (a Recommends) and no system service are wanted.
    say "installing prometheus for the remote_write live test"
    apt_install --no-install-recommends prometheus
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
      # The package starts a service on :9090, pipewatch's default port.
      as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  fi
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    say "installing Playwright test runner (uses the system Chromium; no browser download)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
  # Python client libraries for the live-client tests (OpenTelemetry SDK, openlineage-python),
  # in a virtualenv that is rebuilt only when tests/python/requirements.txt changes.
  venv="${PIPEWATCH_VENV:-$HOME/.cache/pipewatch/venv}"
  python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
  if ! cmp -s tests/python/requirements.txt "$venv/.requirements.txt" 2>/dev/null; then
    say "installing Python test clients into $venv"
    python3 -m venv "$venv" || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
    cp tests/python/requirements.txt "$venv/.requirements.txt"
  fi
  if ! command -v cargo-nextest >/dev/null; then
    say "installing cargo-nextest"
    cargo install --locked cargo-nextest
  fi
fi
say "ok"
