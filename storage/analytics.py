"""The dashboard's SQL: named, parameterised queries that aggregate in DuckDB and return small DataFrames.

Every function takes the database path and typed parameters, opens a short read-only connection
(``storage.db.read_connection`` retries while the collector holds the write lock) and returns a pandas
DataFrame of at most a few thousand rows: history is downsampled on a time grid in SQL, never pulled raw.

Time grids are "as of" grids (points ``end - k·step``): a fund's value at grid point t is each pool's
newest row with ts ≤ t (forward-filled, never from further back than ``max_gap``), so a pool published
daily and one published every minute add up correctly at any resolution. Open interest at t is the sum
of each contract's newest value within ``max_gap`` before t (a venue's contracts are polled together).

Long ranges read the hourly rollups of migration 004 (``refresh_rollups``, run by the writer process)
up to the hour they are complete and raw rows after it; grids of whole hours give identical answers
either way (tested), so a missing or stale rollup only costs speed.

Tables added by later migrations (``liquidations``, ``alerts``) are read defensively: a missing table
or column gives ``None`` instead of an error, and the dashboard shows "—".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from records.vocabulary import DATASET_TABLES
from storage.db import DatabaseBusy, DatabaseMissing, read_connection
from storage.fund_asof import (
    DEFAULT_FUND_CADENCE_S,
    DEFAULT_MAX_SILENCE,
    GONE_MULTIPLE,
    is_current_sql,
    series_cadence_sql,
)

__all__ = ["DatabaseBusy", "DatabaseMissing", "Grid"]

DbPath = Path | str

FUND_MAX_GAP = DEFAULT_MAX_SILENCE  # a pool not published for longer drops out of totals (storage.fund_asof)
OI_MAX_GAP = timedelta(hours=2)  # a contract not polled for longer drops out (delisted)
OI_SAMPLE_WINDOW = timedelta(hours=1)  # coarse grids read only the rows this close before a grid point
FUND_GROUPS = {
    "venue": ("venue",),
    "pool": ("venue", "pool_id"),
    "asset": ("venue", "asset"),
    "pool_asset": ("venue", "pool_id", "asset"),
}
DATA_TABLES: dict[str, str] = {dataset: table for dataset, (table, _) in DATASET_TABLES.items()}


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
                SELECT DISTINCT venue FROM fund_balances WHERE ts >= $since
                UNION ALL SELECT DISTINCT venue FROM fund_pool_members
                UNION ALL SELECT DISTINCT venue FROM collection_runs
                UNION ALL SELECT DISTINCT venue FROM open_interest WHERE ts >= $since
            ) ORDER BY venue
            """,
            {"since": since},
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
    raw = ("SELECT venue, pool_id, asset, ts, usd_value::DOUBLE AS usd, balance::DOUBLE AS bal "
           "FROM fund_balances WHERE ts > {lo} AND ts <= $end AND list_contains($venues, venue)")
    with read_connection(db) as con:
        wm = _rollup_to(con, "fund_hourly")
        if _use_rollup(grid, wm):
            source = (
                "SELECT venue, pool_id, asset, ts, usd_value AS usd, balance AS bal FROM fund_hourly "  # noqa: S608
                "WHERE hour > $lo AND hour <= least($end, $wm) AND list_contains($venues, venue) "
                "UNION ALL " + raw.format(lo="greatest($lo, $wm)")
            )
        else:
            source, wm = raw.format(lo="$lo"), None
        frame = con.execute(
            f"""
            WITH pts AS (
                SELECT venue, pool_id, asset,
                       greatest(0, ceil((epoch_us(ts) - $start_us) / $step_us))::BIGINT AS k,
                       arg_max({{'usd': usd, 'bal': bal, 'ts': ts}}, ts) AS v
                FROM ({source}) AS src
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
             "venues": list(venues), "points": grid.points, "gap_us": _step_us(max_gap),
             **({"wm": wm} if wm is not None else {})},
        ).df()
    return _grid_ts(grid, frame)


def fund_asof(db: DbPath, venues: Sequence[str], offsets: Sequence[timedelta],
              expected_s: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Each venue's fund total (USD) as of its newest fund timestamp t0 and as of t0 − each offset: each
    series' value as of that instant (``storage.fund_asof``: the one definition, with the venues'
    ``expected_s`` publishing intervals, default daily).

    Columns: venue, offset_s (0 = latest), ref_ts, latest_ts, fund_usd, series, unvalued."""
    expected = dict(expected_s or {})
    with read_connection(db) as con:
        latest = _fund_latest(con, venues)
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
        cfg_venues = sorted(expected)
        longest = max([DEFAULT_FUND_CADENCE_S, *expected.values()])
        return con.execute(
            """
            WITH refs AS (
                SELECT unnest($rv::VARCHAR[]) AS venue, unnest($ro::BIGINT[]) AS offset_s,
                       unnest($rt::TIMESTAMPTZ[]) AS ref_ts, unnest($r0::TIMESTAMPTZ[]) AS latest_ts
            ), cfg AS (
                SELECT unnest($cv::VARCHAR[]) AS venue, unnest($cs::DOUBLE[]) AS expected_s
            ), pts AS (
                SELECT venue, pool_id, asset, ts, usd_value::DOUBLE AS usd FROM fund_balances
                WHERE ts > $lo AND ts <= $hi AND list_contains($venues, venue)
            ), cadence AS (
                SELECT p.venue, p.pool_id, p.asset,
                       {cadence} AS cadence_s
                FROM pts AS p LEFT JOIN cfg AS c USING (venue) GROUP BY p.venue, p.pool_id, p.asset
            ), per_series AS (
                SELECT r.venue, r.offset_s, r.ref_ts, r.latest_ts, f.pool_id, f.asset, arg_max(f.usd, f.ts) AS usd
                FROM refs AS r
                JOIN pts AS f ON f.venue = r.venue AND f.ts <= r.ref_ts
                JOIN cadence AS c ON c.venue = f.venue AND c.pool_id = f.pool_id AND c.asset = f.asset
                WHERE {current}
                GROUP BY ALL
            )
            SELECT r.venue, r.offset_s, r.ref_ts, r.latest_ts, sum(p.usd) AS fund_usd,
                   count(p.pool_id) AS series, count(p.pool_id) FILTER (WHERE p.usd IS NULL) AS unvalued
            FROM refs AS r LEFT JOIN per_series AS p USING (venue, offset_s)
            GROUP BY ALL ORDER BY r.venue, r.offset_s
            """.format(  # noqa: S608 - constant fragments (storage.fund_asof)
                cadence=series_cadence_sql("coalesce(any_value(c.expected_s), $default_s)",
                                           "epoch(max(p.ts, 2)[1]) - epoch(max(p.ts, 2)[2])"),
                current=is_current_sql("f.ts", "r.ref_ts", "c.cadence_s")),
            {"rv": ref_venue, "ro": ref_offset, "rt": ref_ts, "r0": ref_t0, "cv": cfg_venues,
             "cs": [float(expected[v]) for v in cfg_venues], "default_s": DEFAULT_FUND_CADENCE_S,
             "lo": min(ref_ts) - timedelta(seconds=GONE_MULTIPLE * longest), "hi": max(ref_ts),
             "venues": list(venues)},
        ).df()


def _fund_latest(con: duckdb.DuckDBPyConnection, venues: Sequence[str],
                 recent: timedelta = timedelta(days=30)) -> list[tuple[str, datetime]]:
    """Newest fund timestamp per venue: the last ``recent`` first (zone maps skip the rest), then the
    whole table only for venues silent that long."""
    since = datetime.now(UTC) - recent
    rows = con.execute(
        "SELECT venue, max(ts) FROM fund_balances WHERE ts > ? AND list_contains(?, venue) GROUP BY venue",
        [since, list(venues)],
    ).fetchall()
    missing = sorted(set(venues) - {r[0] for r in rows})
    if missing:
        rows += con.execute(
            "SELECT venue, max(ts) FROM fund_balances WHERE list_contains(?, venue) GROUP BY venue", [missing]
        ).fetchall()
    return rows


def _oldest(latest: list[tuple[str, datetime]], gap: timedelta) -> datetime:
    return min((r[1] for r in latest), default=datetime.now(UTC)) - gap


def fund_native_latest(db: DbPath, venues: Sequence[str], max_gap: timedelta = FUND_MAX_GAP) -> pd.DataFrame:
    """Latest fund per venue × asset in native units (summed over pools) with its USD value."""
    with read_connection(db) as con:
        latest = _fund_latest(con, venues)
        return con.execute(
            """
            WITH latest AS (
                SELECT unnest(?::VARCHAR[]) AS venue, unnest(?::TIMESTAMPTZ[]) AS t0
            ), last AS (
                SELECT f.venue, f.pool_id, f.asset, arg_max(f.balance::DOUBLE, f.ts) AS balance,
                       arg_max(f.usd_value::DOUBLE, f.ts) AS usd, max(f.ts) AS ts
                FROM fund_balances AS f JOIN latest AS l ON f.venue = l.venue AND f.ts > l.t0 - ?
                WHERE f.ts > ?  -- the oldest t0 - gap: lets zone maps skip older row groups
                GROUP BY ALL
            )
            SELECT venue, asset, sum(balance) AS balance, sum(usd) AS fund_usd, count(*) AS pools, max(ts) AS ts
            FROM last GROUP BY venue, asset ORDER BY venue, fund_usd DESC NULLS LAST
            """,
            [[r[0] for r in latest], [r[1] for r in latest], max_gap, _oldest(latest, max_gap)],
        ).df()


def fund_pools_latest(db: DbPath, venues: Sequence[str], max_gap: timedelta = FUND_MAX_GAP) -> pd.DataFrame:
    """Latest value per venue × pool (USD summed over the pool's assets) and its member-contract count."""
    with read_connection(db) as con:
        latest = _fund_latest(con, venues)
        return con.execute(
            """
            WITH latest AS (
                SELECT unnest(?::VARCHAR[]) AS venue, unnest(?::TIMESTAMPTZ[]) AS t0
            ), last AS (
                SELECT f.venue, f.pool_id, f.asset, arg_max(f.usd_value::DOUBLE, f.ts) AS usd, max(f.ts) AS ts
                FROM fund_balances AS f JOIN latest AS l ON f.venue = l.venue AND f.ts > l.t0 - ?
                WHERE f.ts > ?  -- the oldest t0 - gap: lets zone maps skip older row groups
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
            [[r[0] for r in latest], [r[1] for r in latest], max_gap, _oldest(latest, max_gap), list(venues)],
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
    fund_pool_members). Columns: venue, [pool_id], ts, oi_usd, contracts.

    Each contract counts with its newest value in the ``max_gap`` before the grid point (no forward
    fill: a venue's contracts are polled together, so a point either has them all or is missing; the
    ``contracts`` column shows partial points)."""
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
    raw = ("SELECT venue, symbol, ts, oi_usd FROM open_interest WHERE ts > {lo} AND ts <= $end "  # noqa: S608
           "AND list_contains($venues, venue) AND oi_usd IS NOT NULL" + sample)
    with read_connection(db) as con:
        wm = _rollup_to(con, "oi_hourly")
        if _use_rollup(grid, wm):
            # pre-summed hours up to the rollup's end, raw rows after it
            rolled = (
                "SELECT venue, pool_id, (epoch_us(hour) - $start_us) // $step_us AS k, oi_usd, "  # noqa: S608
                "contracts, ts FROM oi_hourly WHERE hour > $lo AND hour <= least($end, $wm) "
                "AND list_contains($venues, venue) AND pool_id " + ("<> '*'" if by_pool else "= '*'") +
                " AND (((epoch_us(hour) - $start_us) % $step_us) + $step_us) % $step_us = 0"
            )
            source = raw.format(lo="greatest($lo, $wm)")
            extra["wm"] = wm
        else:
            rolled = None
            source = raw.format(lo="$lo")
        union = ""
        if rolled is not None:
            union = f"UNION ALL SELECT {outer}, k, oi_usd, contracts, ts FROM ({rolled})"  # noqa: S608
        frame = con.execute(
            f"""
            WITH raw AS ({source}), pts AS (
                SELECT {keys},
                       greatest(0, ceil((epoch_us(f.ts) - $start_us) / $step_us))::BIGINT AS k,
                       arg_max(f.oi_usd, f.ts) AS oi, max(f.ts) AS ts
                FROM raw AS f {join}
                GROUP BY ALL
            ), recent AS (
                SELECT {outer}, k, sum(oi) AS oi_usd, count(*) AS contracts, max(ts) AS ts
                FROM pts GROUP BY {outer}, k
            ), points AS (SELECT {outer}, k, oi_usd, contracts, ts FROM recent {union})
            SELECT {outer}, k, sum(oi_usd) AS oi_usd, sum(contracts)::BIGINT AS contracts
            FROM points
            WHERE epoch_us(ts) > $start_us + k * $step_us - $gap_us
            GROUP BY {outer}, k ORDER BY {outer}, k
            """,  # noqa: S608 - fixed fragments only
            {"start_us": start_us, "step_us": step_us, "lo": grid.start - gap, "end": grid.end,
             "venues": list(venues), "gap_us": _step_us(gap), **extra},
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
_LIQ_USD_COLUMNS = ("notional_usd", "usd_value", "value_usd", "amount_usd")


def liquidations_summary(db: DbPath, venues: Sequence[str], since: datetime) -> pd.DataFrame | None:
    """Liquidations since ``since`` per venue, long/short positions: count and USD (None without a
    ``liquidations`` table). Overlapping feeds of one venue (ws + rest) are max-combined per minute,
    never summed: the writer's ``liquidation_minutes`` rollup when it has rows, else the raw table.

    Columns: venue, long_count, short_count, long_usd, short_usd (USD NULL when no notional is known)."""
    with read_connection(db) as con:
        tables = _tables(con)
        if "liquidations" not in tables:
            return None
        if "liquidation_minutes" in tables and con.execute(
            "SELECT EXISTS (SELECT 1 FROM liquidation_minutes WHERE minute >= ?)", [since]
        ).fetchall()[0][0]:
            per_minute = """
                SELECT venue, minute, lower(side) AS side, max(usd) AS usd, max(events) AS n
                FROM liquidation_minutes WHERE minute >= $since AND list_contains($venues, venue)
                GROUP BY ALL
            """
        else:
            cols = _columns(con, "liquidations")
            side = next((c for c in _LIQ_SIDE_COLUMNS if c in cols), None)
            if side is None or "venue" not in cols or "ts" not in cols:
                return None
            usd = next((c for c in _LIQ_USD_COLUMNS if c in cols), None)
            usd_expr = f'TRY_CAST("{usd}" AS DOUBLE)' if usd else "NULL::DOUBLE"
            source = '"source"' if "source" in cols else "'all'"
            per_minute = f"""
                SELECT venue, minute, side, max(usd) AS usd, max(n) AS n FROM (
                    SELECT venue, {source} AS source, time_bucket(INTERVAL 1 MINUTE, ts) AS minute,
                           lower("{side}") AS side, sum({usd_expr}) AS usd, count(*) AS n
                    FROM liquidations WHERE ts >= $since AND list_contains($venues, venue)
                    GROUP BY ALL
                ) GROUP BY ALL
            """  # noqa: S608 - identifiers checked against information_schema
        return con.execute(
            f"""
            WITH m AS ({per_minute})
            SELECT venue,
                   coalesce(sum(n) FILTER (WHERE side = 'long'), 0)::BIGINT AS long_count,
                   coalesce(sum(n) FILTER (WHERE side = 'short'), 0)::BIGINT AS short_count,
                   sum(usd) FILTER (WHERE side = 'long') AS long_usd,
                   sum(usd) FILTER (WHERE side = 'short') AS short_usd
            FROM m GROUP BY venue ORDER BY venue
            """,  # noqa: S608 - fixed fragments
            {"since": since, "venues": list(venues)},
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


# -- hourly rollups (migration 004), refreshed in the writer process ------------------------------------

HOUR = timedelta(hours=1)


_HOUR_END = "time_bucket(INTERVAL 1 HOUR, ts - INTERVAL 1 MICROSECOND) + INTERVAL 1 HOUR"


@dataclass(frozen=True)
class RollupSpec:
    source: str
    select: str  # a query over ``source`` rows with ts in (?, ?], producing the rollup's columns
    late_window: timedelta | None  # how far back late/backfilled rows are looked for (None = anywhere)


ROLLUPS: dict[str, RollupSpec] = {
    "oi_hourly": RollupSpec("open_interest", f"""
        WITH last AS (
            SELECT venue, symbol, {_HOUR_END} AS hour, arg_max(oi_usd, ts) AS oi, max(ts) AS ts
            FROM open_interest WHERE ts > $lo AND ts <= $hi AND oi_usd IS NOT NULL GROUP BY ALL
        ), members AS (SELECT DISTINCT venue, pool_id, symbol FROM fund_pool_members)
        SELECT venue, '*' AS pool_id, hour, max(ts) AS ts, sum(oi) AS oi_usd, count(*) AS contracts
        FROM last GROUP BY venue, hour
        UNION ALL
        SELECT l.venue, m.pool_id, l.hour, max(l.ts), sum(l.oi), count(*)
        FROM last AS l JOIN members AS m ON m.venue = l.venue AND m.symbol = l.symbol
        GROUP BY l.venue, m.pool_id, l.hour
        ORDER BY hour
    """, timedelta(days=2)),  # noqa: S608 - constant
    "fund_hourly": RollupSpec("fund_balances", f"""
        SELECT venue, pool_id, asset, {_HOUR_END} AS hour, max(ts) AS ts,
               arg_max(usd_value::DOUBLE, ts) AS usd_value, arg_max(balance::DOUBLE, ts) AS balance
        FROM fund_balances WHERE ts > $lo AND ts <= $hi GROUP BY ALL ORDER BY hour
    """, None),  # noqa: S608 - constant
}
REDO_RECENT = timedelta(hours=3)  # always recompute the last hours (rows fetched before, written after)
REFRESH_CHUNK = timedelta(days=30)


def floor_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def refresh_rollups(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> dict[str, int]:
    """Bring the hourly rollups up to the last whole hour (call in the writer process, e.g. after each
    write cycle via ``Store.execute_write``). Late or backfilled rows (fetched since the last refresh)
    make their hours be recomputed. Returns rows (re)written per rollup."""
    now = now or datetime.now(UTC)
    to = floor_hour(now)
    written: dict[str, int] = {}
    for name, spec in ROLLUPS.items():
        state = con.execute("SELECT complete_to, fetched_to FROM rollup_state WHERE name = ?", [name]).fetchall()
        if state:
            complete_to, fetched_to = state[0]
            late_sql = f"SELECT min(ts) FROM {spec.source} WHERE fetched_at > ?"  # noqa: S608 - ROLLUPS
            params: list[Any] = [fetched_to]
            if spec.late_window is not None:
                late_sql += " AND ts > ?"
                params.append(complete_to - spec.late_window)
            late = con.execute(late_sql, params).fetchall()[0][0]
            redo_from = complete_to - REDO_RECENT
            if late is not None:
                redo_from = min(redo_from, floor_hour(late) - HOUR)
        else:
            first = con.execute(f"SELECT min(ts) FROM {spec.source}").fetchall()[0][0]  # noqa: S608
            if first is None:
                continue
            redo_from = floor_hour(first) - HOUR
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {name} WHERE hour > ?", [redo_from])  # noqa: S608 - ROLLUPS keys
            before = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]  # noqa: S608
            lo = redo_from
            while lo < to:
                hi = min(lo + REFRESH_CHUNK, to)
                con.execute(f"INSERT INTO {name} BY NAME {spec.select}", {"lo": lo, "hi": hi})  # noqa: S608
                lo = hi
            after = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]  # noqa: S608
            con.execute(
                "INSERT INTO rollup_state VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "complete_to = excluded.complete_to, fetched_to = excluded.fetched_to, "
                "refreshed_at = excluded.refreshed_at",
                [name, to, now, datetime.now(UTC)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        written[name] = int(after - before)
    return written


def _rollup_to(con: duckdb.DuckDBPyConnection, name: str) -> datetime | None:
    """Up to which hour ``name`` is complete (None: no rollup table or never refreshed)."""
    if "rollup_state" not in _tables(con):
        return None
    rows = con.execute("SELECT complete_to FROM rollup_state WHERE name = ?", [name]).fetchall()
    return rows[0][0] if rows else None


def _use_rollup(grid: Grid, complete_to: datetime | None) -> bool:
    """Only on whole-hour grids (each rollup row is exact "as of" its hour) that the rollup reaches."""
    return (complete_to is not None and grid.step >= HOUR and grid.step.total_seconds() % 3600 == 0
            and grid.end == floor_hour(grid.end) and complete_to > grid.start)
