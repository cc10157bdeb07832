-- Database file size over time, for the growth rate on the Collector health page: sampled by the collector
-- (hourly) and around every compaction ('compact-before' / 'compact-after'; growth is measured after the
-- last compaction only, since a compaction shrinks the file).
CREATE TABLE db_size_samples (
    ts     TIMESTAMPTZ NOT NULL,
    bytes  BIGINT      NOT NULL,   -- the file plus its write-ahead log
    event  VARCHAR     NOT NULL    -- sample | compact-before | compact-after
);
