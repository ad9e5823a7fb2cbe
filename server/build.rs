//! Compiles the browser bundle (`<site>/pkg/`: `pipewatch.js`, `pipewatch_bg.wasm`,
//! `pipewatch.css`, as written by `scripts/build-site.sh`) into the binary, so `pipewatch`
//! serves its web app from any working directory and can be copied alone.
//!
//! `<site>` is `PIPEWATCH_SITE_ROOT` when set (the variable build-site.sh writes to), else
//! `target/site` in the workspace. Without a bundle the build still succeeds: the binary then
//! says at start how to get one. Rebuilding the site makes the next `cargo build` embed it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a working web app needs; other files in `pkg/` (wasm-bindgen snippets) come along.
const REQUIRED: &[&str] = &["pipewatch.js", "pipewatch_bg.wasm", "pipewatch.css"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PIPEWATCH_SITE_ROOT");
    // web.rs includes the generated file only under this cfg: the app crate compiles web.rs
    // too (page tests, preview), without a build script.
    println!("cargo::rustc-check-cfg=cfg(pipewatch_bundle)");
    println!("cargo:rustc-cfg=pipewatch_bundle");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let site = match std::env::var("PIPEWATCH_SITE_ROOT") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => manifest.join("..").join("target").join("site"),
    };
    let pkg = site.join("pkg");
    // Cargo re-runs a build script on every build while a watched path is missing, which
    // would recompile this crate each time for everyone without a bundle. An empty folder
    // where build-site.sh will write can be watched instead (target/ is git-ignored).
    let _ = std::fs::create_dir_all(&pkg);
    // A watched folder is scanned for changed files: a rebuilt site re-runs this script.
    println!("cargo:rerun-if-changed={}", pkg.display());

    let mut files = Vec::new();
    collect(&pkg, &pkg, &mut files);
    files.sort();
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| !files.iter().any(|(rel, _)| rel == f))
        .collect();

    let mut out = String::new();
    if missing.is_empty() {
        out.push_str("/// The browser bundle compiled in: (path under `/pkg/`, contents).\n");
        out.push_str("pub const BUNDLE: Option<&[(&str, &[u8])]> = Some(&[\n");
        for (rel, abs) in &files {
            let _ = writeln!(
                out,
                "    ({rel:?}, include_bytes!({:?}) as &[u8]),",
                abs.display().to_string()
            );
        }
        out.push_str("]);\n");
    } else {
        println!(
            "cargo:warning=no browser bundle in {} (missing {}): this pipewatch binary will serve pages without charts; run scripts/build-site.sh, then build again",
            pkg.display(),
            missing.join(", ")
        );
        out.push_str("/// No bundle was found when this binary was built.\n");
        out.push_str("pub const BUNDLE: Option<&[(&str, &[u8])]> = None;\n");
    }
    let _ = writeln!(
        out,
        "/// Where the build looked for the bundle.\npub const BUNDLE_SOURCE: &str = {:?};",
        pkg.display().to_string()
    );
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("site_bundle.rs");
    std::fs::write(&dest, out).expect("write site_bundle.rs");
}

/// Every file under `dir` as (path relative to `root` with `/`, absolute path).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let abs = std::fs::canonicalize(&path).unwrap_or(path);
            out.push((rel, abs));
        }
    }
}
