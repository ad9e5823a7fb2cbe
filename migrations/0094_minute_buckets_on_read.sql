-- Minute buckets computed on read (issue 10). Plain PostgreSQL mode only: the minute rollup
-- table `samples_1m` (one btree-indexed row per series and minute) cost ~37 bytes per raw sample
-- for 15 s data and ~120 for once-a-minute data, ten to forty times the compacted samples
-- themselves, and reading it was no faster than decoding the hour chunks it summarised. Range
-- queries at minute steps now aggregate the de-duplicated samples (chunks + fresh rows) in
-- Rust; `samples_1h` stays, computed by maintenance straight from the samples of each hour.
--
-- The `rollup_state` row '1m' stays as the tracker of the rollup's progress (writers mark late
-- samples on it; its watermark is now whole hours): it is moved back to the hour watermark so
-- the hours between are computed again from samples.
--
-- TimescaleDB mode keeps its continuous aggregate named samples_1m: nothing changes there.
DO $migration$
BEGIN
    IF (SELECT mode FROM storage_mode) = 'postgres' THEN
        DROP TABLE IF EXISTS samples_1m;
        UPDATE rollup_state SET watermark = (SELECT watermark FROM rollup_state WHERE name = '1h'),
            updated_at = clock_timestamp()
        WHERE name = '1m';
    END IF;
END
$migration$;
