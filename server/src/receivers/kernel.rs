//! The receiver kernel: the one middleware every push route runs through, so each protocol
//! handler is only "decode, validate, push".
//!
//! In order, before the handler:
//! 1. bearer token for the route's [`Receiver`] (`[[auth.tokens]]`): 401 / 403;
//! 2. cross-site browser requests (`Sec-Fetch-Site: cross-site`, or an `Origin` that is not
//!    this server): 403;
//! 3. `Content-Type` must be one of the protocol's media types: 415 (a form posted from a
//!    foreign page cannot set them without a CORS preflight, which pipewatch never grants);
//! 4. `Content-Encoding` must be one the protocol uses: 415;
//! 5. the body is read with `receivers.max_body_bytes`: 413.
//!
//! A request refused before its body was read has the body drained (bounded in bytes and
//! time) first, so a keep-alive sender's next request on the same connection is not lost;
//! when it cannot be drained the answer says `Connection: close`.
//!
//! After the handler: the answer is counted in `pipewatch_receiver_requests_total` for its
//! receiver and code, refusals are logged (at most one line per receiver and status every
//! [`LOG_EVERY`], with the count of the ones left out), and the error body is written in the
//! protocol's shape (OTLP: `google.rpc.Status` in the request's encoding; Alertmanager: a JSON
//! string; others: plain text).

use super::body::{self, Compression, Limits, Payload};
use super::kind::{MediaType, Receiver};
use super::{AcceptedNote, ReceiverError, ReceiverState};
use crate::guard::AuthFailure;
use crate::telemetry::GuardLabels;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prost::Message;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest time spent discarding the body of a refused request.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);
/// One refusal log line per receiver and status per this interval.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// State of the kernel layer of one route.
#[derive(Clone)]
pub struct Route {
    pub st: ReceiverState,
    pub receiver: Receiver,
}

/// The middleware; see the module docs.
pub async fn kernel(State(route): State<Route>, req: Request, next: Next) -> Response {
    let Route { st, receiver } = route;
    let (mut parts, body) = req.into_parts();
    let limits = Limits {
        max_body_bytes: st.config.max_body_bytes,
        max_decompressed_bytes: st.config.max_decompressed_bytes,
        max_decoded_messages: st.config.max_decoded_messages,
    };
    // A pipewatch API token with the ingest or admin scope, checked by the auth layer.
    let api_token = parts.extensions.get::<crate::auth::IngestToken>().is_some();
    let admitted = admit(
        &st,
        receiver,
        &parts.headers,
        parts.uri.authority(),
        api_token,
    );
    let (media, compression) = match admitted {
        Ok(framing) => framing,
        Err((e, media)) => {
            let drained =
                body::drain(&parts.headers, body, limits.max_body_bytes, DRAIN_WITHIN).await;
            return finish(&st, receiver, media, e.into_response(), !drained);
        }
    };
    let raw = match body::read(receiver, &parts.headers, body, limits.max_body_bytes).await {
        Ok(raw) => raw,
        Err(unread) => {
            return finish(
                &st,
                receiver,
                Some(media),
                unread.error.into_response(),
                unread.close,
            )
        }
    };
    parts.extensions.insert(Payload::new(
        receiver,
        media,
        compression,
        raw,
        limits,
        st.decodes.clone(),
    ));
    let resp = next.run(Request::from_parts(parts, Body::empty())).await;
    finish(&st, receiver, Some(media), resp, false)
}

/// Steps 1 to 4 of the module docs. On refusal, also the media type when it was readable, so
/// the error can be written in it.
fn admit(
    st: &ReceiverState,
    receiver: Receiver,
    headers: &HeaderMap,
    authority: Option<&axum::http::uri::Authority>,
    api_token: bool,
) -> Result<(MediaType, Compression), (ReceiverError, Option<MediaType>)> {
    let header_str = |name: header::HeaderName| {
        headers
            .get(&name)
            .map(|v| {
                v.to_str().map(str::trim).map_err(|_| {
                    ReceiverError::Malformed(format!("header {name} is not visible ASCII"))
                })
            })
            .transpose()
    };
    if st.app.guard.auth_required() && !api_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(failure) = st.app.guard.authorize(receiver.name(), presented) {
            count_auth_failure(st, receiver, failure);
            return Err((auth_error(receiver, failure), None));
        }
    }
    cross_site(receiver, headers, authority).map_err(|e| (e, None))?;
    let ct = header_str(header::CONTENT_TYPE).map_err(|e| (e, None))?;
    let media = ct.and_then(MediaType::parse);
    let media = match media {
        Some(m) if receiver.media_types().contains(&m) => m,
        _ => {
            let what = match ct {
                None | Some("") => "no Content-Type".to_string(),
                Some(ct) => format!("Content-Type {ct:?}"),
            };
            return Err((
                ReceiverError::UnsupportedMediaType(format!(
                    "{what} is not supported by {receiver}; {}",
                    receiver.content_type_hint()
                )),
                None,
            ));
        }
    };
    let compression = match header_str(header::CONTENT_ENCODING).map_err(|e| (e, Some(media)))? {
        None => receiver.encodings()[0],
        Some(enc) => match Compression::parse(enc) {
            Some(c) if receiver.encodings().contains(&c) => c,
            _ => {
                return Err((
                    ReceiverError::UnsupportedMediaType(format!(
                        "Content-Encoding {enc:?} is not supported by {receiver}; {}",
                        encoding_hint(receiver)
                    )),
                    Some(media),
                ))
            }
        },
    };
    Ok((media, compression))
}

fn encoding_hint(receiver: Receiver) -> &'static str {
    match receiver {
        Receiver::RemoteWrite => {
            "remote_write bodies are snappy block-compressed: send Content-Encoding: snappy"
        }
        Receiver::Otlp => "send gzip, deflate (zlib) or an uncompressed body",
        Receiver::Dq
        | Receiver::OpenLineage
        | Receiver::Alertmanager
        | Receiver::Events
        | Receiver::DriftProfile => "send the JSON plain or with Content-Encoding: gzip",
    }
}

/// Refuses requests a browser sends on behalf of another site's page. Senders (Prometheus,
/// OTel SDKs, OpenLineage clients, `pipewatch import`) send neither header; a browser sends
/// both, and `Origin` names the page's site.
fn cross_site(
    receiver: Receiver,
    headers: &HeaderMap,
    authority: Option<&axum::http::uri::Authority>,
) -> Result<(), ReceiverError> {
    let refuse = |why: String| {
        ReceiverError::Forbidden(format!(
            "{receiver}: cross-site request refused ({why}); receivers take data from senders, not from pages of other sites"
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site.eq_ignore_ascii_case("cross-site") {
            return Err(refuse("Sec-Fetch-Site: cross-site".into()));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(authority.map(|a| a.as_str()));
    let same = url::Url::parse(origin).ok().is_some_and(|o| {
        let Some(oh) = o.host_str() else { return false };
        let origin_authority = match o.port() {
            Some(p) => format!("{oh}:{p}"),
            None => oh.to_string(),
        };
        host.is_some_and(|h| h.eq_ignore_ascii_case(&origin_authority))
    });
    if same {
        Ok(())
    } else {
        Err(refuse(format!(
            "Origin {origin:?} is not this server {:?}",
            host.unwrap_or("")
        )))
    }
}

fn count_auth_failure(st: &ReceiverState, receiver: Receiver, failure: AuthFailure) {
    st.app
        .metrics
        .receiver_auth_failures
        .get_or_create(&GuardLabels {
            receiver: receiver.name().to_string(),
            reason: failure.reason().to_string(),
        })
        .inc();
}

/// The refusal for a failed token check, saying what to send. The token is never logged.
pub fn auth_error(receiver: Receiver, failure: AuthFailure) -> ReceiverError {
    match failure {
        AuthFailure::Missing => ReceiverError::Unauthorised(format!(
            "{receiver}: missing bearer token; send `Authorization: Bearer <token>` with a token from [[auth.tokens]]"
        )),
        AuthFailure::Invalid => ReceiverError::Unauthorised(format!(
            "{receiver}: bearer token not accepted; check the token against [[auth.tokens]] in the pipewatch config"
        )),
        AuthFailure::NotAllowed => ReceiverError::Forbidden(format!(
            "{receiver}: this token may not write to {receiver}; add \"{receiver}\" to its `receivers` list in [[auth.tokens]]"
        )),
    }
}

/// Counts and logs the answer and writes a refusal in the protocol's shape.
fn finish(
    st: &ReceiverState,
    receiver: Receiver,
    media: Option<MediaType>,
    resp: Response,
    close: bool,
) -> Response {
    let code = resp.status().as_u16();
    let mut resp = if let Some(e) = resp.extensions().get::<ReceiverError>().cloned() {
        st.app
            .metrics
            .receiver_answered(receiver.name(), code, Some(e.message()));
        st.refusals.log(receiver, &e);
        render(receiver, media, &e, resp)
    } else {
        let note = resp
            .extensions()
            .get::<AcceptedNote>()
            .and_then(|n| n.0.clone());
        st.app
            .metrics
            .receiver_answered(receiver.name(), code, note.as_deref());
        resp
    };
    if close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// `google.rpc.Status` in OTLP/JSON.
#[derive(serde::Serialize)]
struct JsonStatus<'a> {
    code: i32,
    message: &'a str,
}

/// Rewrites the plain-text body of a refusal for protocols with their own error shape.
fn render(
    receiver: Receiver,
    media: Option<MediaType>,
    e: &ReceiverError,
    resp: Response,
) -> Response {
    let body: (&'static str, Vec<u8>) = match (receiver, media) {
        // The OTLP specification: errors are a google.rpc.Status in the request's encoding.
        // When the encoding is what is wrong, plain text is what every sender can log.
        (Receiver::Otlp, Some(MediaType::Protobuf)) => (
            "application/x-protobuf",
            tonic_types::Status {
                code: e.grpc_code() as i32,
                message: e.message().to_string(),
                details: vec![],
            }
            .encode_to_vec(),
        ),
        (Receiver::Otlp, Some(MediaType::Json)) => (
            "application/json",
            serde_json::to_vec(&JsonStatus {
                code: e.grpc_code() as i32,
                message: e.message(),
            })
            .expect("status serialises"),
        ),
        // Alertmanager answers a failed validation with the error as a JSON string.
        (Receiver::Alertmanager, _) => (
            "application/json",
            serde_json::to_vec(e.message()).expect("string serialises"),
        ),
        _ => return resp,
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(body.0));
    Response::from_parts(parts, Body::from(body.1))
}

/// When a (receiver, status) was last logged, and how many refusals were left out since.
type LastLogged = (Option<Instant>, u64);

/// Rate-limits refusal log lines: a sender retrying a bad request every second must not
/// fill the log, but the first refusal of each kind is always written.
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: Mutex<HashMap<(Receiver, u16), LastLogged>>,
}

impl RefusalLog {
    /// Logs `e` unless one of the same receiver and status was logged within [`LOG_EVERY`];
    /// returns whether it logged.
    pub fn log(&self, receiver: Receiver, e: &ReceiverError) -> bool {
        let status = e.status().as_u16();
        let now = Instant::now();
        let suppressed = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let entry = last.entry((receiver, status)).or_insert((None, 0));
            if entry.0.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
                entry.1 += 1;
                return false;
            }
            let suppressed = entry.1;
            *entry = (Some(now), 0);
            suppressed
        };
        // The message names the limit or field; bounded so a huge label set cannot make a
        // huge log line.
        let message: String = e.message().chars().take(1000).collect();
        if status >= 500 {
            tracing::warn!(%receiver, status, kind = e.kind(), suppressed, %message, "push request refused");
        } else {
            tracing::info!(%receiver, status, kind = e.kind(), suppressed, %message, "push request refused");
        }
        true
    }
}

/// Used by the gRPC server, where tonic writes the response: counts and logs a refusal.
pub fn answered_grpc(st: &ReceiverState, result: Result<Option<&str>, &ReceiverError>) {
    match result {
        Ok(note) => {
            st.app
                .metrics
                .receiver_answered(Receiver::Otlp.name(), StatusCode::OK.as_u16(), note)
        }
        Err(e) => {
            st.app.metrics.receiver_answered(
                Receiver::Otlp.name(),
                e.status().as_u16(),
                Some(e.message()),
            );
            st.refusals.log(Receiver::Otlp, e);
        }
    }
}

/// Used by the gRPC auth interceptor.
pub(super) fn authorize(
    st: &ReceiverState,
    receiver: Receiver,
    presented: Option<&str>,
) -> Result<(), ReceiverError> {
    if !st.app.guard.auth_required() {
        return Ok(());
    }
    st.app
        .guard
        .authorize(receiver.name(), presented)
        .map(|_| ())
        .map_err(|failure| {
            count_auth_failure(st, receiver, failure);
            auth_error(receiver, failure)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::receivers::test_headers as headers;

    #[test]
    fn cross_site_browser_requests_are_refused_and_senders_are_not() {
        let r = Receiver::OpenLineage;
        assert!(cross_site(r, &headers(&[("host", "127.0.0.1:9090")]), None).is_ok());
        assert!(cross_site(
            r,
            &headers(&[
                ("host", "127.0.0.1:9090"),
                ("origin", "http://127.0.0.1:9090")
            ]),
            None
        )
        .is_ok());
        for h in [
            &[
                ("host", "127.0.0.1:9090"),
                ("origin", "https://evil.example"),
            ][..],
            &[("host", "127.0.0.1:9090"), ("origin", "null")][..],
            &[
                ("host", "127.0.0.1:9090"),
                ("origin", "http://127.0.0.1:8080"),
            ][..],
            &[("host", "127.0.0.1:9090"), ("sec-fetch-site", "cross-site")][..],
        ] {
            let e = cross_site(r, &headers(h), None).unwrap_err();
            assert_eq!(e.status(), StatusCode::FORBIDDEN, "{h:?}");
            assert!(e.message().contains("cross-site"), "{}", e.message());
        }
    }

    #[test]
    fn repeated_refusals_are_logged_once_per_interval() {
        let log = RefusalLog::default();
        let e = ReceiverError::Malformed("bad".into());
        assert!(log.log(Receiver::Dq, &e));
        assert!(!log.log(Receiver::Dq, &e));
        assert!(!log.log(Receiver::Dq, &e));
        // Another receiver or status is another line.
        assert!(log.log(Receiver::Otlp, &e));
        assert!(log.log(Receiver::Dq, &ReceiverError::NotFound("x".into())));
        let last = log.last.lock().unwrap();
        assert_eq!(last[&(Receiver::Dq, 400)].1, 2);
    }
}
