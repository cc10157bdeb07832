"""Fund inputs of the alert rules: per live fund series x window, its as-of start, max and last
(``FundWindow``), and per venue x window the USD-weighted change of its pools (``VenueChange``). One
SQL text (``_SERIES_WINDOWS``) feeds both, over ``storage.fund_asof``'s "fund as of t" definition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from metrics.alert_rows import FundWindow, VenueChange
from storage.fund_asof import GONE_MULTIPLE, is_current_sql, series_cadence_sql
from storage.rule_inputs import DEFAULT_EXPECTED_S, cadence_lists, finite_or_none

# One row per live fund series x window. A series is live when it has a value as of as_of, and its
# window opens at its value as of the window start (storage.fund_asof: the one definition).
_SERIES_WINDOWS = """
WITH cfg AS (
    SELECT unnest(?::VARCHAR[]) AS venue, unnest(?::DOUBLE[]) AS expected_s
), windows AS (
    SELECT unnest(?::DOUBLE[]) AS window_h
), pts AS (
    SELECT f.venue, f.pool_id, f.asset, f.ts, f.balance, f.usd_value,
           coalesce(c.expected_s, ?) AS expected_s
    FROM fund_balances AS f LEFT JOIN cfg AS c ON c.venue = f.venue
    WHERE f.ts > ?::TIMESTAMPTZ - to_seconds(?) AND f.ts <= ?::TIMESTAMPTZ
), gaps AS (
    SELECT *, epoch(ts) - epoch(lag(ts) OVER (PARTITION BY venue, pool_id, asset ORDER BY ts)) AS gap_s
    FROM pts
), series AS (
    SELECT venue, pool_id, asset, max(ts) AS last_ts, arg_max(balance, ts) AS last_balance,
           arg_max(usd_value, ts) AS last_usd, arg_max(gap_s, ts) AS last_gap_s, max(expected_s) AS expected_s
    FROM gaps GROUP BY venue, pool_id, asset
), live AS (
    SELECT *, {cadence} AS cadence_s FROM series
    WHERE {live}
), grid AS (
    SELECT l.*, w.window_h, ?::TIMESTAMPTZ - to_seconds(w.window_h * 3600) AS start_at
    FROM live AS l CROSS JOIN windows AS w
    WHERE w.window_h * 3600 >= l.cadence_s
), opening AS (
    SELECT g.venue, g.pool_id, g.asset, g.window_h, max(p.ts) AS start_ts,
           arg_max(p.balance, p.ts) AS start_balance, arg_max(p.usd_value, p.ts) AS start_usd
    FROM grid AS g JOIN pts AS p
      ON p.venue = g.venue AND p.pool_id = g.pool_id AND p.asset = g.asset
     AND p.ts <= g.start_at AND {opening}
    GROUP BY g.venue, g.pool_id, g.asset, g.window_h
), inside AS (
    SELECT g.venue, g.pool_id, g.asset, g.window_h, count(*) AS n, max(p.balance) AS max_balance,
           arg_max(p.ts, p.balance) AS max_ts, arg_max(p.usd_value, p.balance) AS max_usd,
           min(p.ts) AS first_ts, arg_min(p.balance, p.ts) AS first_balance, arg_min(p.usd_value, p.ts) AS first_usd
    FROM grid AS g JOIN pts AS p
      ON p.venue = g.venue AND p.pool_id = g.pool_id AND p.asset = g.asset AND p.ts > g.start_at
    GROUP BY g.venue, g.pool_id, g.asset, g.window_h
), series_windows AS (
    SELECT g.venue, g.pool_id, g.asset, g.window_h, g.cadence_s,
           coalesce(i.n, 0) + CASE WHEN o.start_ts IS NULL THEN 0 ELSE 1 END AS points,
           CASE WHEN i.max_balance IS NULL OR o.start_balance > i.max_balance
                THEN o.start_balance ELSE i.max_balance END AS max_balance,
           CASE WHEN i.max_balance IS NULL OR o.start_balance > i.max_balance
                THEN o.start_ts ELSE i.max_ts END AS max_ts,
           CASE WHEN i.max_balance IS NULL OR o.start_balance > i.max_balance
                THEN o.start_usd ELSE i.max_usd END AS max_usd,
           g.last_balance, g.last_ts, g.last_usd, o.start_balance, o.start_ts, o.start_usd,
           coalesce(o.start_balance, i.first_balance) AS base_balance,
           CASE WHEN o.start_ts IS NULL THEN i.first_usd ELSE o.start_usd END AS base_usd
    FROM grid AS g
    LEFT JOIN opening AS o USING (venue, pool_id, asset, window_h)
    LEFT JOIN inside AS i USING (venue, pool_id, asset, window_h)
)
""".format(  # noqa: S608 - constant fragments (storage.fund_asof)
    cadence=series_cadence_sql("expected_s", "last_gap_s"),
    live=is_current_sql("last_ts", "?::TIMESTAMPTZ", series_cadence_sql("expected_s", "last_gap_s")),
    opening=is_current_sql("p.ts", "g.start_at", "g.cadence_s"),
)


def _series_params(as_of: datetime, windows_h: Sequence[float], expected_s: Mapping[str, float]) -> list[Any]:
    venues, cadences = cadence_lists(expected_s)
    longest_cadence = max([DEFAULT_EXPECTED_S, *cadences])
    lookback_s = max(windows_h) * 3600 + GONE_MULTIPLE * longest_cadence
    return [venues, cadences, [float(w) for w in windows_h], DEFAULT_EXPECTED_S, as_of, lookback_s, as_of,
            as_of, as_of]


def fund_windows(con: duckdb.DuckDBPyConnection, as_of: datetime, windows_h: Sequence[float],
                 expected_s: Mapping[str, float]) -> list[FundWindow]:
    """Per live fund series x window: as-of start, max, last, points (see ``FundWindow``)."""
    if not windows_h:
        return []
    rows = con.execute(
        _SERIES_WINDOWS + """
        SELECT venue, pool_id, asset, window_h, cadence_s, points, max_balance, max_ts, last_balance, last_ts,
               start_balance, start_ts, max_usd, last_usd, start_usd
        FROM series_windows ORDER BY venue, pool_id, asset, window_h
        """,  # noqa: S608 - constant SQL text, values are parameters
        _series_params(as_of, windows_h, expected_s),
    ).fetchall()
    return [
        FundWindow(venue=r[0], pool_id=r[1], asset=r[2], window_h=float(r[3]), cadence_s=float(r[4]),
                   points=int(r[5]), max_balance=finite_or_none(r[6]), max_ts=r[7], last_balance=float(r[8]),
                   last_ts=r[9], start_balance=finite_or_none(r[10]), start_ts=r[11],
                   max_usd=finite_or_none(r[12]), last_usd=finite_or_none(r[13]), start_usd=finite_or_none(r[14]))
        for r in rows
    ]


def venue_changes(con: duckdb.DuckDBPyConnection, as_of: datetime, windows_h: Sequence[float],
                  expected_s: Mapping[str, float]) -> list[VenueChange]:
    """Per venue x window: the USD-weighted mean of each live pool's native change from the window start
    (its as-of value there, else its first point inside the window: a young database or a new pool) to
    its last point; weights = USD value at that base. A pool needs two points and a positive base with a
    USD value; a pool no longer published is not live and so never reads as a fall to zero."""
    if not windows_h:
        return []
    rows = con.execute(
        _SERIES_WINDOWS + """
        , weighted AS (
            SELECT venue, window_h, last_ts, coalesce(base_usd, last_usd) AS weight,
                   last_balance / base_balance - 1 AS change
            FROM series_windows
            WHERE points >= 2 AND base_balance > 0 AND coalesce(base_usd, last_usd) > 0
        )
        SELECT venue, window_h, sum(weight * change) / sum(weight) * 100 AS change_pct, count(*) AS pools,
               sum(weight) AS start_usd, sum(weight * (1 + change)) AS end_usd, max(last_ts) AS last_ts
        FROM weighted GROUP BY venue, window_h ORDER BY venue, window_h
        """,  # noqa: S608 - constant SQL text, values are parameters
        _series_params(as_of, windows_h, expected_s),
    ).fetchall()
    return [
        VenueChange(venue=r[0], window_h=float(r[1]), change_pct=float(r[2]), pools=int(r[3]),
                    start_usd=float(r[4]), end_usd=float(r[5]), last_ts=r[6])
        for r in rows if r[2] is not None and math.isfinite(float(r[2]))
    ]
