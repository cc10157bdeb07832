"""The open-interest queries (Overview, Coverage): OI series on a grid and its latest value."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from storage.db import read_connection
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

OI_MAX_GAP = timedelta(hours=2)  # a contract not polled for longer drops out (delisted)


OI_SAMPLE_WINDOW = timedelta(hours=1)  # coarse grids read only the rows this close before a grid point


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
        wm = rollup_complete_to(con, "oi_hourly")
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
