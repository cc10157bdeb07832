"""The dashboard's SQL: named, parameterised queries that aggregate in DuckDB and return small DataFrames.

Every function takes the database path and typed parameters, opens a short read-only connection
(``storage.db.read_connection`` retries while the collector holds the write lock) and returns a pandas
DataFrame of at most a few thousand rows: history is downsampled on a time grid in SQL, never pulled raw.

Time grids are "as of" grids: the value at grid point t is the newest row with ts ≤ t (forward-filled
from earlier points, but never from further back than ``max_gap``), so a pool published daily and one
published every minute add up correctly at any resolution. Grid points are ``end - k·step``.

Tables added by later migrations (``liquidations``, ``alerts``) are read defensively: a missing table
or column gives ``None`` instead of an error, and the dashboard shows "—".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from storage.db import DatabaseBusy, DatabaseMissing, read_connection

__all__ = ["DatabaseBusy", "DatabaseMissing", "Grid"]

DbPath = Path | str

FUND_MAX_GAP = timedelta(days=3)  # a pool not published for longer drops out of totals
OI_MAX_GAP = timedelta(hours=2)  # a contract not polled for longer drops out (delisted)
OI_SAMPLE_WINDOW = timedelta(minutes=15)  # coarse grids read only the rows this close before a grid point
FUND_GROUPS = {
    "venue": ("venue",),
    "pool": ("venue", "pool_id"),
    "asset": ("venue", "asset"),
    "pool_asset": ("venue", "pool_id", "asset"),
}
DATA_TABLES: dict[str, str] = {  # dataset -> table with (venue, ts)
    "funds": "fund_balances",
    "open_interest": "open_interest",
    "funding": "funding_rates",
    "prices": "prices",
    "adl": "adl_signals",
    "liquidations": "liquidations",
}


@dataclass(frozen=True)
class Grid:
    """``points + 1`` as-of instants: end − points·step, …, end − step, end."""

    end: datetime
    step: timedelta
    points: int

    @property
    def start(self) -> datetime:
        return self.end - self.step * self.points

    @classmethod
    def for_range(cls, start: datetime, end: datetime, max_points: int = 480,
                  min_step: timedelta = timedelta(minutes=5)) -> Grid:
        """A grid over [start, end] with a round step (5 min … 7 d) and at most ``max_points`` points."""
        span = max((end - start).total_seconds(), min_step.total_seconds())
        nice = [300, 900, 1_800, 3_600, 7_200, 14_400, 21_600, 43_200, 86_400, 172_800, 604_800]
        raw = max(span / max_points, min_step.total_seconds())
        step_s = next((s for s in nice if s >= raw), int(math.ceil(raw / 86_400)) * 86_400)
        return cls(end, timedelta(seconds=step_s), int(math.ceil(span / step_s)))


def _us(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def _step_us(step: timedelta) -> int:
    return int(step.total_seconds() * 1_000_000)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {r[0] for r in rows}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position", [table],
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _grid_ts(grid: Grid, frame: pd.DataFrame) -> pd.DataFrame:
    """Replace the integer grid index ``k`` with the instant it stands for (UTC)."""
    start = pd.Timestamp(grid.start)
    frame["ts"] = start + pd.to_timedelta(frame.pop("k").astype("int64") * grid.step.total_seconds(), unit="s")
    return frame


# -- database state ------------------------------------------------------------------------------------

def database_overview(db: DbPath) -> pd.DataFrame:
    """One row per core table: does it exist, does it hold any row. Empty frame if the file is missing."""
    try:
        with read_connection(db) as con:
            present = _tables(con)
            rows = []
            for dataset, table in {**DATA_TABLES, "runs": "collection_runs", "pools": "fund_pool_members",
                                   "alerts": "alerts"}.items():
                has_rows = False
                if table in present:
                    has_rows = bool(con.execute(
                        f"SELECT EXISTS (SELECT 1 FROM {table})"  # noqa: S608 - identifier from DATA_TABLES
                    ).fetchall()[0][0])
                rows.append({"dataset": dataset, "table": table, "exists": table in present, "has_rows": has_rows})
            return pd.DataFrame(rows)
    except DatabaseMissing:
        return pd.DataFrame(columns=["dataset", "table", "exists", "has_rows"])


def known_venues(db: DbPath, recent: timedelta = timedelta(days=30)) -> pd.DataFrame:
    """Venues with any fund row, pool, run, or open interest in the last ``recent`` (sorted)."""
    with read_connection(db) as con:
        since = datetime.now(UTC) - recent
        return con.execute(
            """
            SELECT DISTINCT venue FROM (
                SELECT DISTINCT venue FROM fund_balances
                UNION ALL SELECT DISTINCT venue FROM fund_pool_members
                UNION ALL SELECT DISTINCT venue FROM collection_runs
                UNION ALL SELECT DISTINCT venue FROM open_interest WHERE ts >= ?
            ) ORDER BY venue
            """,
            [since],
        ).df()


# -- funds ---------------------------------------------------------------------------------------------

def fund_series(db: DbPath, venues: Sequence[str], grid: Grid, by: str = "venue",
                max_gap: timedelta = FUND_MAX_GAP) -> pd.DataFrame:
    """Fund totals on an as-of grid: columns = group columns of ``by`` + ts, fund_usd, balance, unvalued.

    ``balance`` (native units) is only meaningful when the group has one asset (by=asset/pool_asset);
    ``unvalued`` counts series without a USD value at that point (no price known: flagged, not guessed)."""
    if by not in FUND_GROUPS:
        raise ValueError(f"unknown grouping {by!r}")
    group = ", ".join(FUND_GROUPS[by])
    step_us = _step_us(grid.step)
    start_us = _us(grid.start)
    with read_connection(db) as con:
        frame = con.execute(
            f"""
            WITH pts AS (
                SELECT venue, pool_id, asset,
                       greatest(0, ceil((epoch_us(ts) - $start_us) / $step_us))::BIGINT AS k,
                       arg_max({{'usd': usd_value::DOUBLE, 'bal': balance::DOUBLE, 'ts': ts}}, ts) AS v
                FROM fund_balances
                WHERE ts > $lo AND ts <= $end AND list_contains($venues, venue)
                GROUP BY ALL
            ), series AS (SELECT DISTINCT venue, pool_id, asset FROM pts),
            grid AS (SELECT unnest(range(0, $points + 1)) AS k),
            filled AS (
                SELECT s.venue, s.pool_id, s.asset, g.k,
                       last_value(p.v IGNORE NULLS) OVER (
                           PARTITION BY s.venue, s.pool_id, s.asset ORDER BY g.k
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS v
                FROM series AS s CROSS JOIN grid AS g
                LEFT JOIN pts AS p ON p.venue = s.venue AND p.pool_id = s.pool_id AND p.asset = s.asset
                                  AND p.k = g.k
            )
            SELECT {group}, k, sum(v.usd) AS fund_usd, sum(v.bal) AS balance,
                   count(*) FILTER (WHERE v.usd IS NULL) AS unvalued
            FROM filled
            WHERE v IS NOT NULL AND epoch_us(v.ts) > $start_us + k * $step_us - $gap_us
            GROUP BY {group}, k ORDER BY {group}, k
            """,  # noqa: S608 - group columns come from FUND_GROUPS
            {"start_us": start_us, "step_us": step_us, "lo": grid.start - max_gap, "end": grid.end,
             "venues": list(venues), "points": grid.points, "gap_us": _step_us(max_gap)},
        ).df()
    return _grid_ts(grid, frame)


def fund_asof(db: DbPath, venues: Sequence[str], offsets: Sequence[timedelta],
              max_gap: timedelta = FUND_MAX_GAP) -> pd.DataFrame:
    """Each venue's fund total (USD) as of its newest fund timestamp t0 and as of t0 − each offset.

    Columns: venue, offset_s (0 = latest), ref_ts, latest_ts, fund_usd, series, unvalued."""
    with read_connection(db) as con:
        latest = con.execute(
            "SELECT venue, max(ts) AS t0 FROM fund_balances WHERE list_contains(?, venue) GROUP BY venue",
            [list(venues)],
        ).fetchall()
        if not latest:
            return pd.DataFrame(columns=["venue", "offset_s", "ref_ts", "latest_ts", "fund_usd", "series",
                                         "unvalued"])
        ref_venue, ref_offset, ref_ts, ref_t0 = [], [], [], []
        for venue, t0 in latest:
            for offset in [timedelta(0), *offsets]:
                ref_venue.append(venue)
                ref_offset.append(int(offset.total_seconds()))
                ref_ts.append(t0 - offset)
                ref_t0.append(t0)
        return con.execute(
            """
            WITH refs AS (
                SELECT unnest($rv::VARCHAR[]) AS venue, unnest($ro::BIGINT[]) AS offset_s,
                       unnest($rt::TIMESTAMPTZ[]) AS ref_ts, unnest($r0::TIMESTAMPTZ[]) AS latest_ts
            ), per_series AS (
                SELECT r.venue, r.offset_s, r.ref_ts, r.latest_ts, f.pool_id, f.asset,
                       arg_max(f.usd_value::DOUBLE, f.ts) AS usd
                FROM refs AS r
                JOIN fund_balances AS f
                  ON f.venue = r.venue AND f.ts <= r.ref_ts AND f.ts > r.ref_ts - $gap
                WHERE f.ts > $lo AND f.ts <= $hi AND list_contains($venues, f.venue)
                GROUP BY ALL
            )
            SELECT r.venue, r.offset_s, r.ref_ts, r.latest_ts, sum(p.usd) AS fund_usd,
                   count(p.pool_id) AS series, count(p.pool_id) FILTER (WHERE p.usd IS NULL) AS unvalued
            FROM refs AS r LEFT JOIN per_series AS p USING (venue, offset_s)
            GROUP BY ALL ORDER BY r.venue, r.offset_s
            """,
            {"rv": ref_venue, "ro": ref_offset, "rt": ref_ts, "r0": ref_t0, "gap": max_gap,
             "lo": min(ref_ts) - max_gap, "hi": max(ref_ts), "venues": list(venues)},
        ).df()


def fund_native_latest(db: DbPath, venues: Sequence[str], max_gap: timedelta = FUND_MAX_GAP) -> pd.DataFrame:
    """Latest fund per venue × asset in native units (summed over pools) with its USD value."""
    with read_connection(db) as con:
        return con.execute(
            """
            WITH latest AS (
                SELECT venue, max(ts) AS t0 FROM fund_balances WHERE list_contains(?, venue) GROUP BY venue
            ), last AS (
                SELECT f.venue, f.pool_id, f.asset, arg_max(f.balance::DOUBLE, f.ts) AS balance,
                       arg_max(f.usd_value::DOUBLE, f.ts) AS usd, max(f.ts) AS ts
                FROM fund_balances AS f JOIN latest AS l ON f.venue = l.venue AND f.ts > l.t0 - ?
                GROUP BY ALL
            )
            SELECT venue, asset, sum(balance) AS balance, sum(usd) AS fund_usd, count(*) AS pools, max(ts) AS ts
            FROM last GROUP BY venue, asset ORDER BY venue, fund_usd DESC NULLS LAST
            """,
            [list(venues), max_gap],
        ).df()


def fund_pools_latest(db: DbPath, venues: Sequence[str], max_gap: timedelta = FUND_MAX_GAP) -> pd.DataFrame:
    """Latest value per venue × pool (USD summed over the pool's assets) and its member-contract count."""
    with read_connection(db) as con:
        return con.execute(
            """
            WITH latest AS (
                SELECT venue, max(ts) AS t0 FROM fund_balances WHERE list_contains(?, venue) GROUP BY venue
            ), last AS (
                SELECT f.venue, f.pool_id, f.asset, arg_max(f.usd_value::DOUBLE, f.ts) AS usd, max(f.ts) AS ts
                FROM fund_balances AS f JOIN latest AS l ON f.venue = l.venue AND f.ts > l.t0 - ?
                GROUP BY ALL
            ), members AS (
                SELECT venue, pool_id, count(DISTINCT symbol) AS contracts
                FROM fund_pool_members WHERE list_contains(?, venue) GROUP BY ALL
            )
            SELECT l.venue, l.pool_id, sum(l.usd) AS fund_usd, string_agg(DISTINCT l.asset, ', ') AS assets,
                   max(l.ts) AS ts, any_value(m.contracts) AS contracts
            FROM last AS l LEFT JOIN members AS m USING (venue, pool_id)
            GROUP BY l.venue, l.pool_id ORDER BY l.venue, fund_usd DESC NULLS LAST
            """,
            [list(venues), max_gap, list(venues)],
        ).df()


# -- open interest -------------------------------------------------------------------------------------

def _oi_sample_filter(grid: Grid) -> tuple[str, dict[str, Any]]:
    """On coarse grids read only rows in (t − window, t] of each grid point t: the as-of value there."""
    if grid.step < OI_SAMPLE_WINDOW * 4:
        return "", {}
    return (
        " AND (((epoch_us(ts) - $start_us) % $step_us) + $step_us) % $step_us "
        "NOT BETWEEN 1 AND $step_us - $window_us",
        {"window_us": _step_us(OI_SAMPLE_WINDOW)},
    )


def oi_series(db: DbPath, venues: Sequence[str], grid: Grid, by_pool: bool = False,
              max_gap: timedelta = OI_MAX_GAP) -> pd.DataFrame:
    """Open interest (USD) on an as-of grid, summed per venue (or per venue × fund pool via
    fund_pool_members). Columns: venue, [pool_id], ts, oi_usd, contracts."""
    step_us = _step_us(grid.step)
    start_us = _us(grid.start)
    sample, extra = _oi_sample_filter(grid)
    gap = max(max_gap, OI_SAMPLE_WINDOW * 2) if sample else max_gap
    if by_pool:
        join = ("JOIN (SELECT DISTINCT venue, pool_id, symbol FROM fund_pool_members "
                "WHERE list_contains($venues, venue)) AS m ON m.venue = f.venue AND m.symbol = f.symbol")
        keys, outer = "f.venue, m.pool_id, f.symbol", "venue, pool_id"
    else:
        join, keys, outer = "", "f.venue, f.symbol", "venue"
    with read_connection(db) as con:
        frame = con.execute(
            f"""
            WITH raw AS (
                SELECT venue, symbol, ts, oi_usd FROM open_interest
                WHERE ts > $lo AND ts <= $end AND list_contains($venues, venue) AND oi_usd IS NOT NULL {sample}
            ), pts AS (
                SELECT {keys},
                       greatest(0, ceil((epoch_us(f.ts) - $start_us) / $step_us))::BIGINT AS k,
                       arg_max({{'oi': f.oi_usd, 'ts': f.ts}}, f.ts) AS v
                FROM raw AS f {join}
                GROUP BY ALL
            ), series AS (SELECT DISTINCT {outer}, symbol FROM pts),
            grid AS (SELECT unnest(range(0, $points + 1)) AS k),
            filled AS (
                SELECT s.*, g.k,
                       last_value(p.v IGNORE NULLS) OVER (
                           PARTITION BY {', '.join('s.' + c for c in outer.split(', '))}, s.symbol ORDER BY g.k
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS v
                FROM series AS s CROSS JOIN grid AS g
                LEFT JOIN pts AS p USING ({outer}, symbol, k)
            )
            SELECT {outer}, k, sum(v.oi) AS oi_usd, count(*) AS contracts
            FROM filled
            WHERE v IS NOT NULL AND epoch_us(v.ts) > $start_us + k * $step_us - $gap_us
            GROUP BY {outer}, k ORDER BY {outer}, k
            """,  # noqa: S608 - fixed fragments only
            {"start_us": start_us, "step_us": step_us, "lo": grid.start - gap, "end": grid.end,
             "venues": list(venues), "points": grid.points, "gap_us": _step_us(gap), **extra},
        ).df()
    return _grid_ts(grid, frame)


def oi_latest(db: DbPath, venues: Sequence[str], now: datetime, by_pool: bool = False,
              lookback: timedelta = timedelta(days=1), max_gap: timedelta = OI_MAX_GAP) -> pd.DataFrame:
    """Newest OI (USD) per venue (or venue × pool): each contract's last value within ``max_gap`` of the
    venue's newest poll in the last ``lookback``. Columns: venue, [pool_id], oi_usd, contracts, oi_ts."""
    if by_pool:
        join = ("JOIN (SELECT DISTINCT venue, pool_id, symbol FROM fund_pool_members "
                "WHERE list_contains($venues, venue)) AS m ON m.venue = l.venue AND m.symbol = l.symbol")
        outer, select = "l.venue, m.pool_id", "l.venue, m.pool_id"
    else:
        join, outer, select = "", "l.venue", "l.venue"
    with read_connection(db) as con:
        return con.execute(
            f"""
            WITH last AS (
                SELECT venue, symbol, arg_max(oi_usd, ts) AS oi_usd, max(ts) AS ts
                FROM open_interest
                WHERE ts > $since AND ts <= $now AND list_contains($venues, venue) AND oi_usd IS NOT NULL
                GROUP BY venue, symbol
            ), newest AS (SELECT venue, max(ts) AS t FROM last GROUP BY venue)
            SELECT {select}, sum(l.oi_usd) AS oi_usd, count(*) AS contracts, max(l.ts) AS oi_ts
            FROM last AS l JOIN newest AS n ON n.venue = l.venue AND l.ts > n.t - $gap {join}
            GROUP BY {outer} ORDER BY {outer}
            """,  # noqa: S608 - fixed fragments only
            {"since": now - lookback, "now": now, "venues": list(venues), "gap": max_gap},
        ).df()


# -- liquidations and alerts (tables from later migrations: read defensively) -----------------------------

_LIQ_SIDE_COLUMNS = ("position_side", "side")
_LIQ_USD_COLUMNS = ("notional_usd", "usd_value", "value_usd", "amount_usd", "quote_value", "notional")


def liquidations_summary(db: DbPath, venues: Sequence[str], since: datetime) -> pd.DataFrame | None:
    """Liquidations since ``since`` per venue: long/short count and USD (None if the table is missing).

    Columns: venue, long_count, short_count, long_usd, short_usd (USD NULL when no notional column)."""
    with read_connection(db) as con:
        if "liquidations" not in _tables(con):
            return None
        cols = _columns(con, "liquidations")
        side = next((c for c in _LIQ_SIDE_COLUMNS if c in cols), None)
        usd = next((c for c in _LIQ_USD_COLUMNS if c in cols), None)
        if side is None or "venue" not in cols or "ts" not in cols:
            return None
        usd_expr = f'TRY_CAST("{usd}" AS DOUBLE)' if usd else "NULL::DOUBLE"
        # position side long|short; an order side (sell closes a long) when only ``side`` exists
        is_long = (f"lower(\"{side}\") IN ('long', 'sell')" if side == "side" else f"lower(\"{side}\") = 'long'")
        return con.execute(
            f"""
            SELECT venue,
                   count(*) FILTER (WHERE {is_long}) AS long_count,
                   count(*) FILTER (WHERE NOT ({is_long})) AS short_count,
                   sum({usd_expr}) FILTER (WHERE {is_long}) AS long_usd,
                   sum({usd_expr}) FILTER (WHERE NOT ({is_long})) AS short_usd
            FROM liquidations WHERE ts >= ? AND list_contains(?, venue)
            GROUP BY venue ORDER BY venue
            """,  # noqa: S608 - identifiers checked against information_schema
            [since, list(venues)],
        ).df()


def firing_alerts(db: DbPath, limit: int = 50) -> pd.DataFrame | None:
    """Alerts that are firing now (None if there is no ``alerts`` table). All columns, newest first."""
    with read_connection(db) as con:
        if "alerts" not in _tables(con):
            return None
        cols = _columns(con, "alerts")
        where = "1 = 1"
        for name in ("state", "status"):
            if name in cols:
                where = f"lower(\"{name}\") = 'firing'"
                break
        else:
            if "resolved_at" in cols:
                where = "resolved_at IS NULL"
        order = next((c for c in ("fired_at", "started_at", "ts", "created_at", "updated_at") if c in cols), None)
        order_sql = f'ORDER BY "{order}" DESC' if order else ""
        return con.execute(
            f"SELECT * FROM alerts WHERE {where} {order_sql} LIMIT ?",  # noqa: S608 - checked identifiers
            [limit],
        ).df()


# -- collector health ----------------------------------------------------------------------------------

def collector_health(db: DbPath, now: datetime, recent: timedelta = timedelta(days=7)) -> pd.DataFrame:
    """Per venue × dataset: newest data timestamp, last success/error (class, message), 24 h success rate.

    Columns: venue, dataset, newest_ts, last_success, last_error_at, last_error_class, last_error_message,
    last_status, runs_24h, success_rate_24h."""
    with read_connection(db) as con:
        present = _tables(con)
        newest_parts = []
        for dataset, table in DATA_TABLES.items():
            if table in present:
                newest_parts.append(
                    f"SELECT venue, '{dataset}' AS dataset, max(ts) AS newest_ts FROM {table} "  # noqa: S608
                    f"WHERE ts > $since GROUP BY venue"
                )
        newest = con.execute(" UNION ALL ".join(newest_parts), {"since": now - recent}).df()
        runs = con.execute(
            """
            SELECT venue, dataset,
                   max(finished_at) FILTER (WHERE status = 'ok') AS last_success,
                   max(finished_at) FILTER (WHERE status = 'error') AS last_error_at,
                   arg_max(error_class, finished_at) FILTER (WHERE status = 'error') AS last_error_class,
                   arg_max(error_message, finished_at) FILTER (WHERE status = 'error') AS last_error_message,
                   arg_max(status, finished_at) AS last_status,
                   count(*) FILTER (WHERE finished_at >= $day) AS runs_24h,
                   avg(CASE WHEN status = 'ok' THEN 1.0 ELSE 0.0 END) FILTER (WHERE finished_at >= $day)
                       AS success_rate_24h
            FROM collection_runs WHERE kind = 'poll' GROUP BY venue, dataset
            """,
            {"day": now - timedelta(days=1)},
        ).df()
        # datasets with runs but nothing recent: look further back, one small query per table
        missing = runs.merge(newest, on=["venue", "dataset"], how="left", indicator=True)
        missing = missing[missing["_merge"] == "left_only"]
        extra = []
        for dataset, group in missing.groupby("dataset"):
            table = DATA_TABLES.get(str(dataset))
            if table and table in present:
                extra.append(con.execute(
                    f"SELECT venue, ? AS dataset, max(ts) AS newest_ts FROM {table} "  # noqa: S608
                    "WHERE list_contains(?, venue) GROUP BY venue",
                    [dataset, group["venue"].tolist()],
                ).df())
    if extra:
        newest = pd.concat([newest, *extra], ignore_index=True)
    out = runs.merge(newest, on=["venue", "dataset"], how="outer")
    return out.sort_values(["venue", "dataset"]).reset_index(drop=True)


def fund_span(db: DbPath) -> pd.DataFrame:
    """Oldest and newest fund timestamp (one row; NULLs when there is no fund row)."""
    with read_connection(db) as con:
        return con.execute("SELECT min(ts) AS first_ts, max(ts) AS last_ts FROM fund_balances").df()
