-- Liquidations from every venue's feed, the windows a feed was down, and detected cascades.
-- Idempotency: (venue, feed, event_key) is enforced by the writer's anti-join limited to the batch's
-- time range (zone-map pruning; no ART index on the large table).
CREATE TABLE liquidations (
    venue            VARCHAR     NOT NULL,
    feed             VARCHAR     NOT NULL,   -- e.g. forceOrder:usdm, allLiquidation:linear, liq_orders:usdt
    source           VARCHAR     NOT NULL,   -- ws | rest (overlapping sources are max()-combined, never summed)
    event_key        VARCHAR     NOT NULL,   -- venue event key (no venue publishes ids on its stream)
    ts               TIMESTAMPTZ NOT NULL,   -- venue timestamp of the liquidation
    symbol           VARCHAR     NOT NULL,
    base_asset       VARCHAR     NOT NULL,
    quote_asset      VARCHAR     NOT NULL,
    side             VARCHAR     NOT NULL,   -- liquidated POSITION side: long | short
    price            DOUBLE      NOT NULL,
    price_kind       VARCHAR     NOT NULL,   -- average_fill | fill | order | bankruptcy
    qty_base         DOUBLE,                 -- base units; NULL when a contract spec was unknown
    qty_contracts    DOUBLE,
    contract_size    DOUBLE,                 -- base per contract (linear) or USD per contract (inverse)
    inverse          BOOLEAN     NOT NULL,
    notional_usd     DOUBLE,                 -- NULL = unknown (no spec / non-USD quote), never guessed
    notional_source  VARCHAR     NOT NULL,
    coverage         VARCHAR     NOT NULL,   -- complete | sampled | unconfirmed
    lower_bound      BOOLEAN     NOT NULL,   -- sums of these rows are lower bounds
    raw              VARCHAR     NOT NULL,   -- the raw message, trimmed to this event
    received_at      TIMESTAMPTZ NOT NULL,
    fetched_at       TIMESTAMPTZ NOT NULL
);

-- Per-minute rollup maintained by the writer in the same transaction as the rows (recomputed from
-- liquidations for the minutes a batch touched): aggregates by venue x side x bucket read this, not the
-- raw table, so they stay fast on tens of millions of liquidations.
CREATE TABLE liquidation_minutes (
    venue        VARCHAR     NOT NULL,
    source       VARCHAR     NOT NULL,
    minute       TIMESTAMPTZ NOT NULL,
    side         VARCHAR     NOT NULL,
    usd          DOUBLE      NOT NULL,   -- sum of known notional_usd
    qty_base     DOUBLE      NOT NULL,
    events       BIGINT      NOT NULL,
    unpriced     BIGINT      NOT NULL,   -- rows whose notional is unknown
    lower_bound  BOOLEAN     NOT NULL
);

-- What each feed covers (the coverage note shown next to its numbers).
CREATE TABLE liquidation_feeds (
    venue        VARCHAR     NOT NULL,
    feed         VARCHAR     NOT NULL,
    source       VARCHAR     NOT NULL,
    coverage     VARCHAR     NOT NULL,
    lower_bound  BOOLEAN     NOT NULL,
    note         VARCHAR     NOT NULL,
    first_seen   TIMESTAMPTZ NOT NULL,
    last_seen    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (venue, feed)
);

-- A feed was down (disconnected until resubscribed, or a window older than a REST history):
-- volumes of that venue over [start_ts, end_ts) are incomplete. end_ts NULL = still down.
CREATE TABLE liquidation_gaps (
    venue        VARCHAR     NOT NULL,
    feed         VARCHAR     NOT NULL,
    start_ts     TIMESTAMPTZ NOT NULL,
    end_ts       TIMESTAMPTZ,
    reason       VARCHAR     NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (venue, feed, start_ts)
);

CREATE TABLE cascades (
    venue            VARCHAR     NOT NULL,   -- venue key, or 'market' (all venues summed)
    start_ts         TIMESTAMPTZ NOT NULL,
    end_ts           TIMESTAMPTZ,            -- exclusive; NULL while ongoing
    last_minute      TIMESTAMPTZ NOT NULL,
    peak_ts          TIMESTAMPTZ NOT NULL,
    peak_usd         DOUBLE      NOT NULL,
    total_long_usd   DOUBLE      NOT NULL,
    total_short_usd  DOUBLE      NOT NULL,
    baseline_usd     DOUBLE      NOT NULL,
    threshold_usd    DOUBLE      NOT NULL,
    minutes          INTEGER     NOT NULL,
    ongoing          BOOLEAN     NOT NULL,
    incomplete       BOOLEAN     NOT NULL,
    lower_bound      BOOLEAN     NOT NULL,
    dominant_asset   VARCHAR,
    price_before     DOUBLE,
    price_after      DOUBLE,
    price_move_pct   DOUBLE,
    price_source     VARCHAR,                -- prices | liquidations
    fund_before_usd  DOUBLE,
    fund_after_usd   DOUBLE,
    fund_change_usd  DOUBLE,                 -- NULL when the fund cadence cannot bracket the cascade
    fund_pools       INTEGER,
    params           VARCHAR     NOT NULL,   -- k, m, window, floor used
    detected_at      TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (venue, start_ts)
);
