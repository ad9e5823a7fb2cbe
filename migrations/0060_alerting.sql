-- The alert lifecycle (issue 13, item 3): alert instances with their state, every transition
-- and action as an event, the notification groups (Alertmanager's grouping, kept in the
-- database so a restarted or new leader carries on where the last one stopped), and silences.
--
-- One row per alert instance, keyed by the fingerprint of its source and labels. An instance
-- that resolves and later goes active again keeps its row and starts a new `episode`; the
-- episode is part of every notification dedup key, so each episode's firing and resolve
-- notices are distinct while a replayed transition is stored once.
CREATE TABLE alert_instances (
    id            bigserial   PRIMARY KEY,
    fingerprint   text        NOT NULL UNIQUE,
    -- rule: a rule file's alerting rule; alertmanager: POST /api/v2/alerts; anomaly: the
    -- analysis jobs' anomalies.
    source        text        NOT NULL CHECK (source IN ('rule', 'alertmanager', 'anomaly')),
    -- The alerting rule's name (`alertname`).
    rule          text        NOT NULL,
    -- The rule group the rule is in ('' for alerts from other sources).
    rule_group    text        NOT NULL DEFAULT '',
    labels        jsonb       NOT NULL,
    annotations   jsonb       NOT NULL DEFAULT '{}',
    -- inactive: was pending and the condition cleared before `for`; resolved: was firing.
    -- nodata and error are states of a rule (labels: alertname only), routed on their own.
    state         text        NOT NULL CHECK (state IN
                      ('inactive', 'pending', 'firing', 'resolved', 'nodata', 'error')),
    active_at     timestamptz,
    fired_at      timestamptz,
    resolved_at   timestamptz,
    last_value    double precision,
    last_eval_at  timestamptz,
    episode       integer     NOT NULL DEFAULT 1,
    -- The notification group the instance belongs to (route and group_by label values).
    group_key     text        NOT NULL,
    -- What the last notice about this episode said: none yet, firing, or resolved. A
    -- `firing` here is a resolve owed, whatever silences say later.
    notified      text        NOT NULL DEFAULT 'none'
                      CHECK (notified IN ('none', 'firing', 'resolved')),
    firing_notified_at timestamptz,
    -- Why the rule is in nodata or error.
    detail        text        NOT NULL DEFAULT '',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- The engine's working set: instances that are active or still owe a resolve notice.
CREATE INDEX alert_instances_live ON alert_instances (group_key)
    WHERE state IN ('pending', 'firing', 'nodata', 'error') OR notified = 'firing';
CREATE INDEX alert_instances_updated ON alert_instances (updated_at DESC, id DESC);
CREATE INDEX alert_instances_rule ON alert_instances (rule);

-- Every transition and action on an alert, for its timeline. `by_whom` is `system` or a user.
CREATE TABLE alert_events (
    id         bigserial   PRIMARY KEY,
    alert_id   bigint      NOT NULL REFERENCES alert_instances (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text        NOT NULL CHECK (kind IN
                   ('transition', 'notified', 'silenced', 'unsilenced', 'acknowledged', 'note')),
    from_state text,
    to_state   text,
    by_whom    text        NOT NULL DEFAULT 'system',
    detail     text        NOT NULL DEFAULT ''
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

-- Alertmanager's aggregation groups. A row exists while the group has alerts to tell about;
-- it is removed once everything in it resolved and was notified, so the next alert in the
-- group waits `group_wait` again, as in Alertmanager.
CREATE TABLE notification_groups (
    group_key        text        PRIMARY KEY,
    route            text        NOT NULL,
    labels           jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_notified_at timestamptz,
    -- Notifications sent for the group; the next one's dedup key is `<group_key>#<seq + 1>`.
    seq              bigint      NOT NULL DEFAULT 0,
    -- What was in the last notification: [{"fingerprint", "episode", "state"}].
    last_contents    jsonb       NOT NULL DEFAULT '[]'
);

-- Silences, shaped like Alertmanager's: matchers are
-- [{"name", "value", "isRegex", "isEqual"}]; active while starts_at <= now < ends_at.
-- Expiring one sets ends_at to now (it stays listed, as in Alertmanager).
CREATE TABLE silences (
    id         text        PRIMARY KEY DEFAULT gen_random_uuid()::text,
    matchers   jsonb       NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text        NOT NULL,
    comment    text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at >= starts_at)
);
CREATE INDEX silences_ends_at ON silences (ends_at);

-- What the leader last saw of each rule, so `GET /api/v1/rules` on any instance answers as
-- Prometheus does (health, last error, last evaluation). `rule` holds the rule as that API
-- shows it (name, query, duration, labels, annotations, type). Rewritten whole when an
-- instance becomes the leader, so rules removed from the files disappear.
CREATE TABLE rule_status (
    group_file        text             NOT NULL,
    group_name        text             NOT NULL,
    rule_index        integer          NOT NULL,
    group_interval_ms bigint           NOT NULL,
    rule              jsonb            NOT NULL,
    health            text             NOT NULL CHECK (health IN ('ok', 'err', 'unknown')),
    last_error        text             NOT NULL DEFAULT '',
    last_evaluation   timestamptz,
    evaluation_s      double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (group_file, group_name, rule_index)
);
