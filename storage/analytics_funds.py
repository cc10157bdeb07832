"""The fund pages' queries (Overview, Funds, Coverage): fund series on a grid, values as of instants,
the latest value of each pool. Fund-as-of-t has one SQL definition, in ``storage.fund_asof``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd

from storage.db import read_connection
from storage.fund_asof import (
    DEFAULT_FUND_CADENCE_S,
    DEFAULT_MAX_SILENCE,
    GONE_MULTIPLE,
    is_current_sql,
    series_cadence_sql,
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


def fund_asof(db: DbPath, venues: Sequence[str], offsets: Sequence[timedelta],
              expected_s: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Each venue's fund total (USD) as of its newest fund timestamp t0 and as of t0 − each offset: each
    series' value as of that instant (``storage.fund_asof``: the one definition, with the venues'
    ``expected_s`` publishing intervals, default daily).

    Columns: venue, offset_s (0 = latest), ref_ts, latest_ts, fund_usd, series, unvalued, and for the
    change from t0 − offset to t0 (offset rows only): change_now_usd, change_then_usd and change_excluded.
    A change compares like with like: a series with a USD value at one point and none at the other (fund
    history from before the first collected price) is left out of both sides and counted in
    change_excluded; otherwise a venue's total would jump when valuation starts. Compute the change
    as ``pct_change(change_now_usd, change_then_usd)``, not from the two fund_usd totals."""
    expected = dict(expected_s or {})
    with read_connection(db) as con:
        latest = _fund_latest(con, venues)
        if not latest:
            return pd.DataFrame(columns=["venue", "offset_s", "ref_ts", "latest_ts", "fund_usd", "series",
                                         "unvalued", "change_now_usd", "change_then_usd", "change_excluded"])
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
            ), totals AS (
                SELECT r.venue, r.offset_s, r.ref_ts, r.latest_ts, sum(p.usd) AS fund_usd,
                       count(p.pool_id) AS series, count(p.pool_id) FILTER (WHERE p.usd IS NULL) AS unvalued
                FROM refs AS r LEFT JOIN per_series AS p USING (venue, offset_s)
                GROUP BY ALL
            ), pairs AS (  -- every series of the venue at t0 (n) and at t0 - offset (t)
                SELECT r.venue, r.offset_s, n.usd AS now_usd, t.usd AS then_usd,
                       (n.pool_id IS NOT NULL AND n.usd IS NULL) OR (t.pool_id IS NOT NULL AND t.usd IS NULL)
                           AS unvalued_side
                FROM refs AS r
                JOIN (SELECT DISTINCT venue, pool_id, asset FROM per_series) AS k ON k.venue = r.venue
                LEFT JOIN per_series AS n
                  ON n.venue = k.venue AND n.pool_id = k.pool_id AND n.asset = k.asset AND n.offset_s = 0
                LEFT JOIN per_series AS t
                  ON t.venue = k.venue AND t.pool_id = k.pool_id AND t.asset = k.asset AND t.offset_s = r.offset_s
                WHERE r.offset_s > 0
            ), changes AS (
                SELECT venue, offset_s,
                       sum(now_usd) FILTER (WHERE NOT unvalued_side) AS change_now_usd,
                       sum(then_usd) FILTER (WHERE NOT unvalued_side) AS change_then_usd,
                       count(*) FILTER (WHERE unvalued_side AND (now_usd IS NOT NULL OR then_usd IS NOT NULL))
                           AS change_excluded
                FROM pairs GROUP BY ALL
            )
            SELECT t.*, c.change_now_usd, c.change_then_usd, c.change_excluded
            FROM totals AS t LEFT JOIN changes AS c USING (venue, offset_s)
            ORDER BY t.venue, t.offset_s
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
