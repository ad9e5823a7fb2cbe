-- Write-optimised sample storage (issue 10). Plain PostgreSQL mode: the `samples` table loses
-- its (series_id, ts) btree, which was most of what a write cost (a raw COPY runs 3-4x faster
-- without it), and gets a BRIN on time instead; closed hours are compacted by maintenance
-- into `sample_chunks`, one row per series and hour with pco-compressed timestamps and values
-- (see store/src/chunk.rs). Reads merge chunks and fresh rows, keeping one sample per
-- (series, timestamp).
--
-- TimescaleDB mode keeps its hypertable, btree and native compression; `sample_chunks` stays
-- empty there.
DO $migration$
BEGIN
    IF (SELECT mode FROM storage_mode) = 'postgres' THEN
        DROP INDEX IF EXISTS samples_series_ts;
        CREATE INDEX samples_ts_brin ON samples USING brin (ts);
    END IF;
END
$migration$;

CREATE TABLE sample_chunks (
    series_id bigint      NOT NULL,
    -- The whole UTC hour the chunk covers (store::chunk::CHUNK_MS).
    start_ts  timestamptz NOT NULL,
    first_ts  timestamptz NOT NULL,
    last_ts   timestamptz NOT NULL,
    n         integer     NOT NULL CHECK (n > 0),
    ts_data   bytea       NOT NULL,
    val_data  bytea       NOT NULL,
    PRIMARY KEY (series_id, start_ts)
);
-- Compaction and rollups read every chunk of an hour; retention deletes by hour.
CREATE INDEX sample_chunks_start ON sample_chunks (start_ts);
-- Already compressed: PostgreSQL's own TOAST compression would only spend CPU.
ALTER TABLE sample_chunks ALTER COLUMN ts_data SET STORAGE EXTERNAL;
ALTER TABLE sample_chunks ALTER COLUMN val_data SET STORAGE EXTERNAL;

-- Compaction's progress, in the rollups' table so writers mark late samples for both in one
-- statement: every closed hour before `watermark` has been compacted, and samples written
-- since below it (late or re-sent) lie between dirty_from and dirty_to.
INSERT INTO rollup_state (name) VALUES ('compact');
