"""Collector downtime is a gap: kill -9 the collector while it streams liquidations from the simulator,
start it again, and the feed's blind stretch (from its last stored heartbeat to its first message after
the restart) is a ``liquidation_gaps`` row; a clean stop (SIGTERM) closes the run's coverage interval, and
the next start records the stretch from that stop. Liquidation rows in such a stretch's minutes carry
``incomplete`` in the export."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from simulator.harness import CollectorProcess, collector_config
from storage.coverage import REASON_LOST, REASON_STOPPED, liquidation_coverage
from storage.db import DatabaseBusy, read_connection

FEED = ("binance", "forceOrder:usdm")


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    try:
        with read_connection(db, budget_s=30) as con:
            return con.execute(sql, params or []).fetchall()
    except (DatabaseBusy, FileNotFoundError, Exception) as exc:  # noqa: BLE001 - table not created yet
        if "does not exist" in str(exc) or isinstance(exc, DatabaseBusy | FileNotFoundError):
            return []
        raise


def _wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _coverage(db: Path) -> list[tuple[Any, ...]]:
    return _rows(db, "SELECT start_ts, heartbeat_ts, end_ts, end_reason FROM liquidation_coverage "
                     "WHERE venue = ? AND feed = ? ORDER BY start_ts", list(FEED))


def _gaps(db: Path, reason: str) -> list[tuple[Any, ...]]:
    return _rows(db, "SELECT start_ts, end_ts FROM liquidation_gaps WHERE venue = ? AND feed = ? AND reason = ? "
                     "ORDER BY start_ts", [*FEED, reason])


@pytest.mark.e2e
def test_kill_and_clean_stop_are_recorded_as_gaps(sim_factory, tmp_path: Path) -> None:
    sim = sim_factory(["binance"], speed=60.0, scenario="cascade")
    config = tmp_path / "backstop.toml"
    config.write_text(collector_config(sim.base_url, ["binance"], {"funds": 60}, streams=True))
    db = tmp_path / "down.duckdb"
    log = tmp_path / "collector.log"

    first = CollectorProcess(config, db, log).start()
    # a heartbeat has been persisted after the first subscription
    _wait_for(lambda: [r for r in _coverage(db) if r[1] > r[0]], 120, "a persisted heartbeat")
    killed_at = datetime.now(UTC)
    first.kill9()
    (last_beat,) = [r[1] for r in _coverage(db)]

    second = CollectorProcess(config, db, log).start()
    restarted_at = datetime.now(UTC)
    (gap,) = _wait_for(lambda: [g for g in _gaps(db, REASON_LOST) if g[1] is not None], 120,
                       "the downtime gap, closed by the first message after the restart")
    assert gap[0] == last_beat <= killed_at  # from the last stored heartbeat ...
    assert gap[1] >= restarted_at  # ... to the restarted feed's first subscription: covers the downtime
    runs = _coverage(db)
    assert len(runs) == 2 and runs[0][2] == last_beat and runs[0][3] == "lost"
    assert second.stop() == 0, second.output()[-3000:]
    runs = _coverage(db)
    assert runs[1][2] is not None and runs[1][3] == "stopped"  # SIGTERM closed the interval
    stopped_at = runs[1][2]

    third = CollectorProcess(config, db, log).start()
    (clean_gap,) = _wait_for(lambda: [g for g in _gaps(db, REASON_STOPPED) if g[1] is not None], 120,
                             "the gap since the clean stop")
    assert clean_gap[0] == stopped_at
    assert third.stop() == 0
    assert "Traceback" not in log.read_text(errors="replace")

    # the dashboard's storage function shows the three runs; the export flags rows in gap minutes
    coverage = liquidation_coverage(db)
    assert coverage["end_reason"].tolist() == ["lost", "stopped", "stopped"]
    out = tmp_path / "liquidations.csv"
    proc = subprocess.run([sys.executable, "-m", "backstop.cli", "--db", str(db), "export", "liquidations",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert rows and "incomplete" in rows[0]
    flagged = _rows(db, "SELECT count(*) FROM liquidations_export WHERE incomplete")[0][0]
    assert sum(r["incomplete"] == "true" for r in rows) == flagged
