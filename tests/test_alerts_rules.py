"""Alert rules as pure functions: hand-made rows in, signals out (every rule, with its edge cases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts import fund_rules, market_rules, monitor_rules
from alerts.parameters import (
    AdlParams,
    CascadeParams,
    CoverageParams,
    DivergenceParams,
    DrawdownParams,
    StaleParams,
    build_params,
)
from backstop.config import AlertRuleConfig
from metrics.alert_rows import (
    AdlReading,
    CascadeEvent,
    Freshness,
    FundWindow,
    StreamGap,
    VenueChange,
    VenueCoverage,
)
from metrics.formatting import fmt_change_pct, fmt_compact, fmt_window, pool_name

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LABELS = {"okx": "OKX", "bybit": "Bybit", "binance": "Binance", "bitmex": "BitMEX", "gate": "Gate"}


def window(venue: str = "okx", pool: str = "USDT", asset: str = "USDT", hours: float = 8, *, max_balance: float,
           last: float, points: int = 10, cadence_s: float = 300, usd: float | None = None) -> FundWindow:
    return FundWindow(
        venue=venue, pool_id=pool, asset=asset, window_h=hours, cadence_s=cadence_s, points=points,
        max_balance=max_balance, max_ts=NOW - timedelta(hours=hours / 2), last_balance=last, last_ts=NOW,
        max_usd=usd if usd is not None else (max_balance if asset == "USDT" else None),
        last_usd=None,
    )


def change(venue: str, pct: float, hours: float = 24, pools: int = 3) -> VenueChange:
    return VenueChange(venue=venue, window_h=hours, change_pct=pct, pools=pools, start_usd=1e9,
                       end_usd=1e9 * (1 + pct / 100), last_ts=NOW)


# -- fund_drawdown ----------------------------------------------------------------------------------
def test_drawdown_sentence_and_numbers() -> None:
    rows = [window(max_balance=412.1e6, last=319.8e6)]
    peers = [change("binance", -0.2, 8), change("bybit", -0.3, 8), change("gate", -0.5, 8), change("okx", -22.4, 8)]
    [signal] = fund_rules.fund_drawdown(rows, DrawdownParams(), peers, LABELS)
    assert signal.message == ("OKX USDT pool −22.4 % in 8 h (max 412.1 M → 319.8 M USDT); "
                              "peers median −0.3 %")
    assert signal.severity == "warning"
    assert signal.dedup_key == "fund_drawdown|okx|funds"
    assert signal.metrics["drawdown_pct"] == pytest.approx(-22.3974, abs=1e-3)
    assert signal.metrics["max_balance"] == 412.1e6 and signal.metrics["window_h"] == 8
    assert signal.data_ts == NOW


def test_drawdown_below_threshold_and_critical() -> None:
    params = DrawdownParams()
    assert fund_rules.fund_drawdown([window(max_balance=100e6, last=91e6)], params) == []
    [signal] = fund_rules.fund_drawdown([window(max_balance=100e6, last=70e6)], params)
    assert signal.severity == "critical"


def test_drawdown_one_signal_per_venue_with_the_deepest_fall() -> None:
    rows = [
        window(pool="A", hours=8, max_balance=100e6, last=85e6),
        window(pool="A", hours=24, max_balance=110e6, last=85e6),
        window(pool="B", hours=168, max_balance=50e6, last=40e6),
        window(venue="bybit", pool="C", hours=8, max_balance=10e6, last=9.5e6),
    ]
    [signal] = fund_rules.fund_drawdown(rows, DrawdownParams(), labels=LABELS)
    assert signal.venue == "okx"
    assert signal.metrics["window_h"] == 24 and signal.metrics["pool_id"] == "A"
    assert signal.metrics["pools_down_count"] == 2
    assert "1 more pool down > 10 %" in signal.message
    # the shortest window showing most of the fall: it fell in a day, not over the week
    week = [window(hours=24, max_balance=400e6, last=220e6), window(hours=168, max_balance=412e6, last=220e6)]
    assert fund_rules.fund_drawdown(week, DrawdownParams())[0].metrics["window_h"] == 24
    # a critical fall heads the message even in a smaller pool
    [critical] = fund_rules.fund_drawdown([*rows, window(pool="D", hours=8, max_balance=2e6, last=1e6)], DrawdownParams())
    assert critical.metrics["pool_id"] == "D" and critical.severity == "critical"
    assert critical.metrics["pools_down_count"] == 3


def test_drawdown_daily_fund_needs_two_points() -> None:
    # a daily-cadence fund seen once in the window (the storage query only produces >= cadence windows)
    single = window(venue="binance", hours=24, max_balance=100e6, last=60e6, points=1, cadence_s=86_400)
    assert fund_rules.fund_drawdown([single], DrawdownParams()) == []
    pair = window(venue="binance", hours=24, max_balance=100e6, last=60e6, points=2, cadence_s=86_400)
    [signal] = fund_rules.fund_drawdown([pair], DrawdownParams(), labels=LABELS)
    assert signal.metrics["points"] == 2 and "in 24 h" in signal.message


def test_drawdown_negative_bybit_pool() -> None:
    params = DrawdownParams()
    # already negative over the whole window: no relative scale, no signal (and no division by zero)
    always_negative = window(venue="bybit", pool="DOGEUSDT", max_balance=-5_000, last=-20_000, usd=None)
    assert always_negative.drawdown_pct is None
    assert fund_rules.fund_drawdown([always_negative], params) == []
    # positive maximum, now negative: a fall of more than 100 %, critical
    crossed = window(venue="bybit", pool="DOGEUSDT", max_balance=2e6, last=-0.5e6)
    [signal] = fund_rules.fund_drawdown([crossed], params, labels=LABELS)
    assert signal.severity == "critical"
    assert signal.metrics["drawdown_pct"] == pytest.approx(-125.0)
    assert "−125.0 %" in signal.message and "→ −500.0 K USDT" in signal.message


def test_drawdown_ignores_small_pools_and_unknown_size_is_kept() -> None:
    tiny = window(venue="bybit", pool="ZEUSUSDT", max_balance=50_000, last=10_000)
    assert fund_rules.fund_drawdown([tiny], DrawdownParams()) == []
    unpriced = window(venue="bitmex", pool="XBt", asset="BTC", max_balance=100, last=80, usd=None)
    [signal] = fund_rules.fund_drawdown([unpriced], DrawdownParams(), labels=LABELS)
    assert signal.message.startswith("BitMEX BTC pool XBt −20.0 % in 8 h (max 100 → 80 BTC)")


# -- coverage_low ---------------------------------------------------------------------------------
def coverage(fund: float, oi: float, median: float | None = None, days: int = 0) -> VenueCoverage:
    return VenueCoverage(venue="bybit", fund_usd=fund, oi_usd=oi, fund_ts=NOW, oi_ts=NOW,
                         median_ratio=median, median_days=days)


def test_coverage_floor_and_median() -> None:
    params = CoverageParams()
    assert fund_rules.coverage_low([coverage(100e6, 10e9)], params) == []  # 1 %
    [floor] = fund_rules.coverage_low([coverage(40e6, 10e9)], params, LABELS)  # 0.4 % < 0.5 %
    assert floor.severity == "warning"
    assert floor.message == ("Bybit fund covers 0.40 % of open interest (fund 40.0 M / OI 10.0 B USD), "
                             "below the 0.5 % floor")
    [relative] = fund_rules.coverage_low([coverage(200e6, 10e9, median=0.05, days=30)], params, LABELS)  # 2 % vs 5 %
    assert "40 % of its 30-day median 5.00 %" in relative.message
    assert relative.metrics["relative_to_median"] == pytest.approx(0.4)
    [critical] = fund_rules.coverage_low([coverage(100e6, 10e9, median=0.05, days=30)], params)  # 20 % of median
    assert critical.severity == "critical"


def test_coverage_median_needs_enough_days_and_oi() -> None:
    params = CoverageParams()
    assert fund_rules.coverage_low([coverage(200e6, 10e9, median=0.05, days=3)], params) == []
    assert fund_rules.coverage_low([coverage(200e6, 0.0)], params) == []
    assert fund_rules.coverage_low([coverage(0.0, 10e9)], params) == []


# -- divergence -----------------------------------------------------------------------------------
def test_divergence_flags_the_outlier_only() -> None:
    rows = [change("okx", -21.8), change("binance", -0.2), change("bybit", -0.3), change("gate", 0.4),
            change("bitmex", -0.5)]
    [signal] = fund_rules.divergence(rows, DivergenceParams(), LABELS)
    assert signal.venue == "okx" and signal.severity == "critical"
    assert signal.message.startswith("OKX insurance funds −21.8 % in 24 h vs peers median −0.2 % (robust z −43.1, 4 peers)")
    assert signal.metrics["peers"] == 4 and signal.metrics["peers_median_pct"] == pytest.approx(-0.25)


def test_divergence_needs_min_venues() -> None:
    rows = [change("okx", -30.0), change("binance", -0.2), change("bybit", -0.3)]
    assert fund_rules.divergence(rows, DivergenceParams()) == []  # 3 < 4 venues
    assert fund_rules.divergence(rows, DivergenceParams(min_venues=3))  # allowed when configured


def test_divergence_identical_peers_and_small_moves() -> None:
    # peers all exactly 0 (MAD = 0): the floor keeps tiny wiggles quiet, the absolute move still counts
    flat = [change("binance", 0.0), change("bybit", 0.0), change("gate", 0.0)]
    assert fund_rules.divergence([*flat, change("okx", -1.0)], DivergenceParams()) == []
    [signal] = fund_rules.divergence([*flat, change("okx", -6.0)], DivergenceParams())
    assert signal.severity == "warning" and signal.metrics["robust_z"] == pytest.approx(-12.0)


def test_divergence_rises_only_when_asked() -> None:
    rows = [change("okx", 40.0), change("binance", -0.2), change("bybit", -0.3), change("gate", 0.1)]
    assert fund_rules.divergence(rows, DivergenceParams()) == []
    [signal] = fund_rules.divergence(rows, DivergenceParams(include_rises=1))
    assert signal.venue == "okx"


def test_divergence_common_move_is_not_an_outlier() -> None:
    # a market-wide cascade: every fund down, by different amounts (the spread grows with the move)
    rows = [change("okx", -8.0), change("binance", -7.2), change("bybit", -9.1), change("gate", -6.5),
            change("bitmex", -7.9)]
    assert fund_rules.divergence(rows, DivergenceParams()) == []
    cascade = [change("bitmex", -9.4), change("binance", -3.4), change("bybit", -2.6), change("gate", -2.3),
               change("okx", -1.8)]
    assert fund_rules.divergence(cascade, DivergenceParams()) == []
    assert fund_rules.divergence(cascade, DivergenceParams(common_move_factor=0.0))  # without the common-move floor
    # a venue drained while the market also falls is still an outlier
    drained = [*cascade[1:], change("bitmex", -45.0)]
    [signal] = fund_rules.divergence(drained, DivergenceParams())
    assert signal.venue == "bitmex" and signal.severity == "critical"


# -- cascade --------------------------------------------------------------------------------------
def test_cascade_running_ended_and_old() -> None:
    params = CascadeParams()
    running = CascadeEvent("binance", "c1", NOW - timedelta(minutes=14), None, 182.5e6, "long", 14, "BTC", -8.2,
                           -3.1e6)
    [signal] = market_rules.cascade([running], params, NOW, LABELS)
    assert signal.severity == "critical" and signal.dedup_key == "cascade|binance|cascade:c1"
    assert signal.message == ("Binance liquidation cascade since 2025-06-01 11:46 UTC: 182.5 M USD liquidated in "
                              "14 min, mostly longs, ongoing; BTC −8.2 %; fund −3.1 M USD")
    market = CascadeEvent("market", "c9", NOW - timedelta(minutes=3), None, 5e6, "short", lower_bound=True,
                          incomplete=True)
    [wide] = market_rules.cascade([market], params, NOW, LABELS)
    assert wide.severity == "warning"
    assert wide.message == ("Market-wide liquidation cascade since 2025-06-01 11:57 UTC: ≥ 5.0 M USD liquidated "
                            "in 3 min, mostly shorts, ongoing; a feed gap overlaps it")
    ended_recently = CascadeEvent("okx", "c2", NOW - timedelta(hours=2), NOW - timedelta(minutes=30), 5e6)
    assert market_rules.cascade([ended_recently], params, NOW)[0].severity == "warning"
    ended_long_ago = CascadeEvent("okx", "c3", NOW - timedelta(hours=4), NOW - timedelta(hours=3), 5e6)
    started_long_ago = CascadeEvent("okx", "c4", NOW - timedelta(hours=7), None, 5e6)
    assert market_rules.cascade([ended_long_ago, started_long_ago], params, NOW) == []
    small = CascadeEvent("okx", "c5", NOW - timedelta(minutes=5), None, 1e3)
    assert market_rules.cascade([small], CascadeParams(min_notional_usd=1e6), NOW) == []


# -- adl_near -------------------------------------------------------------------------------------
def adl(venue: str, scope: str, kind: str, level: str | None = None, distance: float | None = None,
        age: timedelta = timedelta(minutes=1), value: float | None = None,
        threshold: float | None = None) -> AdlReading:
    return AdlReading(venue, scope, kind, NOW - age, level, value, threshold, distance)


def test_adl_bybit_near_and_triggered() -> None:
    params = AdlParams()
    assert market_rules.adl_near([adl("bybit", "BTCUSDT", "bybit_adl_alert", "normal", 0.2)], params, NOW) == []
    [near] = market_rules.adl_near([adl("bybit", "BTCUSDT", "bybit_adl_alert", "normal", 0.04, value=-0.26, threshold=-0.3)],
                                   params, NOW, LABELS)
    assert near.severity == "warning"
    assert near.message == ("Bybit near its ADL trigger: BTCUSDT pool drawdown ratio −0.260 vs ADL trigger "
                            "−0.300 (headroom +0.040)")
    rows = [adl("bybit", "BTCUSDT", "bybit_adl_alert", "pnl_drawdown_adl", -0.26, value=-0.56, threshold=-0.3),
            adl("bybit", "ETHUSDT", "bybit_adl_alert", "normal", 0.05)]
    [hit] = market_rules.adl_near(rows, params, NOW, LABELS)
    assert hit.severity == "critical" and hit.metrics["count"] == 2
    assert hit.message.startswith("Bybit ADL trigger condition met: BTCUSDT") and hit.message.endswith("also BTCUSDT, ETHUSDT")
    old = adl("bybit", "BTCUSDT", "bybit_adl_alert", "pnl_drawdown_adl", -0.2, age=timedelta(hours=3))
    assert market_rules.adl_near([old], params, NOW) == []


def test_adl_binance_high_and_okx_events() -> None:
    params = AdlParams()
    rows = [adl("binance", "ETHUSDT", "binance_adl_risk", "high"), adl("binance", "BTCUSDT", "binance_adl_risk", "low"),
            adl("binance", "SOLUSDT", "binance_adl_risk", "HIGH")]
    [binance] = market_rules.adl_near(rows, params, NOW, LABELS)
    assert binance.message == "Binance ADL risk high: ETHUSDT, SOLUSDT" and binance.severity == "warning"
    started = adl("okx", "SWAP:BTC-USDT", "okx_adl", "rate_adl_start", age=timedelta(hours=5))
    [okx] = market_rules.adl_near([started], params, NOW, LABELS)
    assert okx.severity == "critical" and "ADL started (rate_adl_start) on SWAP:BTC-USDT" in okx.message
    ended = adl("okx", "SWAP:BTC-USDT", "okx_adl", "adl_end")
    assert market_rules.adl_near([ended], params, NOW) == []


# -- stale ----------------------------------------------------------------------------------------
def job(venue: str = "okx", dataset: str = "funds", ok_age: float | None = 60, interval: float = 300,
        cadence: float = 300, data_age: float | None = 60, first_age: float = 86_400,
        error: str | None = None) -> Freshness:
    return Freshness(
        venue=venue, dataset=dataset, poll_interval_s=interval, cadence_s=cadence,
        first_run_at=NOW - timedelta(seconds=first_age), last_run_at=NOW - timedelta(seconds=10),
        last_ok_at=None if ok_age is None else NOW - timedelta(seconds=ok_age),
        last_status="error" if error else "ok", last_error_class=error,
        newest_data_ts=None if data_age is None else NOW - timedelta(seconds=data_age),
    )


def test_stale_polls_failing_grouped_per_venue() -> None:
    params = StaleParams()
    assert monitor_rules.stale([job(ok_age=800)], [], params, NOW) == []  # < 3 x 300 s
    rows = [job(ok_age=1000, error="NetworkError"), job(dataset="open_interest", ok_age=1000, error="NetworkError"),
            job(venue="bybit")]
    [signal] = monitor_rules.stale(rows, [], params, NOW, LABELS)
    assert signal.venue == "okx" and signal.severity == "critical"  # the funds are not visible
    assert signal.message == ("OKX monitor blind — funds: no successful poll for 17 min (expected every 5 min); "
                              "open_interest: no successful poll for 17 min (expected every 5 min); "
                              "last error NetworkError")
    assert set(signal.metrics["jobs"]) == {"funds", "open_interest"}


def test_stale_never_ok_never_run_and_min_age() -> None:
    params = StaleParams()
    assert monitor_rules.stale([job(ok_age=None, first_age=100)], [], params, NOW) == []  # just started
    [signal] = monitor_rules.stale([job(ok_age=None, first_age=5000, error="ExchangeDown")], [], params, NOW)
    assert "no successful poll since the first attempt" in signal.message
    never = Freshness("okx", "funds", 300, 300)
    assert monitor_rules.stale([never], [], params, NOW) == []
    fast = job(ok_age=400, interval=10)  # 3 x 10 s, but never sooner than min_stale_s (600 s)
    assert monitor_rules.stale([fast], [], params, NOW) == []


def test_stale_data_age_respects_daily_cadence() -> None:
    params = StaleParams()
    daily = job(venue="binance", cadence=86_400, data_age=20 * 3600)
    assert monitor_rules.stale([daily], [], params, NOW) == []
    [signal] = monitor_rules.stale([job(venue="binance", cadence=86_400, data_age=4 * 86_400)], [], params, NOW, LABELS)
    assert signal.message == "Binance monitor blind — funds: newest data 4.0 d old (venue publishes every 24.0 h)"


def test_stale_without_data_ages_still_sees_failing_polls() -> None:
    """A simulated market (data_ages=False): venue time is not wall time, so old-looking data is not
    blindness; failing polls still are."""
    params = StaleParams()
    lagging = job(venue="okx", data_age=20 * 3600)
    assert monitor_rules.stale([lagging], [], params, NOW, LABELS)  # against the wall clock: blind
    assert monitor_rules.stale([lagging], [], params, NOW, LABELS, data_ages=False) == []
    [signal] = monitor_rules.stale([job(venue="bybit", ok_age=1000, error="NetworkError")], [], params, NOW, LABELS,
                                   data_ages=False)
    assert signal.venue == "bybit" and "no successful poll" in signal.message


def test_stale_stream_gap() -> None:
    gap = StreamGap("bybit", "allLiquidation.BTCUSDT", NOW - timedelta(minutes=20), "disconnected")
    [signal] = monitor_rules.stale([job(venue="bybit", dataset="open_interest")], [gap], StaleParams(), NOW, LABELS)
    assert signal.severity == "warning"
    assert signal.message == ("Bybit monitor blind — liquidation stream allLiquidation.BTCUSDT down since "
                              "2025-06-01 11:40 UTC (disconnected)")


# -- parameters -----------------------------------------------------------------------------------
def test_build_params_from_config() -> None:
    config = AlertRuleConfig(threshold_pct=15, windows_h=[8], severity="critical",
                             params={"min_points": 3, "critical_pct": 40})
    params = build_params(DrawdownParams, config)
    assert params.threshold_pct == 15 and params.windows_h == (8.0,) and params.severity == "critical"
    assert params.min_points == 3 and isinstance(params.min_points, int) and params.critical_pct == 40
    with pytest.raises(ValueError, match="unknown param 'nope'"):
        build_params(DrawdownParams, AlertRuleConfig(params={"nope": 1}))
    with pytest.raises(ValueError, match="severity"):
        build_params(DrawdownParams, AlertRuleConfig(severity="loud"))
    assert fund_rules.fund_drawdown([window(max_balance=100e6, last=50e6)],
                                    build_params(DrawdownParams, AlertRuleConfig(enabled=False))) == []


def test_formatting() -> None:
    assert fmt_change_pct(-22.44) == "−22.4 %" and fmt_change_pct(0.04) == "0.0 %" and fmt_change_pct(1.25) == "+1.2 %"
    assert fmt_compact(412_100_000) == "412.1 M" and fmt_compact(61.73143554) == "61.73"
    assert fmt_window(168) == "7 d" and fmt_window(8) == "8 h" and fmt_window(0.5) == "30 min"
    assert pool_name("shared:USDT:BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT", "USDT").endswith("…")
