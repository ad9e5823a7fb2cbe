//! `POST /api/v1/write`: the Prometheus remote_write 1.0 receiver.
//!
//! The kernel ([`super::kernel`]) requires `Content-Type: application/x-protobuf` (what every
//! remote_write sender sends; a request without it is refused with 415, so a browser form
//! cannot post here), assumes snappy when `Content-Encoding` is absent (as Prometheus' own
//! receiver does) and refuses other encodings; this handler refuses a Content-Type `proto`
//! parameter or `X-Prometheus-Remote-Write-Version` naming remote_write 2.0 with 415. Bodies
//! are read up to `receivers.max_body_bytes` (413 beyond), inflated within
//! `receivers.max_decompressed_bytes` (413; the snappy header's announced size is checked before
//! inflating) and decoded by [`collectors::remote_write`] (400 with the decoder's message).
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
//!
//! Samples outside the intake window ([`crate::ingest::window`]: older than
//! `database.retention_days`, or further ahead than `limits.future_tolerance`) refuse the whole
//! request with 400, nothing of it stored, as Prometheus' own receiver answers remote_write 1.0
//! (its appender rolls the request back on the first out-of-bounds sample). The message names
//! both keys and the first such sample; the refused samples are counted by reason.

use super::{Accepted, Payload, Receiver, ReceiverError, ReceiverState};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use collectors::remote_write::{self as decoder, DecodedWrite};

/// The handler of `POST /api/v1/write`; the kernel has checked the token, Content-Type
/// (`application/x-protobuf`), Content-Encoding (snappy) and read the body.
pub async fn write(
    State(st): State<ReceiverState>,
    headers: HeaderMap,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    check_headers(&headers)?;
    let compressed_bytes = payload.raw.len();
    let now = model::clock::now_ms();
    let mut resolver = st.known_series(now);
    let DecodedWrite {
        batch,
        resolved,
        mut stats,
    } = payload
        .decode(move |raw| {
            decoder::decode_protobuf_resolving(raw, &mut resolver)
                .map_err(|e| ReceiverError::Malformed(e.to_string()))
        })
        .await?;
    stats.compressed_bytes = compressed_bytes;
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
            return Err(ReceiverError::Malformed(format!(
                "series {}: timestamp {} ms is outside what PostgreSQL can store (4714 BC to 294276 AD); send Unix milliseconds",
                s.key, bad.ts
            )));
        }
    }
    let outside = st.window.count(&batch, now);
    if !outside.is_empty() {
        outside.count_in(&st.app.metrics);
        return Err(ReceiverError::OverLimit(format!(
            "{}; the whole request ({} samples) was refused and nothing of it stored",
            st.window.message(&outside),
            stats.samples
        )));
    }
    if !batch.is_empty() || !resolved.is_empty() {
        tracing::debug!(
            samples = stats.samples,
            series = batch.series.len(),
            known_samples = resolved.len(),
            metadata = stats.metadata,
            bytes = stats.compressed_bytes,
            "remote_write request accepted"
        );
        st.wait_for_room(
            stats.samples,
            crate::ingest::footprint::batch_bytes(&batch)
                + resolved.len() * std::mem::size_of::<model::ResolvedSample>(),
        )
        .await;
        if let Some(refused) = st.push_with_resolved(Receiver::RemoteWrite, batch, resolved)? {
            return Err(ReceiverError::OverLimit(refused.message));
        }
    }
    // An empty request, or exemplars only: nothing to store, and nothing to retry.
    Ok(Accepted::empty(StatusCode::NO_CONTENT))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ReceiverError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map(str::trim).map_err(|_| {
                ReceiverError::Malformed(format!("header {name} is not visible ASCII"))
            })
        })
        .transpose()
}

fn unsupported(message: String) -> ReceiverError {
    ReceiverError::UnsupportedMediaType(message)
}

const V2_HINT: &str = "remote_write 2.0 is not supported; configure the sender for remote_write 1.0 (Prometheus: protobuf_message: prometheus.WriteRequest)";

/// What the kernel does not check: the `proto` parameter of the Content-Type and the
/// remote_write version header, which name remote_write 2.0 when a sender is configured for it.
fn check_headers(headers: &HeaderMap) -> Result<(), ReceiverError> {
    if let Some(ct) = header_str(headers, header::CONTENT_TYPE.as_str())? {
        for param in ct.split(';').skip(1).map(str::trim) {
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

    use crate::receivers::test_headers as headers;

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
    fn headers_naming_remote_write_2_get_415_with_the_fix() {
        for h in [
            (
                "content-type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
            ("x-prometheus-remote-write-version", "2.0.0"),
        ] {
            let e = check_headers(&headers(&[h])).unwrap_err();
            assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{h:?}");
            assert!(
                e.message().contains("remote_write 2.0 is not supported"),
                "{h:?}: {}",
                e.message()
            );
        }
    }
}
