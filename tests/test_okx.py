"""OKX v5: parsers on the documented examples, then end to end through ccxt against the simulator
(insurance history behind ts cursors, incremental polling, backfill, a failing fund endpoint)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backstop.config import Settings
from backstop.service import Collector
from collectors.errors import PayloadError
from collectors.okx_parsers import (
    family_of,
    inst_type_of,
    parse_fund_details,
    parse_funding_history,
    parse_funding_rate,
    parse_instruments,
    parse_insurance_fund,
    parse_mark_prices,
    parse_open_interest,
    parse_open_interest_history,
)
from simulator.market_state import DAY_MS
from simulator.venues.okx_payloads import fund_records, funding_history, mark_price, oi_history, oi_row
from storage.db import read_connection
from tests.conftest import example_raw, settings_for

DIR = "okx"
START_MS = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp() * 1000)  # fixed: deterministic history


def _utc(ms: int | str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


def _okx_settings(sim: Any, db: Path, symbols: list[str]) -> Settings:
    settings = settings_for(sim, db, ["okx"])
    settings.venues["okx"].symbols = symbols
    return settings


# -- parsers on the verbatim examples ----------------------------------------------------------------

def test_insurance_fund_example_regular_update() -> None:
    batch = parse_insurance_fund("okx", example_raw(DIR, "insurance_fund_rest_api_v5_public_insurance-fund.json"))
    assert len(batch.funds) == 1  # ``total`` (USD, platform-wide?) is deliberately not a fund row
    fund = batch.funds[0]
    assert (fund.pool_id, fund.asset, fund.unit_raw) == ("OPTION:ETH-USD", "ETH", "ETH")
    assert fund.balance == Decimal("1343.1308") and fund.balance_raw == "1343.1308"
    assert fund.ts == _utc(1704883083000) and fund.source == "history" and fund.usd_value is None
    assert batch.fund_flows == [] and batch.adl == []


def test_fund_details_typed_flows_and_adl() -> None:
    """Every row type of the insurance-fund ``details`` (the example's shape, other ``type`` values)."""
    base = {"adlType": "", "amt": "", "ccy": "USDT", "maxBal": "", "maxBalTs": ""}
    details = [
        {**base, "type": "adl", "adlType": "bal_adl_start", "balance": "900", "maxBal": "1200",
         "maxBalTs": "1763625600000", "ts": "1763713200000"},
        {**base, "type": "regular_update", "balance": "1000.5", "ts": "1763625600000"},
        {**base, "type": "platform_revenue", "amt": "0.5", "balance": "1000.5", "ts": "1763625600000"},
        {**base, "type": "bankruptcy_loss", "amt": "-20", "balance": "1000", "ts": "1763625600000"},
        {**base, "type": "liquidation_balance_deposit", "amt": "30", "balance": "1020", "ts": "1763625600000"},
    ]
    batch = parse_fund_details("okx", "SWAP:BTC-USDT", details)
    assert [(f.balance, f.ts) for f in batch.funds] == [(Decimal("1000.5"), _utc(1763625600000))]
    flows = {f.flow_type: f for f in batch.fund_flows}
    assert flows["liquidation_balance_deposit"].amount == Decimal("30")
    assert flows["bankruptcy_loss"].amount == Decimal("-20") and flows["bankruptcy_loss"].balance_after == Decimal("1000")
    assert flows["platform_revenue"].balance_after == Decimal("1000.5")
    assert flows["adl"].amount is None and flows["adl"].balance_after == Decimal("900")
    assert json.loads(flows["adl"].detail) == {"adlType": "bal_adl_start", "maxBal": "1200", "maxBalTs": "1763625600000"}
    (signal,) = batch.adl
    assert (signal.scope, signal.signal_type, signal.level, signal.value) == ("SWAP:BTC-USDT", "okx_adl", "bal_adl_start", 900.0)
    assert json.loads(signal.detail)["maxBal"] == "1200"


def test_open_interest_example_with_and_without_instrument() -> None:
    payload = example_raw(DIR, "open_interest_rest_api_v5_public_open-interest.json")
    instruments = parse_instruments({"code": "0", "msg": "", "data": [
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "instFamily": "BTC-USDT", "ctType": "linear",
         "ctVal": "0.01", "ctValCcy": "BTC", "settleCcy": "USDT"}]})
    (oi,) = parse_open_interest("okx", payload, instruments)
    assert (oi.symbol, oi.oi_raw, oi.oi_unit, oi.contract_size, oi.inverse) == ("BTC-USDT-SWAP", "5000", "contracts", 0.01, False)
    assert (oi.oi_base, oi.oi_usd, oi.base_asset, oi.settle_asset) == (555.55, 50000.0, "BTC", "USDT")
    assert oi.ts == _utc(1597026383085)
    (derived,) = parse_open_interest("okx", payload, {})  # unknown instrument: size from oiCcy / oi
    assert derived.contract_size == 555.55 / 5000 and not derived.inverse
    inverse_payload = {"code": "0", "msg": "", "data": [
        {"instType": "SWAP", "instId": "BTC-USD-SWAP", "oi": "3000", "oiCcy": "4.5", "oiUsd": "300000",
         "ts": "1597026383085"}]}
    (inverse,) = parse_open_interest("okx", inverse_payload, {})
    assert inverse.inverse and inverse.contract_size == 100.0 and inverse.settle_asset == "BTC"


def test_open_interest_history_example() -> None:
    payload = example_raw(DIR, "open_interest_history_rest_api_v5_rubik_stat_contracts_open-interest-history.json")
    rows = parse_open_interest_history("okx", "BTC-USDT-SWAP", payload, {})
    assert [(r.ts, r.oi_raw, r.oi_base, r.oi_usd) for r in rows] == [
        (_utc(1701417600000), "731377.57500501", 111.0, 8888888.0),
        (_utc(1701417500000), "731377.57500501", 111.0, 8888888.0),
    ]
    assert {(r.symbol, r.oi_unit, r.base_asset, r.settle_asset) for r in rows} == {("BTC-USDT-SWAP", "contracts", "BTC", "USDT")}
    with pytest.raises(PayloadError):
        parse_open_interest_history("okx", "BTC-USDT-SWAP", {"code": "0", "msg": "", "data": [["1701417600000"]]}, {})


def test_funding_current_example() -> None:
    (rate,) = parse_funding_rate("okx", example_raw(DIR, "funding_current_rest_api_v5_public_funding-rate.json"),
                                 {"BTC-USDT-SWAP": 84000.5})
    assert rate.symbol == "BTC-USDT-SWAP" and rate.funding_rate_raw == "0.0000182221218054"
    assert rate.funding_rate == 0.0000182221218054 and rate.ts == _utc(1743588686291)
    assert rate.next_funding_ts == _utc(1743609600000) and rate.interval_h == 8.0 and rate.mark_price == 84000.5


def test_funding_history_example_uses_realized_rate() -> None:
    rows = parse_funding_history("okx", example_raw(DIR, "funding_history_rest_api_v5_public_funding-rate-history.json"))
    assert [(r.symbol, r.ts, r.funding_rate_raw) for r in rows] == [
        ("BTC-USD-SWAP", _utc(1703059200000), "0.0000746572360545"),
        ("BTC-USD-SWAP", _utc(1703030400000), "0.0002279755647389"),
    ]


def test_mark_prices_prefer_usdt_swap() -> None:
    payload = {"code": "0", "msg": "", "data": [
        {"instType": "SWAP", "instId": "BTC-USD-SWAP", "markPx": "64990.1", "ts": "1597026383085"},
        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "65001.2", "ts": "1597026383085"},
        {"instType": "SWAP", "instId": "ETH-USD-SWAP", "markPx": "3201.5", "ts": "1597026383085"},
    ]}
    prices, marks = parse_mark_prices("okx", payload)
    assert {(p.asset, p.price_usd, p.source) for p in prices} == {("BTC", 65001.2, "mark"), ("ETH", 3201.5, "mark")}
    assert marks["BTC-USD-SWAP"] == 64990.1


def test_instrument_id_shapes() -> None:
    assert family_of("BTC-USDT-SWAP") == "BTC-USDT" and family_of("BTC-USD-261225") == "BTC-USD"
    assert family_of("ETH-USD") == "ETH-USD"
    assert [inst_type_of(s) for s in ("BTC-USDT-SWAP", "BTC-USD-261225", "BTC-USDT")] == ["SWAP", "FUTURES", None]


# -- the simulator's cursor semantics -----------------------------------------------------------------

def test_simulated_cursors_match_okx(sim_factory) -> None:
    sim = sim_factory(["okx"], start_ms=START_MS)
    pool = sim.market.venue("okx").pools["SWAP:BTC-USDT"]
    records = fund_records(sim.market, pool)

    def get(query: str) -> dict[str, Any]:
        if "instFamily" not in query:
            query += "&instFamily=BTC-USDT"
        url = f"{sim.base_url('okx')}/api/v5/public/insurance-fund?instType=SWAP&{query}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local simulator
            return json.loads(response.read())

    newest = get("limit=5")["data"][0]["details"]
    assert newest == records[:5]
    pivot = int(records[10]["ts"])
    assert get(f"after={pivot}&limit=100")["data"][0]["details"] == [r for r in records if int(r["ts"]) < pivot][:100]
    assert get(f"before={pivot}")["data"][0]["details"] == [r for r in records if int(r["ts"]) > pivot]
    assert {r["type"] for r in get("type=bankruptcy_loss")["data"][0]["details"]} == {"bankruptcy_loss"}
    with pytest.raises(urllib.error.HTTPError) as unknown:  # a family OKX does not list
        get("instFamily=XRP-USDT")
    assert unknown.value.code == 400 and json.loads(unknown.value.read())["code"] == "51000"


# -- end to end through ccxt ---------------------------------------------------------------------------

def test_collect_cycles_through_ccxt(sim_factory, tmp_path) -> None:
    sim = sim_factory(["okx"], start_ms=START_MS)
    market = sim.market
    venue = market.venue("okx")
    settings = _okx_settings(sim, tmp_path / "okx.duckdb", ["BTC-USDT", "ETH-USD"])
    db = settings.db
    pool_ids = ["FUTURES:BTC-USDT", "FUTURES:ETH-USD", "SWAP:BTC-USDT", "SWAP:ETH-USD"]

    async def cycles() -> tuple[int, int]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
            again = await collector.run_cycle()
            assert {o.status for o in again} == {"ok"}
            repeat = sum(o.rows_written for o in again if o.dataset == "funds")
            # the venue publishes the next day's settlement: the poll picks it up through ``before``
            pool = venue.pools["SWAP:BTC-USDT"]
            last_ts, last_balance = pool.history[-1]
            pool.history.append((last_ts + DAY_MS, last_balance + Decimal("1234.5")))
            market.frozen_ms = last_ts + DAY_MS + 60_000
            third = await collector.run_cycle()
            return repeat, sum(o.rows_written for o in third if o.dataset == "funds")

    repeat, new_day = asyncio.run(cycles())
    assert repeat == 0  # the second poll re-reads the newest ts only; nothing is stored twice
    newest_day = [r for r in fund_records(market, venue.pools["SWAP:BTC-USDT"]) if int(r["ts"]) == market.frozen_ms - 60_000]
    assert new_day == len(newest_day) >= 3  # snapshot + that day's flows

    for pool_id in pool_ids:
        pool = venue.pools[pool_id]
        served = [r for r in fund_records(market, pool) if int(r["ts"]) < int(newest_day[0]["ts"])][:100]
        served += newest_day if pool_id == "SWAP:BTC-USDT" else []
        balances = _rows(db, "SELECT ts, balance, asset, source FROM fund_balances WHERE venue='okx' AND pool_id=?", [pool_id])
        assert sorted(balances) == sorted(
            (_utc(r["ts"]), Decimal(r["balance"]), pool.asset, "history") for r in served if r["type"] == "regular_update")
        flows = _rows(db, "SELECT ts, flow_type, amount, balance_after FROM fund_flows WHERE venue='okx' AND pool_id=?",
                      [pool_id])
        assert sorted(flows) == sorted(
            (_utc(r["ts"]), r["type"], Decimal(r["amt"]) if r["amt"] else None, Decimal(r["balance"]))
            for r in served if r["type"] != "regular_update")
        members = _rows(db, "SELECT symbol FROM fund_pool_members WHERE venue='okx' AND pool_id=?", [pool_id])
        assert sorted(m[0] for m in members) == sorted(pool.symbols)
    assert {r[0] for r in _rows(db, "SELECT DISTINCT flow_type FROM fund_flows")} == {
        "liquidation_balance_deposit", "bankruptcy_loss", "platform_revenue", "adl"}

    adl = _rows(db, "SELECT scope, level, signal_type, detail FROM adl_signals WHERE venue='okx' ORDER BY ts")
    assert [(a[0], a[1], a[2]) for a in adl] == [("SWAP:ETH-USD", "rate_adl_start", "okx_adl"),
                                                ("SWAP:ETH-USD", "adl_end", "okx_adl")]
    episode = [f for f in venue.flows if f.pool_id == "SWAP:ETH-USD"]
    assert json.loads(adl[0][3])["maxBal"] == str(episode[0].extra["maxBal"])

    newest_usdt = _rows(db, "SELECT usd_value, usd_source FROM fund_balances WHERE pool_id='SWAP:BTC-USDT' "
                        "ORDER BY ts DESC LIMIT 1")[0]
    assert newest_usdt[1] == "stable"
    newest_eth = _rows(db, "SELECT balance, usd_value, usd_source FROM fund_balances WHERE pool_id='SWAP:ETH-USD' "
                       "ORDER BY ts DESC LIMIT 1")[0]
    assert newest_eth[2] == "price"  # valued with the collected ETH mark price

    contracts = venue.contracts
    oi = {r[0]: r[1:] for r in _rows(db, "SELECT symbol, oi_raw, oi_unit, oi_base, oi_usd, contract_size, inverse, "
                                         "base_asset, settle_asset FROM open_interest WHERE venue='okx'")}
    assert set(oi) == {c.symbol for c in contracts.values() if c.extra["family"] in ("BTC-USDT", "ETH-USD")}
    for symbol in oi:
        served_oi = oi_row(market, contracts[symbol])
        assert oi[symbol][:4] == (served_oi["oi"], "contracts", float(served_oi["oiCcy"]), float(served_oi["oiUsd"]))
    assert oi["ETH-USD-SWAP"][4:] == (10.0, True, "ETH", "ETH")
    assert oi["BTC-USDT-SWAP"][4:] == (0.01, False, "BTC", "USDT")

    funding = dict(_rows(db, "SELECT symbol, funding_rate_raw FROM funding_rates WHERE venue='okx'"))
    assert funding == {s: str(contracts[s].funding_rate) for s in ("BTC-USDT-SWAP", "ETH-USD-SWAP")}
    prices = {r[0]: r[1] for r in _rows(db, "SELECT asset, price_usd FROM prices WHERE venue='okx' AND source='mark'")}
    assert prices["BTC"] == float(mark_price(market, contracts["BTC-USDT-SWAP"]))


def test_backfill_walks_whole_history_through_after_cursor(sim_factory, tmp_path) -> None:
    sim = sim_factory(["okx"], start_ms=START_MS)
    market = sim.market
    pool = market.venue("okx").pools["SWAP:BTC-USD"]
    records = fund_records(market, pool)
    # the walk must survive a page end that cuts through rows sharing one ts (the daily 08:00 batch)
    assert any(records[i - 1]["ts"] == records[i]["ts"] for i in range(100, len(records), 100))
    settings = _okx_settings(sim, tmp_path / "okx.duckdb", ["BTC-USD-SWAP"])
    since = _utc(market.now_ms()) - timedelta(days=120)

    async def backfill() -> tuple[str, str]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            funds = await collector.backfill("okx", "funds", since)
            funding = await collector.backfill("okx", "funding", since)
            oi = await collector.backfill("okx", "open_interest", since)
            return funds.status, funding.status, oi.status

    assert asyncio.run(backfill()) == ("ok", "ok", "ok")
    db = settings.db
    stored = _rows(db, "SELECT ts, 'regular_update', balance FROM fund_balances WHERE pool_id='SWAP:BTC-USD' "
                       "UNION ALL SELECT ts, flow_type, balance_after FROM fund_flows WHERE pool_id='SWAP:BTC-USD'")
    assert len(stored) == len(records)
    assert sorted(stored) == sorted((_utc(r["ts"]), r["type"], Decimal(r["balance"])) for r in records)
    assert [r[0] for r in _rows(db, "SELECT level FROM adl_signals ORDER BY ts")] == ["bal_adl_start", "adl_end"]
    assert {r[0] for r in _rows(db, "SELECT DISTINCT pool_id FROM fund_balances")} == {"SWAP:BTC-USD"}

    history = funding_history(market, market.venue("okx").contracts["BTC-USD-SWAP"])
    funding = _rows(db, "SELECT ts, funding_rate_raw FROM funding_rates WHERE symbol='BTC-USD-SWAP'")
    assert sorted(funding) == sorted((_utc(r["fundingTime"]), r["realizedRate"]) for r in history)

    bars = oi_history(market, market.venue("okx").contracts["BTC-USD-SWAP"], "1Dutc")
    oi = _rows(db, "SELECT ts, oi_raw, oi_base, oi_usd, contract_size, inverse FROM open_interest WHERE symbol='BTC-USD-SWAP'")
    assert sorted(oi) == sorted((_utc(b[0]), b[1], float(b[2]), float(b[3]), 100.0, True) for b in bars)


def test_failing_fund_endpoint_is_an_error_run_while_oi_lands(sim_factory, tmp_path) -> None:
    sim = sim_factory(["okx"], start_ms=START_MS)
    sim.faults.add("okx:/api/v5/public/insurance-fund:500 x10")
    settings = _okx_settings(sim, tmp_path / "okx.duckdb", ["BTC-USDT-SWAP"])

    async def cycle() -> dict[str, Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return {o.dataset: o for o in await collector.run_cycle()}

    outcomes = asyncio.run(cycle())
    funds = outcomes["funds"]
    assert funds.status == "error" and funds.error_class == "ExchangeNotAvailable" and funds.attempts == 3
    assert outcomes["open_interest"].status == "ok"
    db = settings.db
    assert _rows(db, "SELECT count(*) FROM fund_balances")[0][0] == 0
    assert _rows(db, "SELECT count(*) FROM fund_flows")[0][0] == 0
    assert _rows(db, "SELECT symbol FROM open_interest") == [("BTC-USDT-SWAP",)]
    runs = _rows(db, "SELECT status, error_class, rows_written FROM collection_runs WHERE dataset='funds'")
    assert runs == [("error", "ExchangeNotAvailable", 0)]
