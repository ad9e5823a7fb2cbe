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
//! - refused credentials: `UNAUTHENTICATED` / `PERMISSION_DENIED`, from an interceptor that
//!   reads the `authorization` metadata before the message is decoded, so an unauthenticated
//!   sender cannot make the server inflate and decode anything;
//! - refused data points: OK with `partial_success`, as over HTTP.
//!
//! Gzip-compressed messages are accepted (`grpc-encoding: gzip`); tonic inflates them within
//! `receivers.max_decompressed_bytes`. Before tonic decodes a message, its protobuf messages
//! are counted against `receivers.max_decoded_messages` ([`super::grpc_budget`]), as over HTTP. Requests are served behind the receivers' decode
//! semaphore ([`super::body::DecodePool`]), so decoding, like HTTP bodies, is bounded in how
//! many run at once.

use super::grpc_budget::{Budget, MessageBudget};
use super::kernel;
use super::otlp::{Ingest, PartialSuccess};
use super::{Receiver, ReceiverError, ReceiverState};
use opentelemetry_proto::tonic::collector::logs::v1::{
    logs_service_server::{LogsService, LogsServiceServer},
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    metrics_service_server::{MetricsService, MetricsServiceServer},
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    trace_service_server::{TraceService, TraceServiceServer},
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::future::Future;
use std::time::Duration;
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The three OTLP services over one receiver state.
#[derive(Clone)]
pub struct OtlpGrpc {
    st: ReceiverState,
}

/// The gRPC status for a refusal; retryable ones carry a `google.rpc.RetryInfo` with the delay.
pub fn status(e: &ReceiverError) -> Status {
    let code = e.grpc_code();
    match e.retry_after() {
        Some(secs) => Status::with_error_details(
            code,
            e.message(),
            ErrorDetails::with_retry_info(Some(Duration::from_secs(secs))),
        ),
        None => Status::new(code, e.message()),
    }
}

/// A pipewatch API token (`pwt_...`) in the metadata: the interceptor cannot ask the database
/// (it is synchronous), so the handler checks it before anything is stored.
#[derive(Debug, Clone)]
struct ApiTokenPresented {
    /// The whole `authorization` value, for the `[[auth.tokens]]` check when it is not one.
    header: String,
    secret: String,
}

/// The interceptor: checks the bearer token in the request metadata (`authorization: Bearer
/// <token>`, the HTTP receivers' `[[auth.tokens]]`) before tonic decodes the message. A
/// pipewatch API token is passed on to the handler, which accepts it with the ingest or admin
/// scope, as the HTTP receivers do.
pub fn check_auth(st: &ReceiverState, mut req: Request<()>) -> Result<Request<()>, Status> {
    let presented = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let api_token = presented.as_deref().and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        let secret = rest.trim();
        (scheme.eq_ignore_ascii_case("bearer") && secret.starts_with(store::auth::TOKEN_PREFIX))
            .then(|| secret.to_string())
    });
    if let (true, Some(secret), Some(header)) =
        (st.app.guard.auth_required(), api_token, presented.clone())
    {
        req.extensions_mut()
            .insert(ApiTokenPresented { header, secret });
        return Ok(req);
    }
    match kernel::authorize(st, Receiver::Otlp, presented.as_deref()) {
        Ok(()) => Ok(req),
        Err(e) => {
            kernel::answered_grpc(st, Err(&e));
            Err(status(&e))
        }
    }
}

impl OtlpGrpc {
    pub fn new(st: ReceiverState) -> Self {
        Self { st }
    }

    /// A pipewatch API token passed on by [`check_auth`]: accepted with the ingest or admin
    /// scope; otherwise the `[[auth.tokens]]` check decides, as for any other token.
    async fn check_api_token(&self, t: &ApiTokenPresented) -> Result<(), ReceiverError> {
        match self.st.app.store.api_token(&t.secret).await {
            Ok(Some(info))
                if matches!(
                    info.scope,
                    model::auth::TokenScope::Ingest | model::auth::TokenScope::Admin
                ) =>
            {
                Ok(())
            }
            Ok(Some(info)) => Err(ReceiverError::Forbidden(format!(
                "otlp: API token {:?} has the {} scope; sending data needs an ingest (or admin) token: create one with `pipewatch token create <name> --scope ingest`",
                info.name, info.scope
            ))),
            Ok(None) => kernel::authorize(&self.st, Receiver::Otlp, Some(&t.header)),
            Err(e) => Err(ReceiverError::storage("token check", &e)),
        }
    }

    async fn run<T: Ingest>(&self, req: Request<T>) -> Result<T::Response, Status> {
        if let Some(t) = req.extensions().get::<ApiTokenPresented>().cloned() {
            if let Err(e) = self.check_api_token(&t).await {
                kernel::answered_grpc(&self.st, Err(&e));
                return Err(status(&e));
            }
        }
        match T::ingest(&self.st, req.into_inner()).await {
            Ok(p) => {
                let PartialSuccess { rejected, message } = p;
                kernel::answered_grpc(&self.st, Ok((!message.is_empty()).then_some(&message)));
                Ok(T::response(PartialSuccess { rejected, message }))
            }
            Err(e) => {
                kernel::answered_grpc(&self.st, Err(&e));
                Err(status(&e))
            }
        }
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.run(req).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.run(req).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.run(req).await.map(Response::new)
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
    let budget = Budget {
        max_messages: st.config.max_decoded_messages,
        max_bytes: limit,
    };
    let svc = OtlpGrpc::new(st.clone());
    let auth = {
        let st = st.clone();
        move |req: Request<()>| check_auth(&st, req)
    };
    tonic::transport::Server::builder()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
            st.decodes.semaphore(),
        ))
        .add_service(InterceptedService::new(
            MessageBudget::new(
                MetricsServiceServer::new(svc.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(limit),
                budget,
            ),
            auth.clone(),
        ))
        .add_service(InterceptedService::new(
            MessageBudget::new(
                TraceServiceServer::new(svc.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(limit),
                budget,
            ),
            auth.clone(),
        ))
        .add_service(InterceptedService::new(
            MessageBudget::new(
                LogsServiceServer::new(svc)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(limit),
                budget,
            ),
            auth,
        ))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}
