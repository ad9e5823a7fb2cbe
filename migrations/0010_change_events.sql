-- Change events (POST /api/v1/events): deploys, config changes, schema changes, backfills.
-- Written in the request's own transaction. `content_key` is a 128-bit hash of the event's
-- whole content (time, node, kind, detail, labels, version), so a re-sent event is recognised
-- and stored once, while two different events at the same time on the same node both stay.
CREATE TABLE change_events (
    id          bigserial   PRIMARY KEY,
    time        timestamptz NOT NULL,
    node        text        NOT NULL,
    kind        text        NOT NULL,
    detail      text        NOT NULL,
    labels      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    version     text,
    content_key text        NOT NULL UNIQUE,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- GET /api/v1/events and the chart markers: newest first within a time range, optionally for
-- one node.
CREATE INDEX change_events_time ON change_events (time DESC);
CREATE INDEX change_events_node_time ON change_events (node, time DESC);
