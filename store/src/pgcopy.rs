//! Encoder for PostgreSQL's binary COPY format, specialised to sample rows
//! `(series_id bigint, ts timestamptz, value double precision)`.
//!
//! Binary COPY skips the server's text parsing of numbers and timestamps, which is most of
//! the cost of a text COPY for this narrow row, and carries NaN/±Inf bit-exactly.

use model::TimestampMs;

/// Unix time of 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in milliseconds.
pub(crate) const PG_EPOCH_UNIX_MS: i64 = 946_684_800_000;

/// The earliest timestamp PostgreSQL's timestamptz accepts (4714-11-24 BC), Unix ms.
pub const MIN_TIMESTAMP_MS: TimestampMs = -210_866_803_200_000;
/// One past the latest timestamp PostgreSQL's timestamptz accepts (294277-01-01), Unix ms.
pub const END_TIMESTAMP_MS: TimestampMs = 9_224_318_016_000_000;

const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
const TRAILER: &[u8] = &[0xff, 0xff];

/// Whether PostgreSQL can store this timestamp.
pub fn timestamp_in_range(ts: TimestampMs) -> bool {
    (MIN_TIMESTAMP_MS..END_TIMESTAMP_MS).contains(&ts)
}

/// Builds a binary COPY stream in pieces, so a large batch can be sent while it is encoded.
pub struct SampleCopyEncoder {
    buf: Vec<u8>,
    rows: u64,
    header_written: bool,
}

impl Default for SampleCopyEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SampleCopyEncoder {
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(64 * 1024),
            rows: 0,
            header_written: false,
        }
    }

    /// Appends one row. The caller checks the timestamp with [`timestamp_in_range`] first;
    /// an out-of-range timestamp here is a bug, and PostgreSQL would reject the whole COPY.
    pub fn push(&mut self, series_id: i64, ts: TimestampMs, value: f64) {
        debug_assert!(timestamp_in_range(ts), "timestamp {ts} out of range");
        if !self.header_written {
            self.buf.extend_from_slice(HEADER);
            self.header_written = true;
        }
        // Subtract before scaling: ms * 1000 near the upper bound overflows i64.
        let micros = (ts - PG_EPOCH_UNIX_MS) * 1000;
        self.buf.extend_from_slice(&3i16.to_be_bytes());
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&series_id.to_be_bytes());
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&micros.to_be_bytes());
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_bits().to_be_bytes());
        self.rows += 1;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes encoded since the last `take`.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Hands out what has been encoded so far.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.buf, Vec::with_capacity(64 * 1024))
    }

    /// The rest of the stream, including the trailer (and the header if no row was pushed).
    pub fn finish(mut self) -> Vec<u8> {
        if !self.header_written {
            self.buf.extend_from_slice(HEADER);
        }
        self.buf.extend_from_slice(TRAILER);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_layout() {
        let mut e = SampleCopyEncoder::new();
        // 2000-01-01T00:00:01.5Z is 1_500_000 µs after PostgreSQL's epoch.
        e.push(258, PG_EPOCH_UNIX_MS + 1500, 1.0);
        let bytes = e.finish();
        let mut expected: Vec<u8> = b"PGCOPY\n".to_vec();
        expected.extend([0xff, b'\r', b'\n', 0]);
        expected.extend([0, 0, 0, 0, 0, 0, 0, 0]); // flags, header extension length
        expected.extend([0, 3]); // field count
        expected.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2]); // 258
        expected.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0x16, 0xe3, 0x60]); // 1_500_000
        expected.extend([0, 0, 0, 8, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]); // 1.0
        expected.extend([0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn empty_stream_is_header_and_trailer() {
        let bytes = SampleCopyEncoder::new().finish();
        assert_eq!(bytes.len(), 19 + 2);
        assert!(bytes.starts_with(b"PGCOPY\n\xff\r\n\0"));
    }

    #[test]
    fn take_splits_the_stream_without_losing_bytes() {
        let mut whole = SampleCopyEncoder::new();
        let mut pieces = SampleCopyEncoder::new();
        let mut joined = Vec::new();
        for i in 0..10 {
            whole.push(i, i * 1000, i as f64);
            pieces.push(i, i * 1000, i as f64);
            if i % 3 == 0 {
                joined.extend(pieces.take());
            }
        }
        joined.extend(pieces.finish());
        assert_eq!(joined, whole.finish());
    }

    #[test]
    fn timestamp_range_matches_postgres_limits() {
        assert!(timestamp_in_range(0));
        assert!(timestamp_in_range(MIN_TIMESTAMP_MS));
        assert!(!timestamp_in_range(MIN_TIMESTAMP_MS - 1));
        assert!(timestamp_in_range(END_TIMESTAMP_MS - 1));
        assert!(!timestamp_in_range(END_TIMESTAMP_MS));
        assert!(!timestamp_in_range(i64::MAX));
    }
}
