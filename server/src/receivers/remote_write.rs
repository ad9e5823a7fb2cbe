//! `POST /api/v1/write`: the Prometheus remote_write 1.0 receiver.
//!
//! Framing is checked as leniently as Prometheus' own receiver: a missing `Content-Encoding`,
//! `Content-Type` or `X-Prometheus-Remote-Write-Version` is accepted (the body is checked
//! anyway), but a header that names something else (gzip, JSON, remote_write 2.0) gets 415 with
//! what to send instead. Bodies are read up to `receivers.max_body_bytes` (413 beyond), then
//! decoded by [`collectors::remote_write`] (400 with the decoder's message when malformed, 413
//! when the announced decompressed size is over `receivers.max_decompressed_bytes`).
//!
//! # Status codes and Prometheus' retry logic
//!
//! Prometheus 2.42 retries a failed send with back-off on every 5xx, and on 429 only when
//! `queue_config.retry_on_http_429: true` (default false); any other 4xx makes it drop the
//! batch and log the response body. It honours `Retry-After` on both. So:
//!
//! - malformed or oversize requests get 400/413/415: retrying the same bytes cannot succeed;
//! - a full ingest queue gets **503** with `Retry-After` by default, not 429: with a default
//!   Prometheus a 429 would silently turn a short overload into lost data, while 503 makes it
//!   back off and resend, which is what a transient lack of room calls for.
//!   `receivers.queue_full_status = 429` is there for senders configured to retry 429 that
//!   want to tell overload from outage in their own metrics;
//! - shutdown (queue closed) gets 503 with `Retry-After`, so the sender resends to the
//!   restarted server;
//! - 204 only once the batch is in the ingest queue, which is drained on shutdown.
//!
//! Samples whose timestamp PostgreSQL cannot store are refused here with 400: accepted into the
//! queue they would make the batch writer retry a write that can never succeed.

use super::{ReceiverError, ReceiverState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use collectors::remote_write::{self as decoder, DecodedWrite, RemoteWriteError};

const RECEIVER: &str = "remote_write";
/// Bodies above this are decoded on the blocking pool; smaller ones decode in well under a
/// millisecond, cheaper than the hand-off.
const INLINE_DECODE_BYTES: usize = 256 << 10;

/// The handler of `POST /api/v1/write`.
pub async fn write(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    match accept(&st, &headers, body).await {
        Ok(()) => {
            st.app.metrics.receiver_answered(RECEIVER, 204, None);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            st.app
                .metrics
                .receiver_answered(RECEIVER, e.status.as_u16(), Some(&e.message));
            e.into_response()
        }
    }
}

async fn accept(st: &ReceiverState, headers: &HeaderMap, body: Body) -> Result<(), ReceiverError> {
    check_headers(headers)?;
    let body = super::read_body(
        headers,
        body,
        st.config.max_body_bytes,
        "send smaller requests (Prometheus: lower queue_config.max_samples_per_send)",
    )
    .await?;
    let max_decompressed = st.config.max_decompressed_bytes;
    let decoded = if body.len() <= INLINE_DECODE_BYTES {
        decoder::decode(&body, max_decompressed)
    } else {
        tokio::task::spawn_blocking(move || decoder::decode(&body, max_decompressed))
            .await
            .map_err(|e| {
                ReceiverError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("decoding the body failed unexpectedly: {e}"),
                )
            })?
    };
    let DecodedWrite { batch, stats } = decoded.map_err(|e| match e {
        RemoteWriteError::DecompressedTooLarge { .. } => ReceiverError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{e} (receivers.max_decompressed_bytes)"),
        ),
        e => ReceiverError::bad_request(e.to_string()),
    })?;
    st.app
        .metrics
        .receiver_exemplars_dropped
        .inc_by(stats.exemplars_dropped as u64);
    for s in &batch.series {
        if let Some(bad) = s
            .samples
            .iter()
            .find(|x| !store::pgcopy::timestamp_in_range(x.ts))
        {
            return Err(ReceiverError::bad_request(format!(
                "series {}: timestamp {} ms is outside what PostgreSQL can store (4714 BC to 294276 AD); send Unix milliseconds",
                s.key, bad.ts
            )));
        }
    }
    if batch.is_empty() {
        // An empty request, or exemplars only: nothing to store, and nothing to retry.
        return Ok(());
    }
    tracing::debug!(
        samples = stats.samples,
        series = batch.series.len(),
        metadata = stats.metadata,
        bytes = stats.compressed_bytes,
        "remote_write request accepted"
    );
    st.push(RECEIVER, batch)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ReceiverError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map(str::trim).map_err(|_| {
                ReceiverError::bad_request(format!("header {name} is not visible ASCII"))
            })
        })
        .transpose()
}

fn unsupported(message: String) -> ReceiverError {
    ReceiverError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
}

const V2_HINT: &str = "remote_write 2.0 is not supported; configure the sender for remote_write 1.0 (Prometheus: protobuf_message: prometheus.WriteRequest)";

fn check_headers(headers: &HeaderMap) -> Result<(), ReceiverError> {
    if let Some(enc) = header_str(headers, header::CONTENT_ENCODING.as_str())? {
        if !enc.eq_ignore_ascii_case("snappy") {
            return Err(unsupported(format!(
                "Content-Encoding {enc:?} is not supported; remote_write bodies are snappy block-compressed: send Content-Encoding: snappy"
            )));
        }
    }
    if let Some(ct) = header_str(headers, header::CONTENT_TYPE.as_str())? {
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !media.eq_ignore_ascii_case("application/x-protobuf") {
            return Err(unsupported(format!(
                "Content-Type {ct:?} is not supported; send Content-Type: application/x-protobuf with a snappy-compressed prometheus.WriteRequest"
            )));
        }
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("proto") {
                continue;
            }
            match v.trim().trim_matches('"') {
                "prometheus.WriteRequest" => {}
                "io.prometheus.write.v2.Request" => {
                    return Err(unsupported(format!("Content-Type {ct:?}: {V2_HINT}")))
                }
                other => {
                    return Err(unsupported(format!(
                        "Content-Type {ct:?}: protobuf message {other:?} is not supported; send prometheus.WriteRequest (remote_write 1.0)"
                    )))
                }
            }
        }
    }
    if let Some(v) = header_str(headers, "x-prometheus-remote-write-version")? {
        if v.starts_with("2.") {
            return Err(unsupported(format!(
                "X-Prometheus-Remote-Write-Version {v:?}: {V2_HINT}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn prometheus_headers_and_missing_headers_are_accepted() {
        // The four headers Prometheus 2.42 sends (fixtures/remote_write/README.md).
        check_headers(&headers(&[
            ("content-encoding", "snappy"),
            ("content-type", "application/x-protobuf"),
            ("x-prometheus-remote-write-version", "0.1.0"),
            ("user-agent", "Prometheus/2.42.0+ds"),
        ]))
        .unwrap();
        check_headers(&HeaderMap::new()).unwrap();
        check_headers(&headers(&[(
            "content-type",
            "application/x-protobuf;proto=prometheus.WriteRequest",
        )]))
        .unwrap();
    }

    #[test]
    fn headers_naming_another_format_get_415_with_the_fix() {
        for (h, needle) in [
            (
                ("content-encoding", "gzip"),
                "send Content-Encoding: snappy",
            ),
            (
                ("content-type", "application/json"),
                "application/x-protobuf",
            ),
            (
                (
                    "content-type",
                    "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                ),
                "remote_write 2.0 is not supported",
            ),
            (
                ("x-prometheus-remote-write-version", "2.0.0"),
                "remote_write 2.0 is not supported",
            ),
        ] {
            let e = check_headers(&headers(&[h])).unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{h:?}");
            assert!(e.message.contains(needle), "{h:?}: {}", e.message);
        }
    }
}
