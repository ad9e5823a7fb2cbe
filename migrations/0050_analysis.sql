-- Analysis results: anomalies the detection jobs open and close, what people said about them
-- (feedback the detectors read back, so it survives restarts), and drift comparisons.
-- Columns follow model::anomaly (Anomaly, DriftResult); times are timestamptz `*_at`.

CREATE TABLE anomalies (
    id             bigserial PRIMARY KEY,
    -- The signal's identity: the PromQL expression that produces it.
    signal         text             NOT NULL,
    kind           text             NOT NULL,
    labels         jsonb            NOT NULL DEFAULT '{}',
    node           text,
    detector       text             NOT NULL,
    state          text             NOT NULL CHECK (state IN ('open', 'closed')),
    severity       text             NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    score          double precision NOT NULL,
    started_at     timestamptz      NOT NULL,
    ended_at       timestamptz,
    last_seen_at   timestamptz      NOT NULL,
    observed       double precision NOT NULL,
    expected_low   double precision NOT NULL,
    expected_high  double precision NOT NULL,
    explanation    text             NOT NULL,
    feedback       text CHECK (feedback IN ('expected', 'false_alarm')),
    feedback_by    text,
    feedback_at    timestamptz,
    created_at     timestamptz      NOT NULL DEFAULT now()
);
-- At most one open anomaly per signal: the job extends it instead of opening another.
CREATE UNIQUE INDEX anomalies_one_open_per_signal ON anomalies (signal) WHERE state = 'open';
CREATE INDEX anomalies_started_at ON anomalies (started_at DESC);
CREATE INDEX anomalies_node ON anomalies (node, state);

-- Feedback as the detectors use it: per signal, a window and what it was.
CREATE TABLE anomaly_feedback (
    id          bigserial PRIMARY KEY,
    anomaly_id  bigint      REFERENCES anomalies (id) ON DELETE SET NULL,
    signal      text        NOT NULL,
    window_from timestamptz NOT NULL,
    window_to   timestamptz NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('expected', 'false_alarm')),
    note        text,
    given_by    text        NOT NULL,
    given_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anomaly_feedback_signal ON anomaly_feedback (signal);

CREATE TABLE drift_results (
    id                bigserial PRIMARY KEY,
    dataset           text             NOT NULL,
    "column"          text             NOT NULL,
    method            text             NOT NULL,
    value             double precision NOT NULL,
    threshold         double precision NOT NULL,
    drifted           boolean          NOT NULL,
    reference_from_at timestamptz      NOT NULL,
    reference_to_at   timestamptz      NOT NULL,
    current_from_at   timestamptz      NOT NULL,
    current_to_at     timestamptz      NOT NULL,
    evaluated_at      timestamptz      NOT NULL,
    explanation       text             NOT NULL
);
CREATE INDEX drift_results_column ON drift_results (dataset, "column", evaluated_at DESC);
