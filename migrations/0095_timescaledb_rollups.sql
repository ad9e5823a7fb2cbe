-- TimescaleDB mode only (a no-op in plain PostgreSQL mode): continuous aggregates that reads
-- can trust, tested against PostgreSQL 15.18 + TimescaleDB 2.28.3 (issue 10, item 7).
--
-- 0002's aggregates had real-time aggregation and refresh
-- policies, and reads took every bucket from them. That lost data: a policy refreshes only
-- its window, so samples written below it (backfill, late OTLP, a replay) never reached the
-- aggregate, and real-time aggregation covers only buckets above the watermark. Re-sent
-- samples were also counted twice, since the aggregate cannot de-duplicate.
--
-- They are replaced by aggregates that the store's maintenance refreshes itself, through the
-- same `rollup_state` watermark and dirty range as the plain mode's rollup tables (writers
-- mark samples written below the watermark; reads take raw samples from the dirty range up,
-- see store/src/timescale.rs). So:
-- * materialized_only: reads never ask the aggregate above its watermark;
-- * `distinct_ts` beside `count`: a bucket where they differ holds duplicate timestamps, and
--   reads compute it from de-duplicated raw samples instead;
-- * daily chunks for the materialisation, like the raw hypertable, so retention's
--   drop_chunks removes raw samples and their rollups at the same day boundary.
-- 0002 and its comment ("NOT exercised by the test suite") stay as released: sqlx refuses a
-- database whose applied migration changed. The TimescaleDB branch is tested now.
-- Dropping the old aggregates removes their refresh policies; the rollup watermarks start
-- empty, so the first maintenance refreshes from the earliest sample.
DO $migration$
BEGIN
    IF (SELECT mode FROM storage_mode) = 'timescaledb' THEN
        EXECUTE 'DROP MATERIALIZED VIEW IF EXISTS samples_1h';
        EXECUTE 'DROP MATERIALIZED VIEW IF EXISTS samples_1m';
        EXECUTE $ddl$
            CREATE MATERIALIZED VIEW samples_1m WITH (timescaledb.continuous,
                timescaledb.materialized_only = true, timescaledb.chunk_interval = '1 day') AS
            SELECT series_id, time_bucket(INTERVAL '1 minute', ts) AS bucket,
                   count(*) AS count, count(DISTINCT ts) AS distinct_ts,
                   sum(value) AS sum, min(value) AS min, max(value) AS max,
                   last(value, ts) AS last, max(ts) AS last_ts
            FROM samples GROUP BY series_id, time_bucket(INTERVAL '1 minute', ts)
            WITH NO DATA
        $ddl$;
        EXECUTE $ddl$
            CREATE MATERIALIZED VIEW samples_1h WITH (timescaledb.continuous,
                timescaledb.materialized_only = true, timescaledb.chunk_interval = '1 day') AS
            SELECT series_id, time_bucket(INTERVAL '1 hour', ts) AS bucket,
                   count(*) AS count, count(DISTINCT ts) AS distinct_ts,
                   sum(value) AS sum, min(value) AS min, max(value) AS max,
                   last(value, ts) AS last, max(ts) AS last_ts
            FROM samples GROUP BY series_id, time_bucket(INTERVAL '1 hour', ts)
            WITH NO DATA
        $ddl$;
        UPDATE rollup_state SET watermark = NULL, dirty_from = NULL, dirty_to = NULL,
            updated_at = clock_timestamp() WHERE name IN ('1m', '1h');
    END IF;
END
$migration$;
