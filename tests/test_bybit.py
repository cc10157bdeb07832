"""Bybit v5: parsers on the documented examples, the simulator's shapes and cadences, then end to end
through ccxt (incl. a 429 that is retried and a malformed payload that is recorded)."""

from __future__ import annotations

import asyncio
import copy
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from backstop.config import Settings
from backstop.service import Collector
from collectors.bybit_parsers import (
    adl_level,
    parse_adl_alert,
    parse_funding_history,
    parse_insurance,
    parse_insurance_ws,
    parse_mark_price_kline,
    parse_open_interest_history,
    parse_tickers,
    pool_id_for,
)
from collectors.errors import PayloadError
from collectors.runner import RunOutcome
from simulator.server import SimulatorThread
from storage.queries import query_df
from tests.conftest import example_raw, settings_for

DIR = "bybit"


# -- parsers on the documented examples -------------------------------------------------------------
def test_insurance_example_shared_pools() -> None:
    batch = parse_insurance("bybit", example_raw(DIR, "insurance_rest_v5_market_insurance.json"))
    assert len(batch.funds) == 4
    first = batch.funds[0]
    assert first.pool_id == "shared:USDT:10000000AIDOGEUSDT"  # no known anchor: alphabetically first member
    assert (first.asset, first.unit_raw) == ("USDT", "USDT")
    assert first.balance == Decimal("902178.57602476") and first.balance_raw == "902178.57602476"
    assert first.usd_value == Decimal("901898.0963091522")  # venue-stated USD value, exact
    assert first.ts.isoformat() == "2024-04-25T00:00:00+00:00"  # list-level updatedTime
    assert batch.funds[1].pool_id == "shared:USDT:SOLUSDT"  # a known anchor wins over sort order
    members = {m.symbol for m in batch.pool_members if m.pool_id == first.pool_id}
    assert members == {"MERLUSDT", "10000000AIDOGEUSDT", "ZEUSUSDT"}
    assert len(batch.pool_members) == 10


def test_insurance_accepts_update_time_spelling_and_isolated_pools() -> None:
    payload = example_raw(DIR, "insurance_rest_v5_market_insurance.json")
    payload["result"]["updateTime"] = payload["result"].pop("updatedTime")
    payload["result"]["list"] = [{"coin": "BTC", "symbols": "BTCUSD", "balance": "1231.5", "value": "80000000"}]
    fund = parse_insurance("bybit", payload).funds[0]
    assert fund.pool_id == "BTCUSD" and fund.asset == "BTC" and fund.balance == Decimal("1231.5")
    assert fund.ts.isoformat() == "2024-04-25T00:00:00+00:00"
    del payload["result"]["updateTime"]
    with pytest.raises(PayloadError, match="updatedTime"):
        parse_insurance("bybit", payload)


def test_insurance_rejects_errors_and_bad_shapes() -> None:
    with pytest.raises(PayloadError, match="retCode 10001"):
        parse_insurance("bybit", {"retCode": 10001, "retMsg": "params error", "result": {}, "time": 1})
    with pytest.raises(PayloadError, match="expected an object"):
        parse_insurance("bybit", '{"code":0,"data":[{"oops"')  # what ccxt hands back for malformed JSON
    payload = example_raw(DIR, "insurance_rest_v5_market_insurance.json")
    payload["result"]["list"][0]["symbols"] = ""
    with pytest.raises(PayloadError, match="empty symbols"):
        parse_insurance("bybit", payload)


def test_pool_ids_are_stable_under_membership_order() -> None:
    assert pool_id_for("USDT", ["DOGEUSDT"]) == "DOGEUSDT"
    assert pool_id_for("USDT", ["XRPUSDT", "BTCUSDT", "AAAUSDT"]) == "shared:USDT:BTCUSDT"
    assert pool_id_for("USDT", ["ZZZUSDT", "AAAUSDT"]) == pool_id_for("USDT", ["AAAUSDT", "ZZZUSDT"])


def test_insurance_ws_isolated_pools() -> None:
    batch = parse_insurance_ws("bybit", example_raw(DIR, "insurance_ws_insurance.USDT.json"))
    assert [f.pool_id for f in batch.funds] == ["GRIFFAINUSDT", "CGPTUSDT", "GOATUSDT", "XTERUSDT"]
    assert batch.funds[1].balance == Decimal("100000.27064825") and batch.funds[1].usd_value is None
    assert batch.funds[0].ts.isoformat() == "2025-05-20T06:35:30+00:00"


def test_inverse_tickers_example_without_single_fields() -> None:
    batch = parse_tickers("bybit", example_raw(DIR, "tickers_inverse_oi_funding_rest_v5_market_tickers.json"))
    (oi,) = batch.open_interest
    assert (oi.symbol, oi.base_asset, oi.settle_asset, oi.inverse) == ("BTCUSD", "BTC", "BTC", True)
    assert oi.oi_raw == "240113967" and oi.oi_unit == "usd:openInterest/2"  # documented as both sides
    assert oi.oi_usd == 240113967 / 2 and oi.oi_base == pytest.approx(240113967 / 2 / 114898.43)
    assert oi.ts.isoformat() == "2025-10-13T10:46:09.814000+00:00"  # envelope time
    (funding,) = batch.funding
    assert funding.funding_rate == 0.0001 and funding.funding_rate_raw == "0.0001"
    assert funding.interval_h == 8 and funding.mark_price == 114898.43
    assert funding.next_funding_ts is not None and funding.next_funding_ts.isoformat() == "2025-10-13T16:00:00+00:00"
    assert [(p.asset, p.price_usd, p.source) for p in batch.prices] == [("BTC", 114890.92, "index")]


def _linear_payload() -> dict[str, Any]:
    """The documented ticker row, as a linear perpetual with the 2026-06-11 single-side fields."""
    payload = example_raw(DIR, "tickers_inverse_oi_funding_rest_v5_market_tickers.json")
    payload["result"]["category"] = "linear"
    row = payload["result"]["list"][0]
    row.update(symbol="BTCUSDT", openInterest="50000.5", openInterestValue="5744864471.4",
               singleOpenInterest="25000.25", singleOpenInterestValue="2872432235.7")
    dated = copy.deepcopy(row)
    dated.update(symbol="BTCUSDT-26DEC25", deliveryTime="1766736000000", fundingRate="")
    payload["result"]["list"].append(dated)
    return payload


def test_linear_tickers_prefer_single_side_and_skip_dated_futures() -> None:
    batch = parse_tickers("bybit", _linear_payload())
    (oi,) = batch.open_interest
    assert (oi.symbol, oi.base_asset, oi.settle_asset, oi.inverse) == ("BTCUSDT", "BTC", "USDT", False)
    assert oi.oi_raw == "25000.25" and oi.oi_unit == "base:singleOpenInterest"
    assert oi.oi_base == 25000.25 and oi.oi_usd == 2872432235.7
    assert [f.symbol for f in batch.funding] == ["BTCUSDT"]
    payload = _linear_payload()
    for key in ("singleOpenInterest", "singleOpenInterestValue"):
        del payload["result"]["list"][0][key]
    fallback = parse_tickers("bybit", payload).open_interest[0]
    assert fallback.oi_unit == "base:openInterest/2" and fallback.oi_raw == "50000.5"
    assert fallback.oi_base == 25000.25 and fallback.oi_usd == 5744864471.4 / 2


def test_open_interest_history_example() -> None:
    rows = parse_open_interest_history(
        "bybit", example_raw(DIR, "open_interest_rest_v5_market_open-interest.json"), mark_price=100000.0)
    assert len(rows) == 5 and {r.symbol for r in rows} == {"BTCUSD"}
    assert rows[0].oi_raw == "31955346" and rows[0].oi_unit == "usd:singleOpenInterest"
    assert rows[0].oi_usd == 31955346 and rows[0].oi_base == 319.55346 and rows[0].inverse
    assert rows[3].oi_usd == 31971156


def test_funding_history_example() -> None:
    (row,) = parse_funding_history("bybit", example_raw(DIR, "funding_history_rest_v5_market_funding_history.json"))
    assert (row.symbol, row.funding_rate, row.funding_rate_raw) == ("ETHPERP", 0.0001, "0.0001")
    assert row.ts.isoformat() == "2022-12-26T08:00:00+00:00"


def test_adl_alert_example() -> None:
    (signal,) = parse_adl_alert("bybit", example_raw(DIR, "adl_alert_rest_v5_market_adlAlert.json"))
    assert (signal.scope, signal.signal_type) == ("BTCUSDT", "bybit_adl_alert")
    assert signal.value == -0.560973 and signal.threshold == -0.3
    assert signal.distance == pytest.approx(-0.260973)  # below the trigger ratio: drawdown condition met
    assert signal.level == "pnl_drawdown_adl"  # and balance > adlTriggerThreshold (10000)
    assert signal.ts.isoformat() == "2025-09-13T03:26:00+00:00"
    detail = json.loads(signal.detail)
    assert detail["adlTriggerThreshold"] == "10000" and detail["balance"] == "92203504694.99632"
    assert detail["adlStopRatio"] == "-0.25" and detail["insurancePnlRatio"] == "-0.3"


def test_adl_levels() -> None:
    d = Decimal
    assert adl_level(d("-5421.3"), d("0"), d("-0.3"), d("10000")) == "equity_adl"
    assert adl_level(d("19873.46"), d("0.000174"), d("-0.3"), d("10000")) == "normal"
    assert adl_level(d("453.36"), d("-0.5"), d("-0.3"), d("10000")) == "normal"  # balance below the gate
    assert adl_level(d("20000"), d("-0.5"), d("-0.3"), d("10000")) == "pnl_drawdown_adl"


# -- simulator ----------------------------------------------------------------------------------
def _get(sim: SimulatorThread, path: str) -> Any:
    with urllib.request.urlopen(sim.base_url("bybit") + path) as resp:  # noqa: S310 - local simulator
        return json.loads(resp.read(), parse_float=Decimal)


def test_simulator_pool_cadences_and_envelope(sim_factory) -> None:
    sim = sim_factory(["bybit"])
    pools = sim.market.venue("bybit").pools
    for pool in pools.values():
        step = pool.history[-1][0] - pool.history[-2][0]
        assert step == (86_400_000 if len(pool.symbols) > 1 else 60_000), pool.pool_id
    body = _get(sim, "/v5/market/insurance?coin=BTC")
    assert set(body) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    assert [r["symbols"] for r in body["result"]["list"]] == ["BTCUSD"]
    assert body["result"]["updatedTime"] == str(pools["BTCUSD"].published()[0])
    assert _get(sim, "/v5/market/tickers?category=nope")["retCode"] == 10001


# -- end to end through ccxt ----------------------------------------------------------------------
def _cycles(settings: Settings, count: int = 1) -> list[list[RunOutcome]]:
    async def run() -> list[list[RunOutcome]]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return [await collector.run_cycle() for _ in range(count)]

    return asyncio.run(run())


def test_collect_through_ccxt_stores_what_was_served(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bybit"])
    settings = settings_for(sim, tmp_path / "b.duckdb", ["bybit"])
    first, again = _cycles(settings, 2)
    assert {o.status for o in first} == {"ok"}, [o.error_message for o in first]
    assert {o.dataset for o in first} == {"funds", "open_interest", "funding", "prices", "adl"}
    assert sum(o.rows_written for o in again) == 0  # frozen clock: nothing new, no duplicates

    insurance = _get(sim, "/v5/market/insurance")["result"]
    funds = query_df(settings.db, "SELECT pool_id, asset, epoch_ms(ts) AS ms, CAST(balance AS VARCHAR) AS balance, balance_raw "
                     "FROM fund_balances WHERE venue = 'bybit'")
    stored = {row.pool_id: row for row in funds.itertuples()}
    assert len(stored) == len(insurance["list"]) == 5
    for served in insurance["list"]:
        row = stored[pool_id_for(served["coin"], served["symbols"].split(","))]
        assert row.balance_raw == served["balance"] and Decimal(row.balance) == Decimal(served["balance"])
        assert row.ms == int(insurance["updatedTime"]) and row.asset == served["coin"]
    sim_pools = sim.market.venue("bybit").pools
    assert stored["shared:USDT:BTCUSDT"].balance_raw == str(sim_pools["BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT"].published()[1])
    members = query_df(settings.db, "SELECT symbol FROM fund_pool_members WHERE pool_id = 'shared:USDT:BTCUSDT'")
    assert set(members["symbol"]) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}

    oi = {r.symbol: r for r in query_df(settings.db, "SELECT * FROM open_interest WHERE venue = 'bybit'").itertuples()}
    funding = {r.symbol: r for r in query_df(settings.db, "SELECT * FROM funding_rates").itertuples()}
    for category in ("linear", "inverse"):
        for served in _get(sim, f"/v5/market/tickers?category={category}")["result"]["list"]:
            row = oi[served["symbol"]]
            single = served.get("singleOpenInterest")
            assert row.oi_raw == (single or served["openInterest"])
            one_side = float(single) if single else float(served["openInterest"]) / 2
            if category == "inverse":
                assert row.oi_usd == one_side and row.oi_base == pytest.approx(one_side / float(served["markPrice"]))
            else:
                assert row.oi_base == one_side
                value = served.get("singleOpenInterestValue")
                assert row.oi_usd == (float(value) if value else float(served["openInterestValue"]) / 2)
            assert funding[served["symbol"]].funding_rate_raw == served["fundingRate"]
            assert funding[served["symbol"]].interval_h == float(served["fundingIntervalHour"])
    assert oi["SOLUSDT"].oi_unit == "base:openInterest/2" and oi["ETHUSD"].oi_unit == "usd:openInterest/2"
    assert oi["BTCUSDT"].oi_unit == "base:singleOpenInterest" and oi["BTCUSD"].oi_unit == "usd:singleOpenInterest"
    prices = query_df(settings.db, "SELECT asset, price_usd FROM prices WHERE venue = 'bybit'")
    assert dict(zip(prices["asset"], prices["price_usd"], strict=True))["BTC"] == float(sim.market.price("BTC"))

    adl = query_df(settings.db, "SELECT scope, value, threshold, distance, level FROM adl_signals")
    served_adl = {r["symbol"]: r for r in _get(sim, "/v5/market/adlAlert")["result"]["list"]}
    assert set(adl["scope"]) == set(served_adl)
    for row in adl.itertuples():
        assert row.value == float(served_adl[row.scope]["pnlRatio"]) and row.threshold == -0.3
        assert row.distance == pytest.approx(row.value + 0.3) and row.level == "normal"


def test_rate_limited_insurance_is_retried(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bybit"])
    sim.faults.add("bybit:/v5/market/insurance:429:1 x1")
    settings = settings_for(sim, tmp_path / "b.duckdb", ["bybit"])
    (outcomes,) = _cycles(settings)
    funds = next(o for o in outcomes if o.dataset == "funds")
    assert funds.status == "ok" and funds.attempts == 2 and funds.rows_written >= 5
    assert sim.faults.rules[0].hits == 1


def test_malformed_insurance_is_recorded_and_other_datasets_land(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bybit"])
    sim.faults.add("bybit:/v5/market/insurance:malformed x3")
    settings = settings_for(sim, tmp_path / "b.duckdb", ["bybit"])
    (outcomes,) = _cycles(settings)
    by_dataset = {o.dataset: o for o in outcomes}
    assert by_dataset["funds"].status == "error" and by_dataset["funds"].error_class == "PayloadError"
    assert by_dataset["funds"].attempts == 1  # permanent: no retry storm
    assert by_dataset["adl"].status == "ok" and by_dataset["open_interest"].status == "ok"
    runs = query_df(settings.db, "SELECT status, error_class FROM collection_runs WHERE dataset = 'funds'")
    assert list(runs["error_class"]) == ["PayloadError"]
    assert query_df(settings.db, "SELECT count(*) AS n FROM fund_balances")["n"][0] == 0
    assert query_df(settings.db, "SELECT count(*) AS n FROM adl_signals")["n"][0] == 9


def test_open_interest_history_valued_at_each_hour() -> None:
    """Each OI point takes the mark of its own hour (the bar ending at it), not today's mark."""
    payload = example_raw(DIR, "open_interest_rest_v5_market_open-interest.json")
    # /v5/market/mark-price-kline shape (Bybit docs: [startTime, open, high, low, close], newest first)
    kline = {"retCode": 0, "retMsg": "OK", "result": {"symbol": "BTCUSD", "category": "inverse", "list": [
        ["1780959600000", "101000", "101500", "100500", "100000"],   # bar ending at 1780963200000
        ["1780873200000", "99000", "99500", "98500", "98000"]]}}
    marks = parse_mark_price_kline(kline)
    assert marks == {1780959600000: 100000.0, 1780873200000: 98000.0}
    rows = parse_open_interest_history("bybit", payload, marks=marks)
    assert rows[0].oi_base == pytest.approx(31955346 / 100000) and rows[1].oi_base == pytest.approx(31955346 / 98000)
    assert rows[2].oi_base is None and rows[2].oi_usd == 31955346  # inverse: USD known, base needs a mark
    with pytest.raises(PayloadError, match="expected \\[start"):
        parse_mark_price_kline({"retCode": 0, "result": {"list": [["1780959600000", "1"]]}})


def test_backfill_open_interest_and_funding_history(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bybit"])
    settings = settings_for(sim, tmp_path / "h.duckdb", ["bybit"])
    now = datetime.fromtimestamp(sim.market.now_ms() / 1000, tz=UTC)
    since = now - timedelta(days=10)

    async def run() -> tuple[RunOutcome, RunOutcome]:
        collector = Collector.for_venues(settings)
        collector.adapters["bybit"].history_page = 25  # type: ignore[attr-defined] # several cursor/endTime pages
        async with collector.running():
            return (await collector.backfill("bybit", "open_interest", since),
                    await collector.backfill("bybit", "funding", since))

    oi_run, funding_run = asyncio.run(run())
    assert oi_run.status == "ok" and funding_run.status == "ok", (oi_run.error_message, funding_run.error_message)
    contracts = sim.market.venue("bybit").contracts
    oi = query_df(settings.db, "SELECT symbol, count(*) AS n, count(oi_usd) AS valued, min(ts) AS first "
                  "FROM open_interest WHERE venue='bybit' GROUP BY symbol")
    assert set(oi["symbol"]) == set(contracts)
    assert set(oi["n"]) == {60} and set(oi["valued"]) == {60}  # 4-hourly over 10 days, every point valued
    assert all(first.to_pydatetime() >= since for first in oi["first"])
    btc = query_df(settings.db, "SELECT ts, oi_raw, oi_usd, oi_base FROM open_interest WHERE symbol='BTCUSDT' "
                   "ORDER BY ts LIMIT 1").iloc[0]
    ts_ms = int(btc["ts"].timestamp() * 1000)
    mark = sim.market.price_at("BTC", ts_ms - 1) * Decimal("1.0002")  # the close of the 4 h bar ending at ts
    assert btc["oi_usd"] == pytest.approx(float(btc["oi_raw"]) * float(mark), rel=1e-4)
    funding = query_df(settings.db, "SELECT symbol, count(*) AS n FROM funding_rates WHERE venue='bybit' GROUP BY symbol")
    assert set(funding["symbol"]) == set(contracts) and set(funding["n"]) == {30}  # 8-hourly over 10 days
    assert oi_run.rows_written == 60 * len(contracts) and funding_run.rows_written == 30 * len(contracts)
