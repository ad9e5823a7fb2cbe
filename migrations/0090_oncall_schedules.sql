-- On-call schedules and escalation policies (issue 13, item 4). Schedules and policies live in
-- version-controlled files (`[oncall] files`); the database keeps what changes at run time:
-- users' e-mail addresses, overrides added from the On-call page, and the record of which
-- escalation levels went out for which alert group, so a restarted or new leader neither
-- escalates twice nor forgets a resolve owed to someone an escalation paged.

-- Where person-addressed mail (escalations to a user or a schedule) goes. NULL: the user has
-- no address, and an escalation to them is recorded as not delivered.
ALTER TABLE users ADD COLUMN email text CHECK (email IS NULL OR email <> '');

ALTER TABLE alert_events DROP CONSTRAINT alert_events_kind_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_kind_check CHECK (kind IN
    ('transition', 'notified', 'silenced', 'unsilenced', 'acknowledged', 'note',
     'unacknowledged', 'assigned', 'snoozed', 'resolve_requested', 'escalated'));

-- Overrides added at run time, on top of the schedule file's own (and winning over them).
-- The schedule is named, not referenced: schedules are defined in files.
CREATE TABLE oncall_overrides (
    id         bigserial   PRIMARY KEY,
    schedule   text        NOT NULL,
    user_name  text        NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX oncall_overrides_schedule ON oncall_overrides (schedule, ends_at);

-- An alert group's escalation: from the group's first firing notice (levels count from
-- there) until no alert of the group fires any more and the resolve owed to everyone it
-- notified was sent. A group is known by `group_key` and its row's `created_at` (as in the
-- group's notification dedup keys); `seq` numbers the escalations within one life of the
-- group row (it fired, stopped, and fired again before the row was removed).
CREATE TABLE escalations (
    id            bigserial   PRIMARY KEY,
    group_key     text        NOT NULL,
    group_born_at timestamptz NOT NULL,
    seq           integer     NOT NULL,
    policy        text        NOT NULL,
    started_at    timestamptz NOT NULL,
    resolved_at   timestamptz,
    UNIQUE (group_key, group_born_at, seq)
);
CREATE INDEX escalations_open ON escalations (group_key) WHERE resolved_at IS NULL;

-- Each level that went out: whom it reached and how. `recipients` is
-- [{"target", "user", "channel", "delivered", "note"}]: `channel` is the outbox channel the
-- notice was written for (`mailto:<address>` for a person), NULL when it could not be sent
-- (`note` says why, as on the timeline).
CREATE TABLE escalation_steps (
    escalation_id bigint      NOT NULL REFERENCES escalations (id) ON DELETE CASCADE,
    level         integer     NOT NULL,
    at            timestamptz NOT NULL,
    recipients    jsonb       NOT NULL,
    PRIMARY KEY (escalation_id, level)
);
