-- On-call actions on alerts (issue 13, item 4): who acknowledged an alert's current episode,
-- who it is assigned to, until when it is snoozed, and manual resolves asked for by a user.
-- Kept apart from `alert_instances`, which only the lifecycle engine writes: the API writes
-- this table, the engine reads it (snoozes hold repeat notices back; a resolve request is
-- carried out by the engine, so the transition, its event and its resolve notice commit
-- together as every other transition does).
ALTER TABLE alert_events DROP CONSTRAINT alert_events_kind_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_kind_check CHECK (kind IN
    ('transition', 'notified', 'silenced', 'unsilenced', 'acknowledged', 'note',
     'unacknowledged', 'assigned', 'snoozed', 'resolve_requested'));

CREATE TABLE alert_oncall (
    alert_id              bigint      PRIMARY KEY
                              REFERENCES alert_instances (id) ON DELETE CASCADE,
    -- The acknowledgement holds for the episode it was given in; a new episode (the alert
    -- fired again) is unacknowledged.
    acknowledged_by       text,
    acknowledged_at       timestamptz,
    acknowledged_episode  integer,
    -- A user name; NULL when nobody is assigned.
    assignee              text,
    assigned_at           timestamptz,
    -- No repeat notices for the alert's group while every firing alert in it is snoozed.
    snoozed_until         timestamptz,
    snoozed_by            text,
    -- A manual resolve asked for and not yet carried out by the engine.
    resolve_requested_by  text,
    resolve_requested_at  timestamptz,
    resolve_comment       text        NOT NULL DEFAULT '',
    -- When the engine last resolved the alert by hand: an Alertmanager alert resolved by hand
    -- stays resolved until its client reports it starting again (a later startsAt).
    resolved_manually_at  timestamptz
);
CREATE INDEX alert_oncall_resolve_requests ON alert_oncall (resolve_requested_at)
    WHERE resolve_requested_at IS NOT NULL;
