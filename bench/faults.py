"""The fault suite as a benchmark (issue #10): a real collector process against a real simulator process
(cascade scenario), killed with SIGKILL at random moments, a reader holding the database file, and the
bad CLI inputs; it counts what went wrong. All zeros is the target.

    python bench/faults.py [--kills 20] [--hold-s 45] [--holds 2] [--venues binance,okx,bybit] [--seed 7]

Figures on the last line:
  kills                     collector processes killed with SIGKILL
  lost_rows                 rows the stored runs say they wrote minus rows stored (data tables)
  dup_rows                  rows stored twice under their natural key (every data table + liquidations)
  unrecorded_gaps           (kill window x stream feed) with no liquidation gap covering the downtime
  skipped_polls_unrecorded  polls due during the reader holds with no run row at all
  reader_hold_skips         polls recorded as skipped (or error) during the reader holds
  traceback_inputs          bad inputs whose output contains a Python traceback
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.registry import adapter_class  # noqa: E402
from simulator.harness import PROJECT_ROOT, CollectorProcess, collector_config, hold_reader  # noqa: E402
from storage.db import DatabaseBusy, read_connection  # noqa: E402

INTERVALS = {"funds": 5.0, "open_interest": 2.0, "funding": 5.0, "prices": 2.0, "adl": 5.0}
# natural keys (storage.batch_writes.TABLES + liquidations)
KEYS = {
    "fund_balances": "venue, pool_id, asset, ts", "fund_flows": "venue, pool_id, asset, ts, flow_type",
    "open_interest": "venue, symbol, ts", "funding_rates": "venue, symbol, ts",
    "prices": "venue, asset, source, ts", "adl_signals": "venue, scope, signal_type, ts",
    "liquidation_totals": "venue, symbol, interval_s, ts", "liquidations": "venue, feed, event_key",
}
RUN_TABLES = [t for t in KEYS if t != "liquidations"]  # rows counted in collection_runs.rows_written


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db, budget_s=60) as con:
        return con.execute(sql, params or []).fetchall()


def _runs_after(db: Path, ts: datetime) -> int:
    return int(_rows(db, "SELECT count(*) FROM collection_runs WHERE started_at > ?", [ts])[0][0])


def _wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except (DatabaseBusy, FileNotFoundError):
            value = None
        except Exception as exc:  # noqa: BLE001 - tables appear with the first write
            if "does not exist" not in str(exc):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.5)


class Simulator:
    """``backstop simulate`` in its own process."""

    def __init__(self, port: int, seed: int, log: Path) -> None:
        self.port = port
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backstop.cli", "simulate", "--port", str(port), "--scenario", "cascade",
             "--speed", "720", "--seed", str(seed)], stdout=self._out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        _wait_for(self._up, 120, "the simulator")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def base_url(self, venue: str) -> str:
        return f"http://127.0.0.1:{self.port}/{venue}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self._out.close()


# -- phase 1: kill -9 at random moments --------------------------------------------------------------------
def kill_phase(config: Path, db: Path, log: Path, kills: int, rng: random.Random,
               alive_s: tuple[float, float]) -> list[tuple[datetime, datetime]]:
    """Start; once the run writes (a poll or a stream's coverage), let it run a random while, SIGKILL,
    start again at once. Returns (killed, restarted) pairs."""
    windows: list[tuple[datetime, datetime]] = []
    proc = CollectorProcess(config, db, log).start()
    for index in range(kills):
        started = windows[-1][1] if windows else datetime.now(UTC) - timedelta(seconds=1)
        _wait_for(partial(_runs_after, db, started), 180, "the collector's first write")
        time.sleep(rng.uniform(*alive_s))  # the random moment of the kill (not a wait for a state)
        killed = datetime.now(UTC)
        proc.kill9()
        proc = CollectorProcess(config, db, log).start()
        windows.append((killed, datetime.now(UTC)))
        print(f"  kill {index + 1}/{kills} at {killed:%H:%M:%S.%f}", flush=True)
    # the last run must subscribe (closing the gaps) before it is stopped cleanly
    _wait_for(lambda: _rows(db, "SELECT count(*) FROM liquidation_coverage WHERE start_ts > ?",
                            [windows[-1][1]])[0][0] if windows else True, 180, "the last run's subscriptions")
    code = proc.stop()
    print(f"  last run stopped cleanly: exit {code}", flush=True)
    return windows


def unrecorded_gaps(db: Path, windows: list[tuple[datetime, datetime]]) -> int:
    """Per kill window, every stream feed that had been covered before the kill needs a gap row spanning
    the window."""
    missing = 0
    for killed, restarted in windows:
        feeds = _rows(db, "SELECT DISTINCT venue, feed FROM liquidation_coverage WHERE start_ts < ?", [killed])
        for venue, feed in feeds:
            (covered,) = _rows(db, "SELECT count(*) FROM liquidation_gaps WHERE venue = ? AND feed = ? "
                                   "AND start_ts <= ? AND coalesce(end_ts, now()) >= ?",
                               [venue, feed, killed, restarted])[0]
            if not covered:
                missing += 1
                print(f"  no gap covers {venue} {feed} {killed:%H:%M:%S} - {restarted:%H:%M:%S}")
    return missing


# -- phase 2: a reader holds the file ----------------------------------------------------------------------
def hold_phase(config: Path, db: Path, log: Path, hold_s: float, holds: int, venues: list[str],
               intervals: dict[str, float]) -> tuple[int, int]:
    """(polls due with no run row, polls recorded as skipped or failed) during the holds."""
    proc = CollectorProcess(config, db, log).start()
    since = datetime.now(UTC)
    jobs = [(venue, dataset) for venue in venues for dataset in adapter_class(venue).datasets()
            if intervals.get(dataset, 0) > 0 and hasattr(adapter_class(venue), f"fetch_{dataset}")]
    # warm: every job has polled twice (ccxt market loading makes a first poll slow), then hold
    _wait_for(lambda: len(_rows(db, "SELECT venue, dataset FROM collection_runs WHERE kind = 'poll' AND "
                                    "started_at > ? AND status = 'ok' GROUP BY ALL HAVING count(*) >= 2",
                                [since])) >= len(jobs), 300, "every job's first polls")
    windows = []
    for index in range(holds):
        reader = hold_reader(db, hold_s)
        assert reader.stdout is not None
        reader.stdout.readline()  # "holding"
        start = datetime.now(UTC)
        reader.stdout.readline()  # "released"
        end = datetime.now(UTC)
        reader.wait(30)
        windows.append((start, end))
        print(f"  reader held the file {(end - start).total_seconds():.1f} s (hold {index + 1}/{holds})", flush=True)
        settle = end + timedelta(seconds=3 * max(intervals.values()))
        # the polls of the hold have landed once polls after it have
        _wait_for(partial(_runs_after, db, settle), 180, "polls after the hold")
    code = proc.stop()
    print(f"  collector stopped cleanly: exit {code}", flush=True)
    unrecorded = recorded_bad = 0
    for start, end in windows:
        for venue, dataset in jobs:
            interval = intervals[dataset]
            due = int((end - start).total_seconds() // interval)
            runs = _rows(db, "SELECT status, error_class, error_message FROM collection_runs WHERE venue = ? "
                             "AND dataset = ? AND kind = 'poll' AND started_at BETWEEN ? AND ?",
                         [venue, dataset, start, end])
            unrecorded += max(0, due - len(runs) - 1)  # -1: a poll straddling either edge of the window
            for status, error_class, message in runs:
                if status != "ok":
                    recorded_bad += 1
                    print(f"  {venue} {dataset} during the hold: {status} {error_class}: {str(message)[:100]}")
    return unrecorded, recorded_bad


def stored_figures(db: Path) -> tuple[int, int]:
    """(lost rows, duplicate rows) over the whole database."""
    present = {r[0] for r in _rows(db, "SELECT table_name FROM information_schema.tables")}
    stored = sum(_rows(db, f"SELECT count(*) FROM {t}")[0][0] for t in RUN_TABLES if t in present)  # noqa: S608
    (reported,) = _rows(db, "SELECT coalesce(sum(rows_written), 0) FROM collection_runs")[0]
    if stored != reported:
        print(f"  rows stored {stored} vs rows the runs report {reported}")
    dups = sum(_rows(db, f"SELECT count(*) - count(DISTINCT ({key})) FROM {t}")[0][0]  # noqa: S608
               for t, key in KEYS.items() if t in present)
    return max(0, int(reported) - int(stored)), int(dups)


# -- phase 3: bad inputs -------------------------------------------------------------------------------
def bad_inputs(db: Path, work: Path, base_url: Callable[[str], str]) -> list[tuple[str, list[str], dict[str, str]]]:
    """(label, argv after ``backstop``, extra environment) for each input of issue #10 item 6."""
    copy = work / "copy.duckdb"
    shutil.copy(db, copy)
    readonly = work / "readonly.duckdb"
    shutil.copy(db, readonly)
    readonly.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    not_duckdb = work / "notes.duckdb"
    not_duckdb.write_text("this is not a database\n")
    fast = work / "fast.toml"  # a poll interval below 1 s: a config error
    fast.write_text(collector_config(base_url, ["binance"], {"funds": 0.5}))
    sane = work / "sane.toml"  # a valid config, so the read-only case fails on the database, not the config
    sane.write_text(collector_config(base_url, ["binance"], {"funds": 60}))
    (work / "outdir").mkdir(exist_ok=True)
    db_args = ["--db", str(copy)]
    return [
        ("--since 99999999999d", [*db_args, "export", "funds", "--since", "99999999999d", "--out", str(work / "a.csv")], {}),
        ("alerts list --days inf", [*db_args, "alerts", "list", "--days", "inf"], {}),
        ("alerts list --days 1e308", [*db_args, "alerts", "list", "--days", "1e308"], {}),
        ("--out a directory", [*db_args, "export", "funds", "--out", str(work / "outdir")], {}),
        ("--out in a missing directory", [*db_args, "export", "funds", "--out", str(work / "missing" / "f.csv")], {}),
        ("--out x.parquet", [*db_args, "export", "funds", "--out", str(work / "f.parquet")], {}),
        ("--out x.json", [*db_args, "export", "funds", "--out", str(work / "f.json")], {}),
        ("--db not a DuckDB file", ["--db", str(not_duckdb), "status"], {}),
        ("--db a directory", ["--db", str(work / "outdir"), "status"], {}),
        ("malformed BACKSTOP_ALERTS__TARGETS", [*db_args, "status"], {"BACKSTOP_ALERTS__TARGETS": "[not json"}),
        ("collect --once on a read-only database", ["--config", str(sane), "--db",
                                                   str(readonly), "collect", "--once", "--venue", "binance"], {}),
        ("poll interval < 1 s", ["--config", str(fast), "--db", str(work / "fast.duckdb"), "collect", "--once"], {}),
    ]


def traceback_inputs(db: Path, work: Path, base_url: Callable[[str], str]) -> int:
    count = 0
    for label, args, env in bad_inputs(db, work, base_url):
        proc = subprocess.run([sys.executable, "-m", "backstop.cli", *args], capture_output=True, text=True,
                              timeout=300, cwd=PROJECT_ROOT, env={**os.environ, **env})
        output = proc.stdout + proc.stderr
        traced = "Traceback" in output
        count += traced
        last = (output.strip().splitlines() or [""])[-1][:120]
        print(f"  {'TRACEBACK' if traced else 'ok       '} rc={proc.returncode:<3} {label}: {last}", flush=True)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--hold-s", type=float, default=45.0)
    parser.add_argument("--holds", type=int, default=2)
    parser.add_argument("--venues", default="binance,okx,bybit", help="comma-separated simulated venues")
    parser.add_argument("--alive-min-s", type=float, default=0.0, help="shortest run after its first write")
    parser.add_argument("--alive-max-s", type=float, default=10.0, help="longest run after its first write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="backstop-faults-"))
    sim = Simulator(_free_port(), args.seed, work / "simulator.log")
    try:
        venues = [v.strip() for v in args.venues.split(",") if v.strip()]
        config = work / "backstop.toml"
        config.write_text(collector_config(sim.base_url, venues, INTERVALS, streams=True))
        db, log = work / "faults.duckdb", work / "collector.log"
        print(f"work dir {work}; venues {', '.join(venues)}; {args.kills} kills", flush=True)
        windows = kill_phase(config, db, log, args.kills, rng, (args.alive_min_s, args.alive_max_s))
        gaps = unrecorded_gaps(db, windows)
        print(f"holding a reader {args.holds} x {args.hold_s:.0f} s", flush=True)
        unrecorded, hold_skips = hold_phase(config, db, log, args.hold_s, args.holds, venues, INTERVALS)
        lost, dups = stored_figures(db)
        print("bad inputs", flush=True)
        tracebacks = traceback_inputs(db, work, sim.base_url)
        collector_tracebacks = log.read_text(errors="replace").count("Traceback")
        if collector_tracebacks:
            print(f"  the collector's own log holds {collector_tracebacks} traceback(s): {log}")
    finally:
        sim.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"kills={len(windows)} lost_rows={lost} dup_rows={dups} unrecorded_gaps={gaps} "
          f"skipped_polls_unrecorded={unrecorded} reader_hold_skips={hold_skips} traceback_inputs={tracebacks}")


if __name__ == "__main__":
    main()
