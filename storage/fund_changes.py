"""Classified fund changes (``backstop export fund-changes``): every change between two consecutive
observations of a pool, its kind (``metrics.fund_changes``) and whether the kind was inferred.

The steps, the pool's usual move and the venue's published flow types are aggregated in SQL; the
classification is the pure function. A pool that appears after its venue's first observation, or stops
being published while its venue goes on, is a ``restructure`` step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from metrics.fund_changes import ChangeContext, classify
from storage.db import read_connection

COLUMNS = ["venue", "pool_id", "asset", "prev_ts", "ts", "prev_balance", "balance", "change_native",
           "change_usd", "kind", "inferred", "reason"]
DEFAULT_SPAN = timedelta(days=7)
GONE_AFTER = timedelta(days=2)  # a pool silent this long while its venue publishes has stopped


@dataclass(frozen=True)
class FundChange:
    venue: str
    pool_id: str
    asset: str
    prev_ts: datetime | None
    ts: datetime
    prev_balance: float | None
    balance: float | None
    change_native: float | None
    change_usd: float | None
    kind: str
    inferred: bool
    reason: str


_STEPS = """
WITH pts AS (
    SELECT venue, pool_id, asset, ts, balance::DOUBLE AS balance, usd_value::DOUBLE AS usd
    FROM fund_balances WHERE ts <= $until AND ts > $lookback AND ($venue IS NULL OR venue = $venue)
), steps AS (
    SELECT *, lag(ts) OVER w AS prev_ts, lag(balance) OVER w AS prev_balance, lag(usd) OVER w AS prev_usd
    FROM pts WINDOW w AS (PARTITION BY venue, pool_id, asset ORDER BY ts)
), venue_span AS (
    SELECT venue, min(ts) AS first_ts, max(ts) AS last_ts FROM pts GROUP BY venue
), usual AS (
    SELECT venue, pool_id, asset, median(abs(balance - prev_balance)) FILTER (WHERE balance <> prev_balance) AS usual
    FROM steps GROUP BY ALL
), flows AS (
    SELECT s.venue, s.pool_id, s.asset, s.ts, arg_max(f.flow_type, abs(coalesce(f.amount, 0))) AS flow_type
    FROM steps AS s JOIN fund_flows AS f
      ON f.venue = s.venue AND f.pool_id = s.pool_id AND f.asset = s.asset AND f.ts > s.prev_ts AND f.ts <= s.ts
    WHERE s.ts >= $since GROUP BY ALL
)
SELECT s.venue, s.pool_id, s.asset, s.prev_ts, s.ts, s.prev_balance, s.balance, s.prev_usd, s.usd,
       fl.flow_type, u.usual, s.prev_ts IS NULL AND s.ts > v.first_ts AS appears, false AS gone
FROM steps AS s JOIN venue_span AS v USING (venue)
LEFT JOIN usual AS u USING (venue, pool_id, asset)
LEFT JOIN flows AS fl USING (venue, pool_id, asset, ts)
WHERE s.ts >= $since AND (s.prev_ts IS NULL OR s.balance IS DISTINCT FROM s.prev_balance
                          OR s.usd IS DISTINCT FROM s.prev_usd)
  AND (s.prev_ts IS NOT NULL OR s.ts > v.first_ts)
UNION ALL
SELECT p.venue, p.pool_id, p.asset, max(p.ts), NULL, arg_max(p.balance, p.ts), NULL, arg_max(p.usd, p.ts), NULL,
       NULL, NULL, false, true
FROM pts AS p JOIN venue_span AS v USING (venue)
GROUP BY p.venue, p.pool_id, p.asset, v.last_ts
HAVING max(p.ts) < v.last_ts - $gone AND max(p.ts) >= $since
ORDER BY 1, 2, 3, 5 NULLS LAST
"""


def fund_changes(con: duckdb.DuckDBPyConnection, since: datetime, until: datetime,
                 venue: str | None = None) -> list[FundChange]:
    """Classified steps with ``since <= ts <= until`` (a vanished pool: at its last observation)."""
    rows = con.execute(_STEPS, {"since": since, "until": until, "lookback": since - timedelta(days=30),
                                "venue": venue, "gone": GONE_AFTER}).fetchall()
    out = []
    for (v, pool, asset, prev_ts, ts, prev_bal, bal, prev_usd, usd, flow, usual, appears, gone) in rows:
        if gone:
            kind = classify(prev_bal, None)
            out.append(FundChange(v, pool, asset, prev_ts, prev_ts, prev_bal, None, None, None, kind.kind,
                                  kind.inferred, kind.reason))
            continue
        if prev_ts is None and not appears:
            continue
        c = classify(prev_bal, bal, prev_usd, usd, ChangeContext(published_kind=flow, usual_move=usual))
        change = bal - prev_bal if bal is not None and prev_bal is not None else None
        change_usd = usd - prev_usd if usd is not None and prev_usd is not None else None
        out.append(FundChange(v, pool, asset, prev_ts, ts, prev_bal, bal, change, change_usd, c.kind,
                              c.inferred, c.reason))
    return out


def fund_changes_frame(db: Path | str, since: datetime | None = None, until: datetime | None = None,
                       venue: str | None = None) -> pd.DataFrame:
    """The export's rows (``COLUMNS``); the last ``DEFAULT_SPAN`` unless ``since`` is given."""
    with read_connection(db) as con:
        end = until or con.execute("SELECT coalesce(max(ts), now()) FROM fund_balances").fetchall()[0][0]
        start = since or end - DEFAULT_SPAN
        rows: list[Any] = fund_changes(con, start, end, venue)
    return pd.DataFrame([r.__dict__ for r in rows], columns=COLUMNS)
