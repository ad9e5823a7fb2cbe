//! The benchmark commands run end to end on a tiny workload, so they cannot rot between the
//! sessions that record numbers with them. Timings are printed, never asserted; what is asserted
//! (inside `bench::ingest`) is that every sample sent was written and none lost.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_ingest_runs_every_protocol_and_accounts_for_every_sample() {
    let url = store::testing::fresh_database_url().await;
    let cfg = server::config::Config::default();
    for protocol in [
        server::bench::Protocol::Queue,
        server::bench::Protocol::RemoteWrite,
        server::bench::Protocol::Otlp,
    ] {
        server::bench::ingest(&url, 1_200, 3, 2, protocol, &cfg)
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e:#}"));
    }
}
