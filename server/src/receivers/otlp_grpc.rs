//! OTLP/gRPC receiver: the `MetricsService`, `TraceService` and `LogsService` of
//! `opentelemetry-proto` served by tonic on `receivers.otlp_grpc_listen` (4317 by default),
//! sharing the ingest steps of the HTTP receiver ([`super::otlp`]).
//!
//! Status codes, per the OTLP specification's "OTLP/gRPC Response" and "OTLP/gRPC
//! Throttling" sections:
//!
//! - a message that does not decode, or is larger than `receivers.max_decompressed_bytes`:
//!   `INVALID_ARGUMENT` (tonic's own decoder answers these before our code runs);
//! - a full ingest queue, or shutdown: **`UNAVAILABLE`** with a `google.rpc.RetryInfo` detail
//!   carrying the delay. The spec lets a server use `RESOURCE_EXHAUSTED` too, but clients
//!   treat that as retryable only when RetryInfo is present and understood, while every OTLP
//!   exporter retries `UNAVAILABLE`; the condition is transient, so `UNAVAILABLE` is the
//!   answer that loses nothing;
//! - refused credentials: `UNAUTHENTICATED` / `PERMISSION_DENIED`, from [`check_auth`];
//! - refused data points: OK with `partial_success`, as over HTTP.
//!
//! Gzip-compressed messages are accepted (`grpc-encoding: gzip`).

use super::otlp::{grpc_code, Ingest, PartialSuccess, ProtoAny, RpcStatus};
use super::{ReceiverError, ReceiverState};
use opentelemetry_proto::tonic::collector::logs::v1::{
    logs_service_server::{LogsService, LogsServiceServer},
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    metrics_service_server::{MetricsService, MetricsServiceServer},
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    trace_service_server::{TraceService, TraceServiceServer},
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::future::Future;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

const RECEIVER: &str = super::otlp::RECEIVER;

/// The three OTLP services over one receiver state.
#[derive(Clone)]
pub struct OtlpGrpc {
    st: ReceiverState,
}

/// Checks the caller's credentials in the request metadata before anything is decoded into
/// the store. Bearer tokens are the HTTP receivers' `[[auth.tokens]]`, presented as gRPC
/// `authorization: Bearer <token>` metadata.
pub fn check_auth(
    st: &ReceiverState,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<(), Status> {
    if !st.app.guard.auth_required() {
        return Ok(());
    }
    let presented = metadata.get("authorization").and_then(|v| v.to_str().ok());
    st.app
        .guard
        .authorize(RECEIVER, presented)
        .map(|_| ())
        .map_err(|failure| {
            let e = super::auth_error(RECEIVER, failure);
            answered(st, &e);
            status(e)
        })
}

fn answered(st: &ReceiverState, e: &ReceiverError) {
    st.app
        .metrics
        .receiver_answered(RECEIVER, e.status.as_u16(), Some(&e.message));
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The gRPC status for a refusal; queue-full and shutdown become `UNAVAILABLE` with RetryInfo.
pub fn status(e: ReceiverError) -> Status {
    let code = match e.retry_after {
        Some(_) => tonic::Code::Unavailable,
        None => grpc_code(e.status),
    };
    let details = e
        .retry_after
        .map(|secs| {
            vec![ProtoAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: secs as i64,
                        nanos: 0,
                    }),
                }
                .encode_to_vec(),
            }]
        })
        .unwrap_or_default();
    if details.is_empty() {
        return Status::new(code, e.message);
    }
    let body = RpcStatus {
        code: code as i32,
        message: e.message.clone(),
        details,
    }
    .encode_to_vec();
    Status::with_details(code, e.message, body.into())
}

impl OtlpGrpc {
    pub fn new(st: ReceiverState) -> Self {
        Self { st }
    }

    async fn run<T: Ingest>(&self, req: Request<T>) -> Result<PartialSuccess, Status> {
        check_auth(&self.st, req.metadata())?;
        match T::ingest(&self.st, req.get_ref()).await {
            Ok(p) => {
                self.st.app.metrics.receiver_answered(
                    RECEIVER,
                    200,
                    (!p.message.is_empty()).then_some(p.message.as_str()),
                );
                Ok(p)
            }
            Err(e) => {
                answered(&self.st, &e);
                Err(status(e))
            }
        }
    }
}

fn partial<P>(p: PartialSuccess, make: impl FnOnce(i64, String) -> P) -> Option<P> {
    (p.rejected > 0 || !p.message.is_empty()).then(|| make(p.rejected, p.message))
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let p = self.run(req).await?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: partial(p, |rejected_data_points, error_message| {
                ExportMetricsPartialSuccess {
                    rejected_data_points,
                    error_message,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let p = self.run(req).await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: partial(p, |rejected_spans, error_message| {
                ExportTracePartialSuccess {
                    rejected_spans,
                    error_message,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let p = self.run(req).await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial(p, |rejected_log_records, error_message| {
                ExportLogsPartialSuccess {
                    rejected_log_records,
                    error_message,
                }
            }),
        }))
    }
}

/// Serves the three services on `listener` until `shutdown` resolves; requests in flight
/// finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    st: ReceiverState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let limit = st.config.max_decompressed_bytes;
    let svc = OtlpGrpc::new(st);
    tonic::transport::Server::builder()
        .add_service(
            MetricsServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        )
        .add_service(
            TraceServiceServer::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        )
        .add_service(
            LogsServiceServer::new(svc)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
        )
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}
