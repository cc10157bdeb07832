-- Hourly "as of" rollups for the dashboard's long time ranges (maintained by
-- storage.analytics.refresh_rollups in the writer process). Fund rows are the newest raw row of each
-- pool x asset in (hour - 1 h, hour]; open interest is pre-summed per venue and per fund pool, so a
-- 2-year chart reads a few hundred thousand rows instead of 200 million.
CREATE TABLE oi_hourly (
    venue      VARCHAR     NOT NULL,
    pool_id    VARCHAR     NOT NULL,   -- '*' = the venue's total; else a fund pool (fund_pool_members)
    hour       TIMESTAMPTZ NOT NULL,   -- bucket end: each contract's newest value in (hour - 1 h, hour]
    ts         TIMESTAMPTZ NOT NULL,   -- newest venue timestamp among them
    oi_usd     DOUBLE      NOT NULL,
    contracts  INTEGER     NOT NULL
);

CREATE TABLE fund_hourly (
    venue      VARCHAR     NOT NULL,
    pool_id    VARCHAR     NOT NULL,
    asset      VARCHAR     NOT NULL,
    hour       TIMESTAMPTZ NOT NULL,
    ts         TIMESTAMPTZ NOT NULL,
    usd_value  DOUBLE,
    balance    DOUBLE      NOT NULL
);

-- Up to which hour each rollup is complete, and the newest fetched_at it has seen (late/backfilled
-- rows fetched after that are folded in on the next refresh).
CREATE TABLE rollup_state (
    name          VARCHAR     PRIMARY KEY,
    complete_to   TIMESTAMPTZ NOT NULL,
    fetched_to    TIMESTAMPTZ NOT NULL,
    refreshed_at  TIMESTAMPTZ NOT NULL
);
