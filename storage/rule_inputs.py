"""The alert rules' inputs, computed in DuckDB: fund windows and venue changes, coverage against open
interest, job freshness, ADL readings, cascades and open stream gaps, as the typed rows of
``metrics.alert_rows``.

Inputs are read on the connection the caller provides: in the collector process the writer's own
(``Store.read``: DuckDB refuses a read-only open of a file the same process has open for writing),
elsewhere a read-only one.

Time: ``now`` is the wall clock (runs, lifecycle, cooldowns); ``as_of`` is the data clock, the later of
``now`` and the newest stored fund/OI timestamp, so a simulator running ahead of the wall clock is read
at its own present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from metrics.alert_rows import (
    AdlReading,
    CascadeEvent,
    Freshness,
    FundWindow,
    StreamGap,
    VenueChange,
    VenueCoverage,
)
from records.vocabulary import DATASET_TABLES
from storage.db import scalar
from storage.fund_asof import DEFAULT_FUND_CADENCE_S, GONE_MULTIPLE, is_current_sql, series_cadence_sql
from storage.rollups import HOUR_END_SQL, rollup_complete_to

DEFAULT_EXPECTED_S = DEFAULT_FUND_CADENCE_S  # a venue we know nothing about is assumed to publish daily


MAX_FUTURE = timedelta(days=7)  # data stamped further ahead than this never moves the data clock


# dataset (job name) -> (table, venue-timestamp column) whose newest row says the data "landed"
DATA_TABLES = DATASET_TABLES


def _f(value: Any) -> float | None:
    if value is None:
        return None
    result = float(value) if isinstance(value, Decimal | int | float) else float(value)
    return result if math.isfinite(result) else None


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]))


def table_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [name]).fetchall()]


def data_clock(con: duckdb.DuckDBPyConnection, now: datetime) -> datetime:
    """The later of ``now`` and the newest fund / OI timestamp (bounded: junk far-future stamps are ignored)."""
    newest = scalar(
        con,
        """
        SELECT max(ts) FROM (
            SELECT max(ts) AS ts FROM fund_balances WHERE ts <= ?
            UNION ALL SELECT max(ts) FROM open_interest WHERE ts <= ?
        )
        """,
        [now + MAX_FUTURE, now + MAX_FUTURE],
    )
    return max(now, newest) if newest is not None else now


def _cadence_lists(expected_s: Mapping[str, float]) -> tuple[list[str], list[float]]:
    venues = sorted(expected_s)
    return venues, [float(expected_s[v]) for v in venues]


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
    venues, cadences = _cadence_lists(expected_s)
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
                   points=int(r[5]), max_balance=_f(r[6]), max_ts=r[7], last_balance=float(r[8]), last_ts=r[9],
                   start_balance=_f(r[10]), start_ts=r[11], max_usd=_f(r[12]), last_usd=_f(r[13]),
                   start_usd=_f(r[14]))
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


# Daily coverage per venue: the last fund value of each series and the venue's open interest at the end of
# its last hour with data (its contracts' last values in that hour; the hour ending at midnight belongs to
# the day before) per UTC day, over [$lo, $hi) - one definition
# for the coverage median and the coverage history. Whole hours come from the hourly rollups (migration
# 004) up to their watermarks, raw rows after them: 90 days of 1,000 contracts in 0.1 s, not 1.8 s.
_DAILY_COVERAGE = """
    WITH fund_points AS (
        SELECT venue, pool_id, asset, ts, usd_value AS usd FROM fund_hourly
        WHERE hour <= $fund_wm AND ts >= $lo AND ts < $hi
        UNION ALL
        SELECT venue, pool_id, asset, ts, usd_value::DOUBLE FROM fund_balances
        WHERE ts > $fund_raw_after AND ts >= $lo AND ts < $hi
    ), fund_daily AS (
        SELECT venue, day, sum(usd) AS fund_usd FROM (
            SELECT venue, pool_id, asset, date_trunc('day', ts) AS day, arg_max(usd, ts) AS usd
            FROM fund_points GROUP BY ALL
        ) GROUP BY venue, day
    ), oi_points AS (
        SELECT venue, hour, ts, oi_usd FROM oi_hourly
        WHERE pool_id = '*' AND hour <= $oi_wm AND hour > $lo AND hour <= $hi
        UNION ALL
        SELECT venue, hour, max(ts), sum(oi) FROM (
            SELECT venue, symbol, {hour_end} AS hour, arg_max(oi_usd, ts) AS oi, max(ts) AS ts
            FROM open_interest
            WHERE ts > $oi_raw_after AND ts > $lo AND ts <= $hi AND oi_usd IS NOT NULL GROUP BY ALL
        ) GROUP BY venue, hour
    ), oi_daily AS (  -- an hour (h - 1 h, h] belongs to the day it covers: the one ending at midnight too
        SELECT venue, date_trunc('day', hour - INTERVAL 1 MICROSECOND) AS day, arg_max(oi_usd, ts) AS oi_usd
        FROM oi_points GROUP BY ALL
    ), daily AS (
        SELECT f.venue, f.day, f.fund_usd / o.oi_usd AS ratio
        FROM fund_daily AS f JOIN oi_daily AS o USING (venue, day)
        WHERE o.oi_usd > 0 AND f.fund_usd > 0
    )
""".replace("{hour_end}", HOUR_END_SQL)


def _daily_coverage_params(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> dict[str, datetime]:
    """The window and each rollup's watermark (raw rows count after it; no rollup: all raw rows)."""
    params = {"lo": lo, "hi": hi}
    for prefix, rollup in (("fund", "fund_hourly"), ("oi", "oi_hourly")):
        watermark = rollup_complete_to(con, rollup)
        params[f"{prefix}_wm"] = watermark if watermark is not None else lo - timedelta(days=1)
        params[f"{prefix}_raw_after"] = watermark if watermark is not None else lo - timedelta(microseconds=1)
    return params


def coverage_medians(con: duckdb.DuckDBPyConnection, as_of: datetime,
                     median_days: int = 30) -> dict[str, tuple[float, int]]:
    """Per venue: the median of the daily coverage ratio over the ``median_days`` days before ``as_of``'s
    day, and how many days had both. Changes once a day: the engine caches it per day."""
    today = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = con.execute(
        _DAILY_COVERAGE + "SELECT venue, median(ratio), count(*) FROM daily GROUP BY venue",  # noqa: S608 - constant
        _daily_coverage_params(con, today - timedelta(days=median_days), today),
    ).fetchall()
    return {venue: (float(median), int(days)) for venue, median, days in rows if median is not None}


def coverage_history(con: duckdb.DuckDBPyConnection, as_of: datetime, days: int = 90) -> dict[str, list[float]]:
    """Per venue: the daily coverage (percent of OI) of the ``days`` days before ``as_of``'s day, oldest first."""
    today = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = con.execute(
        _DAILY_COVERAGE + "SELECT venue, list(ratio * 100 ORDER BY day) FROM daily GROUP BY venue",  # noqa: S608
        _daily_coverage_params(con, today - timedelta(days=days), today),
    ).fetchall()
    return {venue: [float(v) for v in values] for venue, values in rows}


def venue_open_interest(con: duckdb.DuckDBPyConnection, as_of: datetime,
                        oi_expected_s: Mapping[str, float], gone_multiple: float = 3.0) -> dict[str, float]:
    """Per venue: current open interest in USD (each symbol's latest value within ``gone_multiple`` x the
    venue's cadence of the venue's newest poll, itself recent)."""
    venues, cadences = _cadence_lists(oi_expected_s)
    rows = con.execute(
        """
        WITH ocfg AS (SELECT unnest(?::VARCHAR[]) AS venue, unnest(?::DOUBLE[]) AS expected_s),
        oi_series AS (
            SELECT venue, symbol, max(ts) AS last_ts, arg_max(oi_usd, ts) AS oi_usd
            FROM open_interest WHERE ts > ? AND ts <= ? AND oi_usd IS NOT NULL GROUP BY venue, symbol
        )
        SELECT s.venue, sum(s.oi_usd)
        FROM oi_series AS s
        JOIN (SELECT venue, max(last_ts) AS newest FROM oi_series GROUP BY venue) AS n USING (venue)
        LEFT JOIN ocfg AS c ON c.venue = s.venue
        WHERE epoch(n.newest) - epoch(s.last_ts) <= ? * coalesce(c.expected_s, 3600)
          AND epoch(?::TIMESTAMPTZ) - epoch(n.newest) <= ? * greatest(coalesce(c.expected_s, 3600), 3600)
        GROUP BY s.venue
        """,
        [venues, cadences, as_of - timedelta(seconds=gone_multiple * max([3600.0, *cadences]) + 3600), as_of,
         gone_multiple, as_of, gone_multiple],
    ).fetchall()
    return {venue: float(oi) for venue, oi in rows if oi is not None}


def venue_coverage(con: duckdb.DuckDBPyConnection, as_of: datetime, fund_expected_s: Mapping[str, float],
                   oi_expected_s: Mapping[str, float], median_days: int = 30, gone_multiple: float = 3.0,
                   medians: Mapping[str, tuple[float, int]] | None = None) -> list[VenueCoverage]:
    """Per venue: live funds in USD ÷ current open interest in USD (each OI symbol's latest value, if
    recent), with the venue's ``coverage_medians`` (computed here unless given)."""
    f_venues, f_cadences = _cadence_lists(fund_expected_s)
    o_venues, o_cadences = _cadence_lists(oi_expected_s)
    fund_lookback = as_of - timedelta(seconds=GONE_MULTIPLE * max([DEFAULT_EXPECTED_S, *f_cadences]) + 86_400)
    oi_lookback = as_of - timedelta(seconds=gone_multiple * max([3600.0, *o_cadences]) + 3600)
    rows = con.execute(
        """
        WITH fcfg AS (SELECT unnest(?::VARCHAR[]) AS venue, unnest(?::DOUBLE[]) AS expected_s),
        ocfg AS (SELECT unnest(?::VARCHAR[]) AS venue, unnest(?::DOUBLE[]) AS expected_s),
        fund_gaps AS (
            SELECT venue, pool_id, asset, ts, usd_value,
                   epoch(ts) - epoch(lag(ts) OVER (PARTITION BY venue, pool_id, asset ORDER BY ts)) AS gap_s
            FROM fund_balances WHERE ts > ? AND ts <= ?
        ), fund_series AS (
            SELECT s.venue, s.last_ts, s.last_usd,
                   {cadence} AS cadence_s FROM (
                SELECT venue, pool_id, asset, max(ts) AS last_ts, arg_max(usd_value, ts) AS last_usd,
                       arg_max(gap_s, ts) AS last_gap_s
                FROM fund_gaps GROUP BY venue, pool_id, asset
            ) AS s LEFT JOIN fcfg AS c ON c.venue = s.venue
        ), fund_now AS (
            SELECT venue, sum(last_usd) AS fund_usd, max(last_ts) AS fund_ts,
                   count(*) FILTER (WHERE last_usd IS NULL) AS unpriced
            FROM fund_series WHERE {live}
            GROUP BY venue
        ), oi_series AS (
            SELECT venue, symbol, max(ts) AS last_ts, arg_max(oi_usd, ts) AS oi_usd
            FROM open_interest WHERE ts > ? AND ts <= ? AND oi_usd IS NOT NULL GROUP BY venue, symbol
        ), oi_now AS (
            SELECT s.venue, sum(s.oi_usd) AS oi_usd, max(s.last_ts) AS oi_ts
            FROM oi_series AS s
            JOIN (SELECT venue, max(last_ts) AS newest FROM oi_series GROUP BY venue) AS n USING (venue)
            LEFT JOIN ocfg AS c ON c.venue = s.venue
            WHERE epoch(n.newest) - epoch(s.last_ts) <= ? * coalesce(c.expected_s, 3600)
              AND epoch(?::TIMESTAMPTZ) - epoch(n.newest) <= ? * greatest(coalesce(c.expected_s, 3600), 3600)
            GROUP BY s.venue
        )
        SELECT f.venue, f.fund_usd, o.oi_usd, f.fund_ts, o.oi_ts, f.unpriced
        FROM fund_now AS f JOIN oi_now AS o USING (venue)
        WHERE f.fund_usd IS NOT NULL ORDER BY f.venue
        """.format(  # noqa: S608 - constant fragments (storage.fund_asof)
            cadence=series_cadence_sql("coalesce(c.expected_s, ?)", "s.last_gap_s"),
            live=is_current_sql("last_ts", "?::TIMESTAMPTZ", "cadence_s")),
        [f_venues, f_cadences, o_venues, o_cadences, fund_lookback, as_of, DEFAULT_EXPECTED_S, as_of,
         oi_lookback, as_of, gone_multiple, as_of, gone_multiple],
    ).fetchall()
    if medians is None:
        medians = coverage_medians(con, as_of, median_days)
    result = []
    for venue, fund_usd, oi_usd, fund_ts, oi_ts, unpriced in rows:
        median, days = medians.get(venue, (None, 0))
        result.append(VenueCoverage(venue=venue, fund_usd=float(fund_usd), oi_usd=float(oi_usd), fund_ts=fund_ts,
                                    oi_ts=oi_ts, median_ratio=median, median_days=days,
                                    unpriced_pools=int(unpriced)))
    return result


@dataclass(frozen=True)
class JobExpectation:
    """A configured collector job and what to expect of it."""

    venue: str
    dataset: str
    poll_interval_s: float
    cadence_s: float


def freshness(con: duckdb.DuckDBPyConnection, now: datetime, jobs: Sequence[JobExpectation],
              lookback: timedelta = timedelta(days=7)) -> list[Freshness]:
    """Per configured job: first/last/last-ok poll run (within ``lookback``) and the newest venue
    timestamp of its data."""
    if not jobs:
        return []
    runs = {
        (r[0], r[1]): r[2:]
        for r in con.execute(
            """
            SELECT venue, dataset, min(started_at), max(finished_at),
                   max(finished_at) FILTER (WHERE status = 'ok'),
                   arg_max(status, finished_at), arg_max(error_class, finished_at)
            FROM collection_runs WHERE kind = 'poll' AND finished_at > ?
            GROUP BY venue, dataset
            """,
            [now - lookback],
        ).fetchall()
    }
    newest: dict[tuple[str, str], datetime] = {}
    datasets = {job.dataset for job in jobs}
    for dataset in sorted(datasets & set(DATA_TABLES)):
        table, column = DATA_TABLES[dataset]
        if not table_exists(con, table):
            continue
        for venue, ts in con.execute(
            f"SELECT venue, max({column}) FROM {table} WHERE {column} > ? GROUP BY venue",  # noqa: S608 - fixed identifiers
            [now - timedelta(days=30)],
        ).fetchall():
            newest[(venue, dataset)] = ts
    result = []
    for job in jobs:
        first, last, last_ok, status, error_class = runs.get((job.venue, job.dataset), (None,) * 5)
        result.append(Freshness(
            venue=job.venue, dataset=job.dataset, poll_interval_s=job.poll_interval_s, cadence_s=job.cadence_s,
            first_run_at=first, last_run_at=last, last_ok_at=last_ok, last_status=status,
            last_error_class=error_class, newest_data_ts=newest.get((job.venue, job.dataset)),
        ))
    return result


def latest_adl(con: duckdb.DuckDBPyConnection, as_of: datetime, lookback: timedelta = timedelta(days=2)) -> list[AdlReading]:
    """The latest reading per venue x scope x signal type within ``lookback``."""
    rows = con.execute(
        """
        SELECT venue, scope, signal_type, max(ts), arg_max(level, ts), arg_max(value, ts),
               arg_max(threshold, ts), arg_max(distance, ts)
        FROM adl_signals WHERE ts > ? AND ts <= ?
        GROUP BY venue, scope, signal_type ORDER BY venue, scope, signal_type
        """,
        [as_of - lookback, as_of + timedelta(minutes=5)],
    ).fetchall()
    return [AdlReading(venue=r[0], scope=r[1], signal_type=r[2], ts=r[3], level=r[4], value=_f(r[5]),
                       threshold=_f(r[6]), distance=_f(r[7])) for r in rows]


CASCADE_COLUMNS = ("start_ts", "end_ts", "ongoing", "total_long_usd", "total_short_usd", "minutes",
                   "dominant_asset", "price_move_pct", "fund_change_usd", "incomplete", "lower_bound")


def recent_cascades(con: duckdb.DuckDBPyConnection, as_of: datetime,
                    lookback: timedelta = timedelta(hours=6)) -> list[CascadeEvent]:
    """Cascades (table ``cascades`` of migration 002, written by the cascade detector) that started within
    ``lookback``: one per scope (a venue key, or ``market``) and start. Read defensively: no table (or
    not the expected columns) -> none; the scope column is ``venue`` (or ``scope`` in early drafts)."""
    if not table_exists(con, "cascades"):
        return []
    columns = set(table_columns(con, "cascades"))
    scope = "venue" if "venue" in columns else "scope" if "scope" in columns else None
    if scope is None or not set(CASCADE_COLUMNS) <= columns:
        return []
    rows = con.execute(
        f"""
        SELECT "{scope}", start_ts, CASE WHEN ongoing THEN NULL ELSE end_ts END, total_long_usd, total_short_usd,
               minutes, dominant_asset, price_move_pct, fund_change_usd, incomplete, lower_bound
        FROM cascades WHERE start_ts > ? AND start_ts <= ? ORDER BY start_ts, "{scope}"
        """,  # noqa: S608 - the scope column is one of two fixed names
        [as_of - lookback, as_of + timedelta(minutes=5)],
    ).fetchall()
    events = []
    for scope, start, end, long_usd, short_usd, minutes, asset, move, fund_change, incomplete, lower in rows:
        long_usd, short_usd = float(long_usd or 0), float(short_usd or 0)
        events.append(CascadeEvent(
            venue=str(scope), cascade_id=start.strftime("%Y%m%dT%H%MZ"), started_at=start, ended_at=end,
            notional_usd=long_usd + short_usd, side="long" if long_usd >= short_usd else "short",
            minutes=None if minutes is None else int(minutes), dominant_asset=asset, price_move_pct=_f(move),
            fund_change_usd=_f(fund_change), incomplete=bool(incomplete), lower_bound=bool(lower),
        ))
    return events


def open_stream_gaps(con: duckdb.DuckDBPyConnection) -> list[StreamGap]:
    """Liquidation feed gaps still open (``liquidation_gaps.end_ts`` NULL, migration 002; no table -> none)."""
    if not table_exists(con, "liquidation_gaps"):
        return []
    if not {"venue", "feed", "start_ts", "end_ts", "reason"} <= set(table_columns(con, "liquidation_gaps")):
        return []
    rows = con.execute(
        """
        SELECT venue, feed, min(start_ts), arg_min(reason, start_ts)
        FROM liquidation_gaps WHERE end_ts IS NULL GROUP BY venue, feed ORDER BY venue, feed
        """
    ).fetchall()
    return [StreamGap(venue=str(r[0]), stream=str(r[1]), started_at=r[2], reason=None if r[3] is None else str(r[3]))
            for r in rows]
