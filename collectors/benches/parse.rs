//! Parse speed of the exposition parser on real exporter bodies, against `prometheus-parse`
//! (the crate the parser replaced) measured in the same run as the anchor.
//!
//! `cargo bench -p collectors --bench parse` prints criterion's timings and then, per body,
//! the ratio of our throughput to the anchor's. Timings never decide a test.

use collectors::prometheus_text::{parse, Format};
use criterion::{criterion_group, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

const BODIES: [&str; 3] = [
    "node_exporter.txt",
    "postgres_exporter.txt",
    "prometheus_server.txt",
];

fn body(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/prometheus")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn ours(b: &str) -> usize {
    parse(b, Format::Text004, 0).unwrap().sample_count()
}

fn anchor(b: &str) -> usize {
    prometheus_parse::Scrape::parse(b.lines().map(|l| Ok(l.to_owned())))
        .unwrap()
        .samples
        .len()
}

fn bench(c: &mut Criterion) {
    for name in BODIES {
        let b = body(name);
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_function("pipewatch", |x| x.iter(|| ours(black_box(&b))));
        g.bench_function("prometheus-parse (anchor)", |x| {
            x.iter(|| anchor(black_box(&b)))
        });
        g.finish();
    }
}

/// Median seconds per call over rounds of about 50 ms each.
fn median_secs(f: impl Fn() -> usize) -> f64 {
    let mut per_call = Vec::new();
    for _ in 0..15 {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < Duration::from_millis(50) {
            black_box(f());
            n += 1;
        }
        per_call.push(start.elapsed().as_secs_f64() / f64::from(n));
    }
    per_call.sort_by(f64::total_cmp);
    per_call[per_call.len() / 2]
}

fn ratios() {
    println!("\nthroughput vs anchor (same run, median of 15 rounds):");
    for name in BODIES {
        let b = body(name);
        let t_ours = median_secs(|| ours(&b));
        let t_anchor = median_secs(|| anchor(&b));
        let mb = b.len() as f64 / 1e6;
        println!(
            "  {name:<24} pipewatch {:>7.1} MB/s   prometheus-parse {:>7.1} MB/s   ratio {:.2}x",
            mb / t_ours,
            mb / t_anchor,
            t_anchor / t_ours
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
