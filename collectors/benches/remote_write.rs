//! Decode speed of the remote_write decoder on the eight captured Prometheus 2.42 requests,
//! against snappy decompression alone (the floor: every decoder has to inflate the body),
//! measured in the same run.
//!
//! `cargo bench -p collectors --bench remote_write` prints criterion's timings and then the
//! throughput of both over all bodies and the shares of decode time spent in snappy and in
//! prost's message decoding. Timings
//! never decide a test.

use collectors::remote_write::{decode, decompress, proto, DEFAULT_MAX_DECOMPRESSED_BYTES};
use criterion::{criterion_group, Criterion, Throughput};
use prost::Message;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn bodies() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/remote_write");
    let mut out = Vec::new();
    for d in [dir.clone(), dir.join("stale")] {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().and_then(|x| x.to_str()) == Some("bin") {
                out.push(std::fs::read(p).unwrap());
            }
        }
    }
    assert_eq!(out.len(), 8);
    out
}

fn decode_all(bodies: &[Vec<u8>]) -> usize {
    bodies
        .iter()
        .map(|b| {
            decode(b, DEFAULT_MAX_DECOMPRESSED_BYTES)
                .unwrap()
                .batch
                .sample_count()
        })
        .sum()
}

fn snappy_all(bodies: &[Vec<u8>]) -> usize {
    bodies
        .iter()
        .map(|b| decompress(b, DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap().len())
        .sum()
}

/// Inflate plus prost decoding into the wire messages, without building the batch.
fn protobuf_all(bodies: &[Vec<u8>]) -> usize {
    bodies
        .iter()
        .map(|b| {
            let raw = decompress(b, DEFAULT_MAX_DECOMPRESSED_BYTES).unwrap();
            proto::WriteRequest::decode(raw.as_slice())
                .unwrap()
                .timeseries
                .len()
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let b = bodies();
    let bytes: usize = b.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("remote_write fixtures");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("decode", |x| x.iter(|| decode_all(black_box(&b))));
    g.bench_function("snappy only (anchor)", |x| {
        x.iter(|| snappy_all(black_box(&b)))
    });
    g.finish();
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

fn summary() {
    let b = bodies();
    let compressed: usize = b.iter().map(Vec::len).sum();
    let inflated = snappy_all(&b);
    let samples = decode_all(&b);
    let t_decode = median_secs(|| decode_all(&b));
    let t_snappy = median_secs(|| snappy_all(&b));
    let t_proto = median_secs(|| protobuf_all(&b));
    println!("\nremote_write decode, 8 bodies, {compressed} bytes sent, {inflated} bytes inflated, {samples} samples (median of 15 rounds):");
    println!(
        "  decode      {:>7.1} MB/s sent  {:>7.1} MB/s inflated  {:>6.2} M samples/s",
        compressed as f64 / 1e6 / t_decode,
        inflated as f64 / 1e6 / t_decode,
        samples as f64 / 1e6 / t_decode
    );
    println!(
        "  snappy only {:>7.1} MB/s sent  {:>7.1} MB/s inflated  (anchor); snappy is {:.0}% of decode time",
        compressed as f64 / 1e6 / t_snappy,
        inflated as f64 / 1e6 / t_snappy,
        100.0 * t_snappy / t_decode
    );
    println!(
        "  snappy + prost messages {:.0}% of decode time (the rest builds the model::Batch)",
        100.0 * t_proto / t_decode
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
