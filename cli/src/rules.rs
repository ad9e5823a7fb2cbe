//! `pipewatch rules lint` and `pipewatch rules test`: the file reading, globbing and printing
//! around the pure `alerting` crate, with promtool's output layout and exit codes (1 when a
//! file is invalid or a test fails). `pipewatch rules backtest`: a rule file replayed over the
//! configured database's history (`server::lifecycle::backtest`), printed as a table or JSON.

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
    /// Replay a rule file over stored history and print when each rule would have fired and
    /// resolved (per label set). Reads the database of the configuration.
    Backtest {
        file: PathBuf,
        /// Start: RFC 3339 (2026-12-07T10:00:00Z), Unix seconds, `now` or `now-<duration>`.
        #[arg(long)]
        from: String,
        /// End, as --from.
        #[arg(long, default_value = "now")]
        to: String,
        /// Evaluation step, e.g. 30s; each group's own interval (else
        /// alerting.evaluation_interval) when left out.
        #[arg(long, value_parser = humantime::parse_duration)]
        step: Option<std::time::Duration>,
        /// Print JSON instead of a table (times as Unix milliseconds).
        #[arg(long)]
        json: bool,
    },
}

impl RulesCommand {
    /// Whether the command reads the database (and so the configuration).
    pub fn needs_database(&self) -> bool {
        matches!(self, RulesCommand::Backtest { .. })
    }
}

/// A time argument: RFC 3339, Unix seconds, `now` or `now-<duration>`, as Unix ms.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ms);
    }
    if let Some(d) = s.strip_prefix("now-") {
        let d =
            humantime::parse_duration(d).map_err(|e| format!("{s:?}: {e} (write e.g. now-24h)"))?;
        return Ok(now_ms - d.as_millis() as i64);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0).round() as i64);
    }
    humantime::parse_rfc3339_weak(s)
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
        .map_err(|e| {
            format!("{s:?}: {e} (write RFC 3339 like 2026-12-07T10:00:00Z, Unix seconds, now or now-24h)")
        })
}

fn fmt_time(ms: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
    )
    .to_string()
}

/// `pipewatch rules backtest`: the exit code is 1 when the file does not lint or the range
/// is refused.
pub async fn backtest(cfg: &server::config::Config, cmd: &RulesCommand) -> anyhow::Result<i32> {
    let RulesCommand::Backtest {
        file,
        from,
        to,
        step,
        json,
    } = cmd
    else {
        return Ok(run(cmd));
    };
    let now = model::clock::now_ms();
    let (from_ms, to_ms) = match (parse_time(from, now), parse_time(to, now)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) => {
            eprintln!("--from: {e}");
            return Ok(1);
        }
        (_, Err(e)) => {
            eprintln!("--to: {e}");
            return Ok(1);
        }
    };
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let parsed = alerting::parse(&text);
    if !parsed.is_valid() {
        eprintln!("{} does not lint:", file.display());
        for d in parsed.errors() {
            eprintln!("{}: {d}", file.display());
        }
        return Ok(1);
    }
    let db = server::run::Database::open(cfg).await?;
    let result = async {
        let store = store::Store::connect(&db.url, store::StoreConfig::default()).await?;
        let b = server::lifecycle::backtest::Backtest {
            from_ms,
            to_ms,
            step_ms: step.map(|d| d.as_millis() as i64),
            default_step_ms: cfg.alerting.evaluation_interval.as_millis() as i64,
            external_url: cfg.notifications.public_url.clone(),
        };
        server::lifecycle::backtest::run_text(&store, &(&cfg.query).into(), &text, &b).await
    }
    .await;
    // Left running, as `pipewatch user` leaves it: a server may be using this embedded
    // cluster right now, and stopping it would take the database from under it.
    std::mem::forget(db);
    let replays = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e:#}");
            return Ok(1);
        }
    };
    if *json {
        println!(
            "{}",
            serde_json::to_string_pretty(&server::lifecycle::backtest::to_json(&replays))?
        );
        return Ok(0);
    }
    println!(
        "Backtest of {} from {} to {}",
        file.display(),
        fmt_time(from_ms),
        fmt_time(to_ms)
    );
    for g in &replays {
        println!();
        println!(
            "group {:?}: {} steps of {}",
            g.group,
            g.replay.steps,
            humantime::format_duration(std::time::Duration::from_millis(g.step_ms as u64))
        );
        if g.replay.episodes.is_empty() {
            println!("  no rule would have been pending or firing");
        } else {
            print!(
                "{}",
                alerting::backtest::table(&g.replay.episodes, fmt_time)
            );
        }
        for (rule, why) in &g.replay.skipped {
            println!("  not replayed: rule {rule:?}: {why}");
        }
        for (rule, n, msg) in &g.replay.errors {
            println!("  error: rule {rule:?} failed at {n} steps, first: {msg}");
        }
    }
    Ok(0)
}

/// Runs the command; the result is the process exit code.
pub fn run(cmd: &RulesCommand) -> i32 {
    match cmd {
        RulesCommand::Lint { files } => lint(files),
        RulesCommand::Test { files } => test(files),
        RulesCommand::Backtest { .. } => {
            eprintln!(
                "rules backtest reads the database: it is run by main with the configuration"
            );
            2
        }
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
                            // These kinds read tables the server keeps, which `rules test`
                            // does not have.
                            let what = match k {
                                alerting::rulefile::PipewatchKind::Anomaly { .. } => {
                                    "evaluated by the server from open anomalies (`pipewatch rules test` cannot replay it)"
                                }
                                alerting::rulefile::PipewatchKind::DqCheck { .. } => {
                                    "evaluated by the server from the latest data-quality runs (`pipewatch rules test` cannot replay it; `rules backtest` can)"
                                }
                                _ => {
                                    "evaluated by the server from the latest drift results (`pipewatch rules test` cannot replay it; `rules backtest` can)"
                                }
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

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn backtest_times_are_rfc3339_unix_seconds_or_relative_to_now() {
        let now = 1_796_644_800_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("now-2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_time("1796644800", now), Ok(1_796_644_800_000));
        assert_eq!(
            parse_time("2026-12-07T10:00:00Z", now),
            Ok(1_796_637_600_000)
        );
        let e = parse_time("yesterday", now).unwrap_err();
        assert!(e.contains("write RFC 3339"), "{e}");
        assert!(parse_time("now-soon", now).unwrap_err().contains("now-24h"));
    }
}
