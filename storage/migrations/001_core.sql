-- Core tables. Natural keys are enforced by the writer's anti-join (idempotent, no ART index on the
-- large time series); small tables use primary keys.
CREATE TABLE fund_balances (
    venue        VARCHAR     NOT NULL,
    pool_id      VARCHAR     NOT NULL,
    asset        VARCHAR     NOT NULL,
    ts           TIMESTAMPTZ NOT NULL,   -- venue timestamp
    balance      DECIMAL(38, 12) NOT NULL,
    balance_raw  VARCHAR     NOT NULL,
    unit_raw     VARCHAR     NOT NULL,
    usd_value    DECIMAL(38, 8),         -- NULL = no price known (flagged, never guessed)
    usd_source   VARCHAR,                -- venue | stable | price | NULL
    kind         VARCHAR     NOT NULL,
    source       VARCHAR     NOT NULL,
    fetched_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE fund_pool_members (
    venue       VARCHAR     NOT NULL,
    pool_id     VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    asset       VARCHAR     NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (venue, pool_id, symbol, asset)
);

CREATE TABLE fund_flows (
    venue         VARCHAR     NOT NULL,
    pool_id       VARCHAR     NOT NULL,
    asset         VARCHAR     NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    flow_type     VARCHAR     NOT NULL,
    amount        DECIMAL(38, 12),
    balance_after DECIMAL(38, 12),
    inferred      BOOLEAN     NOT NULL,
    detail        VARCHAR     NOT NULL,
    fetched_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE open_interest (
    venue          VARCHAR     NOT NULL,
    symbol         VARCHAR     NOT NULL,
    ts             TIMESTAMPTZ NOT NULL,
    base_asset     VARCHAR     NOT NULL,
    settle_asset   VARCHAR     NOT NULL,
    oi_raw         VARCHAR     NOT NULL,
    oi_unit        VARCHAR     NOT NULL,
    contract_size  DOUBLE,
    inverse        BOOLEAN     NOT NULL,
    oi_base        DOUBLE,
    oi_usd         DOUBLE,
    fetched_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE funding_rates (
    venue             VARCHAR     NOT NULL,
    symbol            VARCHAR     NOT NULL,
    ts                TIMESTAMPTZ NOT NULL,
    funding_rate      DOUBLE      NOT NULL,
    funding_rate_raw  VARCHAR     NOT NULL,
    next_funding_ts   TIMESTAMPTZ,
    interval_h        DOUBLE,
    mark_price        DOUBLE,
    fetched_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE prices (
    venue      VARCHAR     NOT NULL,
    asset      VARCHAR     NOT NULL,
    ts         TIMESTAMPTZ NOT NULL,
    price_usd  DOUBLE      NOT NULL,
    source     VARCHAR     NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE adl_signals (
    venue        VARCHAR     NOT NULL,
    scope        VARCHAR     NOT NULL,
    ts           TIMESTAMPTZ NOT NULL,
    signal_type  VARCHAR     NOT NULL,
    level        VARCHAR,
    value        DOUBLE,
    threshold    DOUBLE,
    distance     DOUBLE,
    detail       VARCHAR     NOT NULL,
    fetched_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE collection_runs (
    run_id         VARCHAR     PRIMARY KEY,
    venue          VARCHAR     NOT NULL,
    dataset        VARCHAR     NOT NULL,
    kind           VARCHAR     NOT NULL,   -- poll | backfill
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ NOT NULL,
    status         VARCHAR     NOT NULL,   -- ok | error
    error_class    VARCHAR,
    error_message  VARCHAR,
    attempts       INTEGER     NOT NULL,
    rows_written   INTEGER     NOT NULL
);
