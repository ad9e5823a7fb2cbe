-- Series whose natural id (the 63-bit hash of metric and labels) was already taken by another
-- label set: they are registered under the next free id, and this table says where, so every
-- writer finds them again (see store/src/registry.rs). Almost always empty. A row goes with its
-- series when retention deletes the series.
CREATE TABLE series_collisions (
    hash bigint NOT NULL,
    id   bigint PRIMARY KEY REFERENCES series (id) ON DELETE CASCADE
);
CREATE INDEX series_collisions_hash ON series_collisions (hash);
