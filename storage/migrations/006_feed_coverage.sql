-- Which stretches each liquidation stream was covered by a running collector, so the time it was NOT
-- (the collector stopped, crashed or was killed) is stored as a gap like any live disconnect.
-- One row per feed per collector run: opened at the feed's first subscription, its heartbeat advanced
-- while the stream is alive, closed (end_ts) by a clean stop. A row left open was a crash: the next
-- run closes it at its last heartbeat and records a gap from there to its own first message.
CREATE TABLE liquidation_coverage (
    venue         VARCHAR     NOT NULL,
    feed          VARCHAR     NOT NULL,
    start_ts      TIMESTAMPTZ NOT NULL,   -- first subscription of this collector run
    heartbeat_ts  TIMESTAMPTZ NOT NULL,   -- last moment the stream was known alive (persisted every few s)
    end_ts        TIMESTAMPTZ,            -- NULL = running, or the run died without a clean stop
    end_reason    VARCHAR,                -- stopped | lost (no clean stop; closed at its last heartbeat)
    PRIMARY KEY (venue, feed, start_ts)
);

-- The liquidations export: every row plus whether its minute overlaps a gap of its venue's feeds
-- (a disconnect, collector downtime, a dropped frame): sums over such minutes are incomplete.
CREATE VIEW liquidations_export AS
SELECT l.*,
       EXISTS (
           SELECT 1 FROM liquidation_gaps AS g
           WHERE g.venue = l.venue AND g.start_ts < date_trunc('minute', l.ts) + INTERVAL 1 MINUTE
             AND coalesce(g.end_ts, now()) > date_trunc('minute', l.ts)
       ) AS incomplete
FROM liquidations AS l;
