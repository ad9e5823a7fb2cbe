//! Cost and accuracy of comparing two 10-million-value columns from profiles (t-digest) against
//! the exact statistics on the sorted values, in one run so the ratios do not depend on the
//! machine.
//!
//! `cargo run --release -p analysis --example drift_sketch_cost [-- <values per side>]`
//!
//! The values are pseudo-random N(0, 1) (reference) and N(0.08, 1.1^2) (current) from a fixed
//! seed. Peak RSS is read from /proc/self/status after the sketch phase and again after the
//! exact phase, which has to hold both columns.

use analysis::drift::binning::Bins;
use analysis::drift::{
    compare, stats, ColumnProfile, DriftOptions, NumericProfile, ProfileOptions, StatTest,
    ValueCounts,
};
use statrs::distribution::{ContinuousCDF, Normal};
use std::time::Instant;

/// splitmix64: a fixed, dependency-free stream of uniform numbers in (0, 1).
struct Uniform(u64);

impl Uniform {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

fn column(seed: u64, n: usize, mean: f64, sd: f64) -> impl Iterator<Item = f64> {
    let dist = Normal::new(mean, sd).expect("valid normal");
    let mut u = Uniform(seed);
    (0..n).map(move |_| dist.inverse_cdf(u.next()))
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

const TESTS: [StatTest; 5] = [
    StatTest::Ks,
    StatTest::Wasserstein,
    StatTest::Psi,
    StatTest::JensenShannon,
    StatTest::KlDiv,
];

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("values per side"))
        .unwrap_or(10_000_000);
    println!("values per side: {n}");

    // Sketch: stream the values into one profile per side, then compare.
    let t = Instant::now();
    let mut profiles = [1u64, 2].map(|_| NumericProfile::new(ProfileOptions::default()));
    for v in column(1, n, 0.0, 1.0) {
        profiles[0].push(v);
    }
    for v in column(2, n, 0.08, 1.1) {
        profiles[1].push(v);
    }
    let profile_s = t.elapsed().as_secs_f64();
    let profile_bytes = profiles[0].approx_heap_bytes() + profiles[1].approx_heap_bytes();
    let [rp, cp] = profiles;
    let (r, c) = (ColumnProfile::Numeric(rp), ColumnProfile::Numeric(cp));
    let t = Instant::now();
    let sketch: Vec<f64> = TESTS
        .iter()
        .map(|&test| {
            compare(
                &r,
                &c,
                &DriftOptions {
                    test: Some(test),
                    threshold: None,
                },
            )
            .expect("comparable")
            .statistic
        })
        .collect();
    let sketch_compare_s = t.elapsed().as_secs_f64();
    let sketch_rss = peak_rss_mib();

    // Exact: hold both columns, sort them, compute the same statistics.
    let t = Instant::now();
    let ref_values: Vec<f64> = column(1, n, 0.0, 1.0).collect();
    let cur_values: Vec<f64> = column(2, n, 0.08, 1.1).collect();
    let generate_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (rv, cv) = (
        ValueCounts::from_values(&ref_values),
        ValueCounts::from_values(&cur_values),
    );
    let raw_bytes = (ref_values.len() + cur_values.len()) * 8;
    let counts_bytes = (rv.distinct() + cv.distinct()) * 16;
    drop((ref_values, cur_values));
    let bins = Bins::numeric(&rv, &cv);
    let exact = [
        stats::ks_statistic(&rv, &cv),
        stats::wasserstein_normed(&rv, &cv),
        bins.distance(StatTest::Psi),
        bins.distance(StatTest::JensenShannon),
        bins.distance(StatTest::KlDiv),
    ];
    let exact_s = t.elapsed().as_secs_f64() + generate_s;
    let exact_rss = peak_rss_mib();

    println!("\n| statistic | exact | sketch | abs. error | rel. error |");
    println!("| --- | --- | --- | --- | --- |");
    for ((test, e), s) in TESTS.iter().zip(exact).zip(&sketch) {
        println!(
            "| {test} | {e:.6} | {s:.6} | {:.2e} | {:.2e} |",
            (s - e).abs(),
            (s - e).abs() / e.abs()
        );
    }
    println!("\n| phase | time (s) | memory |");
    println!("| --- | --- | --- |");
    println!(
        "| sketch: stream both columns into profiles | {profile_s:.2} | {:.1} KiB of profiles |",
        profile_bytes as f64 / 1024.0
    );
    println!("| (of which generating the 2 x {n} values, measured in the exact phase) | {generate_s:.2} | |");
    println!("| sketch: 5 comparisons from profiles | {sketch_compare_s:.3} | (peak RSS so far {sketch_rss:.0} MiB) |");
    println!(
        "| exact: generate + sort + 5 statistics | {exact_s:.2} | {:.0} MiB raw + {:.0} MiB sorted counts (peak RSS {exact_rss:.0} MiB) |",
        raw_bytes as f64 / 1048576.0,
        counts_bytes as f64 / 1048576.0
    );
    println!(
        "\nratio sketch / exact: time {:.2} (profiles + comparisons vs generate + sort + statistics), memory {:.5} (profiles vs raw values)",
        (profile_s + sketch_compare_s) / exact_s,
        profile_bytes as f64 / raw_bytes as f64
    );
}
