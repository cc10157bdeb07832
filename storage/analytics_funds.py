"""The fund pages' queries (Overview, Funds, Coverage): fund series on a grid, values as of instants,
the latest value of each pool. Fund-as-of-t has one SQL definition, in ``storage.fund_asof``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd

from storage.db import read_connection
from storage.fund_asof import (
    DEFAULT_MAX_SILENCE,
)
from storage.grid import (
    DbPath,
    Grid,
    _grid_ts,
    _step_us,
    _us,
)
from storage.rollups import (
    _use_rollup,
    rollup_complete_to,
)

FUND_MAX_GAP = DEFAULT_MAX_SILENCE  # a pool not published for longer drops out of totals (storage.fund_asof)


FUND_GROUPS = {
    "venue": ("venue",),
    "pool": ("venue", "pool_id"),
    "asset": ("venue", "asset"),
    "pool_asset": ("venue", "pool_id", "asset"),
}


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
        wm = rollup_complete_to(con, "fund_hourly")
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
        return fund_native_latest_on(con, venues, max_gap)


def fund_native_latest_on(con: duckdb.DuckDBPyConnection, venues: Sequence[str],
                          max_gap: timedelta = FUND_MAX_GAP) -> pd.DataFrame:
    """``fund_native_latest`` on a connection the caller holds (the writer process has no second one)."""
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
        return fund_pools_latest_on(con, venues, max_gap)


def fund_pools_latest_on(con: duckdb.DuckDBPyConnection, venues: Sequence[str],
                         max_gap: timedelta = FUND_MAX_GAP) -> pd.DataFrame:
    """``fund_pools_latest`` on a connection the caller holds."""
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
