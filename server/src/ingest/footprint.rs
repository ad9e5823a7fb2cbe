//! What a queued item holds on the heap, estimated once when it is queued, for the queue's
//! byte bound (`ingest.queue_max_bytes`).
//!
//! The estimate counts every allocation an item owns: the series vector, each metric name,
//! label vector and label string, each sample vector, metadata strings, the fingerprints and
//! the samples held by series id, plus [`ALLOCATION_OVERHEAD`] per allocation for the
//! allocator's rounding (the binary runs on jemalloc, which keeps no header but rounds small
//! sizes up to its classes 8, 16, 32, 48, 64, 80, ...). Label strings are counted by length
//! (decoders allocate them to size); vectors by capacity. It walks the item's series once,
//! like counting its samples does, so it costs no more than the queue's sample count already
//! did. Measured against the resident set (tests/tests/queue_memory.rs with resolution turned
//! off): 894 bytes estimated and 720 bytes resident per queued sample of a 7-label series, so
//! the bound errs on the safe side.

use model::{Batch, MetricMetadata, Sample, TimeSeries};
use std::mem::size_of;

/// Bytes the allocator spends per allocation beyond what was asked for, on average.
pub const ALLOCATION_OVERHEAD: usize = 16;

fn alloc(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        bytes + ALLOCATION_OVERHEAD
    }
}

fn vec_heap<T>(v: &Vec<T>) -> usize {
    alloc(v.capacity() * size_of::<T>())
}

/// Heap bytes of one series: its key's strings and label vector, and its samples.
pub fn series_bytes(s: &TimeSeries) -> usize {
    let labels: usize = s
        .key
        .labels
        .iter()
        .map(|(k, v)| alloc(k.len()) + alloc(v.len()))
        .sum();
    alloc(s.key.metric.capacity())
        + alloc(s.key.labels.len() * size_of::<(String, String)>())
        + labels
        + vec_heap::<Sample>(&s.samples)
}

fn metadata_bytes(m: &MetricMetadata) -> usize {
    alloc(m.family.capacity()) + alloc(m.unit.capacity()) + alloc(m.help.capacity())
}

/// Heap bytes of a batch: its vectors and everything its series and metadata own.
pub fn batch_bytes(b: &Batch) -> usize {
    vec_heap(&b.series)
        + b.series.iter().map(series_bytes).sum::<usize>()
        + vec_heap(&b.metadata)
        + b.metadata.iter().map(metadata_bytes).sum::<usize>()
}

/// Heap bytes of a batch's fingerprints (16 bytes a series).
pub fn fingerprints_bytes(f: Option<&store::Fingerprints>) -> usize {
    f.map_or(0, |f| alloc(f.len() * size_of::<u128>()))
}

/// Heap bytes of samples held by series id.
pub fn resolved_bytes(r: &store::ResolvedSamples) -> usize {
    alloc(r.heap_bytes())
}

/// Samples held by shared keys (`store::pending`): 24 bytes each, plus the keys this item
/// noted (the first item that brings a series carries its key, as it did holding it).
pub fn shared_bytes(s: &store::SharedSamples) -> usize {
    alloc(s.heap_bytes()) + s.noted_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Labels, MetricType, SeriesKey};

    fn series(labels: usize, samples: usize) -> TimeSeries {
        TimeSeries {
            key: SeriesKey::new(
                "http_requests_total",
                Labels::from_pairs(
                    (0..labels).map(|i| (format!("label{i}"), format!("value-{i}"))),
                ),
            ),
            metric_type: MetricType::Counter,
            samples: (0..samples)
                .map(|i| Sample {
                    ts: i as i64,
                    value: 1.0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_series_costs_its_strings_label_vector_and_samples_with_allocation_overhead() {
        // metric 19 + 16; label vector 7*48 + 16; 7 names (6 bytes) and 7 values (7 bytes),
        // each + 16; one sample 16 + 16.
        let expected = (19 + 16) + (7 * 48 + 16) + 7 * (6 + 16) + 7 * (7 + 16) + (16 + 16);
        assert_eq!(series_bytes(&series(7, 1)), expected);
        assert_eq!(
            series_bytes(&series(7, 101)) - series_bytes(&series(7, 1)),
            100 * 16
        );
        let b = Batch {
            series: vec![series(7, 1), series(7, 1)],
            metadata: vec![],
        };
        assert_eq!(
            batch_bytes(&b),
            2 * size_of::<TimeSeries>() + 16 + 2 * expected
        );
        assert_eq!(batch_bytes(&Batch::default()), 0);
    }

    #[test]
    fn samples_held_by_id_cost_24_bytes_each() {
        let rows = (0..1000)
            .map(|i| store::ResolvedSample {
                series_id: i,
                ts: i,
                value: 0.5,
            })
            .collect();
        let r = store::ResolvedSamples::from_rows(rows);
        assert_eq!(resolved_bytes(&r), 24_000 + 16);
    }
}
