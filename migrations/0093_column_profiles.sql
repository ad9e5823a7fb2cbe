-- Column profiles sent to `POST /api/v1/drift/profile`: one mergeable summary of one column
-- (a dataset's or feature's) at one time, as `analysis::drift::ColumnProfile` JSON (exact value
-- counts while the column has few distinct values, a t-digest always). The drift job merges the
-- profiles of a window and compares the current window with its reference.

CREATE TABLE column_profiles (
    id          bigserial   PRIMARY KEY,
    dataset     text        NOT NULL CHECK (dataset <> ''),
    "column"    text        NOT NULL CHECK ("column" <> ''),
    at          timestamptz NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('numeric', 'categorical')),
    value_count bigint      NOT NULL CHECK (value_count >= 0),
    profile     jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX column_profiles_window ON column_profiles (dataset, "column", at);
CREATE INDEX column_profiles_at ON column_profiles (at);
