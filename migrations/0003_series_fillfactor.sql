-- The writer bumps series.last_seen about once a minute per active series. last_seen is not
-- indexed, so with free room on each page those updates are HOT (no index entries, no GIN
-- pending-list inserts); without it every bump rewrites the row into another page and touches
-- all three indexes. Half-empty pages are a cheap price for a table with one row per series.
ALTER TABLE series SET (fillfactor = 50);
