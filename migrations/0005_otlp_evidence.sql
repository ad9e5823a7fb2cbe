-- Evidence derived from OTLP traces and logs: recent failed or slow spans and recent
-- warning/error log records, kept so an alert can link to what actually happened. Bounded
-- per (service, kind) by store::evidence on every insert, so these tables stay small; the
-- full record (attributes, events, links, resource) is in `detail`.

CREATE TABLE otlp_span_evidence (
    id              bigserial PRIMARY KEY,
    service         text             NOT NULL,
    -- Why the span was kept: 'error' (status ERROR) or 'slow' (over the threshold).
    reason          text             NOT NULL,
    trace_id        text             NOT NULL,
    span_id         text             NOT NULL,
    span_name       text             NOT NULL,
    span_kind       text             NOT NULL,
    status_code     text             NOT NULL,
    status_message  text             NOT NULL,
    start_unix_nano bigint           NOT NULL,
    duration_seconds double precision NOT NULL,
    detail          jsonb            NOT NULL,
    received_at     timestamptz      NOT NULL DEFAULT now(),
    -- A retried export must not store the same span twice.
    UNIQUE (service, trace_id, span_id)
);
-- Listing the most recent per service and kind, and trimming the oldest beyond the bound.
CREATE INDEX otlp_span_evidence_recent ON otlp_span_evidence (service, reason, id DESC);
CREATE INDEX otlp_span_evidence_all ON otlp_span_evidence (id DESC);

CREATE TABLE otlp_log_evidence (
    id              bigserial PRIMARY KEY,
    service         text        NOT NULL,
    -- Short name of the severity range ('WARN', 'ERROR', 'FATAL', ...): the bound is per
    -- service and severity, so a burst of warnings cannot push the errors out.
    severity        text        NOT NULL,
    severity_number integer     NOT NULL,
    time_unix_nano  bigint      NOT NULL,
    trace_id        text,
    span_id         text,
    body            text        NOT NULL,
    detail          jsonb       NOT NULL,
    -- Hash of the whole record (computed by the store), so a retried export is stored once.
    fingerprint     bigint      NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (service, fingerprint)
);
CREATE INDEX otlp_log_evidence_recent ON otlp_log_evidence (service, severity, id DESC);
CREATE INDEX otlp_log_evidence_all ON otlp_log_evidence (id DESC);
