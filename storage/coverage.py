"""Stream coverage by collector runs (migration 006): the time no collector was running is a gap.

A live disconnect is recorded by the running feed itself; a collector that is stopped, crashes or is
killed cannot record anything. So each stream feed persists a coverage interval per collector run (its
first subscription, a heartbeat every few seconds while alive, the end at a clean stop), and the next
run turns the blind stretch since the last heartbeat into an ordinary ``liquidation_gaps`` row, which
flags liquidation volumes and cascades over it as incomplete (dashboard and exports alike).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from storage.db import read_connection

COVERAGE_OPS = ("boot", "start", "beat", "stop")
REASON_STOPPED = "collector not running (stopped cleanly)"
REASON_LOST = "collector not running (no clean stop: killed or crashed; from its last heartbeat)"


def apply(con: duckdb.DuckDBPyConnection, op: tuple[Any, ...], now: datetime) -> None:
    """One coverage event (``collectors.liquidations.runner.CoverageOp``), inside the caller's transaction."""
    kind, venue, feed = op[0], op[1], op[2]
    if kind == "boot":
        _booted(con, venue, feed, now)
    elif kind == "start":
        con.execute("INSERT INTO liquidation_coverage VALUES (?, ?, ?, ?, NULL, NULL) ON CONFLICT DO NOTHING",
                    [venue, feed, op[3], op[3]])
    elif kind == "beat":
        con.execute("UPDATE liquidation_coverage SET heartbeat_ts = greatest(heartbeat_ts, ?) "
                    "WHERE venue = ? AND feed = ? AND start_ts = ? AND end_ts IS NULL", [op[4], venue, feed, op[3]])
    elif kind == "stop":
        con.execute("UPDATE liquidation_coverage SET heartbeat_ts = greatest(heartbeat_ts, ?), "
                    "end_ts = greatest(?, start_ts), end_reason = 'stopped' "
                    "WHERE venue = ? AND feed = ? AND start_ts = ?", [op[4], op[4], venue, feed, op[3]])
    else:
        raise ValueError(f"unknown coverage operation {kind!r}")


def _booted(con: duckdb.DuckDBPyConnection, venue: str, feed: str, now: datetime) -> None:
    """A collector run starts this feed: the previous run's interval, if it was never closed, ends at its
    last heartbeat; from there (or from its clean stop) the feed was blind: an open gap, closed by the
    feed's first subscription like any reconnect. Nothing when a gap of the feed is already open."""
    rows = con.execute(
        "SELECT start_ts, heartbeat_ts, end_ts FROM liquidation_coverage WHERE venue = ? AND feed = ? "
        "ORDER BY start_ts DESC LIMIT 1", [venue, feed]).fetchall()
    if not rows:
        return  # never covered before: nothing was missed by Backstop being down
    start, heartbeat, end = rows[0]
    if end is None:
        con.execute("UPDATE liquidation_coverage SET end_ts = heartbeat_ts, end_reason = 'lost' "
                    "WHERE venue = ? AND feed = ? AND start_ts = ?", [venue, feed, start])
    blind_from = end if end is not None else heartbeat
    already_open = con.execute("SELECT count(*) FROM liquidation_gaps WHERE venue = ? AND feed = ? AND end_ts IS NULL",
                               [venue, feed]).fetchall()[0][0]
    if already_open or blind_from >= now:
        return
    con.execute("INSERT INTO liquidation_gaps VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (venue, feed, start_ts) "
                "DO NOTHING", [venue, feed, blind_from, REASON_STOPPED if end is not None else REASON_LOST, now])


def liquidation_coverage(db: Path | str, since: datetime | None = None, until: datetime | None = None
                         ) -> pd.DataFrame:
    """Per venue x feed x collector run: start_ts, heartbeat_ts, end_ts, end_reason (for the dashboard:
    when Backstop itself was watching; the stretches between are in ``liquidation_gaps``)."""
    with read_connection(db) as con:
        return con.execute(
            """
            SELECT venue, feed, start_ts, heartbeat_ts, end_ts, end_reason
            FROM liquidation_coverage
            WHERE coalesce(end_ts, heartbeat_ts) >= coalesce(?, TIMESTAMPTZ '2000-01-01')
              AND start_ts < coalesce(?, TIMESTAMPTZ '2100-01-01')
            ORDER BY venue, feed, start_ts
            """, [since, until]).df()
