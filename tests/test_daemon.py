"""The scheduled collector as a real process: polls on schedule, stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collectors.registry import venue_keys
from storage.queries import query_df


@pytest.mark.e2e
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_daemon_polls_and_stops_cleanly(sim_factory, tmp_path: Path, stop_signal: signal.Signals) -> None:
    sim = sim_factory(["binance"], speed=60.0)
    lines = [f"[venues.{key}]\nenabled = false\n" for key in venue_keys() if key != "binance"]
    lines.append(
        f"[venues.binance]\nbase_url = '{sim.base_url('binance')}'\n"
        "[venues.binance.intervals]\nfunds = 1\nopen_interest = 1\nfunding = 1\nprices = 1\nadl = 1\n"
        "[collector]\njitter_s = 0\n"
    )
    config = tmp_path / "backstop.toml"
    config.write_text("\n".join(lines))
    db = tmp_path / "daemon.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "backstop.cli", "--config", str(config), "--db", str(db),
                             "collect"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    datasets = {"adl", "funding", "funds", "open_interest", "prices"}

    def polled_three_times() -> bool:
        """Application state, not time: every dataset has at least three ok runs (scheduled every second)."""
        if not db.exists():
            return False
        try:
            runs = query_df(db, "SELECT dataset, count(*) FILTER (WHERE status = 'ok') AS ok "
                                "FROM collection_runs GROUP BY dataset")
        except Exception:  # noqa: BLE001 - the collector may be creating the file or holding it right now
            return False
        return set(runs["dataset"]) >= datasets and bool((runs["ok"] >= 3).all())

    deadline = time.monotonic() + 180
    while not polled_three_times():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the daemon did not poll every dataset three times in 180 s"
        time.sleep(0.25)
    proc.send_signal(stop_signal)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    runs = query_df(db, "SELECT dataset, count(*) AS n, count(*) FILTER (WHERE status = 'ok') AS ok "
                        "FROM collection_runs GROUP BY dataset ORDER BY dataset")
    assert set(runs["dataset"]) == datasets
    assert (runs["n"] >= 3).all(), runs
    # a 1 s poll that overlaps the previous one on a busy machine is recorded as skipped (with its reason),
    # never lost and never an error
    odd = query_df(db, "SELECT dataset, status, error_class FROM collection_runs WHERE status <> 'ok'")
    assert set(odd["status"]) <= {"skipped"}, odd.to_string()
    assert set(odd["error_class"]) <= {"MaxInstances"}, odd.to_string()
    dupes = query_df(db, "SELECT count(*) - count(DISTINCT (venue, symbol, ts)) AS d FROM open_interest")
    assert dupes["d"][0] == 0
