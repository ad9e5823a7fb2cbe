//! OTLP (OpenTelemetry protocol) request decoding: bodies of `/v1/metrics`, `/v1/traces` and
//! `/v1/logs` (and the gRPC `Export` messages) into the `opentelemetry-proto` request types.
//!
//! Both OTLP/HTTP encodings are accepted: binary protobuf (`application/x-protobuf`, decoded
//! with `prost`) and OTLP/JSON (`application/json`, decoded with the serde implementation of
//! `opentelemetry-proto`). That serde implementation accepts OTLP/JSON exactly as the
//! OpenTelemetry Python JSON exporter writes it — hex trace/span ids, 64-bit integers as
//! strings, enums as integers, doubles written as JSON integers, lowerCamelCase keys, absent
//! default fields — as the golden tests over the captured bodies show, so there is no pre-pass.
//!
//! Bodies may be compressed with `gzip` or `deflate` (zlib-wrapped, RFC 1950, which is what
//! the Python exporter and Go's `compress/zlib` send); inflation stops at a size cap so a small
//! body cannot expand without bound.
//!
//! Mapping metrics to series lives in [`metrics`]; it reads requests through the borrowed
//! [`view`], which protobuf metrics bodies get from the borrowing decoder in [`wire`] (prost
//! decodes what that one does not take, and every other body).

pub mod attributes;
pub mod logs;
pub mod metrics;
pub mod seen;
pub mod traces;
pub mod view;
pub mod wire;

use flate2::read::{GzDecoder, ZlibDecoder};
use std::borrow::Cow;
use std::io::Read;
use thiserror::Error;

pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// How the request message is encoded (from `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json` (OTLP/JSON)
    Json,
}

/// How the body is compressed (from `Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    /// zlib-wrapped deflate (RFC 1950).
    Deflate,
}

/// The three OTLP signals, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Metrics,
    Traces,
    Logs,
}

impl Signal {
    /// The OTLP/HTTP path of the signal.
    pub fn path(self) -> &'static str {
        match self {
            Signal::Metrics => "/v1/metrics",
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
        }
    }

    /// The top-level OTLP/JSON key that holds the request's data.
    pub fn json_key(self) -> &'static str {
        match self {
            Signal::Metrics => "resourceMetrics",
            Signal::Traces => "resourceSpans",
            Signal::Logs => "resourceLogs",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Signal::Metrics => "ExportMetricsServiceRequest",
            Signal::Traces => "ExportTraceServiceRequest",
            Signal::Logs => "ExportLogsServiceRequest",
        }
    }
}

/// Why a body could not be decoded. Every message says what is wrong and what to send.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OtlpError {
    #[error("body is not valid {encoding} data: {reason}; send a {encoding}-compressed body or drop the Content-Encoding header")]
    Decompress {
        encoding: &'static str,
        reason: String,
    },
    #[error("body decompresses to more than {limit} bytes; send smaller requests (lower the exporter's batch size)")]
    DecompressedTooLarge { limit: usize },
    #[error("body is not a protobuf {message}: {reason}; send the binary protobuf encoding of {message} with Content-Type: application/x-protobuf")]
    Protobuf {
        message: &'static str,
        reason: String,
    },
    #[error("body is not an OTLP/JSON {message}: {reason}; send OTLP/JSON (lowerCamelCase keys, hex trace/span ids) with Content-Type: application/json")]
    Json {
        message: &'static str,
        reason: String,
    },
}

/// Inflates `body` per `compression`, refusing output larger than `max_decompressed_bytes`.
pub fn decompress(
    body: &[u8],
    compression: Compression,
    max_decompressed_bytes: usize,
) -> Result<Cow<'_, [u8]>, OtlpError> {
    fn inflate(
        mut reader: impl Read,
        encoding: &'static str,
        limit: usize,
    ) -> Result<Vec<u8>, OtlpError> {
        let mut out = Vec::new();
        // One byte past the limit tells "exactly at the limit" from "over it".
        (&mut reader)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| OtlpError::Decompress {
                encoding,
                reason: e.to_string(),
            })?;
        if out.len() > limit {
            return Err(OtlpError::DecompressedTooLarge { limit });
        }
        Ok(out)
    }
    match compression {
        Compression::Identity => {
            if body.len() > max_decompressed_bytes {
                return Err(OtlpError::DecompressedTooLarge {
                    limit: max_decompressed_bytes,
                });
            }
            Ok(Cow::Borrowed(body))
        }
        Compression::Gzip => {
            inflate(GzDecoder::new(body), "gzip", max_decompressed_bytes).map(Cow::Owned)
        }
        Compression::Deflate => {
            if body.first().is_some_and(|b| b & 0x0f != 8) {
                return Err(OtlpError::Decompress {
                    encoding: "deflate",
                    reason:
                        "it has no zlib header (RFC 1950); raw deflate streams are not accepted"
                            .into(),
                });
            }
            inflate(ZlibDecoder::new(body), "deflate", max_decompressed_bytes).map(Cow::Owned)
        }
    }
}

/// A decodable OTLP export request (metrics, traces or logs).
pub trait ExportRequest: prost::Message + Default + serde::de::DeserializeOwned {
    const SIGNAL: Signal;
    /// Whether the request holds no resource entries at all.
    fn is_empty(&self) -> bool;
}

impl ExportRequest for ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;
    fn is_empty(&self) -> bool {
        self.resource_metrics.is_empty()
    }
}

impl ExportRequest for ExportTraceServiceRequest {
    const SIGNAL: Signal = Signal::Traces;
    fn is_empty(&self) -> bool {
        self.resource_spans.is_empty()
    }
}

impl ExportRequest for ExportLogsServiceRequest {
    const SIGNAL: Signal = Signal::Logs;
    fn is_empty(&self) -> bool {
        self.resource_logs.is_empty()
    }
}

/// Decodes an uncompressed body. An empty protobuf body is a valid empty request (proto3);
/// a non-empty one that holds no resource entries is refused, because prost skips unknown
/// fields and junk would otherwise be acknowledged as an empty request.
pub fn decode<T: ExportRequest>(bytes: &[u8], encoding: BodyEncoding) -> Result<T, OtlpError> {
    let message = T::SIGNAL.message();
    match encoding {
        BodyEncoding::Protobuf => {
            let req = T::decode(bytes).map_err(|e| OtlpError::Protobuf {
                message,
                reason: e.to_string(),
            })?;
            if !bytes.is_empty() && req.is_empty() {
                return Err(OtlpError::Protobuf {
                    message,
                    reason: format!(
                        "its {} bytes hold no resource entries (field 1); is this the body for another signal than {}?",
                        bytes.len(),
                        T::SIGNAL.path()
                    ),
                });
            }
            Ok(req)
        }
        BodyEncoding::Json => {
            let de = &mut serde_json::Deserializer::from_slice(bytes);
            let req: T = serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                OtlpError::Json {
                    message,
                    reason: if path.is_empty() || path == "." {
                        inner.to_string()
                    } else {
                        format!("at {path}: {inner}")
                    },
                }
            })?;
            if req.is_empty() {
                unrecognised_json(bytes, T::SIGNAL)?;
            }
            Ok(req)
        }
    }
}

/// Refuses an OTLP/JSON body that decoded to an empty request although its top-level object
/// has keys, none of them the signal's: the OTLP specification has receivers ignore unknown
/// fields, which is right beside the expected key but would acknowledge `{"foo":1}` (or a
/// `resource_metrics` spelt in snake_case) as an empty request and lose what was meant.
/// `{}` stays a valid empty request, as its protobuf twin, the empty body, is.
fn unrecognised_json(bytes: &[u8], signal: Signal) -> Result<(), OtlpError> {
    let keys: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
        match serde_json::from_slice(bytes) {
            Ok(keys) => keys,
            // Not an object (serde reads a struct from an array too): nothing is expected of it
            // beyond what the decoder checked.
            Err(_) => return Ok(()),
        };
    if keys.is_empty() || keys.contains_key(signal.json_key()) {
        return Ok(());
    }
    let found: Vec<String> = keys.keys().take(5).map(|k| format!("{k:?}")).collect();
    // Keys that mean the expected one in another spelling (`resource_metrics`,
    // `ResourceMetrics`) get a hint at the right one.
    let loose = |k: &str| k.replace('_', "").to_ascii_lowercase();
    let expected = loose(signal.json_key());
    let hint = if keys.keys().any(|k| loose(k) == expected) {
        format!(
            " (OTLP/JSON keys are lowerCamelCase: write \"{}\")",
            signal.json_key()
        )
    } else {
        String::new()
    };
    Err(OtlpError::Json {
        message: signal.message(),
        reason: format!(
            "its top-level object has none of the keys of {} (expected \"{}\", found {}){hint}; is this the body for another signal than {}?",
            signal.message(),
            signal.json_key(),
            found.join(", "),
            signal.path()
        ),
    })
}

/// Decompresses and decodes a body in one step; the entry point for HTTP handlers and fuzzing.
pub fn decode_body<T: ExportRequest>(
    body: &[u8],
    encoding: BodyEncoding,
    compression: Compression,
    max_decompressed_bytes: usize,
) -> Result<T, OtlpError> {
    let raw = decompress(body, compression, max_decompressed_bytes)?;
    decode(&raw, encoding)
}

/// Decodes an uncompressed `ExportMetricsServiceRequest`.
pub fn decode_metrics(
    bytes: &[u8],
    encoding: BodyEncoding,
) -> Result<ExportMetricsServiceRequest, OtlpError> {
    decode(bytes, encoding)
}

/// Decodes an uncompressed `ExportTraceServiceRequest`.
pub fn decode_traces(
    bytes: &[u8],
    encoding: BodyEncoding,
) -> Result<ExportTraceServiceRequest, OtlpError> {
    decode(bytes, encoding)
}

/// Decodes an uncompressed `ExportLogsServiceRequest`.
pub fn decode_logs(
    bytes: &[u8],
    encoding: BodyEncoding,
) -> Result<ExportLogsServiceRequest, OtlpError> {
    decode(bytes, encoding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_and_zlib_bodies_inflate_and_the_cap_refuses_one_byte_more() {
        let data = vec![7u8; 1000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            &*decompress(&gz, Compression::Gzip, 1000).unwrap(),
            &data[..]
        );
        assert_eq!(
            decompress(&gz, Compression::Gzip, 999).unwrap_err(),
            OtlpError::DecompressedTooLarge { limit: 999 }
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        let z = z.finish().unwrap();
        assert_eq!(
            &*decompress(&z, Compression::Deflate, 1000).unwrap(),
            &data[..]
        );
        let err = decompress(b"not gzip", Compression::Gzip, 1000).unwrap_err();
        assert!(
            err.to_string().starts_with("body is not valid gzip data"),
            "{err}"
        );
    }

    #[test]
    fn raw_deflate_without_zlib_header_is_refused_with_the_reason() {
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(b"hello hello hello").unwrap();
        let raw = d.finish().unwrap();
        let err = decompress(&raw, Compression::Deflate, 1000).unwrap_err();
        assert!(err.to_string().contains("RFC 1950"), "{err}");
    }

    #[test]
    fn junk_protobuf_and_bad_json_name_the_problem() {
        // Field 15, varint: parses as protobuf, but is not a metrics request.
        let err = decode_metrics(&[0x78, 0x01], BodyEncoding::Protobuf).unwrap_err();
        assert!(
            err.to_string().contains("hold no resource entries"),
            "{err}"
        );
        assert!(decode_metrics(&[], BodyEncoding::Protobuf)
            .unwrap()
            .resource_metrics
            .is_empty());
        let err = decode_metrics(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":"gauge"}]}]}"#,
            BodyEncoding::Json,
        )
        .unwrap_err();
        assert!(err.to_string().contains("resourceMetrics[0]"), "{err}");
    }

    #[test]
    fn json_with_none_of_the_signal_keys_is_refused_but_unknown_keys_beside_them_are_ignored() {
        let err = decode_metrics(br#"{"foo":1}"#, BodyEncoding::Json).unwrap_err();
        assert_eq!(
            err.to_string(),
            "body is not an OTLP/JSON ExportMetricsServiceRequest: its top-level object has none of the keys of ExportMetricsServiceRequest (expected \"resourceMetrics\", found \"foo\"); is this the body for another signal than /v1/metrics?; send OTLP/JSON (lowerCamelCase keys, hex trace/span ids) with Content-Type: application/json"
        );
        let err = decode_traces(br#"{"resource_spans":[]}"#, BodyEncoding::Json).unwrap_err();
        assert!(
            err.to_string()
                .contains("(OTLP/JSON keys are lowerCamelCase: write \"resourceSpans\")"),
            "{err}"
        );
        // The body of another signal names the one expected.
        let err = decode_logs(br#"{"resourceSpans":[{}]}"#, BodyEncoding::Json).unwrap_err();
        assert!(
            err.to_string().contains("expected \"resourceLogs\""),
            "{err}"
        );
        // Valid empty requests, and unknown fields beside the expected key, as the spec says.
        assert!(decode_metrics(b"{}", BodyEncoding::Json)
            .unwrap()
            .resource_metrics
            .is_empty());
        assert!(decode_metrics(br#"{"resourceMetrics":[]}"#, BodyEncoding::Json).is_ok());
        assert!(decode_logs(br#"{"resourceLogs":[],"extra":true}"#, BodyEncoding::Json).is_ok());
    }
}
