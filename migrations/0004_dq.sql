-- Data-quality check runs from Great Expectations, dbt and Soda (collectors::dq), one row per
-- execution of one check. The key makes re-importing the same result file a no-op: a run is
-- identified by the tool's own run id (GX suite/run name/run time/batch, dbt invocation id,
-- Soda scan definition/data timestamp/scan start), a check by its id within the tool.
CREATE TABLE dq_check_runs (
    tool           text             NOT NULL,
    run_id         text             NOT NULL,
    check_id       text             NOT NULL,
    tool_version   text,
    suite          text             NOT NULL,
    dataset        text             NOT NULL,
    column_name    text,
    check_name     text             NOT NULL,
    check_type     text             NOT NULL,
    status         text             NOT NULL
                   CHECK (status IN ('pass', 'warn', 'fail', 'error', 'skipped')),
    raw_status     text             NOT NULL,
    observed_value double precision,
    observed_raw   text,
    expected       text,
    message        text,
    run_time       timestamptz      NOT NULL,
    imported_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tool, run_id, check_id)
);

-- The Data quality page: datasets with their latest runs, and per check its last N runs.
CREATE INDEX dq_check_runs_dataset ON dq_check_runs (dataset, tool, suite, check_id, run_time DESC);
