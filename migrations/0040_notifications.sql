-- The notification outbox (issue 13, item 5). An alert transition and the rows for its
-- notifications are written in one transaction, so a notification is never lost when the
-- process dies between the two; a sender then claims due rows and delivers them at least once.
--
-- `dedup_key` is unique per channel: re-enqueueing the same notice (a retried transaction, an
-- evaluator that replays a transition) stores nothing. `group_key` is the alert or alert group
-- the notice is about; a row is only claimed once every earlier row of the same group on the
-- same channel is delivered, so a resolve never overtakes its firing notice.
--
-- `next_attempt_at` doubles as the claim lease: claiming moves it forward by the lease, so a
-- row claimed by an instance that then died comes back to the others once the lease runs out.
-- All times come from the database's clock, so instances with skewed clocks agree.
CREATE TABLE notification_outbox (
    id              bigserial   PRIMARY KEY,
    channel         text        NOT NULL,
    dedup_key       text        NOT NULL,
    group_key       text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('firing', 'resolved')),
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    delivered_at    timestamptz,
    last_error      text,
    UNIQUE (channel, dedup_key)
);

-- The sender's claim: undelivered rows that are due, oldest first.
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL;
-- The per-group ordering check: earlier undelivered rows of the same group and channel.
CREATE INDEX notification_outbox_group ON notification_outbox (channel, group_key, id)
    WHERE delivered_at IS NULL;

-- Every delivery attempt, successful or not, for the alert timeline and for debugging a
-- channel that keeps failing.
CREATE TABLE notification_attempts (
    id           bigserial   PRIMARY KEY,
    outbox_id    bigint      NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    outcome      text        NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    error        text
);
CREATE INDEX notification_attempts_outbox ON notification_attempts (outbox_id, id);
