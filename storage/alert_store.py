"""All alert SQL: the rule inputs (computed in DuckDB), the alert rows and their delivery attempts.

Inputs are read on the connection the caller provides: in the collector process the writer's own
(``Store.read``: DuckDB refuses a read-only open of a file the same process has open for writing),
elsewhere a read-only one. Writes go through ``storage.writer.Store.execute_write``.

Time: ``now`` is the wall clock (runs, lifecycle, cooldowns); ``as_of`` is the data clock, the later of
``now`` and the newest stored fund/OI timestamp, so a simulator running ahead of the wall clock is read
at its own present.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from alerts.rules import (
    AdlReading,
    CascadeEvent,
    Freshness,
    FundWindow,
    Signal,
    StreamGap,
    VenueChange,
    VenueCoverage,
)
from records.vocabulary import DATASET_TABLES
from storage.db import DatabaseMissing, read_connection, scalar
from storage.export import ExportSpec, register_export
from storage.fund_asof import DEFAULT_FUND_CADENCE_S, GONE_MULTIPLE, is_current_sql, series_cadence_sql

register_export("alerts", ExportSpec("alerts", "fired_at", "fired_at, rule, venue"))
register_export("alert-deliveries", ExportSpec("alert_deliveries", "attempted_at", "attempted_at, target_index"))

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


# Daily coverage per venue: the last fund value of each series and the last OI of each symbol per UTC day,
# summed, over [?, ?) (one definition for the coverage median and the coverage history).
_DAILY_COVERAGE = """
    WITH fund_daily AS (
        SELECT venue, day, sum(usd) AS fund_usd FROM (
            SELECT venue, pool_id, asset, date_trunc('day', ts) AS day, arg_max(usd_value, ts) AS usd
            FROM fund_balances WHERE ts >= $lo AND ts < $hi GROUP BY ALL
        ) GROUP BY venue, day
    ), oi_daily AS (
        SELECT venue, day, sum(oi) AS oi_usd FROM (
            SELECT venue, symbol, date_trunc('day', ts) AS day, arg_max(oi_usd, ts) AS oi
            FROM open_interest WHERE ts >= $lo AND ts < $hi AND oi_usd IS NOT NULL GROUP BY ALL
        ) GROUP BY venue, day
    ), daily AS (
        SELECT f.venue, f.day, f.fund_usd / o.oi_usd AS ratio
        FROM fund_daily AS f JOIN oi_daily AS o USING (venue, day)
        WHERE o.oi_usd > 0 AND f.fund_usd > 0
    )
"""


def coverage_medians(con: duckdb.DuckDBPyConnection, as_of: datetime,
                     median_days: int = 30) -> dict[str, tuple[float, int]]:
    """Per venue: the median of the daily coverage ratio over the ``median_days`` days before ``as_of``'s
    day, and how many days had both. Changes once a day: the engine caches it per day."""
    today = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = con.execute(
        _DAILY_COVERAGE + "SELECT venue, median(ratio), count(*) FROM daily GROUP BY venue",  # noqa: S608 - constant
        {"lo": today - timedelta(days=median_days), "hi": today},
    ).fetchall()
    return {venue: (float(median), int(days)) for venue, median, days in rows if median is not None}


def coverage_history(con: duckdb.DuckDBPyConnection, as_of: datetime, days: int = 90) -> dict[str, list[float]]:
    """Per venue: the daily coverage (percent of OI) of the ``days`` days before ``as_of``'s day, oldest first."""
    today = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = con.execute(
        _DAILY_COVERAGE + "SELECT venue, list(ratio * 100 ORDER BY day) FROM daily GROUP BY venue",  # noqa: S608
        {"lo": today - timedelta(days=days), "hi": today},
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


# -- alert rows -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertState:
    """A firing alert as stored."""

    alert_id: str
    dedup_key: str
    rule: str
    venue: str
    scope: str
    severity: str
    max_severity: str
    message: str
    fired_at: datetime
    last_seen_at: datetime
    notified_severity: str | None
    last_notified_at: datetime | None


@dataclass(frozen=True)
class AlertOpen:
    alert_id: str
    signal: Signal
    notified: bool


@dataclass(frozen=True)
class AlertUpdate:
    alert_id: str
    signal: Signal
    max_severity: str
    notified_severity: str | None  # set when this evaluation notifies


@dataclass(frozen=True)
class AlertResolve:
    alert_id: str
    reason: str


@dataclass(frozen=True)
class DeliveryAttempt:
    delivery_id: str
    alert_id: str | None
    dedup_key: str | None
    event: str
    target: str  # scheme only
    target_index: int
    attempt: int
    attempted_at: datetime
    ok: bool
    error: str | None
    duration_ms: float


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _jsonable(float(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def metrics_json(metrics: Mapping[str, Any]) -> str:
    """The triggering numbers as JSON (non-finite floats become null, times ISO-8601)."""
    return json.dumps(_jsonable(metrics), sort_keys=True)


def firing_alerts(con: duckdb.DuckDBPyConnection) -> list[AlertState]:
    rows = con.execute(
        """
        SELECT alert_id, dedup_key, rule, venue, scope, severity, max_severity, message, fired_at, last_seen_at,
               notified_severity, last_notified_at
        FROM alerts WHERE status = 'firing' ORDER BY fired_at
        """
    ).fetchall()
    return [AlertState(*r) for r in rows]


def last_notified(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[datetime, str]]:
    """Per dedup key, the last firing/escalation notification (any episode) and its severity: the
    cooldown clock, and the level an escalation must exceed."""
    return {key: (at, severity) for key, at, severity in con.execute(
        "SELECT dedup_key, max(last_notified_at), arg_max(notified_severity, last_notified_at) FROM alerts "
        "WHERE last_notified_at IS NOT NULL GROUP BY dedup_key"
    ).fetchall()}


def apply_changes(con: duckdb.DuckDBPyConnection, now: datetime, opened: Sequence[AlertOpen],
                  updated: Sequence[AlertUpdate], resolved: Sequence[AlertResolve]) -> None:
    """Write one evaluation's lifecycle changes in one transaction."""
    if not (opened or updated or resolved):
        return
    con.execute("BEGIN TRANSACTION")
    try:
        if opened:
            con.executemany(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?, ?, ?, ?, 1, NULL, NULL, ?, ?)",
                [[o.alert_id, o.signal.dedup_key, o.signal.rule, o.signal.venue, o.signal.scope,
                  o.signal.severity, o.signal.severity, o.signal.message, o.signal.message,
                  metrics_json(o.signal.metrics), o.signal.data_ts, now, now,
                  o.signal.severity if o.notified else None, now if o.notified else None]
                 for o in opened],
            )
        if updated:
            con.executemany(
                """
                UPDATE alerts SET severity = ?, max_severity = ?, message = ?, metrics = ?, last_seen_at = ?,
                       evaluations = evaluations + 1,
                       notified_severity = coalesce(?, notified_severity),
                       last_notified_at = CASE WHEN ? IS NULL THEN last_notified_at ELSE ? END
                WHERE alert_id = ? AND status = 'firing'
                """,
                [[u.signal.severity, u.max_severity, u.signal.message, metrics_json(u.signal.metrics), now,
                  u.notified_severity, u.notified_severity, now, u.alert_id] for u in updated],
            )
        if resolved:
            con.executemany(
                "UPDATE alerts SET status = 'resolved', resolved_at = ?, resolved_reason = ? "
                "WHERE alert_id = ? AND status = 'firing'",
                [[now, r.reason, r.alert_id] for r in resolved],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def record_deliveries(con: duckdb.DuckDBPyConnection, attempts: Sequence[DeliveryAttempt]) -> None:
    if not attempts:
        return
    con.executemany(
        "INSERT INTO alert_deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[a.delivery_id, a.alert_id, a.dedup_key, a.event, a.target, a.target_index, a.attempt, a.attempted_at,
          a.ok, a.error, a.duration_ms] for a in attempts],
    )


# -- reads for the CLI and the dashboard (read-only connections) -------------------------------------
ALERT_COLUMNS = ["alert_id", "status", "severity", "rule", "venue", "scope", "message", "fired_at",
                 "last_seen_at", "resolved_at", "resolved_reason", "notified", "max_severity", "data_ts",
                 "first_message", "metrics", "dedup_key"]


def _empty_alerts() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in ALERT_COLUMNS})


def alerts_frame(db: Path | str, status: str | None = None, rules: Sequence[str] | None = None,
                 venues: Sequence[str] | None = None, since: datetime | None = None,
                 limit: int = 5000) -> pd.DataFrame:
    """Alerts, firing first then newest first. ``since`` keeps firing ones plus those fired or resolved
    after it. An empty frame (same columns) when there is no database or no alerts table yet."""
    where, params = ["1 = 1"], []
    if status:
        where.append("status = ?")
        params.append(status)
    if rules:
        where.append("list_contains(?, rule)")
        params.append(list(rules))
    if venues:
        where.append("list_contains(?, venue)")
        params.append(list(venues))
    if since is not None:
        where.append("(status = 'firing' OR fired_at >= ? OR resolved_at >= ?)")
        params.extend([since, since])
    try:
        with read_connection(db) as con:
            if not table_exists(con, "alerts"):
                return _empty_alerts()
            return con.execute(
                f"""
                SELECT alert_id, status, severity, rule, venue, scope, message, fired_at, last_seen_at,
                       resolved_at, resolved_reason, notified_severity IS NOT NULL AS notified, max_severity,
                       data_ts, first_message, metrics, dedup_key
                FROM alerts WHERE {' AND '.join(where)}
                ORDER BY status = 'firing' DESC, fired_at DESC LIMIT ?
                """,  # noqa: S608 - fixed clauses, values are parameters
                [*params, limit],
            ).df()
    except DatabaseMissing:
        return _empty_alerts()


def deliveries_frame(db: Path | str, alert_id: str | None = None, limit: int = 1000) -> pd.DataFrame:
    """Delivery attempts, newest first (targets as scheme only)."""
    try:
        with read_connection(db) as con:
            if not table_exists(con, "alert_deliveries"):
                return pd.DataFrame()
            where = "alert_id = ?" if alert_id else "1 = 1"
            params: list[Any] = [alert_id] if alert_id else []
            return con.execute(
                f"SELECT * FROM alert_deliveries WHERE {where} ORDER BY attempted_at DESC LIMIT ?",  # noqa: S608
                [*params, limit],
            ).df()
    except DatabaseMissing:
        return pd.DataFrame()


def alert_markers(db: Path | str, venues: Sequence[str] | None, start: datetime, end: datetime) -> pd.DataFrame:
    """Alert markers for fund charts: one row per alert episode whose triggering data time (else the
    firing time) falls in [start, end]: ts, venue, rule, severity, status, message, alert_id."""
    columns = ["ts", "venue", "rule", "severity", "status", "message", "alert_id"]
    where, params = ["coalesce(data_ts, fired_at) BETWEEN ? AND ?"], [start, end]
    if venues:
        where.append("list_contains(?, venue)")
        params.append(list(venues))
    try:
        with read_connection(db) as con:
            if not table_exists(con, "alerts"):
                return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
            return con.execute(
                f"""
                SELECT coalesce(data_ts, fired_at) AS ts, venue, rule, max_severity AS severity, status,
                       first_message AS message, alert_id
                FROM alerts WHERE {' AND '.join(where)} ORDER BY ts
                """,  # noqa: S608 - fixed clauses
                params,
            ).df()
    except DatabaseMissing:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
