"""Liquidation-side inputs of the alert rules: the latest ADL readings (``AdlReading``), recent
liquidation cascades (``CascadeEvent``) and liquidation feed gaps still open (``StreamGap``). The
cascade and gap tables are read defensively: no table, or not the expected columns, reads as none.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from metrics.alert_rows import AdlReading, CascadeEvent, StreamGap
from storage.rule_inputs import finite_or_none, table_columns, table_exists


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
    return [AdlReading(venue=r[0], scope=r[1], signal_type=r[2], ts=r[3], level=r[4],
                       value=finite_or_none(r[5]), threshold=finite_or_none(r[6]), distance=finite_or_none(r[7]))
            for r in rows]


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
            minutes=None if minutes is None else int(minutes), dominant_asset=asset,
            price_move_pct=finite_or_none(move), fund_change_usd=finite_or_none(fund_change),
            incomplete=bool(incomplete), lower_bound=bool(lower),
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
