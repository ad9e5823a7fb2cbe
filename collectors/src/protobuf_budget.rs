//! How many messages a protobuf body decodes into, counted on the wire format before decoding.
//!
//! A length-delimited field of zero bytes is an empty embedded message: two bytes on the wire,
//! a whole struct (100 to 300 bytes for OTLP's) once decoded. 32 KB of gzip made of them
//! decoded to 2.3 GB (issue 9), so receivers count first and refuse a body over a message
//! budget before prost allocates anything.
//!
//! The walk needs no schema: a length-delimited field counts as a message when its bytes parse
//! as a message (every field well-formed, no groups), which is how every message field of
//! remote_write and OTLP is encoded; a string or bytes field that happens to parse is counted
//! too, so the count errs high, never low. Work is linear in the body times the nesting depth,
//! which is capped like prost's own recursion limit.

/// Nesting deeper than this is not counted further; prost refuses it anyway (its limit is 100).
const MAX_DEPTH: usize = 100;

/// The body holds more than the budget of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub limit: usize,
}

/// The number of embedded messages in `buf` (the top-level message not counted), or
/// [`OverBudget`] as soon as it passes `limit`. Bytes that are not a protobuf message count as
/// none: the decoder will refuse them with a better message.
pub fn count_messages(buf: &[u8], limit: usize) -> Result<usize, OverBudget> {
    let mut count = 0;
    match scan(buf, 0, &mut count, limit) {
        Scan::Over => Err(OverBudget { limit }),
        Scan::Message | Scan::NotAMessage => Ok(count),
    }
}

enum Scan {
    Message,
    NotAMessage,
    Over,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Walks `buf` as one message, adding the messages nested in it to `count`; on
/// `NotAMessage`, `count` is left as it was.
fn scan(buf: &[u8], depth: usize, count: &mut usize, limit: usize) -> Scan {
    let start = *count;
    let mut pos = 0;
    while pos < buf.len() {
        let Some(key) = varint(buf, &mut pos) else {
            *count = start;
            return Scan::NotAMessage;
        };
        if key >> 3 == 0 {
            *count = start;
            return Scan::NotAMessage;
        }
        let ok = match key & 7 {
            0 => varint(buf, &mut pos).is_some(),
            1 => {
                pos += 8;
                pos <= buf.len()
            }
            5 => {
                pos += 4;
                pos <= buf.len()
            }
            2 => {
                let Some(len) = varint(buf, &mut pos) else {
                    *count = start;
                    return Scan::NotAMessage;
                };
                let Some(end) = usize::try_from(len)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|&e| e <= buf.len())
                else {
                    *count = start;
                    return Scan::NotAMessage;
                };
                if depth < MAX_DEPTH {
                    let before = *count;
                    match scan(&buf[pos..end], depth + 1, count, limit) {
                        Scan::Over => return Scan::Over,
                        Scan::Message => {
                            *count += 1;
                            if *count > limit {
                                return Scan::Over;
                            }
                        }
                        Scan::NotAMessage => *count = before,
                    }
                }
                pos = end;
                true
            }
            // Groups (3, 4) are not used by these protocols; 6 and 7 do not exist.
            _ => false,
        };
        if !ok {
            *count = start;
            return Scan::NotAMessage;
        }
    }
    Scan::Message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::proto;
    use prost::Message;

    #[test]
    fn empty_messages_are_counted_and_the_budget_stops_the_walk() {
        // WriteRequest with 100,000 empty TimeSeries: 200 KB on the wire.
        let body = [0x0a, 0x00].repeat(100_000);
        assert_eq!(count_messages(&body, 1_000_000), Ok(100_000));
        assert_eq!(
            count_messages(&body, 99_999),
            Err(OverBudget { limit: 99_999 })
        );
    }

    #[test]
    fn a_real_write_request_counts_its_series_labels_and_samples() {
        let req = proto::WriteRequest {
            timeseries: (0..10)
                .map(|i| proto::TimeSeries {
                    labels: vec![
                        proto::Label {
                            name: "__name__".into(),
                            value: "up".into(),
                        },
                        proto::Label {
                            name: "job".into(),
                            value: format!("j{i}"),
                        },
                    ],
                    samples: vec![proto::Sample {
                        value: 1.0,
                        timestamp: 1_700_000_000_000,
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let bytes = req.encode_to_vec();
        // 10 series, each with 2 labels and 1 sample; label strings that parse as messages
        // would add to this, these do not.
        assert_eq!(count_messages(&bytes, 1000), Ok(40));
        // Not protobuf at all: nothing counted, the decoder refuses it.
        assert_eq!(count_messages(b"{\"json\": true}\xff", 10), Ok(0));
    }
}
