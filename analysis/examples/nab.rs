//! Fast tuning loop for the NAB harness: the same `analysis::nab` functions as
//! `pipewatch nab`, without building the whole command line.
//!
//! `cargo run -p analysis --release --example nab -- <data dir> <out dir>`

use std::path::{Path, PathBuf};

fn csv_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            csv_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "csv") {
            out.push(p);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, data, out] = &args[..] else {
        return Err("usage: nab <data dir> <out dir>".into());
    };
    let (data, out) = (Path::new(data), Path::new(out));
    let mut files = Vec::new();
    csv_files(data, &mut files)?;
    files.sort();
    for f in &files {
        let rel = f.strip_prefix(data)?;
        let text = std::fs::read_to_string(f)?;
        let result = analysis::nab::score_file(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        let dest = out.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap_or(out))?;
        std::fs::write(dest, result)?;
    }
    eprintln!("{} files", files.len());
    Ok(())
}
