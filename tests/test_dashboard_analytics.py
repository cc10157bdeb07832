"""The dashboard's SQL (storage.analytics), URL params, catalog and page models, on the fixture database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from collectors.base import Batch, FundBalance
from dashboard.params import DEFAULT_RANGE, Controls, parse_params, to_params
from records.venue_catalog import VENUE_COLOURS, colour_for, venue_info
from storage import analytics, analytics_funds, analytics_oi, rollups
from storage.analytics import Grid, floor_hour
from storage.db import migrate
from storage.writer import Store
from tests.test_dashboard_fixture import Fixture, build_fixture


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    fixture = build_fixture(tmp_path_factory.mktemp("analytics") / "fixture.duckdb")
    return fixture


def test_fund_series_is_as_of_each_grid_point(fx: Fixture) -> None:
    grid = Grid(fx.now, timedelta(minutes=30), 100)
    frame = analytics.fund_series(fx.path, ["bybit", "gate"], grid)
    for venue in ("bybit", "gate"):
        rows = frame[frame["venue"] == venue]
        assert len(rows) == grid.points + 1
        for r in rows.iloc[::17].itertuples():  # a daily-ish and a 5-minute pool summed as of r.ts
            assert r.fund_usd == pytest.approx(fx.fund_at(venue, r.ts.to_pydatetime()), rel=1e-12)


def test_oi_series_sums_contracts_and_pools(fx: Fixture) -> None:
    grid = Grid(fx.now, timedelta(hours=2), 50)
    venue = analytics.oi_series(fx.path, ["binance"], grid)
    last = venue.iloc[-1]
    assert last["oi_usd"] == pytest.approx(fx.oi_at("binance", fx.now), rel=1e-12)
    assert last["contracts"] == 3
    pools = analytics.oi_series(fx.path, ["bybit"], grid, by_pool=True)
    iso = pools[(pools["pool_id"] == "1000PEPEUSDT")].iloc[-1]
    assert iso["oi_usd"] == pytest.approx(fx.oi_at("bybit", fx.now, ["1000PEPEUSDT"]), rel=1e-12)


def test_venue_fund_as_of_now_and_a_day_ago(fx: Fixture) -> None:
    """The venue total the Overview shows is the assessment's, at any instant (fund as of t)."""
    from storage.assessments import load_assessments

    for at in (fx.now, fx.now - timedelta(hours=24)):
        gate = next(a for a in load_assessments(fx.path, at) if a.venue == "gate" and a.is_venue)
        assert gate.fund_usd == pytest.approx(fx.fund_at("gate", at))
    htx = next(a for a in load_assessments(fx.path, fx.now) if a.venue == "htx" and a.is_venue)
    assert htx.fund_ts == fx.now - timedelta(days=5)  # its newest value, published 5 days ago

def test_rollups_give_the_same_answers_as_raw_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # hourly fixture points at hh:35: in the middle of the rollup's hour buckets (not on their edges)
    fx = build_fixture(tmp_path / "r.duckdb", now=floor_hour(datetime.now(UTC)) - timedelta(minutes=25))
    store = Store(fx.path)
    written = store.execute_write(lambda con: analytics.refresh_rollups(con, fx.now))
    assert written["oi_hourly"] > 0 and written["fund_hourly"] > 0
    venues = sorted(fx.funds_usd)
    grid = Grid(floor_hour(fx.now), timedelta(hours=3), 56)
    with_rollup = {
        "fund": analytics.fund_series(fx.path, venues, grid, by="pool_asset"),
        "oi": analytics.oi_series(fx.path, venues, grid),
        "pool": analytics.oi_series(fx.path, venues, grid, by_pool=True),
    }
    used: list[bool] = []
    real = rollups._use_rollup
    for page_queries in (analytics_funds, analytics_oi):  # where the fund and OI queries look it up
        monkeypatch.setattr(page_queries, "_use_rollup", lambda g, wm: used.append(real(g, wm)) or False)
    raw = {
        "fund": analytics.fund_series(fx.path, venues, grid, by="pool_asset"),
        "oi": analytics.oi_series(fx.path, venues, grid),
        "pool": analytics.oi_series(fx.path, venues, grid, by_pool=True),
    }
    assert used == [True, True, True]
    for key, frame in with_rollup.items():
        value = "fund_usd" if key == "fund" else "oi_usd"
        pd.testing.assert_series_equal(frame[value], raw[key][value], rtol=1e-9)
        assert frame["ts"].equals(raw[key]["ts"])


def test_rollup_refresh_folds_in_late_rows(tmp_path: Path) -> None:
    fx = build_fixture(tmp_path / "late.duckdb")
    store = Store(fx.path)
    store.execute_write(lambda con: analytics.refresh_rollups(con, fx.now))
    old = floor_hour(fx.now) - timedelta(days=3) - timedelta(minutes=30)
    store.write(Batch(funds=[FundBalance("okx", "late-pool", "USDT", old, Decimal("123"), "123", "USDT")]),
                fetched_at=datetime.now(UTC) + timedelta(seconds=5))
    store.execute_write(lambda con: analytics.refresh_rollups(con, fx.now + timedelta(seconds=10)))
    con = duckdb.connect(str(fx.path), read_only=True)
    try:
        got = con.execute("SELECT hour, balance FROM fund_hourly WHERE pool_id = 'late-pool'").fetchall()
    finally:
        con.close()
    assert got == [(floor_hour(old) + timedelta(hours=1), 123.0)]


def test_grid_steps_are_round_and_bounded() -> None:
    end = datetime(2026, 11, 22, 7, 35, tzinfo=UTC)
    for days, step in ((1, 300), (7, 1_800), (30, 7_200), (90, 21_600), (365, 86_400), (730, 172_800)):
        grid = Grid.for_range(end - timedelta(days=days), end)
        assert grid.step.total_seconds() == step
        assert grid.points <= 480 and grid.start <= end - timedelta(days=days)


def test_liquidations_are_max_combined_across_feeds(tmp_path: Path) -> None:
    path = tmp_path / "liq.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, target=1)
    con.execute("CREATE TABLE liquidations (venue VARCHAR, source VARCHAR, ts TIMESTAMPTZ, side VARCHAR, "
                "notional_usd DOUBLE)")
    t = datetime(2026, 11, 22, 7, 0, 10, tzinfo=UTC)
    rows = [("bybit", "ws", t, "long", 100.0), ("bybit", "rest", t, "long", 100.0),  # same event, two feeds
            ("bybit", "ws", t, "short", 50.0), ("okx", "ws", t - timedelta(days=2), "long", 9.0)]
    con.executemany("INSERT INTO liquidations VALUES (?, ?, ?, ?, ?)", rows)
    con.close()
    out = analytics.liquidations_summary(path, ["bybit", "okx"], t - timedelta(hours=24)).set_index("venue")
    assert out.loc["bybit", "long_usd"] == 100.0 and out.loc["bybit", "long_count"] == 1
    assert out.loc["bybit", "short_usd"] == 50.0
    assert "okx" not in out.index  # older than the window
    empty = tmp_path / "none.duckdb"
    con = duckdb.connect(str(empty))
    migrate(con, target=1)
    con.close()
    assert analytics.liquidations_summary(empty, ["bybit"], t) is None
    assert analytics.firing_alerts(empty) is None


def test_firing_alerts_reads_the_alerts_table(tmp_path: Path) -> None:
    path = tmp_path / "alerts.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE alerts (venue VARCHAR, status VARCHAR, message VARCHAR, fired_at TIMESTAMPTZ)")
    now = datetime(2026, 11, 22, tzinfo=UTC)
    con.executemany("INSERT INTO alerts VALUES (?, ?, ?, ?)", [
        ("gate", "firing", "Gate fund -18 %", now), ("okx", "resolved", "ok again", now),
        ("bybit", "firing", "=cmd", now + timedelta(minutes=1))])
    con.close()
    out = analytics.firing_alerts(path)
    assert out is not None and out["venue"].tolist() == ["bybit", "gate"]


def test_url_params() -> None:
    known = ["binance", "okx", "gate"]
    assert parse_params({}, known) == Controls(DEFAULT_RANGE, (), ())
    c = parse_params({"range": "7d", "venues": "OKX, gate,okx"}, known)
    assert c.range_key == "7d" and c.venues == ("okx", "gate") and not c.notices
    bad = parse_params({"range": "1e9", "venues": ["x" * 5000]}, known)
    assert bad.range_key == DEFAULT_RANGE and bad.venues == () and len(bad.notices) == 2
    assert to_params(Controls("90d", ("okx",)), known) == {"range": "90d", "venues": "okx"}
    assert to_params(Controls("90d", tuple(known)), known) == {"range": "90d"}


def test_catalog_colours_and_fallbacks() -> None:
    assert len(set(VENUE_COLOURS.values())) == len(VENUE_COLOURS)  # one colour per venue
    info = venue_info("binance")
    assert info.registered and info.cadence("funds") > 0 and info.colour == VENUE_COLOURS["binance"]
    ghost = venue_info("some_old_venue")
    assert not ghost.registered and ghost.display_name == "Some Old Venue"
    assert ghost.colour == colour_for("some_old_venue") and ghost.cadence("open_interest") == 300.0


def test_context_reads_db_after_the_double_dash_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.context import load_context

    monkeypatch.delenv("BACKSTOP_DB", raising=False)
    monkeypatch.delenv("BACKSTOP_SIMULATED", raising=False)
    ctx = load_context(["--db", "/srv/b.duckdb"], {})
    assert ctx.db == "/srv/b.duckdb" and not ctx.simulated and ctx.refresh_s >= 5
    assert load_context([], {"BACKSTOP_DB": "/env.duckdb", "BACKSTOP_SIMULATED": "1"}).simulated
    assert load_context([], {"BACKSTOP_DB": "/env.duckdb"}).db == "/env.duckdb"
    bad = load_context(["--config", "/nonexistent/backstop.toml"], {})
    assert bad.notice and "config" in bad.notice.lower()


async def test_collector_keeps_rollups_current_in_the_background(tmp_path: Path) -> None:
    """The daemon's background task (backstop.integrations) refreshes the rollups in the writer process."""
    import asyncio
    from types import SimpleNamespace

    from backstop.integrations import refresh_rollups_forever

    fx = build_fixture(tmp_path / "bg.duckdb", now=floor_hour(datetime.now(UTC)) - timedelta(minutes=25))
    collector = SimpleNamespace(store=Store(fx.path))
    task = asyncio.create_task(refresh_rollups_forever(collector, every_s=0.05))
    try:
        for _ in range(200):
            await asyncio.sleep(0.05)
            rows = await asyncio.to_thread(
                collector.store.read, lambda con: con.execute("SELECT name FROM rollup_state").fetchall())
            names = {r[0] for r in rows}
            if names:
                break
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert names == set(analytics.ROLLUPS)


def test_blindness_on_simulated_data_comes_from_failing_polls_only() -> None:
    """A demo market replays the past day at 720x: its old-looking timestamps are not blindness, failing
    polls are. On real data, old data is."""
    from dashboard.model import states_for_blindness
    from metrics.health import blindness

    frame = pd.DataFrame({
        "venue": ["okx", "okx", "gate"], "dataset": ["funds", "open_interest", "funds"],
        "age_s": [20 * 3600.0, 20 * 3600.0, 20 * 3600.0], "expected_s": [300.0, 300.0, 300.0],
        "last_status": ["ok", "ok", "error"], "last_error_class": [None, None, "ExchangeDown"],
    })
    real = blindness(states_for_blindness(frame))
    assert real.level == "blind" and set(real.blind_venues) == {"okx", "gate"}
    simulated = blindness(states_for_blindness(frame, simulated=True))
    assert simulated.level == "partial" and simulated.blind_venues == ("gate",)


def test_divergence_history_ends_where_the_assessment_is(fx: Fixture) -> None:
    """The Divergence page's 24 h change over time and its table (the assessment) are one figure: at the
    assessment's instant the chart's last point is the assessment's 24 h change, venue by venue (native
    changes, USD-weighted; a BTC pool is not moved by the BTC price)."""
    from dashboard.model import rolling_venue_change
    from storage.assessments import load_assessments

    venues = sorted(fx.funds_usd)
    grid = Grid(fx.now, timedelta(hours=1), 48)
    pools = analytics.fund_series(fx.path, venues, grid, by="pool_asset")
    chart = rolling_venue_change(pools, 86_400, 3_600)
    last = chart[chart["ts"] == pd.Timestamp(fx.now)].set_index("venue")["change_pct"]
    assessed = {a.venue: a.change_pct("24h") for a in load_assessments(fx.path, fx.now) if a.is_venue}
    compared = [v for v in last.index if assessed.get(v) is not None]
    assert len(compared) >= 4, (last, assessed)
    for venue in compared:
        assert last[venue] == pytest.approx(assessed[venue], rel=1e-6, abs=1e-9), venue


def test_overview_native_amounts_are_the_assessed_pools(fx: Fixture) -> None:
    """The native amounts beside a venue's USD figure sum the same pool assessments as that figure: Bybit's
    shared USDT pool and its isolated 1000PEPEUSDT pool, BitMEX's XBt pool in BTC."""
    from dashboard.model import native_text
    from metrics.formatting import fmt_amount
    from storage.assessments import load_assessments

    assessed = load_assessments(fx.path, fx.now)
    bybit_pools = [a for a in assessed if a.venue == "bybit" and not a.is_venue]
    assert {a.pool_id for a in bybit_pools} == {"USDT", "1000PEPEUSDT"}
    total = sum(a.fund_native or 0.0 for a in bybit_pools)
    venue = next(a for a in assessed if a.venue == "bybit" and a.is_venue)
    assert venue.fund_usd == pytest.approx(total)  # stablecoin pools: USD = native
    assert native_text(assessed, "bybit") == fmt_amount(total, "USDT")
    bitmex = next(a for a in assessed if a.venue == "bitmex" and not a.is_venue)
    assert native_text(assessed, "bitmex") == fmt_amount(bitmex.fund_native, "BTC")
    assert native_text(assessed, "nowhere") == "—"
