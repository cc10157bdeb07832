-- Alerts: one row per firing episode (firing -> resolved), and every delivery attempt of its notifications.
-- A dedup_key (rule|venue|scope) has at most one 'firing' row at a time (kept so by alerts.engine).
CREATE TABLE alerts (
    alert_id          VARCHAR     PRIMARY KEY,
    dedup_key         VARCHAR     NOT NULL,
    rule              VARCHAR     NOT NULL,
    venue             VARCHAR     NOT NULL,
    scope             VARCHAR     NOT NULL,
    status            VARCHAR     NOT NULL,   -- firing | resolved
    severity          VARCHAR     NOT NULL,   -- info | warning | critical (current)
    max_severity      VARCHAR     NOT NULL,   -- highest severity seen during the episode
    message           VARCHAR     NOT NULL,   -- latest sentence (plain text, may hold exchange text)
    first_message     VARCHAR     NOT NULL,   -- the sentence when it fired
    metrics           VARCHAR     NOT NULL,   -- JSON: the numbers that triggered (latest)
    data_ts           TIMESTAMPTZ,            -- venue timestamp of the triggering data (chart markers)
    fired_at          TIMESTAMPTZ NOT NULL,
    last_seen_at      TIMESTAMPTZ NOT NULL,
    evaluations       INTEGER     NOT NULL,
    resolved_at       TIMESTAMPTZ,
    resolved_reason   VARCHAR,                -- cleared | rule disabled
    notified_severity VARCHAR,                -- NULL = not notified (cooldown suppressed it so far)
    last_notified_at  TIMESTAMPTZ             -- last firing/escalation notification (drives the cooldown)
);

CREATE TABLE alert_deliveries (
    delivery_id   VARCHAR     PRIMARY KEY,
    alert_id      VARCHAR,                    -- NULL for test messages
    dedup_key     VARCHAR,
    event         VARCHAR     NOT NULL,       -- firing | escalated | resolved | test
    target        VARCHAR     NOT NULL,       -- scheme only ("json://…"): never the URL
    target_index  INTEGER     NOT NULL,       -- position in [alerts] targets
    attempt       INTEGER     NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL,
    ok            BOOLEAN     NOT NULL,
    error         VARCHAR,                    -- redacted
    duration_ms   DOUBLE      NOT NULL
);
