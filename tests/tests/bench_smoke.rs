//! The benchmark commands run end to end on a tiny workload, so they cannot rot between the
//! sessions that record numbers with them. Timings are printed, never asserted; what is asserted
//! (inside `bench::ingest`) is that every sample sent was written and none lost, and that
//! `bench query` prints its ratio lines and exits 0.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_ingest_runs_every_protocol_and_accounts_for_every_sample() {
    let url = store::testing::fresh_database_url().await;
    let cfg = server::config::Config::default();
    for protocol in [
        bench::Protocol::Queue,
        bench::Protocol::RemoteWrite,
        bench::Protocol::Otlp,
    ] {
        bench::ingest(&url, 1_200, 3, 2, protocol, &cfg)
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e:#}"));
    }
}

/// `pipewatch bench query` as a user runs it (the binary, a database from the environment) on
/// a small data set: it loads, queries, prints one RESULT line per query shape with a finite
/// ratio against the raw-SELECT anchor, and exits 0.
#[tokio::test]
async fn bench_query_prints_a_ratio_per_query_shape_and_exits_0() {
    let stdout = run_bench(&[
        "bench",
        "query",
        "--series",
        "20",
        "--days",
        "1",
        "--iterations",
        "5",
    ])
    .await;
    let ratios = ratios(&stdout, "RESULT query ", "p95 ratio ");
    assert_eq!(
        ratios.len(),
        4,
        "one RESULT line per query shape:\n{stdout}"
    );
    assert!(
        ratios.iter().all(|r| r.is_finite() && *r > 0.0),
        "{ratios:?}\n{stdout}"
    );
    assert!(stdout.contains("2 series x 1 hour"), "{stdout}");
    // Raw samples read back from compacted chunks: maintenance compacted the loaded day.
    assert!(stdout.contains("1 series x 1 day, raw samples"), "{stdout}");
    assert!(stdout.contains("samples compacted"), "{stdout}");
}

/// `pipewatch bench promql` as a user runs it, at a tiny size: it starts Debian's Prometheus,
/// loads the same data into both by remote_write, checks that both answer each query alike,
/// and prints one RESULT line per query and size with finite ratios against Prometheus.
#[tokio::test]
async fn bench_promql_prints_a_ratio_against_prometheus_per_query_and_size() {
    let stdout = run_bench(&[
        "bench",
        "promql",
        "--series",
        "1,10",
        "--durations",
        "1h",
        "--iterations",
        "3",
        "--interval",
        "60s",
    ])
    .await;
    let ratios = ratios(&stdout, "RESULT promql ", " p95 ");
    assert_eq!(ratios.len(), 6, "3 queries x 2 sizes:\n{stdout}");
    assert!(
        ratios.iter().all(|r| r.is_finite() && *r > 0.0),
        "{ratios:?}\n{stdout}"
    );
    for q in [
        "rate(x_10[5m])",
        "sum by (job) (rate(x_1[5m]))",
        "h_10_bucket",
    ] {
        assert!(stdout.contains(q), "{q} not run:\n{stdout}");
    }
}

/// Runs the real binary with `args` against a fresh database from the environment, as a user
/// would, and returns its stdout once it exited 0 (within 5 minutes).
async fn run_bench(args: &[&str]) -> String {
    let url = store::testing::fresh_database_url().await;
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        tokio::process::Command::new(pipewatch_tests::pipewatch_bin())
            .args(args)
            .env_remove("PIPEWATCH_CONFIG")
            .env("DATABASE_URL", &url)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{args:?} finished within 5 minutes"))
    .expect("run pipewatch");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

/// The ratio after `marker` on every stdout line starting with `prefix`.
fn ratios(stdout: &str, prefix: &str, marker: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            let r = l
                .rsplit_once(marker)
                .unwrap_or_else(|| panic!("no ratio after {marker:?} in {l:?}"))
                .1;
            r.trim()
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("ratio {r:?} in {l:?}: {e}"))
        })
        .collect()
}
