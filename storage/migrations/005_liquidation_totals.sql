-- A venue's own liquidation totals per time bucket (Gate contract_stats: long/short liquidated per 5 min).
-- Complete by the venue's account, unlike the sampled per-event feeds, so kept in a table of their own.
-- Idempotency: (venue, symbol, interval_s, ts) through the writer's anti-join; only completed buckets.
CREATE TABLE liquidation_totals (
    venue               VARCHAR     NOT NULL,
    symbol              VARCHAR     NOT NULL,
    ts                  TIMESTAMPTZ NOT NULL,   -- bucket start (venue time)
    interval_s          INTEGER     NOT NULL,
    long_usd            DOUBLE,                 -- long positions liquidated, USD
    short_usd           DOUBLE,
    long_base           DOUBLE,                 -- base-asset quantity
    short_base          DOUBLE,
    long_contracts_raw  VARCHAR,                -- as served
    short_contracts_raw VARCHAR,
    fetched_at          TIMESTAMPTZ NOT NULL
);
