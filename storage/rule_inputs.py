"""The alert rules' inputs, computed in DuckDB as the typed rows of ``metrics.alert_rows``: this module
holds the data clock and what every input query shares; the queries themselves live by concern in
``storage.fund_inputs`` (fund windows, venue changes), ``storage.coverage_inputs`` (coverage against open
interest, daily coverage), ``storage.freshness_inputs`` (job freshness) and ``storage.liquidation_inputs``
(ADL readings, cascades, open stream gaps).

Inputs are read on the connection the caller provides: in the collector process the writer's own
(``Store.read``: DuckDB refuses a read-only open of a file the same process has open for writing),
elsewhere a read-only one.

Time: ``now`` is the wall clock (runs, lifecycle, cooldowns); ``as_of`` is the data clock, the later of
``now`` and the newest stored fund/OI timestamp, so a simulator running ahead of the wall clock is read
at its own present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from storage.db import scalar
from storage.fund_asof import DEFAULT_FUND_CADENCE_S

DEFAULT_EXPECTED_S = DEFAULT_FUND_CADENCE_S  # a venue we know nothing about is assumed to publish daily


MAX_FUTURE = timedelta(days=7)  # data stamped further ahead than this never moves the data clock


def finite_or_none(value: Any) -> float | None:
    """A stored number as a float; NULL, NaN and infinities as None (an input never carries a non-finite)."""
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


def cadence_lists(expected_s: Mapping[str, float]) -> tuple[list[str], list[float]]:
    """Venue -> expected cadence as two aligned lists (sorted by venue), the SQL's ``unnest`` parameters."""
    venues = sorted(expected_s)
    return venues, [float(expected_s[v]) for v in venues]
