"""The CLI end to end for the second-wave fund venues (Bitget's risk reserve, Bitfinex): ``backstop collect
--once`` against the simulator fills their funds, pools, OI and funding; ``backstop backfill`` walks their
histories with progress; ``backstop export funds`` returns the rows. Real processes, a real DuckDB file."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.registry import venue_keys
from storage.db import read_connection

ROOT = Path(__file__).resolve().parent.parent
VENUES = ("bitget", "bitfinex")

pytestmark = pytest.mark.e2e


def backstop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}  # this checkout's code, wide tables
    return subprocess.run([sys.executable, "-m", "backstop.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_collect_once_backfill_and_export(sim_factory, tmp_path: Path) -> None:
    sim = sim_factory(list(VENUES))
    lines = [f"[venues.{key}]\nenabled = false\n" for key in venue_keys() if key not in VENUES]
    lines += [f"[venues.{key}]\nbase_url = '{sim.base_url(key)}'\nstreams = false\n" for key in VENUES]
    config = tmp_path / "backstop.toml"
    config.write_text("\n".join(lines))
    db = tmp_path / "cli.duckdb"
    common = ("--config", str(config), "--db", str(db))

    once = backstop(*common, "collect", "--once", cwd=tmp_path)
    assert once.returncode == 0, once.stdout + once.stderr
    with read_connection(db) as con:
        datasets = set(con.execute("SELECT venue, dataset FROM collection_runs WHERE status = 'ok'").fetchall())
        funds = dict(con.execute("SELECT venue, count(DISTINCT pool_id) FROM fund_balances GROUP BY 1").fetchall())
        members = dict(con.execute("SELECT venue, count(*) FROM fund_pool_members GROUP BY 1").fetchall())
        oi = dict(con.execute("SELECT venue, count(*) FROM open_interest GROUP BY 1").fetchall())
    assert {("bitget", d) for d in ("funds", "open_interest", "funding")} <= datasets
    assert {("bitfinex", d) for d in ("funds", "open_interest", "funding", "prices")} <= datasets
    assert funds == {"bitget": len(sim.market.venue("bitget").pools), "bitfinex": 1}  # Bitfinex: one shared fund
    assert members == {"bitget": 3, "bitfinex": 4} and oi == {"bitget": 3, "bitfinex": 4}

    back = backstop(*common, "backfill", "--since", "7d", cwd=tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr
    for pair in ("bitget funds", "bitfinex funds", "bitfinex open_interest"):
        assert f"{pair}: " in back.stdout and "rows ok" in back.stdout, back.stdout
    with read_connection(db) as con:
        history = dict(con.execute("SELECT venue, count(*) FROM fund_balances WHERE source = 'history' "
                                   "GROUP BY 1").fetchall())
    assert history["bitget"] > 168 and history["bitfinex"] > 168  # hourly + daily; 5-minute and hourly points

    out = backstop(*common, "export", "funds", "--venue", "bitfinex", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows and {r["pool_id"] for r in rows} == {"USTF0"} and {r["venue"] for r in rows} == {"bitfinex"}
