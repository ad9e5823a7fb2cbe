//! `pipewatch nab`: runs the detectors over every NAB data file under a folder and writes a NAB
//! results folder (`<out>/<category>/<file>.csv`, columns `timestamp,anomaly_score`) that NAB's
//! scorer reads. All parsing, scoring and writing is `analysis::nab`; this only walks folders.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Every `.csv` under `dir`, sorted so runs are reproducible.
fn csv_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading folder {}", d.display()))? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "csv") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Scores every data file under `data` into the same relative path under `out`; returns how
/// many files and rows were written.
pub fn run(data: &Path, out: &Path) -> Result<(usize, usize)> {
    let files = csv_files(data)?;
    anyhow::ensure!(
        !files.is_empty(),
        "no .csv files under {}: point --data at NAB's data/ folder",
        data.display()
    );
    let mut rows = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let result = analysis::nab::score_file(&text).with_context(|| format!("{}", f.display()))?;
        rows += result.lines().count() - 1;
        let dest = out.join(f.strip_prefix(data)?);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&dest, result).with_context(|| format!("writing {}", dest.display()))?;
    }
    Ok((files.len(), rows))
}
