-- Sample storage. Feature-detects TimescaleDB: when `CREATE EXTENSION timescaledb` succeeds,
-- samples become a compressed hypertable with continuous aggregates for the rollups;
-- otherwise they are a natively partitioned table (daily partitions, created by the store)
-- with rollup tables maintained by the store's maintenance job.
--
-- The TimescaleDB branch is NOT exercised by the test suite (TimescaleDB is not installable
-- on the development machines); the plain PostgreSQL branch is.
DO $migration$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'TimescaleDB is not available (%); using plain PostgreSQL partitioning', SQLERRM;
    END;

    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- EXECUTE so that this branch does not need TimescaleDB's functions to exist when the
        -- plain branch runs.
        EXECUTE $ddl$
            CREATE TABLE samples (
                series_id bigint           NOT NULL,
                ts        timestamptz      NOT NULL,
                value     double precision NOT NULL
            )
        $ddl$;
        EXECUTE $ddl$ SELECT create_hypertable('samples', 'ts', chunk_time_interval => INTERVAL '1 day') $ddl$;
        EXECUTE $ddl$ CREATE INDEX samples_series_ts ON samples (series_id, ts) $ddl$;
        EXECUTE $ddl$
            ALTER TABLE samples SET (
                timescaledb.compress,
                timescaledb.compress_segmentby = 'series_id',
                timescaledb.compress_orderby = 'ts'
            )
        $ddl$;
        -- Same column names as the plain rollup tables, so queries do not depend on the mode.
        EXECUTE $ddl$
            CREATE MATERIALIZED VIEW samples_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT series_id, time_bucket(INTERVAL '1 minute', ts) AS bucket,
                   count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
                   last(value, ts) AS last, max(ts) AS last_ts
            FROM samples GROUP BY series_id, time_bucket(INTERVAL '1 minute', ts)
            WITH NO DATA
        $ddl$;
        EXECUTE $ddl$
            CREATE MATERIALIZED VIEW samples_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT series_id, time_bucket(INTERVAL '1 hour', ts) AS bucket,
                   count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
                   last(value, ts) AS last, max(ts) AS last_ts
            FROM samples GROUP BY series_id, time_bucket(INTERVAL '1 hour', ts)
            WITH NO DATA
        $ddl$;
        INSERT INTO storage_mode (mode) VALUES ('timescaledb');
    ELSE
        CREATE TABLE samples (
            series_id bigint           NOT NULL,
            ts        timestamptz      NOT NULL,
            value     double precision NOT NULL
        ) PARTITION BY RANGE (ts);
        -- Declared on the parent so every daily partition gets it automatically.
        CREATE INDEX samples_series_ts ON samples (series_id, ts);
        -- Catches samples outside the daily partitions (far past, far future, or before the
        -- writer created the day's partition), so no accepted row is ever refused.
        CREATE TABLE samples_default PARTITION OF samples DEFAULT;

        CREATE TABLE samples_1m (
            series_id bigint           NOT NULL,
            bucket    timestamptz      NOT NULL,
            count     bigint           NOT NULL,
            sum       double precision NOT NULL,
            min       double precision NOT NULL,
            max       double precision NOT NULL,
            last      double precision NOT NULL,
            last_ts   timestamptz      NOT NULL,
            PRIMARY KEY (series_id, bucket)
        );
        CREATE TABLE samples_1h (LIKE samples_1m INCLUDING ALL);
        INSERT INTO storage_mode (mode) VALUES ('postgres');
    END IF;
END
$migration$;
