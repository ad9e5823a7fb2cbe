//! OTLP/HTTP receiver: `POST /v1/metrics`, `/v1/traces` and `/v1/logs`, per the OTLP
//! specification's OTLP/HTTP section, and the ingest steps it shares with the gRPC receiver
//! ([`super::otlp_grpc`]).
//!
//! - `Content-Type: application/x-protobuf` (binary protobuf) or `application/json`
//!   (OTLP/JSON); anything else, or none, gets 415 saying which to send.
//! - `Content-Encoding: gzip`, `deflate` (zlib, RFC 1950) or `identity`; others get 415.
//! - Bodies over `receivers.max_body_bytes` (as sent) or `receivers.max_decompressed_bytes`
//!   (inflated) get 413.
//! - A malformed body gets 400 with an OTLP `google.rpc.Status` body, in the request's
//!   encoding, whose message names the problem.
//! - Success is 200 with an `Export*ServiceResponse` in the request's encoding: empty (JSON
//!   `{}`) when everything was stored, with `partial_success` (count and reasons) when some
//!   data points were refused. OTLP senders do not retry a partial success.
//! - A full ingest queue gets `receivers.queue_full_status` (503 by default, or 429) with
//!   `Retry-After`; OTLP exporters retry 429, 502, 503 and 504 and honour `Retry-After`.
//!
//! Metrics are mapped with [`collectors::otlp::metrics`]; the delta accumulator's new totals
//! are committed only once the batch is in the queue, so a refused request that the sender
//! retries is not counted twice.
//!
//! Traces become spanmetrics-style request/error/duration series plus failed and slow span
//! evidence, logs become counts by severity plus WARN+ record evidence ([`traces_received`],
//! [`logs_received`], built on `collectors::otlp::{traces, logs}` and [`crate::otlp_signals`]).

use super::{ReceiverError, ReceiverState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use collectors::otlp::{
    self, BodyEncoding, Compression, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportRequest, ExportTraceServiceRequest, OtlpError,
};
use prost::Message;

pub const RECEIVER: &str = "otlp";

/// What a successful export answers: nothing refused, or some data points refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    /// Refused data points (metrics), spans (traces) or log records (logs).
    pub rejected: i64,
    /// Why, for the sender's log; empty when nothing was refused.
    pub message: String,
}

impl PartialSuccess {
    fn add(&mut self, rejected: i64, message: &str) {
        self.rejected += rejected;
        if !message.is_empty() {
            if !self.message.is_empty() {
                self.message.push_str("; ");
            }
            self.message.push_str(message);
        }
    }
}

/// Maps, validates and enqueues one metrics request. Shared by HTTP and gRPC.
pub fn ingest_metrics(
    st: &ReceiverState,
    req: &ExportMetricsServiceRequest,
) -> Result<PartialSuccess, ReceiverError> {
    // Held across the push so two requests for one delta series cannot interleave between
    // reading the running total and committing it; `push` never waits.
    let mut acc = st
        .app
        .otlp_metrics
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut mapped = acc.map(req);
    st.app
        .metrics
        .receiver_exemplars_dropped
        .inc_by(mapped.exemplars_dropped as u64);
    let mut partial = PartialSuccess::default();
    // A timestamp PostgreSQL cannot store would make the writer retry forever: refuse it here.
    let before = mapped.batch.series.len();
    mapped.batch.series.retain(|s| {
        s.samples
            .iter()
            .all(|x| store::pgcopy::timestamp_in_range(x.ts))
    });
    if let Some(msg) = mapped.rejection_message() {
        partial.add(mapped.rejected_points as i64, &msg);
    }
    let out_of_range = before - mapped.batch.series.len();
    if out_of_range > 0 {
        partial.add(
            out_of_range as i64,
            &format!("{out_of_range} series had a time_unix_nano outside what PostgreSQL can store (4714 BC to 294276 AD); send Unix nanoseconds"),
        );
    }
    let pending = std::mem::take(&mut mapped.pending);
    if mapped.batch.is_empty() {
        acc.commit(pending);
        return Ok(partial);
    }
    tracing::debug!(
        points = mapped.accepted_points,
        series = mapped.batch.series.len(),
        rejected = mapped.rejected_points,
        "OTLP metrics accepted"
    );
    match st.push(RECEIVER, mapped.batch) {
        Ok(()) => {
            acc.commit(pending);
            Ok(partial)
        }
        // The shared series limits refused some series and stored the rest: for OTLP that is
        // a partial success, which the sender must not retry.
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            acc.commit(pending);
            partial.add(0, &e.message);
            Ok(partial)
        }
        Err(e) => Err(e),
    }
}

/// Derives span series and stores failed/slow span evidence ([`crate::otlp_signals`]).
pub async fn traces_received(
    st: &ReceiverState,
    req: &ExportTraceServiceRequest,
) -> Result<PartialSuccess, ReceiverError> {
    let r = crate::otlp_signals::ingest_traces(st, req).await?;
    Ok(PartialSuccess {
        rejected: r.rejected,
        message: r.message,
    })
}

/// Counts log records by severity and stores WARN+ records as evidence
/// ([`crate::otlp_signals`]).
pub async fn logs_received(
    st: &ReceiverState,
    req: &ExportLogsServiceRequest,
) -> Result<PartialSuccess, ReceiverError> {
    let r = crate::otlp_signals::ingest_logs(st, req).await?;
    Ok(PartialSuccess {
        rejected: r.rejected,
        message: r.message,
    })
}

/// How each signal's decoded request is stored; shared by HTTP and gRPC.
pub trait Ingest: ExportRequest + Sized {
    fn ingest(
        st: &ReceiverState,
        req: &Self,
    ) -> impl std::future::Future<Output = Result<PartialSuccess, ReceiverError>> + Send;
}

impl Ingest for ExportMetricsServiceRequest {
    async fn ingest(st: &ReceiverState, req: &Self) -> Result<PartialSuccess, ReceiverError> {
        ingest_metrics(st, req)
    }
}

impl Ingest for ExportTraceServiceRequest {
    async fn ingest(st: &ReceiverState, req: &Self) -> Result<PartialSuccess, ReceiverError> {
        traces_received(st, req).await
    }
}

impl Ingest for ExportLogsServiceRequest {
    async fn ingest(st: &ReceiverState, req: &Self) -> Result<PartialSuccess, ReceiverError> {
        logs_received(st, req).await
    }
}

/// `POST /v1/metrics`
pub async fn metrics(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    export::<ExportMetricsServiceRequest>(&st, &headers, body).await
}

/// `POST /v1/traces`
pub async fn traces(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    export::<ExportTraceServiceRequest>(&st, &headers, body).await
}

/// `POST /v1/logs`
pub async fn logs(State(st): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    export::<ExportLogsServiceRequest>(&st, &headers, body).await
}

async fn export<T: Ingest>(st: &ReceiverState, headers: &HeaderMap, body: Body) -> Response {
    let encoding = match content_type(headers) {
        Ok(e) => e,
        Err(e) => return refuse(st, e, None),
    };
    let result = async {
        let compression = content_encoding(headers)?;
        let body = super::read_body(
            headers,
            body,
            st.config.max_body_bytes,
            "send smaller batches (lower the exporter's max export batch size)",
        )
        .await?;
        let req: T = otlp::decode_body(
            &body,
            encoding,
            compression,
            st.config.max_decompressed_bytes,
        )
        .map_err(|e| match e {
            OtlpError::DecompressedTooLarge { .. } => ReceiverError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{e} (receivers.max_decompressed_bytes)"),
            ),
            e => ReceiverError::bad_request(e.to_string()),
        })?;
        T::ingest(st, &req).await
    }
    .await;
    match result {
        Ok(partial) => {
            st.app.metrics.receiver_answered(
                RECEIVER,
                200,
                (!partial.message.is_empty()).then_some(partial.message.as_str()),
            );
            success::<T>(encoding, &partial)
        }
        Err(e) => refuse(st, e, Some(encoding)),
    }
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

fn content_type(headers: &HeaderMap) -> Result<BodyEncoding, ReceiverError> {
    let ct = header_str(headers, header::CONTENT_TYPE.as_str())?.unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/x-protobuf")
        || media.eq_ignore_ascii_case("application/protobuf")
    {
        Ok(BodyEncoding::Protobuf)
    } else if media.eq_ignore_ascii_case("application/json") {
        Ok(BodyEncoding::Json)
    } else {
        let what = if ct.is_empty() {
            "no Content-Type".to_string()
        } else {
            format!("Content-Type {ct:?}")
        };
        Err(ReceiverError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{what} is not an OTLP encoding; send Content-Type: application/x-protobuf (binary protobuf) or application/json (OTLP/JSON)"),
        ))
    }
}

fn content_encoding(headers: &HeaderMap) -> Result<Compression, ReceiverError> {
    match header_str(headers, header::CONTENT_ENCODING.as_str())? {
        None => Ok(Compression::Identity),
        Some(e) if e.is_empty() || e.eq_ignore_ascii_case("identity") => Ok(Compression::Identity),
        Some(e) if e.eq_ignore_ascii_case("gzip") => Ok(Compression::Gzip),
        Some(e) if e.eq_ignore_ascii_case("deflate") => Ok(Compression::Deflate),
        Some(e) => Err(ReceiverError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {e:?} is not supported; send gzip, deflate (zlib) or an uncompressed body"),
        )),
    }
}

/// `google.rpc.Status`, the body of OTLP error responses (and gRPC status details).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// The gRPC status code matching an HTTP refusal (for the `google.rpc.Status` body).
pub fn grpc_code(status: StatusCode) -> tonic::Code {
    match status.as_u16() {
        400 | 413 | 415 => tonic::Code::InvalidArgument,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        429 => tonic::Code::ResourceExhausted,
        503 => tonic::Code::Unavailable,
        _ => tonic::Code::Internal,
    }
}

fn refuse(st: &ReceiverState, e: ReceiverError, encoding: Option<BodyEncoding>) -> Response {
    st.app
        .metrics
        .receiver_answered(RECEIVER, e.status.as_u16(), Some(&e.message));
    let Some(encoding) = encoding else {
        // The encoding is what is wrong: answer in plain text, which every sender can log.
        return e.into_response();
    };
    let code = grpc_code(e.status) as i32;
    let (ct, body) = match encoding {
        BodyEncoding::Protobuf => (
            "application/x-protobuf",
            RpcStatus {
                code,
                message: e.message.clone(),
                details: vec![],
            }
            .encode_to_vec(),
        ),
        BodyEncoding::Json => (
            "application/json",
            serde_json::json!({"code": code, "message": e.message})
                .to_string()
                .into_bytes(),
        ),
    };
    let mut resp = (e.status, [(header::CONTENT_TYPE, ct)], body).into_response();
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn success<T: ExportRequest>(encoding: BodyEncoding, partial: &PartialSuccess) -> Response {
    let has_partial = partial.rejected > 0 || !partial.message.is_empty();
    match encoding {
        BodyEncoding::Protobuf => {
            // Every Export*ServiceResponse is `partial_success = 1` holding
            // `rejected_<things> = 1` (int64) and `error_message = 2`, so one message serves
            // all three signals.
            let body = if has_partial {
                ExportResponse {
                    partial_success: Some(ExportPartialSuccess {
                        rejected: partial.rejected,
                        error_message: partial.message.clone(),
                    }),
                }
                .encode_to_vec()
            } else {
                Vec::new()
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                body,
            )
                .into_response()
        }
        BodyEncoding::Json => {
            let body = if has_partial {
                let field = match T::SIGNAL {
                    otlp::Signal::Metrics => "rejectedDataPoints",
                    otlp::Signal::Traces => "rejectedSpans",
                    otlp::Signal::Logs => "rejectedLogRecords",
                };
                serde_json::json!({"partialSuccess": {
                    field: partial.rejected.to_string(),
                    "errorMessage": partial.message,
                }})
            } else {
                serde_json::json!({})
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// The common shape of `Export{Metrics,Trace,Logs}ServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<ExportPartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ExportPartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;

    #[test]
    fn partial_success_body_decodes_as_the_official_response_message() {
        let resp = ExportResponse {
            partial_success: Some(ExportPartialSuccess {
                rejected: 3,
                error_message: "three".into(),
            }),
        }
        .encode_to_vec();
        let official = ExportMetricsServiceResponse::decode(&resp[..]).unwrap();
        let p = official.partial_success.unwrap();
        assert_eq!(
            (p.rejected_data_points, p.error_message.as_str()),
            (3, "three")
        );
    }

    #[test]
    fn content_types_other_than_protobuf_and_json_get_415_naming_both() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let e = content_type(&h).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(
            e.message.contains("application/x-protobuf"),
            "{}",
            e.message
        );
        assert!(e.message.contains("application/json"), "{}", e.message);
        h.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(content_type(&h).unwrap(), BodyEncoding::Json);
    }
}
