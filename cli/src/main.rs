//! The `pipewatch` command line.

mod backtest;
mod nab;
mod rules;
mod user;

use anyhow::Result;
use clap::{Parser, Subcommand};
use server::config::Config;
use std::path::PathBuf;
use std::time::Duration;

/// jemalloc, not the system allocator: see cli/Cargo.toml and BENCHMARKS.md.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "pipewatch",
    version,
    about = "Monitoring for data and ML pipelines"
)]
struct Cli {
    /// Configuration file (TOML). Every key can also be set as PIPEWATCH_<SECTION>__<KEY>.
    #[arg(short, long, global = true, env = "PIPEWATCH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Run the server with the built-in simulated pipeline and a day of backfilled history.
    Demo {
        /// Skip backfilling the last 24 h of demo history.
        #[arg(long)]
        no_backfill: bool,
        /// Inject a fault into the simulated pipeline (after `--after`, at stage `--at`).
        #[arg(long, value_enum)]
        inject: Option<demo::FaultKind>,
        /// Stage the fault hits: stream_ingest, transform, feature_store or model_serving.
        #[arg(long, default_value = "transform", requires = "inject")]
        at: String,
        /// How long after start the fault begins, e.g. "0s", "10m".
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, requires = "inject")]
        after: Duration,
        /// How long the fault lasts, e.g. "150s" (the stage then recovers); for good when left out.
        #[arg(long = "for", value_parser = humantime::parse_duration, requires = "inject")]
        lasting: Option<Duration>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Send data-quality results (Great Expectations, dbt, Soda JSON) to a running pipewatch.
    Import {
        /// Result files: GX validation/checkpoint results, dbt run_results.json or sources.json, Soda scan results.
        files: Vec<PathBuf>,
        /// The tool that wrote the files; recognised from their JSON when left out.
        #[arg(long, value_parser = ["gx", "dbt", "soda"])]
        tool: Option<String>,
        /// dbt manifest.json, to map tests to the models and columns they check.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// dbt sources.json from `dbt source freshness`.
        #[arg(long)]
        sources: Option<PathBuf>,
        /// The running pipewatch.
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        url: String,
        /// Bearer token for the `dq` receiver, when the server requires one.
        #[arg(long, env = "PIPEWATCH_TOKEN")]
        token: Option<String>,
    },
    /// Score NAB data files with the anomaly detectors and write a NAB results folder.
    Nab {
        /// NAB's data/ folder (or any folder of `timestamp,value` CSV files).
        #[arg(long)]
        data: PathBuf,
        /// Results folder to write, one `timestamp,anomaly_score` CSV per data file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Replay the anomaly detectors over stored history and print what they would have flagged.
    Backtest {
        /// Series whose signals are replayed, e.g. '{job="demo_pipeline"}'.
        #[arg(long)]
        selector: String,
        /// Start: RFC 3339, Unix seconds, or a duration back from now ("24h").
        #[arg(long, value_parser = backtest::parse_time)]
        from: i64,
        /// End (default now).
        #[arg(long, value_parser = backtest::parse_time, default_value = "0s")]
        to: i64,
        /// Time between two replayed evaluations (the job evaluates every `analysis.interval`).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
        every: Duration,
    },
    /// Alerting and recording rules: lint rule files, run rule unit tests (promtool format),
    /// backtest rules over stored history.
    Rules {
        #[command(subcommand)]
        which: rules::RulesCommand,
    },
    /// Users who log in to the pages and API: add, list, change passwords.
    User {
        #[command(subcommand)]
        which: user::UserCommand,
    },
    /// API tokens (`Authorization: Bearer ...`) with the read, ingest or admin scope.
    Token {
        #[command(subcommand)]
        which: user::TokenCommand,
    },
    /// End-to-end benchmarks that print ratios against an anchor run in the same process.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Real ingest path vs raw COPY of the same rows.
    Ingest {
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        #[arg(long, default_value_t = 100)]
        samples: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// What the samples go through.
        #[arg(long, value_enum, default_value = "queue")]
        protocol: bench::Protocol,
    },
    /// Range-query latency on >= 10M stored samples.
    Query {
        #[arg(long, default_value_t = 1_000)]
        series: usize,
        #[arg(long, default_value_t = 7)]
        days: i64,
        #[arg(long, default_value_t = 200)]
        iterations: usize,
    },
    /// Time from a rule-breaking sample to the notification at SMTP and webhook receivers,
    /// against the evaluation interval.
    Alert {
        #[arg(long, default_value_t = 20)]
        trials: usize,
        /// `alerting.evaluation_interval` of the run.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
        interval: std::time::Duration,
    },
    /// PromQL range queries against Debian's Prometheus 2.42 on the same data, same run.
    Promql {
        /// Sizes: series of the counter (and bucket series of the histogram) per query.
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        series: Vec<usize>,
        /// Spans queried (the data covers the longest).
        #[arg(long, value_delimiter = ',', value_parser = humantime::parse_duration, default_value = "1h,1d")]
        durations: Vec<std::time::Duration>,
        #[arg(long, default_value_t = 20)]
        iterations: usize,
        /// Time between two samples of a series.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "15s")]
        interval: std::time::Duration,
    },
    /// One detection round per series (database read included) and peak RSS, vs the bare read.
    Detect {
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        /// History per series, one sample a minute.
        #[arg(long, default_value_t = 24)]
        hours: i64,
        #[arg(long, default_value_t = 3)]
        iterations: usize,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIPEWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() {
    init_tracing();
    if let Err(e) = run().await {
        eprintln!("pipewatch: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Import {
        files,
        tool,
        manifest,
        sources,
        url,
        token,
    }) = &cli.command
    {
        let (files, manifest, sources, url, token) = (
            files.clone(),
            manifest.clone(),
            sources.clone(),
            url.clone(),
            token.clone(),
        );
        let args = server::import::ImportArgs {
            files,
            tool: tool.as_deref().and_then(collectors::dq::Tool::parse),
            manifest,
            sources,
            url,
            token,
        };
        for (file, summary) in server::import::run(&args).await? {
            println!("{}", server::import::describe(&file, &summary));
        }
        return Ok(());
    }
    // Pure computation over files: no config, no database.
    if let Some(Command::Nab { data, out }) = &cli.command {
        let (files, rows) = nab::run(data, out)?;
        println!("{files} files, {rows} rows scored into {}", out.display());
        return Ok(());
    }
    // Rule files need no server configuration.
    if let Some(Command::Rules { which }) = &cli.command {
        if !which.needs_database() {
            std::process::exit(rules::run(which));
        }
    }
    let cfg = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let report =
                server::run::serve(cfg, Default::default(), server::run::shutdown_signal()).await?;
            anyhow::ensure!(
                report.samples_lost == 0,
                "{} samples were lost at shutdown",
                report.samples_lost
            );
        }
        Command::Demo {
            no_backfill,
            inject,
            at,
            after,
            lasting,
        } => {
            // The demo is one command with something to look at: its pages open without a
            // login (read only); an admin is created for the rest and its password printed.
            let mut cfg = cfg;
            if cfg.auth.anonymous_role == "none" {
                cfg.auth.anonymous_role = "viewer".into();
                println!("demo: auth.anonymous_role = \"viewer\" (pages are readable without logging in)");
            }
            let fault = match inject {
                Some(kind) => {
                    let start = model::clock::now_ms() + after.as_millis() as i64;
                    let mut f = demo::Fault::new(kind, &at, start).map_err(anyhow::Error::msg)?;
                    println!(
                        "injecting {kind:?} at stage {at} in {} (from Unix ms {start})",
                        humantime::format_duration(after)
                    );
                    if let Some(d) = lasting {
                        f = f.lasting(d.as_millis() as i64);
                        println!(
                            "the fault ends after {} (at Unix ms {})",
                            humantime::format_duration(d),
                            start + d.as_millis() as i64
                        );
                    }
                    Some(f)
                }
                None => None,
            };
            let addr = demo::serve_pipeline(0, fault).await?;
            println!("demo pipeline exposes metrics on http://{addr}/metrics");
            let mut targets = vec![collectors::scrape::ScrapeTarget {
                job: "demo_pipeline".into(),
                url: format!("http://{addr}/metrics"),
                // A fixed instance keeps the series the same across restarts (the port is random).
                labels: model::Labels::from_pairs([
                    ("env", "demo"),
                    ("instance", "demo-pipeline:9464"),
                ]),
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(4),
            }];
            targets.push(collectors::scrape::ScrapeTarget {
                job: "pipewatch".into(),
                url: format!("http://{}/metrics", cfg.server.listen),
                labels: model::Labels::new(),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            });
            let backfill = if no_backfill {
                Vec::new()
            } else {
                demo::backfill(&targets[0], model::clock::now_ms(), 24 * 3_600_000, 60_000)
            };
            // Push-based demo jobs start once the server accepts requests.
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let stop_pushes = tokio_util::sync::CancellationToken::new();
            let pushes = {
                let stop = stop_pushes.clone();
                tokio::spawn(async move {
                    if let Ok(addr) = ready_rx.await {
                        demo::push::run(format!("http://{addr}"), fault, stop).await;
                    }
                })
            };
            let report = server::run::serve(
                cfg,
                server::run::ServeExtras {
                    targets,
                    initial: backfill,
                    on_ready: Some(ready_tx),
                    // PIPEWATCH_ADMIN_USER / PIPEWATCH_ADMIN_PASSWORD make the first admin
                    // instead when set (scripts/e2e.sh logs in with them).
                    first_admin: std::env::var_os("PIPEWATCH_ADMIN_USER")
                        .is_none()
                        .then(|| ("admin".into(), store::auth::random_secret(16))),
                    rules: vec![server::config::RuleSource {
                        path: demo::RULES_PATH.into(),
                        text: demo::RULES.into(),
                    }],
                },
                server::run::shutdown_signal(),
            )
            .await?;
            stop_pushes.cancel();
            let _ = pushes.await;
            anyhow::ensure!(
                report.samples_lost == 0,
                "{} samples were lost at shutdown",
                report.samples_lost
            );
        }
        // Sent to a running server before any config is loaded (above).
        Command::Import { .. } | Command::Nab { .. } => {}
        Command::Rules { which } => std::process::exit(rules::backtest(&cfg, &which).await?),
        Command::Backtest {
            selector,
            from,
            to,
            every,
        } => backtest::run(&cfg, &selector, from, to, every).await?,
        Command::User { which } => user::user(&cfg, which).await?,
        Command::Token { which } => user::token(&cfg, which).await?,
        Command::Migrate => {
            let db = server::run::Database::open(&cfg).await?;
            let r = store::Store::migrate(&db.url).await;
            db.close().await;
            r?;
            println!("migrations applied");
        }
        Command::Bench { which } => {
            let db = server::run::Database::open(&cfg).await?;
            let r = match which {
                BenchCommand::Ingest {
                    series,
                    samples,
                    rounds,
                    protocol,
                } => bench::ingest(&db.url, series, samples, rounds, protocol, &cfg).await,
                BenchCommand::Query {
                    series,
                    days,
                    iterations,
                } => bench::query(&db.url, series, days, iterations, &cfg.ingest).await,
                BenchCommand::Alert { trials, interval } => {
                    bench::alert::run(&db.url, &bench::alert::AlertBench { trials, interval }).await
                }
                BenchCommand::Promql {
                    series,
                    durations,
                    iterations,
                    interval,
                } => {
                    let b = bench::promql::PromqlBench {
                        series,
                        durations,
                        iterations,
                        interval,
                    };
                    bench::promql::run(&db.url, &b, &cfg).await
                }
                BenchCommand::Detect {
                    series,
                    hours,
                    iterations,
                } => {
                    let b = bench::detect::DetectBench {
                        series,
                        hours,
                        iterations,
                    };
                    bench::detect::run(&db.url, &b, &cfg).await
                }
            };
            db.close().await;
            r?;
        }
    }
    Ok(())
}
