//! The message budget for OTLP/gRPC: counts the protobuf messages of a request on the wire
//! before tonic decodes it, as the HTTP receivers do (`receivers.max_decoded_messages`, see
//! `collectors::protobuf_budget`).
//!
//! tonic's generated services decode with prost inside their own codec, so the count cannot go
//! into our handler (too late: the 2.3 GB of issue 9 are allocated by then). This layer sits
//! between the token interceptor and the generated service: it reads the request's gRPC frame
//! (within `receivers.max_decompressed_bytes`), inflates it if it is gzip-compressed (within
//! the same limit, on the blocking pool), counts, and either refuses the request with
//! `INVALID_ARGUMENT` — the OTLP specification's non-retryable code for a request that can never
//! succeed as sent — or hands the same bytes on to the service. Running after the interceptor
//! keeps issue 9's other fix: nothing is read or inflated for a sender without a valid token.

use super::body::{check_message_budget, inflate, Compression};
use super::kind::MediaType;
use super::{Receiver, ReceiverError};
use axum::body::Bytes;
use axum::http;
use http_body_util::{BodyExt, Full, Limited};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::server::NamedService;

/// A gRPC message frame's header: compressed flag (1 byte) and big-endian length (4 bytes).
const FRAME_HEADER: usize = 5;

/// The layer's settings, from `[receivers]`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// `receivers.max_decoded_messages` (0 = no limit: the layer passes requests through).
    pub max_messages: usize,
    /// `receivers.max_decompressed_bytes`: the most bytes a message may have, before or after
    /// inflating.
    pub max_bytes: usize,
}

/// Wraps a generated OTLP service (see the module docs).
#[derive(Debug, Clone)]
pub struct MessageBudget<S> {
    inner: S,
    budget: Budget,
}

impl<S> MessageBudget<S> {
    pub fn new(inner: S, budget: Budget) -> Self {
        Self { inner, budget }
    }
}

impl<S: NamedService> NamedService for MessageBudget<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> tower::Service<http::Request<Body>> for MessageBudget<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one that serves this request (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let budget = self.budget;
        if budget.max_messages == 0 {
            return Box::pin(inner.call(req));
        }
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let gzip = parts
                .headers
                .get("grpc-encoding")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            // A unary request is one frame; a little over one message's worth is all it may
            // send. Anything longer is refused here as tonic would refuse it.
            let read_limit = budget.max_bytes.saturating_add(FRAME_HEADER);
            let bytes = match Limited::new(body, read_limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let err = if e.is::<http_body_util::LengthLimitError>() {
                        ReceiverError::TooLarge(format!(
                            "message is larger than {} bytes (receivers.max_decompressed_bytes); send smaller batches or raise the limit",
                            budget.max_bytes
                        ))
                    } else {
                        ReceiverError::Malformed(format!("reading the request failed: {e}"))
                    };
                    return Ok(refusal(&err));
                }
            };
            let checked = {
                let bytes = bytes.clone();
                tokio::task::spawn_blocking(move || check(&bytes, gzip, budget)).await
            };
            match checked {
                Ok(Ok(())) => {
                    let req = http::Request::from_parts(parts, Body::new(Full::new(bytes)));
                    inner.call(req).await
                }
                Ok(Err(e)) => Ok(refusal(&e)),
                Err(e) => Ok(refusal(&ReceiverError::Internal(format!(
                    "counting the request's messages failed unexpectedly: {e}"
                )))),
            }
        })
    }
}

/// Counts the messages of every frame in `bytes`. Malformed framing is left to tonic, whose
/// error for it is the one clients expect.
fn check(bytes: &Bytes, gzip: bool, budget: Budget) -> Result<(), ReceiverError> {
    let mut rest = &bytes[..];
    while rest.len() >= FRAME_HEADER {
        let compressed = rest[0] == 1;
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let Some(frame) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
            return Ok(());
        };
        let compression = if compressed && gzip {
            Compression::Gzip
        } else if compressed {
            // An encoding tonic does not accept either: let it answer.
            return Ok(());
        } else {
            Compression::Identity
        };
        let message = inflate(Receiver::Otlp, compression, frame, budget.max_bytes)?;
        check_message_budget(
            Receiver::Otlp,
            MediaType::Protobuf,
            &message,
            budget.max_messages,
        )?;
        rest = &rest[FRAME_HEADER + len..];
    }
    Ok(())
}

/// A trailers-only gRPC answer carrying the refusal's status.
fn refusal(e: &ReceiverError) -> http::Response<Body> {
    super::otlp_grpc::status(e).into_http()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn frame(flag: u8, payload: &[u8]) -> Bytes {
        let mut v = vec![flag];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v.into()
    }

    const BUDGET: Budget = Budget {
        max_messages: 1000,
        max_bytes: 16 << 20,
    };

    #[test]
    fn empty_messages_past_the_budget_are_refused_plain_and_gzipped() {
        let empties = [0x0a, 0x00].repeat(5000);
        let e = check(&frame(0, &empties), false, BUDGET).unwrap_err();
        assert!(
            e.message().contains("receivers.max_decoded_messages"),
            "{e}"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&empties).unwrap();
        let e = check(&frame(1, &gz.finish().unwrap()), true, BUDGET).unwrap_err();
        assert!(
            e.message().contains("receivers.max_decoded_messages"),
            "{e}"
        );
    }

    #[test]
    fn a_message_within_the_budget_passes() {
        let some = [0x0a, 0x00].repeat(999);
        assert!(check(&frame(0, &some), false, BUDGET).is_ok());
    }

    #[test]
    fn a_gzip_bomb_is_refused_by_size_before_it_is_counted() {
        let zeros = vec![0u8; 64 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&zeros).unwrap();
        let e = check(&frame(1, &gz.finish().unwrap()), true, BUDGET).unwrap_err();
        assert!(
            e.message().contains("receivers.max_decompressed_bytes"),
            "{e}"
        );
    }
}
