"""The backstop's own positions (table ``backstop_positions``, migration 010): what each holder (insurance
fund, liquidator vault) holds at its newest snapshot, with its equity at that snapshot.

One definition of "current inventory", used by the Funds page and the ``inventory_large`` alert: the
holder's newest *snapshot* fund row (``fund_balances.pool_id = holder``, written in the same transaction as
the positions of that payload) and the positions stamped with that row's timestamp. A holder whose newest
snapshot has no positions is flat (one row with NULL contract), never shown with an older position.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from metrics.alert_rows import InventoryPosition
from storage.db import read_connection, scalar

_CURRENT_SQL = """
WITH holders AS (
    SELECT DISTINCT venue, holder FROM backstop_positions WHERE (? OR list_contains(?, venue))
), latest AS (
    SELECT f.venue, f.pool_id AS holder, max(f.ts) AS ts
    FROM fund_balances AS f JOIN holders AS h ON f.venue = h.venue AND f.pool_id = h.holder
    WHERE f.source = 'snapshot' AND f.ts <= ? AND f.ts >= ?
    GROUP BY ALL
), equity AS (
    SELECT l.venue, l.holder, l.ts, sum(f.usd_value) AS equity_usd,
           count(*) FILTER (WHERE f.usd_value IS NULL) AS unvalued
    FROM latest AS l
    JOIN fund_balances AS f ON f.venue = l.venue AND f.pool_id = l.holder AND f.ts = l.ts
    GROUP BY ALL
)
SELECT e.venue, e.holder, e.ts, CASE WHEN e.unvalued = 0 THEN CAST(e.equity_usd AS DOUBLE) END AS equity_usd,
       p.contract, p.size, p.entry_price, p.mark_price, p.unrealised_pnl, p.notional_usd, p.settle_asset,
       CASE WHEN e.unvalued = 0 AND e.equity_usd > 0
            THEN p.notional_usd / CAST(e.equity_usd AS DOUBLE) * 100 END AS share_pct
FROM equity AS e
LEFT JOIN backstop_positions AS p ON p.venue = e.venue AND p.holder = e.holder AND p.ts = e.ts
ORDER BY e.venue, e.holder, p.notional_usd DESC NULLS LAST, p.contract
"""
_FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
_COLUMNS = ["venue", "holder", "ts", "equity_usd", "contract", "size", "entry_price", "mark_price", "unrealised_pnl",
            "notional_usd", "settle_asset", "share_pct"]


def current_inventory_on(con: duckdb.DuckDBPyConnection, as_of: datetime | None = None,
                         venues: Sequence[str] | None = None, max_age: timedelta | None = None) -> pd.DataFrame:
    """Per holder its newest snapshot at or before ``as_of`` (None: the newest stored; no older than
    ``max_age``): one row per open position, or one row with NULL ``contract`` when flat. ``share_pct`` =
    notional / equity x 100 (NULL when the equity is unpriced or not positive)."""
    newest = as_of if as_of is not None else _FAR_FUTURE
    oldest = newest - max_age if max_age is not None and as_of is not None else _FAR_PAST
    params: list[Any] = [venues is None, list(venues or []), newest, oldest]
    return con.execute(_CURRENT_SQL, params).df()


def current_inventory(db: Path | str, venues: Sequence[str] | None = None,
                      as_of: datetime | None = None) -> pd.DataFrame:
    """The same on a short read-only connection (the Funds page). A database from before migration 010
    (opened read-only, so not migrated yet) has no positions: an empty frame, not an error."""
    with read_connection(db) as con:
        if not scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'backstop_positions'"):
            return pd.DataFrame(columns=_COLUMNS)
        return current_inventory_on(con, as_of, venues)


def inventory_positions(con: duckdb.DuckDBPyConnection, as_of: datetime,
                        lookback: timedelta) -> list[InventoryPosition]:
    """The ``inventory_large`` rule's input: open positions of every holder's newest recent snapshot."""
    frame = current_inventory_on(con, as_of, None, max_age=lookback)
    frame = frame[frame["contract"].notna()]
    return [
        InventoryPosition(
            venue=str(r["venue"]), holder=str(r["holder"]), contract=str(r["contract"]),
            ts=pd.Timestamp(r["ts"]).to_pydatetime(), size=float(r["size"]), notional_usd=_opt(r["notional_usd"]),
            unrealised_pnl=_opt(r["unrealised_pnl"]), equity_usd=_opt(r["equity_usd"]),
        )
        for r in frame.to_dict("records")
    ]


def _opt(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
