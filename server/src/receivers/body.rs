//! Request bodies for every receiver: read with `receivers.max_body_bytes`, inflated (gzip,
//! deflate, snappy) with `receivers.max_decompressed_bytes`, protobuf bodies counted within
//! `receivers.max_decoded_messages` before they are decoded (see
//! `collectors::protobuf_budget`), and decoded off the async runtime behind one semaphore, so
//! a burst of large or hostile bodies costs a bounded number of threads and buffers at a time.
//!
//! The kernel ([`super::kernel`]) reads the body before the handler runs and hands it over as a
//! [`Payload`]; a handler only says how to decode the inflated bytes ([`Payload::decode`]).
//! The kernel also uses [`drain`] when it refuses a request before reading it, so the
//! connection stays usable for the sender's next request.

use super::kind::{MediaType, Receiver};
use super::ReceiverError;
use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Identity bodies up to this size decode on the request's task: they decode in well under a
/// millisecond (cheaper than the hand-off), and without compression they cannot inflate.
const INLINE_DECODE_BYTES: usize = 64 << 10;

/// How a body is compressed, from `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    /// zlib-wrapped deflate (RFC 1950), as OTLP senders mean it.
    Deflate,
    /// Snappy block format, remote_write's only encoding.
    Snappy,
}

impl Compression {
    /// Reads a `Content-Encoding` value; `None` for encodings pipewatch does not know.
    pub fn parse(v: &str) -> Option<Compression> {
        let v = v.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            Some(Compression::Identity)
        } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Some(Compression::Gzip)
        } else if v.eq_ignore_ascii_case("deflate") {
            Some(Compression::Deflate)
        } else if v.eq_ignore_ascii_case("snappy") {
            Some(Compression::Snappy)
        } else {
            None
        }
    }
}

/// The size limits (`[receivers]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    /// Embedded messages a protobuf body may decode into; 0 = no limit.
    pub max_decoded_messages: usize,
}

/// Refuses a protobuf body that would decode into more than `limit` messages, before it is
/// decoded (413: the sender should send smaller batches).
pub fn check_message_budget(
    receiver: Receiver,
    media: MediaType,
    bytes: &[u8],
    limit: usize,
) -> Result<(), ReceiverError> {
    if media != MediaType::Protobuf || limit == 0 {
        return Ok(());
    }
    // Every embedded message takes at least two bytes of its own (a key and a length), so a
    // body of at most 2 x limit bytes cannot be over the budget: the walk is skipped for the
    // bodies senders actually send (a 500-sample remote_write body is ~100 KB inflated, far
    // under the default), where it was 3-6 % of a receiver's CPU per sample.
    if bytes.len() / 2 <= limit {
        return Ok(());
    }
    collectors::protobuf_budget::count_messages(bytes, limit)
        .map(|_| ())
        .map_err(|_| {
            ReceiverError::TooLarge(format!(
                "body holds more than {limit} protobuf messages (receivers.max_decoded_messages); {} or raise the limit",
                receiver.smaller_hint()
            ))
        })
}

/// Bounds how many bodies are inflated and decoded at once, across every receiver (HTTP and
/// gRPC): the peak memory of decoding is this many requests, not as many as arrive.
#[derive(Debug, Clone)]
pub struct DecodePool {
    permits: Arc<Semaphore>,
}

impl DecodePool {
    pub fn new(concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
        }
    }

    /// One decode per CPU: decoding is CPU-bound, more at once only adds memory.
    pub fn per_cpu() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    pub fn semaphore(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }
}

/// A request body as the kernel read it, for the handler to decode.
#[derive(Debug, Clone)]
pub struct Payload {
    pub receiver: Receiver,
    pub media: MediaType,
    pub compression: Compression,
    pub raw: Bytes,
    pub limits: Limits,
    pool: DecodePool,
}

impl Payload {
    pub(super) fn new(
        receiver: Receiver,
        media: MediaType,
        compression: Compression,
        raw: Bytes,
        limits: Limits,
        pool: DecodePool,
    ) -> Self {
        Self {
            receiver,
            media,
            compression,
            raw,
            limits,
            pool,
        }
    }

    /// Inflates the body within `max_decompressed_bytes` and runs `decode` on the result.
    /// Anything but a small uncompressed body is inflated and decoded on the blocking pool,
    /// after waiting for a decode permit.
    pub async fn decode<T, F>(self, decode: F) -> Result<T, ReceiverError>
    where
        T: Send + 'static,
        F: FnOnce(&[u8]) -> Result<T, ReceiverError> + Send + 'static,
    {
        let max_messages = self.limits.max_decoded_messages;
        if self.compression == Compression::Identity && self.raw.len() <= INLINE_DECODE_BYTES {
            check_message_budget(self.receiver, self.media, &self.raw, max_messages)?;
            return decode(&self.raw);
        }
        let _permit = self
            .pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ReceiverError::ShuttingDown("the server is stopping".into()))?;
        let (receiver, media, compression, limits, raw) = (
            self.receiver,
            self.media,
            self.compression,
            self.limits,
            self.raw,
        );
        tokio::task::spawn_blocking(move || {
            if compression == Compression::Snappy {
                // remote_write's every request: inflated into this thread's buffer.
                return SNAPPY_BUFFER.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    let out = inflate_snappy(&raw, limits.max_decompressed_bytes, &mut buf)
                        .and_then(|()| check_message_budget(receiver, media, &buf, max_messages))
                        .and_then(|()| decode(&buf));
                    if buf.capacity() > SNAPPY_BUFFER_KEPT_BYTES {
                        *buf = Vec::new();
                    }
                    out
                });
            }
            let inflated = inflate(receiver, compression, &raw, limits.max_decompressed_bytes)?;
            check_message_budget(receiver, media, &inflated, max_messages)?;
            decode(&inflated)
        })
        .await
        .map_err(|e| {
            ReceiverError::Internal(format!("decoding the body failed unexpectedly: {e}"))
        })?
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Payload {
    type Rejection = ReceiverError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.remove::<Payload>().ok_or_else(|| {
            ReceiverError::Internal("receiver route without the receiver kernel layer".into())
        })
    }
}

/// Inflates `body`, refusing output larger than `limit` as soon as it passes it.
pub fn inflate(
    receiver: Receiver,
    compression: Compression,
    body: &[u8],
    limit: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, ReceiverError> {
    let too_large = || {
        ReceiverError::TooLarge(format!(
            "body decompresses to more than {limit} bytes (receivers.max_decompressed_bytes); {} or raise the limit",
            receiver.smaller_hint()
        ))
    };
    fn read_limited(
        mut reader: impl Read,
        limit: usize,
        name: &str,
    ) -> Result<Option<Vec<u8>>, ReceiverError> {
        let mut out = Vec::new();
        // One byte past the limit tells "exactly at the limit" from "over it".
        (&mut reader)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                ReceiverError::Malformed(format!(
                    "body is not valid {name} data: {e}; send a {name}-compressed body or drop the Content-Encoding header"
                ))
            })?;
        Ok((out.len() <= limit).then_some(out))
    }
    match compression {
        Compression::Identity if body.len() > limit => Err(too_large()),
        Compression::Identity => Ok(std::borrow::Cow::Borrowed(body)),
        Compression::Gzip => read_limited(flate2::read::GzDecoder::new(body), limit, "gzip")?
            .map(Into::into)
            .ok_or_else(too_large),
        Compression::Deflate => read_limited(
            flate2::read::ZlibDecoder::new(body),
            limit,
            "deflate (zlib)",
        )?
        .map(Into::into)
        .ok_or_else(too_large),
        Compression::Snappy => {
            let mut out = Vec::new();
            inflate_snappy(body, limit, &mut out)?;
            Ok(out.into())
        }
    }
}

thread_local! {
    /// The decode pool's snappy output, reused from request to request (see
    /// [`collectors::remote_write::decompress_into`]).
    static SNAPPY_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A thread keeps its snappy buffer up to this size; a larger body's buffer is given back.
const SNAPPY_BUFFER_KEPT_BYTES: usize = 4 << 20;

/// Snappy into `out`. The snappy header announces the inflated size: checked before anything
/// is inflated.
fn inflate_snappy(body: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), ReceiverError> {
    collectors::remote_write::decompress_into(body, limit, out).map_err(|e| match e {
        collectors::remote_write::RemoteWriteError::DecompressedTooLarge { .. } => {
            ReceiverError::TooLarge(format!("{e} (receivers.max_decompressed_bytes)"))
        }
        e => ReceiverError::Malformed(e.to_string()),
    })
}

/// Why a body was not read to its end.
#[derive(Debug)]
pub struct Unread {
    pub error: ReceiverError,
    /// Bytes are left on the connection: it cannot carry another request.
    pub close: bool,
}

/// The announced `Content-Length`, if any.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
}

/// Reads a whole request body, refusing it with 413 as soon as it passes `limit` bytes
/// (before reading when `Content-Length` already says so).
pub async fn read(
    receiver: Receiver,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Unread> {
    use futures::StreamExt;
    let too_large = || {
        Unread {
        error: ReceiverError::TooLarge(format!(
            "request body is larger than {limit} bytes (receivers.max_body_bytes); {} or raise the limit",
            receiver.smaller_hint()
        )),
        close: true,
    }
    };
    let announced = content_length(headers);
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(announced.unwrap_or(0).min(limit as u64) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Unread {
            error: ReceiverError::Malformed(format!("could not read the request body: {e}")),
            close: true,
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

/// Reads and discards a body the server refuses, up to `limit` bytes and `within`, so the
/// connection can carry the sender's next request (hyper closes a keep-alive connection whose
/// request body was left unread). Returns whether the body was consumed to its end.
pub async fn drain(headers: &HeaderMap, body: Body, limit: usize, within: Duration) -> bool {
    use futures::StreamExt;
    if content_length(headers).is_some_and(|n| n > limit as u64) {
        return false;
    }
    let consume = async {
        let mut seen = 0usize;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { return false };
            seen += chunk.len();
            if seen > limit {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(within, consume).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn the_message_budget_is_exact_at_the_size_below_which_the_walk_is_skipped() {
        // Empty TimeSeries, two bytes each: the densest a body can be in messages.
        let limit = 1000;
        let check = |n: usize| {
            check_message_budget(
                Receiver::RemoteWrite,
                MediaType::Protobuf,
                &[0x0a, 0x00].repeat(n),
                limit,
            )
        };
        // At 2 x limit bytes the walk is skipped and the body holds exactly `limit` messages.
        assert!(check(limit).is_ok());
        // One message more is walked and refused, naming the key.
        let e = check(limit + 1).unwrap_err();
        assert!(
            e.message().contains("receivers.max_decoded_messages"),
            "{}",
            e.message()
        );
        // Larger bodies with few messages pass the walk: one field of 2,997 bytes.
        let mut ok = vec![0x0a, 0xb5, 0x17];
        ok.resize(3000, 0);
        assert!(
            check_message_budget(Receiver::RemoteWrite, MediaType::Protobuf, &ok, limit).is_ok()
        );
    }

    #[test]
    fn inflating_stops_at_the_decompressed_limit_for_every_encoding() {
        // 32 KiB of gzip that inflates to 16 MiB: refused once past the limit.
        let bomb = gzip(&vec![0u8; 16 << 20]);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let e = inflate(Receiver::Otlp, Compression::Gzip, &bomb, 1 << 20).unwrap_err();
        assert_eq!(e.kind(), "too_large");
        assert!(
            e.message().contains("receivers.max_decompressed_bytes"),
            "{}",
            e.message()
        );
        assert_eq!(
            inflate(Receiver::Otlp, Compression::Gzip, &bomb, 16 << 20)
                .unwrap()
                .len(),
            16 << 20
        );
        let snappy = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 4 << 20])
            .unwrap();
        let e = inflate(Receiver::RemoteWrite, Compression::Snappy, &snappy, 1 << 20).unwrap_err();
        assert_eq!(e.kind(), "too_large");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![1u8; 4 << 20]).unwrap();
        let z = z.finish().unwrap();
        let e = inflate(Receiver::Otlp, Compression::Deflate, &z, 1 << 20).unwrap_err();
        assert_eq!(e.kind(), "too_large");
        let e = inflate(Receiver::Otlp, Compression::Gzip, b"not gzip", 1 << 20).unwrap_err();
        assert_eq!(e.kind(), "malformed");
    }

    #[test]
    fn content_encodings_parse_case_insensitively() {
        assert_eq!(Compression::parse("GZIP"), Some(Compression::Gzip));
        assert_eq!(Compression::parse(""), Some(Compression::Identity));
        assert_eq!(Compression::parse("br"), None);
    }
}
