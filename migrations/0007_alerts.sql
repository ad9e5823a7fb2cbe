-- Alerts received on the Alertmanager-compatible intake (POST /api/v2/alerts), one row per
-- alert instance keyed like Alertmanager: by the fingerprint of its label set. A re-post of a
-- still-active alert updates endsAt, annotations and generatorURL; an alert is resolved once
-- endsAt has passed. Kept for the alerting engine to manage (silences, notifications).
CREATE TABLE ingested_alerts (
    fingerprint   text PRIMARY KEY,
    labels        jsonb       NOT NULL,
    annotations   jsonb       NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    generator_url text,
    received_at   timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    posts         bigint      NOT NULL DEFAULT 1
);
CREATE INDEX ingested_alerts_ends_at ON ingested_alerts (ends_at);
