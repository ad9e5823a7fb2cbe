-- Slack bot-token mode (issue 13, item 5): the one Slack message each notification group gets
-- per channel, so later notices of the group edit it in place (`chat.update`) and reply in
-- its thread instead of posting anew.
--
-- `group_ref` is the group's key with its birth time (`<group key>@<created ms>`): a group that
-- ended and later starts again gets a new message. The row is written *before* the first
-- `chat.postMessage` with `ts` NULL (an intent), so a retry that finds it knows an earlier
-- attempt may have posted and looks for that message before posting again.
CREATE TABLE slack_messages (
    -- The pipewatch channel (`[notifications.channels.<name>]`).
    channel_name  text        NOT NULL,
    -- The Slack channel as configured (`#oncall` or an ID).
    target        text        NOT NULL,
    group_ref     text        NOT NULL,
    -- The channel ID and message timestamp Slack answered `chat.postMessage` with.
    slack_channel text,
    ts            text,
    -- What the message shows: {"<fingerprint>#<episode>": {"state", "title"}}, so the next
    -- notice can say in the thread what changed.
    alerts        jsonb       NOT NULL DEFAULT '{}',
    posting_since timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_name, target, group_ref)
);

-- Inhibition (issue 13, item 3; kept in this migration with the other item of the same
-- change): which alert inhibits which right now, by which `[[alerting.inhibit_rules]]` rule.
-- Written by the lifecycle engine in its round's transaction whenever the set changes, read
-- by the API (`inhibitedBy`). An inhibited alert sends no firing notices; a resolve owed for
-- a firing notice already sent still goes out.
CREATE TABLE alert_inhibitions (
    alert_id     bigint      PRIMARY KEY REFERENCES alert_instances (id) ON DELETE CASCADE,
    inhibited_by bigint      NOT NULL REFERENCES alert_instances (id) ON DELETE CASCADE,
    rule         text        NOT NULL,
    since        timestamptz NOT NULL DEFAULT now()
);

-- Route `continue` (issue 13, item 3): an alert taken by several routes is in one group per
-- route. Its first route's group keeps its notice state on `alert_instances` (group_key,
-- notified); each further group's is here, so a resolve is owed and sent per group.
CREATE TABLE alert_route_notices (
    alert_id   bigint      NOT NULL REFERENCES alert_instances (id) ON DELETE CASCADE,
    group_key  text        NOT NULL,
    episode    integer     NOT NULL,
    notified   text        NOT NULL CHECK (notified IN ('none', 'firing', 'resolved')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, group_key)
);
CREATE INDEX alert_route_notices_owed ON alert_route_notices (alert_id) WHERE notified = 'firing';
