"""BitMEX: parsers (minimum units, inverse / linear / quanto OI), the simulator's table query semantics,
then end to end over plain HTTP: polls, incremental polls, full backfills and faults."""

from __future__ import annotations

import asyncio
import copy
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from backstop.config import Settings
from backstop.service import Collector
from collectors.bitmex import interval_hours, parse_funding_history, parse_instruments, parse_insurance
from collectors.errors import PayloadError
from collectors.runner import RunOutcome
from simulator.market_state import DAY_MS
from simulator.server import SimulatorThread
from simulator.venues.bitmex import CONTRACT_ROWS
from storage.queries import query_df
from tests.conftest import example, settings_for

DIR = "bitmex"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


# -- parsers ------------------------------------------------------------------------------------
def test_insurance_minimum_units_are_scaled_exactly() -> None:
    batch = parse_insurance("bitmex", [
        {"currency": "XBt", "timestamp": "2024-05-01T12:00:00.000Z", "walletBalance": 3349100000000},
        {"currency": "USDt", "timestamp": "2024-05-01T12:00:00.000Z", "walletBalance": 2512345678901},
    ])
    xbt, usdt = batch.funds
    assert (xbt.pool_id, xbt.asset, xbt.unit_raw) == ("XBt", "BTC", "XBt")
    assert xbt.balance == Decimal("33491") and xbt.balance_raw == "3349100000000"
    assert xbt.ts.isoformat() == "2024-05-01T12:00:00+00:00" and xbt.source == "history"
    assert (usdt.asset, usdt.balance, usdt.balance_raw) == ("USDT", Decimal("2512345.678901"), "2512345678901")


def test_insurance_rejects_bad_shapes() -> None:
    with pytest.raises(PayloadError, match="expected a list"):
        parse_insurance("bitmex", {"error": {"message": "nope"}})
    with pytest.raises(PayloadError, match="walletBalance"):
        parse_insurance("bitmex", [{"currency": "XBt", "timestamp": "2024-05-01T12:00:00.000Z"}])
    with pytest.raises(PayloadError, match="integer"):
        parse_insurance("bitmex", [{"currency": "XBt", "timestamp": "2024-05-01T12:00:00Z", "walletBalance": 1.5}])


def test_instrument_example_linear_usdt() -> None:
    item = example(DIR, "instrument_oi_funding_rest_api_v1_instrument_item_ccxt_comment.json")
    batch = parse_instruments("bitmex", [item])
    (oi,) = batch.open_interest
    assert (oi.symbol, oi.base_asset, oi.settle_asset, oi.inverse) == ("LTCUSDT", "LTC", "USDT", False)
    assert oi.oi_raw == "38103000" and oi.oi_unit == "contracts" and oi.contract_size == 1e-4
    assert oi.oi_base == pytest.approx(3810.3)  # contracts / underlyingToPositionMultiplier
    assert oi.oi_usd == pytest.approx(547963.0533)  # openValue in USDt (1e-6 USDT)
    assert oi.oi_usd / oi.oi_base == pytest.approx(143.811)  # consistent with the mark price
    (funding,) = batch.funding
    assert funding.funding_rate == 0.0001 and funding.interval_h == 8 and funding.mark_price == 143.811
    assert funding.next_funding_ts is not None and funding.next_funding_ts.isoformat() == "2022-01-14T20:00:00+00:00"
    assert funding.ts.isoformat() == "2022-01-14T17:49:55+00:00"
    assert [(p.asset, p.price_usd, p.source) for p in batch.prices] == [("LTC", 143.811, "mark")]
    assert [(m.pool_id, m.symbol, m.asset) for m in batch.pool_members] == [("USDt", "LTCUSDT", "USDT")]


def _inverse_and_quanto() -> list[dict[str, Any]]:
    """The documented item re-shaped as XBTUSD (inverse, 1 USD contracts) and ETHUSD (quanto, XBt)."""
    item = example(DIR, "instrument_oi_funding_rest_api_v1_instrument_item_ccxt_comment.json")
    xbt = copy.deepcopy(item)
    xbt.update(symbol="XBTUSD", rootSymbol="XBT", underlying="XBT", quoteCurrency="USD", settlCurrency="XBt", isInverse=True,
               multiplier=-100000000, underlyingToPositionMultiplier=None, openInterest=400000000,
               openValue=1000000000000, markPrice=Decimal("40000"))
    eth = copy.deepcopy(item)
    eth.update(symbol="ETHUSD", rootSymbol="ETH", underlying="ETH", quoteCurrency="USD", settlCurrency="XBt", isQuanto=True,
               multiplier=100, underlyingToPositionMultiplier=None, openInterest=1000000,
               openValue=300000000000, markPrice=Decimal("3000"))
    return [eth, xbt]


def test_inverse_and_quanto_open_interest() -> None:
    batch = parse_instruments("bitmex", _inverse_and_quanto())
    oi = {r.symbol: r for r in batch.open_interest}
    xbt, eth = oi["XBTUSD"], oi["ETHUSD"]
    assert xbt.inverse and xbt.oi_usd == 400000000 and xbt.oi_base == 10000  # contracts / mark
    assert xbt.base_asset == "BTC" and xbt.settle_asset == "BTC" and xbt.contract_size == 1.0
    # ETHUSD: 3000 BTC of openValue (XBt) at the XBTUSD mark -> USD, then ETH at its own mark
    assert eth.oi_usd == pytest.approx(3000 * 40000) and eth.oi_base == pytest.approx(3000 * 40000 / 3000)
    assert eth.contract_size is None and not eth.inverse
    assert {p.asset: p.price_usd for p in batch.prices} == {"BTC": 40000, "ETH": 3000}


def _instrument(**fields: Any) -> dict[str, Any]:
    item = copy.deepcopy(example(DIR, "instrument_oi_funding_rest_api_v1_instrument_item_ccxt_comment.json"))
    item.update(fields)
    return item


def test_eur_quoted_inverse_is_converted_with_the_marks_of_the_same_response() -> None:
    """XBTEUR: 1 EUR per contract, marked in EUR. USD = contracts x XBTUSD mark / XBTEUR mark (issue 17:
    the contracts were stored as USD, ~15 % low)."""
    common = {"rootSymbol": "XBT", "underlying": "XBT", "settlCurrency": "XBt", "isInverse": True,
              "isQuanto": False, "multiplier": -100000000, "underlyingToPositionMultiplier": None}
    xbtusd = _instrument(symbol="XBTUSD", quoteCurrency="USD", openInterest=400000000,
                         openValue=1000000000000, markPrice=Decimal("40000"), **common)
    xbteur = _instrument(symbol="XBTEUR", quoteCurrency="EUR", openInterest=18250000,
                         openValue=49324324324, markPrice=Decimal("37000"), **common)
    oi = {r.symbol: r for r in parse_instruments("bitmex", [xbteur, xbtusd]).open_interest}
    eur = oi["XBTEUR"]
    assert eur.oi_usd == pytest.approx(18250000 * 40000 / 37000)  # not 18,250,000 "USD"
    assert eur.oi_base == pytest.approx(18250000 / 37000) and eur.base_asset == "BTC"
    assert eur.oi_raw == "18250000" and eur.contract_size == 1.0
    assert "EUR->USD" in (eur.oi_usd_note or "") and "XBTUSD" in (eur.oi_usd_note or "")
    assert oi["XBTUSD"].oi_usd == 400000000 and oi["XBTUSD"].oi_usd_note is None
    # no USD-quoted twin in the response: no USD value, and the row says why
    (alone,) = parse_instruments("bitmex", [xbteur]).open_interest
    assert alone.oi_usd is None and "EUR" in (alone.oi_usd_note or "")
    assert alone.oi_base == pytest.approx(18250000 / 37000)


def test_index_baskets_keep_their_own_underlying() -> None:
    """ALTMEXUSD and DEFIMEXUSD share a root: each keeps its own asset and price (issue 17)."""
    common = {"rootSymbol": "BASKET", "quoteCurrency": "USD", "settlCurrency": "XBt", "isQuanto": True,
              "isInverse": False, "multiplier": 100, "underlyingToPositionMultiplier": None}
    rows = [_instrument(symbol="XBTUSD", rootSymbol="XBT", underlying="XBT", quoteCurrency="USD",
                        settlCurrency="XBt", isInverse=True, multiplier=-100000000, openInterest=1,
                        openValue=2500, markPrice=Decimal("40000")),
            _instrument(symbol="ALTMEXUSD", underlying="ALTMEX", openInterest=20000, openValue=900000000,
                        markPrice=Decimal("450"), **common),
            _instrument(symbol="DEFIMEXUSD", underlying="DEFIMEX", openInterest=15000, openValue=330000000,
                        markPrice=Decimal("220"), **common)]
    batch = parse_instruments("bitmex", rows)
    assert {p.asset: p.price_usd for p in batch.prices} == {"BTC": 40000, "ALTMEX": 450, "DEFIMEX": 220}
    oi = {r.symbol: r for r in batch.open_interest}
    assert (oi["ALTMEXUSD"].base_asset, oi["DEFIMEXUSD"].base_asset) == ("ALTMEX", "DEFIMEX")
    assert oi["DEFIMEXUSD"].oi_usd == pytest.approx(3.3 * 40000)  # openValue XBt -> BTC x BTC mark


def test_non_perpetuals_are_skipped() -> None:
    item = example(DIR, "instrument_oi_funding_rest_api_v1_instrument_item_ccxt_comment.json")
    item["typ"] = "FFCCSX"  # a dated future
    assert parse_instruments("bitmex", [item]).open_interest == []


def test_funding_history_example() -> None:
    (row,) = parse_funding_history("bitmex", example(DIR, "funding_history_rest_api_v1_funding_ccxt_comment.json"))
    assert (row.symbol, row.funding_rate_raw) == ("ETHXBT", "0.0010890000000000001")
    assert row.interval_h == 24 and row.ts.isoformat() == "2016-05-07T12:00:00+00:00"
    assert interval_hours("2000-01-01T08:00:00.000Z") == 8


# -- simulator: BitMEX table query semantics ---------------------------------------------------------
def _get(sim: SimulatorThread, path: str) -> Any:
    with urllib.request.urlopen(sim.base_url("bitmex") + path) as resp:  # noqa: S310 - local simulator
        return json.loads(resp.read(), parse_float=Decimal)


def test_simulator_insurance_query_parameters(sim_factory) -> None:
    sim = sim_factory(["bitmex"])
    xbt = sim.market.venue("bitmex").pools["XBt"].history
    default = _get(sim, "/api/v1/insurance")
    assert len(default) == 100 and default[0]["timestamp"] <= default[-1]["timestamp"]  # count 100, oldest first
    newest = _get(sim, "/api/v1/insurance?symbol=XBt&reverse=true&count=2")
    assert [r["walletBalance"] for r in newest] == [int(xbt[-1][1] * 10**8), int(xbt[-2][1] * 10**8)]
    assert newest[0]["walletBalance"] == 3349100000000
    offset = _get(sim, "/api/v1/insurance?symbol=XBt&count=3&start=2")
    assert [r["walletBalance"] for r in offset] == [int(b * 10**8) for _, b in xbt[2:5]]
    start = datetime.fromtimestamp(xbt[10][0] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    end = datetime.fromtimestamp(xbt[12][0] / 1000, UTC).date().isoformat()  # a date is accepted too
    window = _get(sim, f"/api/v1/insurance?startTime={start}&endTime={end}&count=500")
    assert {r["currency"] for r in window} == {"XBt", "USDt"} and len(window) == 6
    filtered = _get(sim, "/api/v1/insurance?filter=" + urllib.request.quote('{"currency":"USDt"}'))
    assert {r["currency"] for r in filtered} == {"USDt"}
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(sim, "/api/v1/insurance?count=501")
    assert err.value.code == 400 and "error" in json.loads(err.value.read())


# -- end to end over HTTP -------------------------------------------------------------------------
def _cycles(settings: Settings, count: int = 1, between: Any = None) -> list[list[RunOutcome]]:
    async def run() -> list[list[RunOutcome]]:
        collector = Collector.for_venues(settings)
        results = []
        async with collector.running():
            for index in range(count):
                if index and between:
                    between()
                results.append(await collector.run_cycle())
        return results

    return asyncio.run(run())


def _backfill(settings: Settings, dataset: str, page_size: int | None = None) -> RunOutcome:
    async def run() -> RunOutcome:
        collector = Collector.for_venues(settings)
        if page_size:
            collector.adapters["bitmex"].page_size = page_size  # type: ignore[attr-defined]
        async with collector.running():
            return await collector.backfill("bitmex", dataset, LONG_AGO)

    return asyncio.run(run())


def test_poll_stores_served_values_and_polls_incrementally(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitmex"])
    settings = settings_for(sim, tmp_path / "m.duckdb", ["bitmex"])
    pools = sim.market.venue("bitmex").pools
    published_at_start = pools["XBt"].published()[0]

    def publish_next_day() -> None:
        for pool in pools.values():
            ts, balance = pool.history[-1]
            pool.history.append((ts + DAY_MS, balance + Decimal("1.5")))

    first, second, third = _cycles(settings, 3, between=publish_next_day)
    assert {o.status for o in first + second + third} == {"ok"}, [o.error_message for o in first]
    rows = {o.dataset: o.rows_written for o in first}
    assert rows["funds"] == 2 * 90  # first poll: the newest page (500 rows) holds all 90 days of both currencies
    assert {o.dataset: o.rows_written for o in second}["funds"] == 2  # one new point per currency
    assert {o.dataset: o.rows_written for o in third}["funds"] == 2

    newest = {r["currency"]: r for r in _get(sim, "/api/v1/insurance?reverse=true&count=2")}
    stored = query_df(settings.db, "SELECT pool_id, asset, CAST(balance AS VARCHAR) AS balance, balance_raw, "
                      "unit_raw, epoch_ms(ts) AS ms FROM fund_balances QUALIFY ts = max(ts) OVER (PARTITION BY pool_id)")
    for row in stored.itertuples():
        served = newest[row.pool_id]
        assert row.balance_raw == str(served["walletBalance"]) and row.unit_raw == served["currency"]
        scale = Decimal("1e-8") if row.pool_id == "XBt" else Decimal("1e-6")
        assert Decimal(row.balance) == served["walletBalance"] * scale
        assert row.ms == pools[row.pool_id].history[-1][0]
    assert set(stored["asset"]) == {"BTC", "USDT"}

    served = {r["symbol"]: r for r in _get(sim, "/api/v1/instrument/active")}
    oi = {r.symbol: r for r in query_df(settings.db, "SELECT * FROM open_interest").itertuples()}
    assert set(oi) == set(served)
    assert oi["XBTUSD"].oi_usd == served["XBTUSD"]["openInterest"]
    assert oi["XBTUSD"].oi_base == pytest.approx(served["XBTUSD"]["openInterest"] / float(served["XBTUSD"]["markPrice"]))
    assert oi["XBTUSDT"].oi_usd == pytest.approx(served["XBTUSDT"]["openValue"] / 1e6)
    assert oi["XBTUSDT"].oi_base == pytest.approx(served["XBTUSDT"]["openInterest"] / 1e6)
    funding = query_df(settings.db, "SELECT symbol, funding_rate_raw, interval_h FROM funding_rates")
    assert set(funding["interval_h"]) == {8.0} and len(funding) == len(served)
    prices = query_df(settings.db, "SELECT asset, price_usd FROM prices")
    assert dict(zip(prices["asset"], prices["price_usd"], strict=True)) == {
        "BTC": float(served["XBTUSD"]["markPrice"]), "ETH": float(served["ETHUSD"]["markPrice"]),
        "SOL": float(served["SOLUSDT"]["markPrice"]), "ALTMEX": float(served["ALTMEXUSD"]["markPrice"]),
        "DEFIMEX": float(served["DEFIMEXUSD"]["markPrice"])}
    eur = oi["XBTEUR"]  # 1 EUR contracts converted with the two BTC marks of the same response
    rate = float(served["XBTUSD"]["markPrice"]) / float(served["XBTEUR"]["markPrice"])
    assert eur.oi_usd == pytest.approx(served["XBTEUR"]["openInterest"] * rate) and 1.0 < rate < 1.2
    assert eur.oi_usd_note.startswith("EUR->USD")
    members = query_df(settings.db, "SELECT pool_id, symbol FROM fund_pool_members")
    assert set(members[members["pool_id"] == "XBt"]["symbol"]) == {"XBTUSD", "XBTEUR", "ETHUSD", "ALTMEXUSD", "DEFIMEXUSD"}
    btc = query_df(settings.db, "SELECT usd_source, CAST(usd_value AS VARCHAR) AS usd FROM fund_balances "
                   "WHERE asset = 'BTC' AND epoch_ms(ts) = ?", [published_at_start])
    assert btc["usd_source"][0] == "price"  # valued with the collected XBTUSD mark (within 36 h)
    assert Decimal(btc["usd"][0]) == Decimal(33491) * served["XBTUSD"]["markPrice"]


def test_backfill_walks_the_whole_history_in_pages(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitmex"], history_days=400)
    settings = settings_for(sim, tmp_path / "m.duckdb", ["bitmex"])
    outcome = _backfill(settings, "funds")
    history = sum(len(p.history) for p in sim.market.venue("bitmex").pools.values())
    assert history == 800 and outcome.status == "ok", outcome.error_message
    assert outcome.rows_written == history  # two pages of 500
    stored = query_df(settings.db, "SELECT count(*) AS n, min(ts) AS first FROM fund_balances")
    assert stored["n"][0] == history
    oldest = min(p.history[0][0] for p in sim.market.venue("bitmex").pools.values())
    assert int(stored["first"][0].timestamp() * 1000) == oldest
    assert _backfill(settings, "funds").rows_written == 0  # re-running adds nothing


def test_backfill_funding_history(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitmex"])
    settings = settings_for(sim, tmp_path / "m.duckdb", ["bitmex"])
    outcome = _backfill(settings, "funding", page_size=250)
    served = sum(len(_get(sim, f"/api/v1/funding?symbol={s}&count=500")) for s in sim.market.venue("bitmex").contracts)
    assert outcome.status == "ok" and outcome.rows_written == served == len(CONTRACT_ROWS) * 90 * 3
    newest = _get(sim, "/api/v1/funding?symbol=XBTUSD&reverse=true&count=1")[0]
    stored = query_df(settings.db, "SELECT funding_rate_raw, interval_h FROM funding_rates "
                      "WHERE symbol = 'XBTUSD' ORDER BY ts DESC LIMIT 1")
    assert Decimal(stored["funding_rate_raw"][0]) == newest["fundingRate"] and stored["interval_h"][0] == 8


def test_rate_limit_is_retried(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitmex"])
    sim.faults.add("bitmex:/api/v1/insurance:429:1 x1")
    settings = settings_for(sim, tmp_path / "m.duckdb", ["bitmex"])
    (outcomes,) = _cycles(settings)
    funds = next(o for o in outcomes if o.dataset == "funds")
    assert funds.status == "ok" and funds.attempts == 2 and funds.rows_written > 0


def test_malformed_insurance_is_recorded_and_other_datasets_land(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitmex"])
    sim.faults.add("bitmex:/api/v1/insurance:malformed x3")
    settings = settings_for(sim, tmp_path / "m.duckdb", ["bitmex"])
    (outcomes,) = _cycles(settings)
    by_dataset = {o.dataset: o for o in outcomes}
    assert (by_dataset["funds"].status, by_dataset["funds"].error_class) == ("error", "PayloadError")
    assert by_dataset["open_interest"].status == "ok" and by_dataset["open_interest"].rows_written > 0
    runs = query_df(settings.db, "SELECT error_class FROM collection_runs WHERE dataset = 'funds'")
    assert list(runs["error_class"]) == ["PayloadError"]
    assert query_df(settings.db, "SELECT count(*) AS n FROM fund_balances")["n"][0] == 0


def test_incremental_poll_starts_from_newest_stored_timestamp(sim_factory, tmp_path) -> None:
    """The poll asks for ``startTime`` = newest stored - overlap, not for the whole table."""
    sim = sim_factory(["bitmex"])
    settings = settings_for(sim, tmp_path / "m.duckdb", ["bitmex"])
    _cycles(settings)
    seen: list[str] = []

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            adapter = collector.adapters["bitmex"]
            real_get = adapter.client.get  # type: ignore[attr-defined]

            async def spy(path: str, params: dict[str, Any] | None = None) -> Any:
                seen.append(str((params or {}).get("startTime")))
                return await real_get(path, params)

            adapter.client.get = spy  # type: ignore[attr-defined]
            since = await collector.since("bitmex", "funds")
            assert since is not None
            batch = await adapter.fetch("funds", since)
            assert len(batch.funds) == 2 * 4  # 3 days of overlap + the newest day, both currencies
            assert seen == [(since - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")]

    asyncio.run(run())
