//! Compacted sample chunks and the one-sample-per-timestamp rule. Pure: no I/O.
//!
//! Fresh samples are appended row by row to the `samples` table, which has no per-row btree
//! (a BRIN on time only), because the (series, time) btree was most of what a write cost.
//! Maintenance then moves each closed hour of each series into one `sample_chunks` row:
//! timestamps and values compressed separately with pco (delta encoding of the timestamps,
//! which are nearly regular, and pco's numeric modes for the values), what TimescaleDB
//! compression does with `segmentby = series_id, orderby = ts` and Prometheus with its
//! per-series chunks. A read merges a series' chunks with its fresh rows.
//!
//! # One sample per (series, timestamp)
//!
//! A sample that is sent again (a retried remote_write or OTLP export) is stored again as a
//! fresh row, because checking for it at write time would need the btree this layout dropped.
//! Every read and every compaction therefore keeps exactly one sample per timestamp, and when
//! two samples of a series share a timestamp but differ in value the **larger value** is kept
//! ([`f64::total_cmp`] order, in which Prometheus' stale-marker NaN is larger than every
//! number). This is VictoriaMetrics' de-duplication rule. It does not depend on the order in
//! which copies arrived, so a read of the fresh part, a read of a chunk, and a compaction
//! that merges the two always agree.

use model::TimestampMs;

/// The span of time one chunk covers: whole UTC hours, like a Prometheus head block's
/// chunks cover a bounded span, so a late sample rewrites one small chunk.
pub const CHUNK_MS: i64 = 3_600_000;

/// Start of the chunk window holding `ts`.
pub fn chunk_start(ts: TimestampMs) -> TimestampMs {
    ts.div_euclid(CHUNK_MS) * CHUNK_MS
}

/// Sorts `samples` by time and keeps one sample per timestamp: the largest value (see the
/// module documentation).
pub fn dedup(samples: &mut Vec<(TimestampMs, f64)>) {
    samples.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // Equal timestamps are now adjacent with the largest value last: keep the last of each run.
    let mut out = 0usize;
    for i in 0..samples.len() {
        if i + 1 < samples.len() && samples[i + 1].0 == samples[i].0 {
            continue;
        }
        samples[out] = samples[i];
        out += 1;
    }
    samples.truncate(out);
}

/// An encoded chunk: the pco-compressed timestamps and values of one series' samples,
/// sorted and de-duplicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedChunk {
    pub count: i32,
    pub first: TimestampMs,
    pub last: TimestampMs,
    pub timestamps: Vec<u8>,
    pub values: Vec<u8>,
}

/// Why stored chunk bytes could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("a compacted sample chunk is corrupt: {0}")]
pub struct ChunkError(String);

/// Encodes samples that [`dedup`] has sorted and de-duplicated (not empty).
pub fn encode(samples: &[(TimestampMs, f64)]) -> EncodedChunk {
    assert!(!samples.is_empty(), "an empty chunk is never stored");
    let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
    // Values as their bit patterns: lossless for every NaN payload (the stale marker is one),
    // which a float codec is not obliged to keep.
    let bits: Vec<u64> = samples.iter().map(|s| s.1.to_bits()).collect();
    let cfg = pco::ChunkConfig::default();
    EncodedChunk {
        count: i32::try_from(samples.len()).expect("an hour of one series fits in i32"),
        first: ts[0],
        last: ts[ts.len() - 1],
        timestamps: pco::standalone::simple_compress(&ts, &cfg)
            .expect("pco compresses any i64 slice with the default config"),
        values: encode_values(&bits, &cfg),
    }
}

fn encode_values(bits: &[u64], cfg: &pco::ChunkConfig) -> Vec<u8> {
    // Most series' values are ordinary floats, for which pco's float modes (multipliers,
    // quantization) compress far better than raw bit patterns; NaN payloads are the reason to
    // fall back to bits, so check that the float path gives every pattern back.
    let floats: Vec<f64> = bits.iter().map(|b| f64::from_bits(*b)).collect();
    if floats.iter().all(|v| !v.is_nan()) {
        let mut out = vec![FLOATS];
        out.extend(
            pco::standalone::simple_compress(&floats, cfg)
                .expect("pco compresses any f64 slice with the default config"),
        );
        return out;
    }
    let mut out = vec![BITS];
    out.extend(
        pco::standalone::simple_compress(bits, cfg)
            .expect("pco compresses any u64 slice with the default config"),
    );
    out
}

/// First byte of the value column: how the values were encoded.
const FLOATS: u8 = 1;
const BITS: u8 = 2;

/// Decodes a chunk into (timestamp, value) pairs, sorted by time.
pub fn decode(
    count: i32,
    timestamps: &[u8],
    values: &[u8],
) -> Result<Vec<(TimestampMs, f64)>, ChunkError> {
    let ts: Vec<i64> = pco::standalone::simple_decompress(timestamps)
        .map_err(|e| ChunkError(format!("timestamps: {e}")))?;
    let vals: Vec<f64> = match values.split_first() {
        Some((&FLOATS, rest)) => pco::standalone::simple_decompress(rest)
            .map_err(|e| ChunkError(format!("values: {e}")))?,
        Some((&BITS, rest)) => pco::standalone::simple_decompress::<u64>(rest)
            .map_err(|e| ChunkError(format!("values: {e}")))?
            .into_iter()
            .map(f64::from_bits)
            .collect(),
        Some((other, _)) => return Err(ChunkError(format!("unknown value encoding {other}"))),
        None => return Err(ChunkError("no value bytes".to_string())),
    };
    if ts.len() != vals.len() || i32::try_from(ts.len()).ok() != Some(count) {
        return Err(ChunkError(format!(
            "{} timestamps and {} values where the row says {count}",
            ts.len(),
            vals.len()
        )));
    }
    Ok(ts.into_iter().zip(vals).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    #[test]
    fn dedup_keeps_one_sample_per_timestamp_the_largest() {
        let mut s = vec![
            (20, 1.0),
            (10, 5.0),
            (10, 7.0),
            (20, 1.0),
            (10, 6.0),
            (30, -1.0),
        ];
        dedup(&mut s);
        assert_eq!(s, vec![(10, 7.0), (20, 1.0), (30, -1.0)]);
    }

    #[test]
    fn dedup_does_not_depend_on_arrival_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base: Vec<(i64, f64)> = (0..500)
            .map(|_| (rng.gen_range(0..100), f64::from(rng.gen_range(-5..5))))
            .collect();
        let mut a = base.clone();
        let mut b = base;
        b.reverse();
        dedup(&mut a);
        dedup(&mut b);
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn the_stale_marker_wins_over_a_number_at_the_same_time() {
        let stale = f64::from_bits(STALE_NAN);
        let mut s = vec![(10, 1e300), (10, stale)];
        dedup(&mut s);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1.to_bits(), STALE_NAN);
    }

    #[test]
    fn chunks_give_back_exactly_what_was_encoded() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut cases: Vec<Vec<(i64, f64)>> = vec![
            vec![(1_700_000_000_000, 42.0)],
            // A counter scraped every 15 s with jitter.
            (0..240)
                .map(|i| {
                    (
                        1_700_000_000_000 + i * 15_000 + rng.gen_range(-3..3),
                        (i * i) as f64,
                    )
                })
                .collect(),
            // Noisy gauge with every special value.
            (0..300)
                .map(|i| (i * 1000, rng.gen::<f64>() * 1e6 - 5e5))
                .chain([
                    (400_000, f64::INFINITY),
                    (401_000, f64::NEG_INFINITY),
                    (402_000, -0.0),
                    (403_000, f64::MIN_POSITIVE),
                ])
                .collect(),
        ];
        cases.push(
            (0..50)
                .map(|i| {
                    (
                        i,
                        if i % 7 == 0 {
                            f64::from_bits(STALE_NAN)
                        } else {
                            1.5
                        },
                    )
                })
                .collect(),
        );
        for case in cases {
            let c = encode(&case);
            let back = decode(c.count, &c.timestamps, &c.values).unwrap();
            assert_eq!(back.len(), case.len());
            for (a, b) in back.iter().zip(&case) {
                assert_eq!(a.0, b.0);
                assert_eq!(a.1.to_bits(), b.1.to_bits(), "value at {}", a.0);
            }
            assert_eq!((c.first, c.last), (case[0].0, case[case.len() - 1].0));
        }
    }

    #[test]
    fn a_regular_series_compresses_to_a_few_bytes_per_sample() {
        // One hour of a counter scraped every 15 s: the timestamps are a constant step.
        let s: Vec<(i64, f64)> = (0..240)
            .map(|i| (1_700_000_000_000 + i * 15_000, 1000.0 + (i * 3) as f64))
            .collect();
        let c = encode(&s);
        let bytes = c.timestamps.len() + c.values.len();
        assert!(bytes < 240 * 2, "{bytes} bytes for 240 samples");
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let c = encode(&[(1, 1.0), (2, 2.0)]);
        assert!(decode(c.count, &c.timestamps[..2], &c.values).is_err());
        assert!(decode(c.count + 1, &c.timestamps, &c.values).is_err());
        assert!(decode(c.count, &c.timestamps, &[9, 1, 2]).is_err());
        assert!(decode(c.count, &c.timestamps, &[]).is_err());
    }
}
