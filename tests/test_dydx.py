"""dYdX v4: module-account address derivation, bank/indexer parsers, then end to end over plain HTTP.

No verbatim dYdX example exists for these endpoints (see fixtures SOURCES.md): the parser tests use the
standard Cosmos bank shape and the indexer shape quoted in ccxt's dydx.fetch_markets comment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backstop.service import Collector
from collectors.dydx import (
    USDC_DENOM,
    DydxAdapter,
    bech32_encode,
    fund_balance,
    fund_plan,
    module_address,
    parse_bank_balances,
    parse_historical_funding,
    parse_perpetual_markets,
    to_5bit,
)
from collectors.errors import PayloadError
from simulator.venues.dydx import micro_amount
from storage.queries import query_df
from tests.conftest import settings_for

FETCHED = datetime(2025, 7, 25, 5, 11, 9, tzinfo=UTC)
MARKETS = {  # ccxt dydx.fetch_markets comment, plus one isolated market
    "markets": {
        "BTC-USD": {
            "clobPairId": "0", "ticker": "BTC-USD", "status": "ACTIVE", "oraclePrice": "118976.5376",
            "priceChange24H": "659.9736", "volume24H": "1292729.3605", "trades24H": 9387, "nextFundingRate": "0",
            "initialMarginFraction": "0.02", "maintenanceMarginFraction": "0.012", "openInterest": "52.0691",
            "atomicResolution": -10, "quantumConversionExponent": -9, "tickSize": "1", "stepSize": "0.0001",
            "stepBaseQuantums": 1000000, "subticksPerTick": 100000, "marketType": "CROSS",
            "openInterestLowerCap": "0", "openInterestUpperCap": "0", "baseOpenInterest": "50.3776",
            "defaultFundingRate1H": "0",
        },
        "TRUMP-USD": {"clobPairId": "37", "ticker": "TRUMP-USD", "oraclePrice": "9.12", "nextFundingRate": "0.0000125",
                      "openInterest": "1200", "marketType": "ISOLATED"},
    }
}


def test_module_addresses_match_the_published_pairs() -> None:
    assert module_address("insurance_fund") == "dydx1c7ptc87hkd54e3r7zjy92q29xkq7t79w64slrq"
    assert module_address("insurance_fund:37") == "dydx10mlrxmaquwjwsj59ywp8xttc8rfxn9jfvzswtn"


def test_bech32_encoder_on_the_bip173_vector() -> None:
    """BIP-173 valid address: witness version 0 word + the 20-byte program."""
    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    assert bech32_encode("bc", [0] + to_5bit(program)) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def test_bank_balances_pick_usdc_and_scale_micro_units() -> None:
    payload = {"balances": [{"denom": "adydx", "amount": "5"}, {"denom": USDC_DENOM, "amount": "2351447118203"}],
               "pagination": {"next_key": None, "total": "2"}}
    amount, next_key = parse_bank_balances(payload)
    assert (amount, next_key) == ("2351447118203", None)
    fund = fund_balance("dydx", "insurance_fund", amount, FETCHED)
    assert fund.balance == Decimal("2351447.118203") and fund.balance_raw == "2351447118203"
    assert fund.asset == "USDC" and fund.kind == "module_account" and fund.unit_raw == USDC_DENOM
    assert parse_bank_balances({"balance": {"denom": USDC_DENOM, "amount": "7"}}) == ("7", None)
    assert parse_bank_balances({"balances": [], "pagination": {"next_key": "YWJj"}}) == (None, "YWJj")
    assert fund_balance("dydx", "insurance_fund:52", None, FETCHED).balance == 0  # Cosmos omits zeros


def test_bank_balance_shape_errors() -> None:
    with pytest.raises(PayloadError, match="missing field 'balances'"):
        parse_bank_balances({"coins": []})
    with pytest.raises(PayloadError, match="integer micro-USDC"):
        fund_balance("dydx", "insurance_fund", "1.5", FETCHED)


def test_perpetual_markets_and_fund_plan() -> None:
    batch = parse_perpetual_markets("dydx", MARKETS, FETCHED)
    btc = batch.open_interest[0]
    assert btc.symbol == "BTC-USD" and btc.base_asset == "BTC" and btc.oi_raw == "52.0691" and btc.oi_unit == "base"
    assert btc.oi_usd == pytest.approx(52.0691 * 118976.5376)
    assert [(f.symbol, f.funding_rate, f.interval_h) for f in batch.funding] == [
        ("BTC-USD", 0.0, 1.0), ("TRUMP-USD", 0.0000125, 1.0)]
    assert [(p.asset, p.price_usd) for p in batch.prices] == [("BTC", 118976.5376), ("TRUMP", 9.12)]
    assert fund_plan(MARKETS) == [("insurance_fund", ["BTC-USD"]), ("insurance_fund:37", ["TRUMP-USD"])]
    assert fund_plan(MARKETS, max_isolated=0) == [("insurance_fund", ["BTC-USD"])]


def test_collect_through_http(sim_factory, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(DydxAdapter, "bank_page_limit", 1)  # walk the Cosmos pagination page by page
    sim = sim_factory(["dydx"])
    settings = settings_for(sim, tmp_path / "d.duckdb", ["dydx"])
    venue = sim.market.venue("dydx")

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
            assert {o.dataset for o in outcomes} == {"funds", "open_interest", "funding", "prices"}

    asyncio.run(run())
    funds = query_df(settings.db, "SELECT pool_id, balance_raw, CAST(balance AS VARCHAR) AS balance, kind "
                     "FROM fund_balances WHERE venue='dydx' ORDER BY pool_id")
    stored = dict(zip(funds["pool_id"], funds["balance"], strict=True))
    assert set(stored) == {"insurance_fund", "insurance_fund:37", "insurance_fund:52"}
    for name in ("insurance_fund", "insurance_fund:37"):
        served = micro_amount(venue.pools[name].published()[1])
        assert Decimal(stored[name]) == Decimal(served) / 1_000_000
    assert Decimal(stored["insurance_fund:52"]) == 0  # isolated market without a funded account
    members = query_df(settings.db, "SELECT pool_id, symbol FROM fund_pool_members WHERE venue='dydx'")
    assert set(members[members["pool_id"] == "insurance_fund"]["symbol"]) == {"BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD"}
    assert list(members[members["pool_id"] == "insurance_fund:52"]["symbol"]) == ["XRP-USD"]

    oi = query_df(settings.db, "SELECT symbol, oi_raw, oi_usd FROM open_interest WHERE venue='dydx'")
    sol = oi[oi["symbol"] == "SOL-USD"].iloc[0]
    assert sol["oi_raw"] == str(venue.contracts["SOL-USD"].oi_contracts)
    assert sol["oi_usd"] == pytest.approx(float(venue.contracts["SOL-USD"].oi_contracts * sim.market.price("SOL")))
    rates = query_df(settings.db, "SELECT symbol, funding_rate FROM funding_rates WHERE venue='dydx'")
    assert dict(zip(rates["symbol"], rates["funding_rate"], strict=True))["SOL-USD"] == -0.0000032


def test_balance_follows_market_state_and_5xx_is_retried(sim_factory, tmp_path) -> None:
    sim = sim_factory(["dydx"])
    settings = settings_for(sim, tmp_path / "d.duckdb", ["dydx"])
    pool = sim.market.venue("dydx").pools["insurance_fund"]
    pool.history.append((pool.published()[0] + 3_600_000, Decimal("2400000.000001")))
    sim.faults.add("dydx:/cosmos/bank/v1beta1/balances/*:503 x1")

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcome = await collector.run_one("dydx", "funds")
            assert outcome.status == "ok" and outcome.attempts == 2

    asyncio.run(run())
    raw = query_df(settings.db, "SELECT balance_raw FROM fund_balances WHERE pool_id='insurance_fund'")
    assert list(raw["balance_raw"]) == ["2400000000001"]


def test_bad_indexer_payload_is_recorded_not_retried(sim_factory, tmp_path) -> None:
    sim = sim_factory(["dydx"])
    settings = settings_for(sim, tmp_path / "d.duckdb", ["dydx"])
    sim.faults.add("dydx:/v4/perpetualMarkets:rename:openInterest=oi")

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcome = await collector.run_one("dydx", "open_interest")
            assert outcome.status == "error" and outcome.error_class == "PayloadError" and outcome.attempts == 1
            assert "openInterest" in (outcome.error_message or "")

    asyncio.run(run())
    runs = query_df(settings.db, "SELECT status, error_class FROM collection_runs WHERE venue='dydx'")
    assert list(runs["status"]) == ["error"] and list(runs["error_class"]) == ["PayloadError"]


# the indexer's historicalFunding shape (dYdX indexer API docs "Get Historical Funding"; no verbatim example in
# the reference material: field names as the indexer's response type declares them)
HISTORICAL_FUNDING = {"historicalFunding": [
    {"ticker": "BTC-USD", "rate": "0.0000081", "price": "65012.5", "effectiveAt": "2026-08-13T11:00:00.000Z",
     "effectiveAtHeight": "51234567"},
    {"ticker": "BTC-USD", "rate": "-0.000002125", "price": "64990.25", "effectiveAt": "2026-08-13T10:00:00.000Z",
     "effectiveAtHeight": "51230967"}]}


def test_historical_funding_rows_and_cursor() -> None:
    rates, oldest = parse_historical_funding("dydx", HISTORICAL_FUNDING)
    assert [(r.symbol, r.funding_rate_raw, r.interval_h, r.mark_price) for r in rates] == [
        ("BTC-USD", "0.0000081", 1.0, 65012.5), ("BTC-USD", "-0.000002125", 1.0, 64990.25)]
    assert oldest == datetime(2026, 8, 13, 10, tzinfo=UTC) and rates[0].ts_source == "venue"
    newer, _ = parse_historical_funding("dydx", HISTORICAL_FUNDING, since=datetime(2026, 8, 13, 10, 30, tzinfo=UTC))
    assert [r.funding_rate_raw for r in newer] == ["0.0000081"]
    with pytest.raises(PayloadError, match="effectiveAt"):
        parse_historical_funding("dydx", {"historicalFunding": [{"ticker": "BTC-USD", "rate": "0"}]})


def test_backfill_funding_walks_every_page(sim_factory, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(DydxAdapter, "funding_page_size", 100)
    sim = sim_factory(["dydx"])
    settings = settings_for(sim, tmp_path / "f.duckdb", ["dydx"])
    now = datetime.fromtimestamp(sim.market.now_ms() / 1000, tz=UTC)
    since = now - timedelta(days=10)

    async def run() -> int:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcome = await collector.backfill("dydx", "funding", since)
            assert outcome.status == "ok", outcome.error_message
            return outcome.rows_written

    written = asyncio.run(run())
    stored = query_df(settings.db, "SELECT symbol, count(*) AS n, min(ts) AS first, max(ts) AS last "
                      "FROM funding_rates WHERE venue='dydx' GROUP BY symbol")
    markets = sim.market.venue("dydx").contracts
    assert set(stored["symbol"]) == set(markets) and written == int(stored["n"].sum())
    for row in stored.itertuples():  # hourly settlements from since to now, across three 100-row pages
        assert row.n == 240 and row.first.to_pydatetime() >= since and row.last.to_pydatetime() <= now
