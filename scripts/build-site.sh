#!/usr/bin/env bash
# Builds the browser half of the web app into <site>/pkg: pipewatch.js, pipewatch_bg.wasm and
# pipewatch.css, which the server serves under /pkg.
#
#   scripts/build-site.sh [--release]
#
# <site> is target/site in the workspace root unless PIPEWATCH_SITE_ROOT says otherwise.
#
# This does by hand what cargo-leptos does for a build. We do not use cargo-leptos: installing it
# costs 15-40 minutes on a 2-core machine (and its lockfile needs a newer rustc than ours), while
# the steps below need only wasm-bindgen-cli (~3 min to install) and binaryen from npm (seconds).
# Every install step is skipped when the right tool is already there, so re-running is cheap.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

release=0
for arg in "$@"; do
    case "$arg" in
        --release) release=1 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "build-site.sh: unknown argument '$arg'; the only option is --release" >&2; exit 2 ;;
    esac
done

# Must equal the wasm-bindgen pinned in the root Cargo.toml: the CLI refuses bundles made by
# another version.
wbg_version="0.2.130"
site="${PIPEWATCH_SITE_ROOT:-$root/target/site}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "==> installing the wasm32-unknown-unknown Rust target"
    rustup target add wasm32-unknown-unknown
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg_version\$\| $wbg_version "; then
    echo "==> installing wasm-bindgen-cli $wbg_version (about 3 minutes)"
    # Not --locked: its lockfile pins a webpki-roots version the index no longer has.
    cargo install wasm-bindgen-cli --version "$wbg_version"
fi

wasm_opt=""
if [ "$release" = 1 ]; then
    # binaryen from npm, not Debian's binaryen 108, whose wasm-opt breaks hydration
    # (WebAssembly.Table.set(): Argument 1 is invalid for table).
    # Under target/ so it is ignored by git and goes with `cargo clean`; reinstalling takes seconds.
    tools="$root/target/tools"
    wasm_opt="$tools/node_modules/.bin/wasm-opt"
    if [ ! -x "$wasm_opt" ]; then
        echo "==> installing wasm-opt (npm binaryen) into target/tools/"
        mkdir -p "$tools"
        [ -f "$tools/package.json" ] || echo '{ "private": true }' > "$tools/package.json"
        npm install --prefix "$tools" --no-audit --no-fund binaryen@132.0.0
    fi
fi

if [ "$release" = 1 ]; then
    profile_flag=(--profile wasm-release)
    profile_dir="wasm-release"
else
    profile_flag=()
    profile_dir="debug"
fi

echo "==> compiling the app for the browser (${profile_dir})"
cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate "${profile_flag[@]}"
wasm="$target_dir/wasm32-unknown-unknown/$profile_dir/app.wasm"
[ -f "$wasm" ] || { echo "build-site.sh: expected $wasm after the build, but it is not there" >&2; exit 1; }

mkdir -p "$site/pkg"
echo "==> wasm-bindgen -> $site/pkg"
wasm-bindgen --target web --out-dir "$site/pkg" --out-name pipewatch "$wasm"

if [ "$release" = 1 ]; then
    echo "==> wasm-opt -Oz"
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue \
        -o "$site/pkg/pipewatch_bg.wasm.opt" "$site/pkg/pipewatch_bg.wasm"
    mv "$site/pkg/pipewatch_bg.wasm.opt" "$site/pkg/pipewatch_bg.wasm"
fi

cp "$root/style/main.css" "$site/pkg/pipewatch.css"
echo "==> site ready in $site ($(du -k "$site/pkg/pipewatch_bg.wasm" | cut -f1) KiB wasm)"
