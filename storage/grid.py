"""The as-of time grid every page query samples on, and small helpers shared by the query modules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

DbPath = Path | str


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
