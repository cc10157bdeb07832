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

The queries live by page family: ``storage.analytics_funds``, ``storage.analytics_oi``,
``storage.rollups`` (and ``storage.grid``); this module holds the database-state, liquidation, alert and
health queries and re-exports the others, so ``storage.analytics`` stays the dashboard's one entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd

from records.vocabulary import DATASET_TABLES
from storage.analytics_funds import (
    FUND_GROUPS,
    FUND_MAX_GAP,
    fund_native_latest,
    fund_native_latest_on,
    fund_pools_latest,
    fund_pools_latest_on,
    fund_series,
)
from storage.analytics_oi import (
    OI_MAX_GAP,
    OI_SAMPLE_WINDOW,
    oi_latest,
    oi_series,
)
from storage.db import DatabaseBusy, DatabaseMissing, read_connection
from storage.grid import (
    DbPath,
    Grid,
    _columns,
    _tables,
)
from storage.rollups import (
    HOUR,
    REDO_RECENT,
    REFRESH_CHUNK,
    ROLLUPS,
    RollupSpec,
    _use_rollup,
    floor_hour,
    refresh_rollups,
)

__all__ = [
    "DATA_TABLES", "DatabaseBusy", "DatabaseMissing", "DbPath", "FUND_GROUPS", "FUND_MAX_GAP", "Grid", "HOUR",
    "OI_MAX_GAP", "OI_SAMPLE_WINDOW", "REDO_RECENT", "REFRESH_CHUNK", "ROLLUPS", "RollupSpec", "_use_rollup",
    "collector_health", "database_overview", "firing_alerts", "floor_hour", "fund_native_latest",
    "fund_native_latest_on", "fund_pools_latest", "fund_pools_latest_on", "fund_series", "fund_span",
    "known_venues", "liquidations_summary", "oi_latest", "oi_series", "refresh_rollups",
]


DATA_TABLES: dict[str, str] = {dataset: table for dataset, (table, _) in DATASET_TABLES.items()}


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
        for group_key, group in missing.groupby("dataset"):
            group_table = DATA_TABLES.get(str(group_key))
            if group_table and group_table in present:
                extra.append(con.execute(
                    f"SELECT venue, ? AS dataset, max(ts) AS newest_ts FROM {group_table} "  # noqa: S608
                    "WHERE list_contains(?, venue) GROUP BY venue",
                    [str(group_key), group["venue"].tolist()],
                ).df())
    if extra:
        newest = pd.concat([newest, *extra], ignore_index=True)
    out = runs.merge(newest, on=["venue", "dataset"], how="outer")
    return out.sort_values(["venue", "dataset"]).reset_index(drop=True)


def fund_span(db: DbPath) -> pd.DataFrame:
    """Oldest and newest fund timestamp (one row; NULLs when there is no fund row)."""
    with read_connection(db) as con:
        return con.execute("SELECT min(ts) AS first_ts, max(ts) AS last_ts FROM fund_balances").df()
