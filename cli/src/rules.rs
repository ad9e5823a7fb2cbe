//! `pipewatch rules lint` and `pipewatch rules test`: the file reading, globbing and printing
//! around the pure `alerting` crate, with promtool's output layout and exit codes (1 when a
//! file is invalid or a test fails).

use alerting::unittest::{self, RuleSource};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Check rule files (Prometheus format, with pipewatch's `pipewatch:` rule kinds) as
    /// `promtool check rules` does; errors name file:line:column.
    Lint {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run rule unit-test files in `promtool test rules` format.
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs the command; the result is the process exit code.
pub fn run(cmd: &RulesCommand) -> i32 {
    match cmd {
        RulesCommand::Lint { files } => lint(files),
        RulesCommand::Test { files } => test(files),
    }
}

fn lint(files: &[PathBuf]) -> i32 {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("  FAILED:\n{}: {e}", f.display());
                failed = true;
                println!();
                continue;
            }
        };
        let parsed = alerting::parse(&text);
        if parsed.is_valid() {
            for d in &parsed.diagnostics {
                eprintln!("{}: {d}", f.display());
            }
            println!("  SUCCESS: {} rules found", parsed.rule_count());
            if let Some(file) = &parsed.file {
                for g in &file.groups {
                    for r in &g.rules {
                        if let Some(k) = r.pipewatch.as_ref().filter(|k| !k.is_evaluated()) {
                            // The server evaluates anomaly rules from the anomalies table;
                            // `rules test` has no such table, and dq_check / drift rules are
                            // not evaluated anywhere yet.
                            let what = match k {
                                alerting::rulefile::PipewatchKind::Anomaly { .. } => {
                                    "evaluated by the server from open anomalies (`pipewatch rules test` cannot replay it)"
                                }
                                _ => "not evaluated yet",
                            };
                            println!(
                                "  note: rule {:?} (group {:?}): kind {}: {what}",
                                r.name,
                                g.name,
                                k.name()
                            );
                        }
                    }
                }
            }
        } else {
            eprintln!("  FAILED:");
            for d in &parsed.diagnostics {
                eprintln!("{}: {d}", f.display());
            }
            failed = true;
        }
        println!();
    }
    i32::from(failed)
}

/// The rule files a test file names: relative to the test file, globs expanded, in order.
fn rule_sources(test_file: &Path, patterns: &[String]) -> Result<Vec<RuleSource>, String> {
    let base = test_file.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for p in patterns {
        let full = if p.is_empty() || Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        let pattern = full.to_string_lossy().into_owned();
        let matches: Vec<PathBuf> = glob::glob(&pattern)
            .map_err(|e| format!("{pattern}: {e}"))?
            .filter_map(Result::ok)
            .collect();
        if matches.is_empty() {
            eprintln!("  WARNING: no file match pattern {pattern}");
        }
        for m in matches {
            let text = std::fs::read_to_string(&m).map_err(|e| format!("{}: {e}", m.display()))?;
            out.push(RuleSource {
                name: m.display().to_string(),
                text,
            });
        }
    }
    Ok(out)
}

fn test(files: &[PathBuf]) -> i32 {
    let mut failed = false;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        let errors = match test_file(f) {
            Ok(outcomes) => outcomes.into_iter().flat_map(|o| o.errors).collect(),
            Err(e) => vec![e],
        };
        if errors.is_empty() {
            println!("  SUCCESS");
        } else {
            eprintln!("  FAILED:");
            for e in errors {
                eprintln!("{e}");
                println!();
            }
            failed = true;
        }
        println!();
    }
    i32::from(failed)
}

fn test_file(f: &Path) -> Result<Vec<unittest::GroupOutcome>, String> {
    let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
    let parsed = unittest::parse_test_file(&text).map_err(|e| format!("{}: {e}", f.display()))?;
    let sources = rule_sources(f, &parsed.rule_files)?;
    Ok(unittest::run(&parsed, &sources))
}
