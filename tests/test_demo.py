"""``backstop demo`` / ``backstop simulate`` pieces: settings, safety of the user's files, the simulator
process, and (e2e) a headless demo that must fill >= 30 days of fund history within 60 s."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from backstop.config import load_settings
from backstop.demo import collect, simulated_venues, start_demo
from backstop.demo_setup import demo_intervals, demo_settings, prepare_database
from backstop.simulate import write_simulator_config
from collectors.registry import adapter_class, venue_keys
from storage.queries import query_df

ROOT = Path(__file__).resolve().parent.parent
BACKFILL_DEADLINE_S = 900  # a hang, not a slow machine: the speed target lives in bench/demo_backfill.py


def user_settings(tmp_path: Path):  # noqa: ANN201 - Settings
    return load_settings(db_path=tmp_path / "user.duckdb", alerts={
        "cooldown_s": 123, "rules": {"fund_drawdown": {"threshold_pct": 7.5, "windows_h": [24]}}})


def test_demo_intervals_scale_with_speed() -> None:
    at_720 = demo_intervals(720)
    assert at_720["funds"] == 5.0 and at_720["funding"] == 20.0
    assert set(demo_intervals(1).values()) == {300.0}
    assert set(demo_intervals(0).values()) == {30.0}
    assert min(demo_intervals(1e6).values()) == 3.0


def test_demo_settings_point_at_the_simulator_and_keep_alerts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BACKSTOP_DB", str(tmp_path / "env.duckdb"))  # never beats the demo's own file
    base = user_settings(tmp_path)
    venues = simulated_venues()
    assert "binance" in venues
    settings = demo_settings(base, "http://127.0.0.1:9999", venues, tmp_path / "demo.duckdb", 720)
    assert settings.db == tmp_path / "demo.duckdb" and settings.simulated
    assert settings.alerts.cooldown_s == 123
    assert settings.alerts.rules["fund_drawdown"].threshold_pct == 7.5
    assert settings.enabled_venues() == venues
    for key in venue_keys():
        cfg = settings.venues[key]
        if key in venues:
            assert cfg.base_url_str() == f"http://127.0.0.1:9999/{key}"
            assert cfg.intervals.funds == 5.0
        else:
            assert not cfg.enabled
    assert base.db == tmp_path / "env.duckdb" or base.db == tmp_path / "user.duckdb"  # base untouched
    assert not base.simulated
    with pytest.raises(ValueError, match="never writes to your database"):
        demo_settings(base, "http://127.0.0.1:9999", venues, base.db, 720)


def test_prepare_database_only_replaces_its_own_file(tmp_path: Path) -> None:
    foreign = tmp_path / "mine.duckdb"
    foreign.write_bytes(b"not a demo")
    with pytest.raises(ValueError, match="not created by `backstop demo`"):
        prepare_database(foreign)
    assert foreign.read_bytes() == b"not a demo"
    demo_db = tmp_path / "d" / "demo.duckdb"
    prepare_database(demo_db)
    assert demo_db.exists() and demo_db.with_name("demo.duckdb.demo").exists()
    prepare_database(demo_db)  # a second demo starts from an empty file again
    assert query_df(demo_db, "SELECT count(*) AS n FROM fund_balances")["n"][0] == 0


def test_simulator_config_loads_and_never_overwrites_a_real_one(tmp_path: Path) -> None:
    path = tmp_path / "backstop.toml"
    write_simulator_config(path, "http://127.0.0.1:8765", ["binance", "okx"])
    settings = load_settings(config_path=path)
    assert settings.simulated and settings.db == Path("data/simulated.duckdb")
    assert settings.venues["binance"].base_url_str() == "http://127.0.0.1:8765/binance"
    assert settings.enabled_venues() == ["binance", "okx"]
    write_simulator_config(path, "http://127.0.0.1:9000", ["binance"])  # ours: replaced
    assert load_settings(config_path=path).enabled_venues() == ["binance"]
    real = tmp_path / "real.toml"
    real.write_text('db = "data/backstop.duckdb"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not overwriting"):
        write_simulator_config(real, "http://127.0.0.1:8765", ["binance"])


@pytest.mark.e2e
def test_simulate_serves_until_sigint(tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    code = ("from pathlib import Path; from backstop.simulate import run_simulator; "
            f"raise SystemExit(run_simulator(port=0, scenario='cascade', speed=720, seed=3, "
            f"faults=['binance:/fapi/v1/openInterest:429:1 x1'], write_config=Path({str(config)!r})))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not config.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert config.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no config"
        settings = load_settings(config_path=config)
        url = settings.venues["binance"].base_url_str()
        assert url is not None
        with urllib.request.urlopen(url.rsplit("/", 1)[0] + "/_control/state", timeout=5) as resp:  # noqa: S310
            state = json.loads(resp.read())
        assert state["scenario"] == "cascade" and state["simulated"] is True
        assert set(settings.enabled_venues()) <= set(state["venues"])
        with urllib.request.urlopen(url.rsplit("/", 1)[0] + "/_control/faults", timeout=5) as resp:  # noqa: S310
            assert json.loads(resp.read())[0]["kind"] == "429"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert b"simulator on http://127.0.0.1:" in out


@pytest.mark.e2e
def test_demo_fills_history_within_a_minute(tmp_path: Path) -> None:
    """Headless demo (no dashboard): >= 30 days of fund history for every venue that publishes one, and fresh
    live data from every simulated venue (polled while the backfill runs). The test waits on the backfill's
    own completion, not on a clock: how fast it is (target 60 s on a quiet machine) is measured by
    ``bench/demo_backfill.py``, since a crowded test machine may take several times longer."""
    demo = start_demo(user_settings(tmp_path), tmp_path / "demo.duckdb", scenario="venue-drain", seed=7)
    started = time.monotonic()
    lines: list[str] = []

    async def run() -> None:
        stop = asyncio.Event()

        async def stop_when_done() -> None:
            while demo.backfill_seconds is None and time.monotonic() - started < BACKFILL_DEADLINE_S:
                await asyncio.sleep(0.5)
            stop.set()

        watcher = asyncio.create_task(stop_when_done())
        await collect(demo, stop, lines.append)
        await watcher

    try:
        asyncio.run(run())
    finally:
        demo.stop()
    assert demo.backfill_seconds is not None, lines  # finished (its speed: bench/demo_backfill.py)
    failed = [(o.venue, o.dataset, o.error_message) for o in demo.backfill_outcomes if o.status != "ok"]
    assert not failed, failed
    venues = demo.settings.enabled_venues()
    history_venues = [v for v in venues if adapter_class(v).has_backfill("funds")]
    assert len(history_venues) >= 5
    funds = query_df(demo.settings.db, """
        SELECT venue, min(ts) AS first, max(ts) AS last, count(*) AS n FROM (
            SELECT venue, ts FROM fund_balances UNION ALL SELECT venue, ts FROM fund_flows  -- Deribit: events
        ) GROUP BY venue""")
    spans = {row.venue: row.last - row.first for row in funds.itertuples()}
    short = {v: spans.get(v) for v in history_venues if spans.get(v, timedelta(0)) < timedelta(days=30)}
    assert not short, short
    live = query_df(demo.settings.db, """
        SELECT venue, max(ts) AS newest FROM (
            SELECT venue, ts FROM open_interest UNION ALL SELECT venue, ts FROM funding_rates
            UNION ALL SELECT venue, ts FROM fund_balances UNION ALL SELECT venue, ts FROM prices
        ) GROUP BY venue""")
    newest = {row.venue: row.newest for row in live.itertuples()}
    start = demo.market.start_ms / 1000
    stale = {v: newest.get(v) for v in venues if v not in newest or newest[v].timestamp() < start - 300}
    assert not stale, stale
    if os.environ.get("BACKSTOP_DEMO_REPORT"):
        print(f"\nbackfill {demo.backfill_seconds:.1f} s, {demo.backfill_rows} rows; fund rows per venue:",
              dict(zip(funds.venue, funds.n, strict=True)))
