"""Kraken Futures: liquidity-pool and tickers parsers, then end to end through ccxt (poll, backfill, faults).

No verbatim Kraken example exists (fixtures SOURCES.md): the liquidity-pool shape is the reference's
(§3.12, data key UNCONFIRMED) and the tickers rows are ccxt krakenfutures source comments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from backstop.config import VenueConfig
from backstop.service import Collector
from collectors.errors import PayloadError
from collectors.exact_json import loads_exact
from collectors.krakenfutures import KrakenFuturesAdapter, parse_liquidity_pool, parse_tickers
from storage.queries import query_df
from tests.conftest import settings_for

POOL = {"result": {"timestamp": [1676556478, 1676560078], "more": True,
                   "data": {"usdValue": ["95402118.37", "95410000.5"]}}}
# the body as Kraken serves it (text): JSON numbers, e.g. fundingRate -0.000000756414717067, which a float
# decoder would re-write as -7.56414717067e-07 (issue 17); the adapter's client decodes with loads_exact
TICKERS_BODY = """{
    "result": "success",
    "serverTime": "2025-10-22T11:02:26.000Z",
    "tickers": [
        {"symbol": "PF_ENJUSD", "last": 0.0433, "lastTime": "2025-10-22T11:02:25.599Z", "tag": "perpetual",
         "pair": "ENJ:USD", "markPrice": 0.0434, "bid": 0.0433, "bidSize": 4609, "ask": 0.0435, "askSize": 4609,
         "vol24h": 1696, "volumeQuote": 73.5216, "openInterest": 72513.00000000000, "open24h": 0.0435,
         "high24h": 0.0435, "low24h": 0.0433, "lastSize": 1272, "fundingRate": -0.000000756414717067,
         "fundingRatePrediction": 0.000000195218676, "suspended": false, "indexPrice": 0.043391,
         "postOnly": false, "change24h": -0.46},
        {"tag": "semiannual", "pair": "ETH:USD", "symbol": "fi_ethusd_220624", "markPrice": "2925.72",
         "bid": "2923.8", "bidSize": "16804", "ask": "2928.65", "askSize": "1339", "vol24h": "860493",
         "openInterest": "3023363.00000000", "open24h": "3021.25", "indexPrice": "2893.71", "last": "2942.25",
         "lastTime": "2022-02-18T14:08:15.578Z", "lastSize": "151", "suspended": false},
        {"symbol": "in_xbtusd", "last": "40411", "lastTime": "2022-02-18T14:16:28.000Z"}
    ]
}"""
TICKERS = loads_exact(TICKERS_BODY)


def test_liquidity_pool_series() -> None:
    rows, more = parse_liquidity_pool("krakenfutures", POOL)
    assert more is True
    assert [r.balance for r in rows] == [Decimal("95402118.37"), Decimal("95410000.5")]
    assert rows[0].ts == datetime.fromtimestamp(1676556478, tz=UTC)
    assert {(r.pool_id, r.asset, r.kind, r.source) for r in rows} == {("liquidity_pool", "USD", "liquidity_pool", "history")}
    assert rows[1].usd_value == Decimal("95410000.5") and rows[1].balance_raw == "95410000.5"


def test_liquidity_pool_accepts_alternative_keys_and_milliseconds() -> None:
    payload = {"result": {"timestamp": [1676556478000, 1676560078000], "data": {"value": [1.5, None]}}}
    rows, more = parse_liquidity_pool("krakenfutures", payload)
    assert more is False and len(rows) == 1  # the null bucket is skipped
    assert rows[0].ts == datetime.fromtimestamp(1676556478, tz=UTC) and rows[0].balance == Decimal("1.5")


def test_liquidity_pool_unknown_key_names_what_was_found() -> None:
    payload = {"result": {"timestamp": [1676556478], "more": False, "data": {"poolSize": ["1"], "foo": ["2"]}}}
    with pytest.raises(PayloadError, match="keys found: foo, poolSize"):
        parse_liquidity_pool("krakenfutures", payload)
    with pytest.raises(PayloadError, match="1 timestamps but 2"):
        parse_liquidity_pool("krakenfutures", {"result": {"timestamp": [1], "data": {"usdValue": ["1", "2"]}}})


def test_tickers_oi_units_and_relative_funding() -> None:
    batch = parse_tickers("krakenfutures", TICKERS)
    assert [oi.symbol for oi in batch.open_interest] == ["PF_ENJUSD", "fi_ethusd_220624"]
    linear, inverse = batch.open_interest
    assert linear.base_asset == "ENJ" and not linear.inverse and linear.oi_base == 72513.0
    assert linear.oi_usd == pytest.approx(72513.0 * 0.0434) and linear.oi_raw == "72513.00000000000"
    assert inverse.inverse and inverse.oi_usd == 3023363.0 and inverse.settle_asset == "ETH"
    assert inverse.oi_base == pytest.approx(3023363.0 / 2925.72)
    (rate,) = batch.funding
    assert rate.funding_rate == pytest.approx(-0.000000756414717067 / 0.0434)  # ccxt: fundingRate / markPrice
    assert rate.funding_rate_raw == "-0.000000756414717067" and rate.interval_h == 1.0  # as served
    assert rate.ts == datetime(2025, 10, 22, 11, 2, 26, tzinfo=UTC)
    assert [(p.asset, p.price_usd) for p in batch.prices] == [("ENJ", 0.043391)]


def test_poll_backfill_and_values_served(sim_factory, tmp_path) -> None:
    sim = sim_factory(["krakenfutures"])
    settings = settings_for(sim, tmp_path / "k.duckdb", ["krakenfutures"])
    venue = sim.market.venue("krakenfutures")
    pool = venue.pools["liquidity_pool"]

    async def run() -> tuple[int, int]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
            polled = next(o.rows_written for o in outcomes if o.dataset == "funds")
            since = datetime.fromtimestamp(pool.history[0][0] / 1000, tz=UTC) - timedelta(hours=1)
            backfill = await collector.backfill("krakenfutures", "funds", since)
            assert backfill.status == "ok", backfill.error_message
            return polled, backfill.rows_written

    polled, backfilled = asyncio.run(run())
    assert polled in (48, 49)  # two days of hourly buckets (+ the current one)
    stored = query_df(settings.db, "SELECT epoch_ms(ts) AS ms, balance_raw FROM fund_balances "
                      "WHERE venue='krakenfutures' ORDER BY ts")
    assert len(stored) == len(pool.history) == polled + backfilled  # 90 days, over several `more` pages
    assert list(stored["ms"]) == [t for t, _ in pool.history]
    assert list(stored["balance_raw"]) == [str(v) for _, v in pool.history]

    oi = query_df(settings.db, "SELECT symbol, oi_raw, oi_usd, inverse FROM open_interest WHERE venue='krakenfutures'")
    pi = oi[oi["symbol"] == "PI_XBTUSD"].iloc[0]
    assert Decimal(pi["oi_raw"]) == venue.contracts["PI_XBTUSD"].oi_contracts and pi["oi_usd"] == float(pi["oi_raw"])
    rates = query_df(settings.db, "SELECT symbol, funding_rate FROM funding_rates WHERE venue='krakenfutures'")
    by_symbol = dict(zip(rates["symbol"], rates["funding_rate"], strict=True))
    assert set(by_symbol) == {"PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD", "PF_XRPUSD", "PI_XBTUSD", "PI_ETHUSD"}
    assert by_symbol["PF_SOLUSD"] == pytest.approx(float(venue.contracts["PF_SOLUSD"].funding_rate), rel=1e-9)
    # inverse: absolute coin per USD contract x mark = the relative hourly rate the simulator set
    assert by_symbol["PI_XBTUSD"] == pytest.approx(float(venue.contracts["PI_XBTUSD"].funding_rate), rel=1e-6)
    prices = query_df(settings.db, "SELECT asset, price_usd FROM prices WHERE venue='krakenfutures'")
    assert dict(zip(prices["asset"], prices["price_usd"], strict=True))["BTC"] == float(sim.market.price("BTC"))


def test_renamed_series_is_a_payload_error_and_5xx_is_retried(sim_factory, tmp_path) -> None:
    sim = sim_factory(["krakenfutures"])
    settings = settings_for(sim, tmp_path / "k.duckdb", ["krakenfutures"])
    sim.faults.add("krakenfutures:/api/charts/v1/analytics/liquidity-pool:rename:usdValue=poolUsd x1")

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            broken = await collector.run_one("krakenfutures", "funds")
            assert broken.status == "error" and broken.error_class == "PayloadError" and broken.attempts == 1
            assert "keys found: poolUsd" in (broken.error_message or "")
            sim.faults.add("krakenfutures:/derivatives/api/v3/tickers:502 x1")
            retried = await collector.run_one("krakenfutures", "open_interest")
            assert retried.status == "ok" and retried.attempts == 2

    asyncio.run(run())
    assert len(query_df(settings.db, "SELECT * FROM fund_balances WHERE venue='krakenfutures'")) == 0


def test_inverse_funding_is_relative_and_a_unit_change_is_refused() -> None:
    """PI_: fundingRate is coin per 1 USD contract per hour; relative = fundingRate x markPrice."""
    body = ('{"result": "success", "serverTime": "2025-10-22T11:02:26.000Z", "tickers": ['
            '{"symbol": "PI_XBTUSD", "tag": "perpetual", "pair": "XBT:USD", "markPrice": 108000.5,'
            ' "openInterest": 48211990, "fundingRate": 0.000000000076851851, "indexPrice": 107990.1}]}')
    (rate,) = parse_tickers("krakenfutures", loads_exact(body)).funding
    assert rate.symbol == "PI_XBTUSD" and rate.funding_rate_raw == "0.000000000076851851"
    assert rate.funding_rate == pytest.approx(0.000000000076851851 * 108000.5)
    relative_served = body.replace("0.000000000076851851", "0.0000083")  # a relative rate served as absolute
    with pytest.raises(PayloadError, match="unit changed"):
        parse_tickers("krakenfutures", loads_exact(relative_served))


def test_non_usd_pair_gets_no_usd_notional() -> None:
    body = ('{"result": "success", "serverTime": "2025-10-22T11:02:26.000Z", "tickers": ['
            '{"symbol": "PI_XBTEUR", "tag": "perpetual", "pair": "XBT:EUR", "markPrice": 93000,'
            ' "openInterest": 1200, "indexPrice": 92990}]}')
    (oi,) = parse_tickers("krakenfutures", loads_exact(body)).open_interest
    assert oi.oi_usd is None and "EUR" in (oi.oi_usd_note or "")
    assert oi.oi_base == pytest.approx(1200 / 93000)  # EUR contracts / EUR mark: base is still known


def test_adapter_client_keeps_the_served_text() -> None:
    """The adapter's own ccxt client decodes the body (ccxt ``parse_json``, as in every fetch) keeping each
    number's served text: issue 17's Kraken case stored -7.56414717067e-07."""
    async def decode() -> Any:
        adapter = KrakenFuturesAdapter(VenueConfig())
        await adapter.open()
        try:
            return adapter.exchange.parse_json(TICKERS_BODY)
        finally:
            await adapter.close()

    (rate,) = parse_tickers("krakenfutures", asyncio.run(decode())).funding
    assert rate.funding_rate_raw == "-0.000000756414717067"
    assert rate.funding_rate == pytest.approx(-0.000000756414717067 / 0.0434)
