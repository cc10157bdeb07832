"""Alert rule inputs computed in DuckDB, on a database written through ``storage.writer.Store``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alerts import fund_rules, market_rules, monitor_rules
from alerts.parameters import CascadeParams, DrawdownParams, StaleParams
from collectors.base import AdlSignal, Batch, FundBalance, OpenInterest, Price
from metrics.alert_rows import FundWindow, Signal
from storage import alert_store as A
from storage import coverage_inputs, freshness_inputs, fund_inputs, liquidation_inputs, rule_inputs
from storage.batch_writes import RunRecord
from storage.db import read_connection
from storage.export import EXPORTS, export_csv
from storage.writer import Store

T = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
EXPECTED = {"okx": 300.0, "binance": 86_400.0, "bybit": 300.0}


def fund(venue: str, pool: str, ts: datetime, balance: float, asset: str = "USDT") -> FundBalance:
    value = Decimal(str(round(balance, 4)))
    return FundBalance(venue=venue, pool_id=pool, asset=asset, ts=ts, balance=value, balance_raw=str(value),
                       unit_raw=asset)


def oi(venue: str, symbol: str, ts: datetime, usd: float) -> OpenInterest:
    return OpenInterest(venue=venue, symbol=symbol, ts=ts, base_asset="BTC", settle_asset="USDT",
                        oi_raw=str(usd), oi_unit="usd", contract_size=None, inverse=False, oi_base=None, oi_usd=usd)


def every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, t = [], start
    while t <= end:
        out.append(t)
        t += step
    return out


def okx_drain(t: datetime) -> float:
    """400 M flat, then down linearly to 320 M over the last 6 h."""
    if t <= T - timedelta(hours=6):
        return 400e6
    return 400e6 - 80e6 * (t - (T - timedelta(hours=6))) / timedelta(hours=6)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("alerts") / "a.duckdb"
    store = Store(path)
    five = timedelta(minutes=5)
    batch = Batch()
    for t in every(T - timedelta(days=9), T, five):
        batch.funds.append(fund("okx", "SWAP:BTC-USDT", t, okx_drain(t)))
        batch.funds.append(fund("bybit", "DOGEUSDT", t, 2e6 - 2.5e6 * max(0.0, (t - (T - timedelta(hours=4))) / timedelta(hours=4))))
        batch.funds.append(fund("bybit", "ZEUSUSDT", t, 50_000))
        if t <= T - timedelta(days=2):  # a pool that disappears (delisted): never a fall to zero
            batch.funds.append(fund("bybit", "OLDUSDT", t, 30e6))
    for day in range(10, -1, -1):  # Binance: daily points at 00:00:02, 800 M then 600 M today
        t = datetime(2025, 6, 1, 0, 0, 2, tzinfo=UTC) - timedelta(days=day)
        batch.funds.append(fund("binance", "BTCUSDT", t, 600e6 if day == 0 else 800e6))
    for day in range(10, -1, -1):  # open interest: 10 B (okx) constant, hourly
        for t in every(T - timedelta(days=day, hours=23), T - timedelta(days=day), timedelta(hours=1)):
            batch.open_interest.append(oi("okx", "BTC-USDT-SWAP", t, 6e9))
            batch.open_interest.append(oi("okx", "ETH-USDT-SWAP", t, 4e9))
    batch.prices.append(Price("binance", "BTC", T, 65_000.0, "index"))
    batch.adl += [
        AdlSignal("bybit", "BTCUSDT", T - timedelta(minutes=10), "bybit_adl_alert", "normal", -0.2, -0.3, 0.1),
        AdlSignal("bybit", "BTCUSDT", T - timedelta(minutes=1), "bybit_adl_alert", "normal", -0.27, -0.3, 0.03),
        AdlSignal("binance", "ETHUSDT", T - timedelta(minutes=30), "binance_adl_risk", "high"),
        AdlSignal("okx", "SWAP:BTC-USDT", T - timedelta(days=5), "okx_adl", "rate_adl_start"),
    ]
    store.write(batch)
    runs = [("okx", "funds", T - timedelta(hours=2), "ok", None), ("okx", "funds", T - timedelta(minutes=40), "ok", None),
            ("okx", "funds", T - timedelta(minutes=5), "error", "NetworkError"),
            ("binance", "funds", T - timedelta(minutes=3), "ok", None)]
    for venue, dataset, at, status, error in runs:
        store.write(Batch(), RunRecord(uuid.uuid4().hex, venue, dataset, "poll", at - timedelta(seconds=2), at, status,
                                       error, "boom" if error else None, 1))
    return path


def windows_by(rows: list[FundWindow]) -> dict[tuple[str, str, float], FundWindow]:
    return {(r.venue, r.pool_id, r.window_h): r for r in rows}


def test_fund_windows_cadence_and_liveness(db: Path) -> None:
    with read_connection(db) as con:
        rows = windows_by(fund_inputs.fund_windows(con, T, [8, 24, 168], EXPECTED))
    okx8 = rows[("okx", "SWAP:BTC-USDT", 8)]
    assert okx8.max_balance == pytest.approx(400e6) and okx8.last_balance == pytest.approx(320e6)
    assert okx8.drawdown_pct == pytest.approx(-20.0)
    assert okx8.points == 97  # the as-of start point + 96 five-minute points inside the 8 h
    assert okx8.cadence_s == 300
    # daily cadence: no 8 h view at all; 24 h = yesterday's point as of the window start + today's
    assert ("binance", "BTCUSDT", 8) not in rows
    b24 = rows[("binance", "BTCUSDT", 24)]
    assert b24.points == 2 and b24.cadence_s == 86_400
    assert b24.start_ts == datetime(2025, 5, 31, 0, 0, 2, tzinfo=UTC)
    assert b24.drawdown_pct == pytest.approx(-25.0)
    # the delisted pool is not live: it is in no window
    assert not [k for k in rows if k[1] == "OLDUSDT"]
    # the negative pool: positive max, negative last
    doge = rows[("bybit", "DOGEUSDT", 8)]
    assert doge.max_balance == pytest.approx(2e6) and doge.last_balance == pytest.approx(-0.5e6)
    signals = fund_rules.fund_drawdown(list(rows.values()), DrawdownParams())
    assert {s.venue: s.severity for s in signals} == {"okx": "warning", "binance": "critical", "bybit": "critical"}


def test_venue_changes_like_for_like(db: Path) -> None:
    with read_connection(db) as con:
        changes = {(c.venue, c.window_h): c for c in fund_inputs.venue_changes(con, T, [8, 24], EXPECTED)}
    assert changes[("okx", 8)].change_pct == pytest.approx(-20.0)
    assert changes[("binance", 24)].change_pct == pytest.approx(-25.0)
    assert ("binance", 8) not in changes
    bybit = changes[("bybit", 24)]
    # DOGE 2 M -> -0.5 M (-125 %) and ZEUS flat, weighted by their USD value at the start; OLD is gone
    assert bybit.pools == 2
    assert bybit.change_pct == pytest.approx(-125.0 * 2e6 / (2e6 + 50_000))


def test_data_clock_follows_a_simulator_ahead(db: Path) -> None:
    with read_connection(db) as con:
        assert rule_inputs.data_clock(con, T - timedelta(hours=3)) == T
        assert rule_inputs.data_clock(con, T + timedelta(hours=1)) == T + timedelta(hours=1)
        assert rule_inputs.data_clock(con, T - timedelta(days=30)) == T - timedelta(days=30)  # junk far future ignored


def test_coverage_now_and_median(db: Path) -> None:
    with read_connection(db) as con:
        rows = {c.venue: c for c in coverage_inputs.venue_coverage(con, T, EXPECTED, {"okx": 300.0})}
    okx = rows["okx"]
    assert okx.fund_usd == pytest.approx(320e6) and okx.oi_usd == pytest.approx(10e9)
    assert okx.ratio == pytest.approx(0.032)
    assert okx.median_days == 9 and okx.median_ratio == pytest.approx(0.04)
    assert "binance" not in rows  # no open interest collected for it
    with read_connection(db) as con:  # the OI alone (the assessments') is the same definition
        oi = coverage_inputs.venue_open_interest(con, T, {"okx": 300.0})
    assert oi == {"okx": pytest.approx(okx.oi_usd, rel=1e-12)}


def test_freshness_and_adl(db: Path) -> None:
    jobs = [freshness_inputs.JobExpectation("okx", "funds", 300, 300), freshness_inputs.JobExpectation("binance", "funds", 300, 86_400),
            freshness_inputs.JobExpectation("okx", "adl", 600, 86_400)]
    with read_connection(db) as con:
        fresh = {(f.venue, f.dataset): f for f in freshness_inputs.freshness(con, T, jobs)}
        adl = {(a.venue, a.scope, a.signal_type): a for a in liquidation_inputs.latest_adl(con, T, timedelta(days=7))}
    okx = fresh[("okx", "funds")]
    assert okx.last_ok_at == T - timedelta(minutes=40) and okx.last_status == "error"
    assert okx.last_error_class == "NetworkError" and okx.newest_data_ts == T
    assert fresh[("okx", "adl")].last_run_at is None
    [signal] = monitor_rules.stale(list(fresh.values()), [], StaleParams(), T)
    assert signal.venue == "okx" and "no successful poll for 40 min" in signal.message
    bybit = adl[("bybit", "BTCUSDT", "bybit_adl_alert")]
    assert bybit.distance == pytest.approx(0.03) and bybit.ts == T - timedelta(minutes=1)
    assert adl[("binance", "ETHUSDT", "binance_adl_risk")].level == "high"


def test_feature_tables_missing_or_empty_read_as_nothing(tmp_path: Path) -> None:
    """Before the liquidation feature's migration (no tables) and after it (empty tables) alike."""
    store = Store(tmp_path / "e.duckdb")
    store.write(Batch())
    with read_connection(tmp_path / "e.duckdb") as con:
        assert liquidation_inputs.recent_cascades(con, T) == []
        assert liquidation_inputs.open_stream_gaps(con) == []
        assert liquidation_inputs.latest_adl(con, T) == []
        assert fund_inputs.fund_windows(con, T, [8], {}) == []


def test_cascades_and_open_gaps_from_the_liquidation_tables(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    store = Store(path)

    def insert(con: Any) -> None:
        scope = "venue" if "venue" in rule_inputs.table_columns(con, "cascades") else "scope"
        con.execute(
            f"INSERT INTO cascades ({scope}, start_ts, end_ts, last_minute, peak_ts, peak_usd, total_long_usd, "  # noqa: S608
            "total_short_usd, baseline_usd, threshold_usd, minutes, ongoing, incomplete, lower_bound, dominant_asset, "
            "price_move_pct, fund_change_usd, params, detected_at, updated_at) VALUES "
            "('binance', ?, NULL, ?, ?, 3e7, 1.5e8, 3e7, 1e5, 5e5, 20, true, false, true, 'BTC', -7.5, NULL, '{}', ?, ?),"
            "('okx', ?, ?, ?, ?, 1e6, 1e6, 2e6, 1e5, 5e5, 5, false, true, false, NULL, NULL, -2e6, '{}', ?, ?)",
            [T - timedelta(minutes=20), T, T - timedelta(minutes=15), T, T,
             T - timedelta(days=1), T - timedelta(hours=23), T - timedelta(hours=23), T - timedelta(days=1), T, T])
        con.execute(
            "INSERT INTO liquidation_gaps VALUES ('bybit', 'allLiquidation:linear', ?, NULL, 'closed by peer', ?), "
            "('okx', 'liquidation-orders', ?, ?, 'x', ?)",
            [T - timedelta(minutes=30), T, T - timedelta(hours=2), T - timedelta(hours=1), T])

    store.execute_write(insert)
    with read_connection(path) as con:
        [event] = liquidation_inputs.recent_cascades(con, T)
        [gap] = liquidation_inputs.open_stream_gaps(con)
    assert (event.venue, event.ended_at, event.side, event.minutes) == ("binance", None, "long", 20)
    assert event.notional_usd == pytest.approx(1.8e8) and event.lower_bound and event.price_move_pct == -7.5
    assert (gap.venue, gap.stream, gap.reason) == ("bybit", "allLiquidation:linear", "closed by peer")
    [signal] = market_rules.cascade([event], CascadeParams(), T, {"binance": "Binance"})
    assert signal.severity == "critical" and "≥ 180.0 M USD liquidated in 20 min" in signal.message


def test_alert_rows_lifecycle_queries_and_export(tmp_path: Path) -> None:
    path = tmp_path / "l.duckdb"
    store = Store(path)
    signal = Signal("fund_drawdown", "okx", "funds", "warning", "=cmd OKX −20 %", {"x": float("nan")}, T)
    store.execute_write(lambda con: A.apply_changes(con, T, [A.AlertOpen("a1", signal, True)], [], []))
    louder = Signal("fund_drawdown", "okx", "funds", "critical", "OKX −30 %", {"x": 1.0}, T)
    store.execute_write(lambda con: A.apply_changes(
        con, T + timedelta(minutes=5), [], [A.AlertUpdate("a1", louder, "critical", "critical")], []))
    with read_connection(path) as con:
        [state] = A.firing_alerts(con)
        notified = A.last_notified(con)
    assert state.severity == "critical" and state.notified_severity == "critical"
    assert notified["fund_drawdown|okx|funds"] == (T + timedelta(minutes=5), "critical")
    store.execute_write(lambda con: A.apply_changes(con, T + timedelta(hours=1), [], [], [A.AlertResolve("a1", "cleared")]))
    frame = A.alerts_frame(path)
    assert list(frame["status"]) == ["resolved"] and frame["message"][0] == "OKX −30 %"
    assert frame["first_message"][0] == "=cmd OKX −20 %"
    assert A.alerts_frame(path, rules=["divergence"]).empty
    markers = A.alert_markers(path, ["okx"], T - timedelta(hours=1), T + timedelta(hours=1))
    assert list(markers["rule"]) == ["fund_drawdown"] and markers["severity"][0] == "critical"
    assert A.alert_markers(path, ["bybit"], T - timedelta(hours=1), T + timedelta(hours=1)).empty
    assert "alerts" in EXPORTS and "alert-deliveries" in EXPORTS
    out = tmp_path / "alerts.csv"
    assert export_csv(path, "alerts", out) == 1
    assert "'=cmd OKX" in out.read_text()  # formula-looking text neutralised
    assert A.alerts_frame(tmp_path / "none.duckdb").empty  # no database yet: empty, same columns
