"""Drive a real ``backstop collect`` process against a simulator: write its config, start it, kill it.

Used by the fault tests (kill -9, SIGTERM, a reader holding the file) and by ``bench/faults.py``, so
both exercise the collector exactly as a user runs it: its own process, its own DuckDB writer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

from collectors.registry import venue_keys

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def collector_config(base_url: Callable[[str], str], venues: Iterable[str], intervals: Mapping[str, float],
                     streams: bool = False, liquidation_interval_s: float = 0) -> str:
    """backstop.toml text: ``venues`` point at the simulator (``base_url(venue)``) with these poll
    intervals (0 = dataset off), every other venue disabled, no jitter, quick retries."""
    chosen = list(venues)
    lines = [f"[venues.{key}]\nenabled = false\n" for key in venue_keys() if key not in chosen]
    for key in chosen:
        lines.append(f"[venues.{key}]\nbase_url = '{base_url(key)}'\nstreams = {str(streams).lower()}\n"
                     f"max_symbols = 5\ntimeout_s = 5\n[venues.{key}.intervals]")
        for dataset in ("funds", "open_interest", "funding", "prices", "adl"):
            lines.append(f"{dataset} = {float(intervals.get(dataset, 0))}")
        lines.append(f"liquidations = {float(liquidation_interval_s)}\n")
    lines.append("[collector]\njitter_s = 0\nmax_retries = 1\nbackoff_base_s = 0.1\nbackoff_max_s = 1.0\n")
    return "\n".join(lines)


class CollectorProcess:
    """``python -m backstop.cli --config C --db D collect`` with its output in ``log``."""

    def __init__(self, config: Path, db: Path, log: Path, env: Mapping[str, str] | None = None) -> None:
        self.config, self.db, self.log = config, db, log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self) -> CollectorProcess:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backstop.cli", "--config", str(self.config), "--db", str(self.db),
             "--log-level", "INFO", "collect"],
            stdout=self._out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=self.env)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no cleanup at all, like a crash or the OOM killer."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._close()

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (a clean stop) and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(30)
        self._close()
        return code

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


READER_HOLD = """
import sys, time
from storage.db import read_connection
path, seconds = sys.argv[1], float(sys.argv[2])
with read_connection(path, budget_s=120) as con:
    con.execute("SELECT count(*) FROM collection_runs").fetchall()
    print("holding", flush=True)
    time.sleep(seconds)
print("released", flush=True)
"""


def hold_reader(db: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding a read-only connection on ``db`` for ``seconds`` (a dashboard query that
    takes long, a user's DuckDB shell). Prints ``holding`` once it has the file, ``released`` at the end."""
    return subprocess.Popen([sys.executable, "-c", READER_HOLD, str(db), str(seconds)], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, text=True)
