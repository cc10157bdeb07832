"""Hourly rollups (migration 004) of funds and open interest, refreshed in the writer process; the page
queries read them up to the hour they are complete and raw rows after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from storage.grid import (
    Grid,
    _tables,
)

HOUR = timedelta(hours=1)


HOUR_END_SQL = "time_bucket(INTERVAL 1 HOUR, ts - INTERVAL 1 MICROSECOND) + INTERVAL 1 HOUR"


@dataclass(frozen=True)
class RollupSpec:
    source: str
    select: str  # a query over ``source`` rows with ts in (?, ?], producing the rollup's columns
    late_window: timedelta | None  # how far back late/backfilled rows are looked for (None = anywhere)


ROLLUPS: dict[str, RollupSpec] = {
    "oi_hourly": RollupSpec("open_interest", f"""
        WITH last AS (
            SELECT venue, symbol, {HOUR_END_SQL} AS hour, arg_max(oi_usd, ts) AS oi, max(ts) AS ts
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
        SELECT venue, pool_id, asset, {HOUR_END_SQL} AS hour, max(ts) AS ts,
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


def rollup_complete_to(con: duckdb.DuckDBPyConnection, name: str) -> datetime | None:
    """Up to which hour ``name`` is complete (None: no rollup table or never refreshed)."""
    if "rollup_state" not in _tables(con):
        return None
    rows = con.execute("SELECT complete_to FROM rollup_state WHERE name = ?", [name]).fetchall()
    return rows[0][0] if rows else None


def _use_rollup(grid: Grid, complete_to: datetime | None) -> bool:
    """Only on whole-hour grids (each rollup row is exact "as of" its hour) that the rollup reaches."""
    return (complete_to is not None and grid.step >= HOUR and grid.step.total_seconds() % 3600 == 0
            and grid.end == floor_hour(grid.end) and complete_to > grid.start)
