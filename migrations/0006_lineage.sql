-- OpenLineage: the pipeline graph (jobs, datasets, input/output edges), runs with their state
-- and duration, every accepted event (for idempotence), and dataset schema versions with the
-- schema-change events between them.

CREATE TABLE lineage_jobs (
    id         bigserial PRIMARY KEY,
    namespace  text        NOT NULL,
    name       text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    UNIQUE (namespace, name)
);

CREATE TABLE lineage_datasets (
    id         bigserial PRIMARY KEY,
    namespace  text        NOT NULL,
    name       text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    UNIQUE (namespace, name)
);

-- One row per run id. `state` is the latest transition by event time, except that a run that
-- ended (COMPLETE/FAIL/ABORT) is not moved back by a late START or RUNNING; OTHER never
-- changes it. Events may arrive in any order, so start and end are kept separately.
CREATE TABLE lineage_runs (
    run_id           text PRIMARY KEY,
    job_id           bigint      NOT NULL REFERENCES lineage_jobs (id),
    state            text        NOT NULL,
    state_time       timestamptz NOT NULL,
    started_at       timestamptz,
    ended_at         timestamptz,
    end_state        text,
    duration_seconds double precision
        GENERATED ALWAYS AS (extract(epoch FROM ended_at - started_at)) STORED,
    parent_run_id    text,
    parent_job       text,
    error_message    text,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lineage_runs_job ON lineage_runs (job_id, state_time DESC);

-- Every accepted event once: a re-sent event (same subject, type and time) is recognised
-- and changes nothing. `subject` is the run id, or namespace/name of the job or dataset.
CREATE TABLE lineage_events (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('run', 'job', 'dataset')),
    subject     text        NOT NULL,
    event_type  text        NOT NULL,
    event_time  timestamptz NOT NULL,
    job_id      bigint REFERENCES lineage_jobs (id),
    producer    text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, subject, event_type, event_time)
);
CREATE INDEX lineage_events_job ON lineage_events (job_id, event_type);

-- direction 'input': dataset -> job; 'output': job -> dataset.
CREATE TABLE lineage_edges (
    job_id      bigint      NOT NULL REFERENCES lineage_jobs (id),
    dataset_id  bigint      NOT NULL REFERENCES lineage_datasets (id),
    direction   text        NOT NULL CHECK (direction IN ('input', 'output')),
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    last_run_id text,
    PRIMARY KEY (job_id, dataset_id, direction)
);
CREATE INDEX lineage_edges_dataset ON lineage_edges (dataset_id);

-- fields: [[path, type], ...] in the order sent (nested fields as parent.child).
CREATE TABLE lineage_schema_versions (
    dataset_id bigint      NOT NULL REFERENCES lineage_datasets (id),
    version    integer     NOT NULL,
    fields     jsonb       NOT NULL,
    seen_at    timestamptz NOT NULL,
    run_id     text,
    job_id     bigint REFERENCES lineage_jobs (id),
    PRIMARY KEY (dataset_id, version)
);

-- A change event between two consecutive schema versions of a dataset.
CREATE TABLE lineage_schema_changes (
    id           bigserial PRIMARY KEY,
    dataset_id   bigint      NOT NULL REFERENCES lineage_datasets (id),
    changed_at   timestamptz NOT NULL,
    from_version integer     NOT NULL,
    to_version   integer     NOT NULL,
    run_id       text,
    job_id       bigint REFERENCES lineage_jobs (id),
    added        jsonb       NOT NULL,
    removed      jsonb       NOT NULL,
    type_changed jsonb       NOT NULL
);
CREATE INDEX lineage_schema_changes_dataset ON lineage_schema_changes (dataset_id, changed_at);
