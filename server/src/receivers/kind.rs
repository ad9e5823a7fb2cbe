//! [`Receiver`]: which push protocol a request belongs to, and everything the kernel needs to
//! know about that protocol's framing (media types, encodings, how a refusal is written, what to
//! tell a sender whose body is too large). One enum instead of lists of receiver names, so
//! tokens, self-metrics, routes and messages cannot disagree.

use super::body::Compression;

/// A push protocol pipewatch receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Receiver {
    /// Prometheus remote_write 1.0, `POST /api/v1/write`.
    RemoteWrite,
    /// OTLP over HTTP (`POST /v1/{metrics,traces,logs}`) and gRPC.
    Otlp,
    /// Data-quality results of GX, dbt and Soda, `POST /api/v1/dq/{tool}`.
    Dq,
    /// OpenLineage events, `POST /api/v1/lineage`.
    OpenLineage,
    /// Alertmanager API v2 alerts, `POST /api/v2/alerts`.
    Alertmanager,
    /// Change events (deploys, config and schema changes), `POST /api/v1/events`.
    Events,
    /// Column profiles for drift checks, `POST /api/v1/drift/profile`.
    DriftProfile,
}

/// How the body of a request is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/x-protobuf` (or `application/protobuf`).
    Protobuf,
    /// `application/json`.
    Json,
    /// Newline-delimited JSON (`application/x-ndjson`, `application/ndjson`,
    /// `application/jsonl`): one JSON object per line.
    Ndjson,
}

impl Receiver {
    /// Every receiver; `config::RECEIVER_NAMES` (the names `[[auth.tokens]]` accepts) must list
    /// exactly these names (a test checks it).
    pub const ALL: [Receiver; 7] = [
        Receiver::RemoteWrite,
        Receiver::Otlp,
        Receiver::Dq,
        Receiver::OpenLineage,
        Receiver::Alertmanager,
        Receiver::Events,
        Receiver::DriftProfile,
    ];

    /// The name in self-metrics, messages and `[[auth.tokens]] receivers`.
    pub const fn name(self) -> &'static str {
        match self {
            Receiver::RemoteWrite => "remote_write",
            Receiver::Otlp => "otlp",
            Receiver::Dq => "dq",
            Receiver::OpenLineage => "openlineage",
            Receiver::Alertmanager => "alertmanager",
            Receiver::Events => "events",
            Receiver::DriftProfile => "drift_profile",
        }
    }

    /// The media types the protocol's senders use. A request without one of them is refused
    /// with 415: a browser form can POST cross-site without a Content-Type (or with
    /// `text/plain`), never with these without a CORS preflight, which pipewatch does not grant.
    pub const fn media_types(self) -> &'static [MediaType] {
        match self {
            Receiver::RemoteWrite => &[MediaType::Protobuf],
            Receiver::Otlp => &[MediaType::Protobuf, MediaType::Json],
            // The generic DQ intake and change events take NDJSON as well.
            Receiver::Dq | Receiver::Events => &[MediaType::Json, MediaType::Ndjson],
            Receiver::OpenLineage | Receiver::Alertmanager | Receiver::DriftProfile => {
                &[MediaType::Json]
            }
        }
    }

    /// The `Content-Encoding`s accepted; the first is assumed when the header is absent.
    pub const fn encodings(self) -> &'static [Compression] {
        match self {
            // Prometheus always snappy-compresses and its own receiver assumes it.
            Receiver::RemoteWrite => &[Compression::Snappy],
            Receiver::Otlp => &[
                Compression::Identity,
                Compression::Gzip,
                Compression::Deflate,
            ],
            Receiver::OpenLineage
            | Receiver::Dq
            | Receiver::Alertmanager
            | Receiver::Events
            | Receiver::DriftProfile => &[Compression::Identity, Compression::Gzip],
        }
    }

    /// What a sender with a body over the limits should change, in its own terms.
    pub const fn smaller_hint(self) -> &'static str {
        match self {
            Receiver::RemoteWrite => {
                "send smaller requests (Prometheus: lower queue_config.max_samples_per_send)"
            }
            Receiver::Otlp => "send smaller batches (lower the exporter's max export batch size)",
            Receiver::Dq => "send the results in several files",
            Receiver::OpenLineage => "send fewer events per request",
            Receiver::Alertmanager => "send fewer alerts per request",
            Receiver::Events => "send fewer events per request",
            Receiver::DriftProfile => "send a `profile` summary instead of the raw values, or split the column into several profiles (a window's profiles are merged)",
        }
    }

    /// What to send, for the 415 message.
    pub fn content_type_hint(self) -> &'static str {
        match self {
            Receiver::RemoteWrite => "send Content-Type: application/x-protobuf with a snappy-compressed prometheus.WriteRequest",
            Receiver::Otlp => "send Content-Type: application/x-protobuf (binary protobuf) or application/json (OTLP/JSON)",
            Receiver::Dq => "send the result file as Content-Type: application/json (for dbt, one JSON object {\"run_results\": ..., \"manifest\": ..., \"sources\": ...} instead of multipart)",
            Receiver::OpenLineage => "send OpenLineage events as Content-Type: application/json",
            Receiver::Alertmanager => "send alerts as Content-Type: application/json",
            Receiver::Events => "send Content-Type: application/json (one object or an array) or application/x-ndjson (one object per line)",
            Receiver::DriftProfile => "send the profile as Content-Type: application/json",
        }
    }
}

impl std::fmt::Display for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl MediaType {
    /// Reads a `Content-Type` value's media type (parameters ignored).
    pub fn parse(content_type: &str) -> Option<MediaType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/x-protobuf")
            || media.eq_ignore_ascii_case("application/protobuf")
        {
            Some(MediaType::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(MediaType::Json)
        } else if [
            "application/x-ndjson",
            "application/ndjson",
            "application/jsonl",
        ]
        .iter()
        .any(|m| media.eq_ignore_ascii_case(m))
        {
            Some(MediaType::Ndjson)
        } else {
            None
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            MediaType::Protobuf => "application/x-protobuf",
            MediaType::Json => "application/json",
            MediaType::Ndjson => "application/x-ndjson",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_config_names_the_same_receivers_as_the_enum() {
        let names: Vec<&str> = Receiver::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names, crate::config::RECEIVER_NAMES);
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert_eq!(
            MediaType::parse("Application/JSON; charset=utf-8"),
            Some(MediaType::Json)
        );
        assert_eq!(
            MediaType::parse("application/x-protobuf;proto=prometheus.WriteRequest"),
            Some(MediaType::Protobuf)
        );
        assert_eq!(MediaType::parse("text/plain"), None);
        assert_eq!(MediaType::parse(""), None);
    }
}
