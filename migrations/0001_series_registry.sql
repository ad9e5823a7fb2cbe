-- Series registry, metric metadata, rollup bookkeeping and the storage mode marker.
-- Shared by both storage modes (plain PostgreSQL and TimescaleDB).

-- One row per (metric, label set). `id` is model::SeriesKey::stable_id(), computed in Rust,
-- so every writer agrees on it without a round trip.
CREATE TABLE series (
    id          bigint PRIMARY KEY,
    metric      text        NOT NULL,
    labels      jsonb       NOT NULL,
    metric_type text        NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL
);
CREATE INDEX series_metric ON series (metric);
-- Equality label matchers are pushed down as `labels @> '{"k":"v"}'`.
CREATE INDEX series_labels ON series USING gin (labels jsonb_path_ops);

CREATE TABLE metric_metadata (
    family      text PRIMARY KEY,
    metric_type text        NOT NULL,
    unit        text        NOT NULL,
    help        text        NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Rollup progress per resolution: every raw sample with ts < watermark is reflected in the
-- rollup table, except the range [dirty_from, dirty_to] where late samples landed after the
-- rollup ran; maintenance re-rolls that range.
CREATE TABLE rollup_state (
    name       text PRIMARY KEY,
    watermark  timestamptz,
    dirty_from timestamptz,
    dirty_to   timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollup_state (name) VALUES ('1m'), ('1h');

-- Which storage layout 0002 chose; read once at start-up.
CREATE TABLE storage_mode (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode      text NOT NULL CHECK (mode IN ('postgres', 'timescaledb'))
);
