"""Liquidations read back from DuckDB: aggregates by venue x side x bucket (1 min ... 1 d), feeds, gaps,
detected cascades, venue-reported totals, stream states, and the per-minute series and context queries
(dominant asset, price move, fund change) that cascade detection reads. The writing side (rows, gaps, the
rollup, cascade upserts and the collector's ``BACKEND``) is ``storage.liquidation_writes``.

How a venue's number is formed: within one source (ws or rest) rows are summed; a venue with two sources
that see the same liquidations (Gate, HTX: stream + history endpoint) takes the larger of the two per
bucket and side, never their sum. Both are lower bounds of the truth, so their maximum is one too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from metrics.cascades import MINUTE, Cascade, fill_minutes, value_across
from storage.db import read_connection, scalar

BUCKETS: dict[str, str] = {
    "1m": "1 minute", "5m": "5 minutes", "15m": "15 minutes", "1h": "1 hour", "4h": "4 hours", "1d": "1 day",
}
PRICE_TOLERANCE = timedelta(minutes=30)
FUND_TOLERANCE = timedelta(minutes=15)


# -- aggregates ------------------------------------------------------------------------------------------

def _interval(bucket: str) -> str:
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r} (one of: {', '.join(BUCKETS)})")
    return BUCKETS[bucket]


_VOLUME_SQL = """
WITH per_source AS (
    SELECT venue, source, time_bucket(CAST(? AS INTERVAL), minute) AS bucket, side,
           sum(usd) AS usd, sum(events) AS events, sum(unpriced) AS unpriced, bool_or(lower_bound) AS lb
    FROM liquidation_minutes
    WHERE minute >= ? AND minute < ? AND (? IS NULL OR list_contains(?, venue))
    GROUP BY ALL
), per_side AS (
    SELECT venue, bucket, side, max(usd) AS usd, arg_max(events, usd) AS events,
           arg_max(unpriced, usd) AS unpriced, bool_or(lb) AS lb
    FROM per_source GROUP BY ALL
), wide AS (
    SELECT venue, bucket,
           coalesce(sum(usd) FILTER (WHERE side = 'long'), 0) AS long_usd,
           coalesce(sum(usd) FILTER (WHERE side = 'short'), 0) AS short_usd,
           sum(events) AS events, sum(unpriced) AS unpriced, bool_or(lb) AS lower_bound
    FROM per_side GROUP BY ALL
)
SELECT w.bucket, w.venue, w.long_usd, w.short_usd, w.long_usd + w.short_usd AS total_usd, w.events,
       w.unpriced, w.lower_bound,
       EXISTS (
           SELECT 1 FROM liquidation_gaps AS g
           WHERE g.venue = w.venue AND g.start_ts < w.bucket + CAST(? AS INTERVAL)
             AND coalesce(g.end_ts, now()) > w.bucket
       ) AS incomplete
FROM wide AS w
ORDER BY w.bucket, w.venue
"""


def volumes(con: duckdb.DuckDBPyConnection, bucket: str = "1h", since: datetime | None = None,
            until: datetime | None = None, venues: Sequence[str] | None = None) -> pd.DataFrame:
    """Liquidated USD per venue x bucket, long and short: bucket, venue, long_usd, short_usd, total_usd,
    events, unpriced (rows without a known notional), lower_bound (sampled feeds), incomplete (overlaps a
    gap)."""
    interval = _interval(bucket)
    since = since or datetime(2000, 1, 1, tzinfo=UTC)
    until = until or datetime(2100, 1, 1, tzinfo=UTC)
    venue_list = list(venues) if venues else None
    return con.execute(_VOLUME_SQL, [interval, since, until, venue_list, venue_list, interval]).df()


def liquidation_volumes(db: Path | str, bucket: str = "1h", since: datetime | None = None,
                        until: datetime | None = None, venues: Sequence[str] | None = None) -> pd.DataFrame:
    with read_connection(db) as con:
        return volumes(con, bucket, since, until, venues)


def liquidation_feeds(db: Path | str) -> pd.DataFrame:
    """Per venue x feed: source, coverage, lower_bound, note, first/last liquidation seen."""
    with read_connection(db) as con:
        return con.execute("SELECT * FROM liquidation_feeds ORDER BY venue, feed").df()


def liquidation_gaps(db: Path | str, since: datetime | None = None, until: datetime | None = None,
                     venue: str | None = None) -> pd.DataFrame:
    with read_connection(db) as con:
        return con.execute(
            """
            SELECT venue, feed, start_ts, end_ts, reason, end_ts IS NULL AS open
            FROM liquidation_gaps
            WHERE coalesce(end_ts, now()) >= coalesce(?, TIMESTAMPTZ '2000-01-01')
              AND start_ts < coalesce(?, TIMESTAMPTZ '2100-01-01') AND (? IS NULL OR venue = ?)
            ORDER BY start_ts, venue, feed
            """,
            [since, until, venue, venue],
        ).df()


def cascade_rows(db: Path | str, since: datetime | None = None, until: datetime | None = None,
                 venues: Sequence[str] | None = None) -> pd.DataFrame:
    """Detected cascades overlapping [since, until); ``venues`` keys (add 'market' for market-wide ones)."""
    chosen = list(venues) if venues is not None else None
    with read_connection(db) as con:
        return con.execute(
            """
            SELECT * FROM cascades
            WHERE coalesce(end_ts, now()) >= coalesce(?, TIMESTAMPTZ '2000-01-01')
              AND start_ts < coalesce(?, TIMESTAMPTZ '2100-01-01')
              AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], venue))
            ORDER BY start_ts, venue
            """,
            [since, until, chosen, chosen],
        ).df()


def venue_reported_totals(db: Path | str, since: datetime, until: datetime) -> pd.DataFrame:
    """Liquidations as venues total them themselves (``liquidation_totals``, e.g. Gate's 5-minute
    contract_stats buckets), summed per venue over the buckets that start in [since, until)."""
    with read_connection(db) as con:
        return con.execute(
            """
            SELECT venue, sum(long_usd) AS long_usd, sum(short_usd) AS short_usd,
                   sum(coalesce(long_usd, 0) + coalesce(short_usd, 0)) AS total_usd,
                   count(DISTINCT symbol) AS contracts, count(*) AS buckets, max(ts) AS newest_bucket
            FROM liquidation_totals WHERE ts >= ? AND ts < ?
            GROUP BY venue ORDER BY total_usd DESC
            """,
            [since, until],
        ).df()


def newest_ts(con: duckdb.DuckDBPyConnection, venue: str, feed: str) -> datetime | None:
    newest: datetime | None = scalar(con, "SELECT max(ts) FROM liquidations WHERE venue = ? AND feed = ?",
                                     [venue, feed])
    return newest


# -- what cascade detection reads: the per-minute series and each cascade's context ---------------------

def _minute_values(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime
                   ) -> dict[str, dict[datetime, tuple[float, float, bool]]]:
    rows = con.execute(
        """
        WITH per_source AS (
            SELECT venue, source, minute, side, sum(usd) AS usd, bool_or(lower_bound) AS lb
            FROM liquidation_minutes WHERE minute >= ? AND minute < ? GROUP BY ALL
        ), per_side AS (
            SELECT venue, minute, side, max(usd) AS usd, bool_or(lb) AS lb FROM per_source GROUP BY ALL
        )
        SELECT venue, minute,
               coalesce(sum(usd) FILTER (WHERE side = 'long'), 0),
               coalesce(sum(usd) FILTER (WHERE side = 'short'), 0), bool_or(lb)
        FROM per_side GROUP BY ALL
        """,
        [start, end],
    ).fetchall()
    values: dict[str, dict[datetime, tuple[float, float, bool]]] = defaultdict(dict)
    for venue, minute, long_usd, short_usd, lower_bound in rows:
        values[venue][minute] = (float(long_usd), float(short_usd), bool(lower_bound))
    return values


def _gaps(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, datetime | None]]]:
    rows = con.execute(
        "SELECT venue, start_ts, end_ts FROM liquidation_gaps "
        "WHERE start_ts < ? AND (end_ts IS NULL OR end_ts > ?)",
        [end, start],
    ).fetchall()
    gaps: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for venue, g_start, g_end in rows:
        gaps[venue].append((g_start, g_end))
    return gaps


def minute_series(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> dict[str, list[Any]]:
    """Per venue, and 'market' (all venues summed), the contiguous per-minute series over [start, end)."""
    values = _minute_values(con, start, end)
    gaps = _gaps(con, start, end)
    series = {venue: fill_minutes(values.get(venue, {}), start, end, gaps.get(venue, []))
              for venue in sorted(set(values) | set(gaps))}
    if series:
        market = {}
        incomplete_any = []
        for index, point in enumerate(next(iter(series.values()))):
            points = [venue_series[index] for venue_series in series.values()]
            market[point.minute] = (sum(p.long_usd for p in points), sum(p.short_usd for p in points),
                                    any(p.lower_bound for p in points))
            if any(p.incomplete for p in points):
                incomplete_any.append((point.minute, point.minute + MINUTE))
        series["market"] = fill_minutes(market, start, end, incomplete_any)
    return series


def dominant_asset(con: duckdb.DuckDBPyConnection, scope: str, start: datetime, stop: datetime) -> str | None:
    rows = con.execute(
        """
        SELECT base_asset FROM liquidations
        WHERE ts >= ? AND ts < ? AND (? = 'market' OR venue = ?) AND notional_usd IS NOT NULL
        GROUP BY base_asset ORDER BY sum(notional_usd) DESC, base_asset LIMIT 1
        """,
        [start, stop, scope, scope],
    ).fetchall()
    return rows[0][0] if rows else None


def price_move(con: duckdb.DuckDBPyConnection, scope: str, asset: str, cascade: Cascade
                ) -> tuple[float | None, float | None, str | None]:
    """Collected prices bracketing the cascade; otherwise the asset's liquidation VWAP in the first vs
    the last minute of the cascade."""
    end = cascade.end or (cascade.last_minute + MINUTE)
    points = [(ts, float(price)) for ts, price in con.execute(
        "SELECT ts, price_usd FROM prices WHERE asset = ? AND ts BETWEEN ? AND ? ORDER BY ts",
        [asset, cascade.start - PRICE_TOLERANCE, end + PRICE_TOLERANCE],
    ).fetchall()]
    bracket = value_across(points, cascade.start, cascade.end, PRICE_TOLERANCE)
    if bracket is not None:
        return bracket[0], bracket[1], "prices"
    rows = con.execute(
        """
        SELECT date_trunc('minute', ts) AS minute, sum(price * qty_base) / sum(qty_base)
        FROM liquidations
        WHERE base_asset = ? AND ts >= ? AND ts < ? AND (? = 'market' OR venue = ?) AND qty_base > 0
        GROUP BY 1 ORDER BY 1
        """,
        [asset, cascade.start, cascade.last_minute + MINUTE, scope, scope],
    ).fetchall()
    if not rows:
        return None, None, None
    return float(rows[0][1]), float(rows[-1][1]), "liquidations"


def fund_change(con: duckdb.DuckDBPyConnection, scope: str, cascade: Cascade
                 ) -> tuple[float | None, float | None, int]:
    """Sum over pools whose published balances bracket the cascade within FUND_TOLERANCE."""
    if cascade.end is None:
        return None, None, 0
    rows = con.execute(
        """
        SELECT venue, pool_id, asset, ts, usd_value FROM fund_balances
        WHERE ts BETWEEN ? AND ? AND usd_value IS NOT NULL AND (? = 'market' OR venue = ?)
        ORDER BY ts
        """,
        [cascade.start - FUND_TOLERANCE, cascade.end + FUND_TOLERANCE, scope, scope],
    ).fetchall()
    pools: dict[tuple[str, str, str], list[tuple[datetime, float]]] = defaultdict(list)
    for venue, pool, asset, ts, usd in rows:
        pools[(venue, pool, asset)].append((ts, float(usd)))
    before = after = 0.0
    counted = 0
    for points in pools.values():
        bracket = value_across(points, cascade.start, cascade.end, FUND_TOLERANCE)
        if bracket is not None:
            before += bracket[0]
            after += bracket[1]
            counted += 1
    return (before, after, counted) if counted else (None, None, 0)


def stream_states(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, bool, int]]:
    """Per liquidation feed: (venue, feed, connected = no open gap, gaps recorded so far)."""
    rows = con.execute(
        """
        SELECT f.venue, f.feed,
               count(g.start_ts) FILTER (WHERE g.end_ts IS NULL) = 0 AS connected,
               count(g.start_ts) AS gaps
        FROM liquidation_feeds f
        LEFT JOIN liquidation_gaps g ON g.venue = f.venue AND g.feed = f.feed
        GROUP BY f.venue, f.feed ORDER BY f.venue, f.feed
        """
    ).fetchall()
    return [(str(v), str(f), bool(c), int(n)) for v, f, c, n in rows]
