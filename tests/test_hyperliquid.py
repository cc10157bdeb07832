"""Hyperliquid: parsers on the documented examples, then end to end through ccxt ``publicPostInfo``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backstop.service import Collector
from collectors.errors import PayloadError
from collectors.hyperliquid import (
    HLP_LIQUIDATOR,
    HLP_VAULT,
    VAULTS,
    parse_clearinghouse_state,
    parse_meta_and_asset_ctxs,
    parse_vault_history,
)
from collectors.parsing import fallback_ts
from storage.queries import query_df
from tests.conftest import example_raw, settings_for

DIR = "hyperliquid"
FETCHED = datetime(2024, 2, 22, 17, 20, tzinfo=UTC)


def test_clearinghouse_state_account_value() -> None:
    fund = parse_clearinghouse_state("hyperliquid", "HLP", example_raw(DIR, "clearinghouse_state_info_clearinghouseState.json"))
    assert fund.balance == Decimal("13109.482328") and fund.balance_raw == "13109.482328"
    assert fund.asset == "USDC" and fund.kind == "hlp_vault" and fund.pool_id == "HLP"
    assert fund.ts == datetime.fromtimestamp(1708622398.623, tz=UTC)


def test_vault_details_history_window() -> None:
    payload = example_raw(DIR, "hlp_vault_details_info_vaultDetails.json")
    assert payload["vaultAddress"] == HLP_VAULT
    assert HLP_LIQUIDATOR in payload["relationship"]["data"]["childAddresses"]
    windows = parse_vault_history("hyperliquid", "HLP", payload)
    assert list(windows) == ["day"]
    (row,) = windows["day"]
    assert row.balance == Decimal("329265410.90790099") and row.source == "history"
    assert row.ts == datetime.fromtimestamp(1734397526.634, tz=UTC)
    later = parse_vault_history("hyperliquid", "HLP", payload, since=row.ts + timedelta(seconds=1))
    assert later["day"] == []


def test_meta_and_asset_ctxs_zip_universe_with_contexts() -> None:
    payload = example_raw(DIR, "open_interest_funding_info_metaAndAssetCtxs.json")
    batch = parse_meta_and_asset_ctxs("hyperliquid", payload, FETCHED)
    assert [oi.symbol for oi in batch.open_interest] == ["BTC", "ETH", "HPOS"]
    btc = batch.open_interest[0]
    assert btc.oi_raw == "688.11" and btc.oi_unit == "base" and btc.oi_base == 688.11
    assert btc.oi_usd == pytest.approx(688.11 * 14.3161)
    funding = batch.funding[1]
    assert funding.symbol == "ETH" and funding.funding_rate == 0.0000125 and funding.interval_h == 1.0
    assert funding.mark_price == 6.0436 and funding.next_funding_ts == datetime(2024, 2, 22, 18, tzinfo=UTC)
    assert [(p.asset, p.price_usd, p.source) for p in batch.prices][2] == ("HPOS", 8.4585, "index")
    assert [oi.symbol for oi in parse_meta_and_asset_ctxs("hyperliquid", payload, FETCHED, ["ETH"]).open_interest] == ["ETH"]


def test_meta_and_asset_ctxs_length_mismatch_is_a_payload_error() -> None:
    payload = example_raw(DIR, "open_interest_funding_info_metaAndAssetCtxs.json")
    payload[1].pop()
    with pytest.raises(PayloadError, match="3 assets but 2 contexts"):
        parse_meta_and_asset_ctxs("hyperliquid", payload, FETCHED)


def test_collect_and_backfill_through_ccxt(sim_factory, tmp_path) -> None:
    sim = sim_factory(["hyperliquid"])
    settings = settings_for(sim, tmp_path / "h.duckdb", ["hyperliquid"])
    venue = sim.market.venue("hyperliquid")

    async def run() -> int:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
            assert {o.dataset for o in outcomes} == {"funds", "open_interest", "funding", "prices"}
            backfill = await collector.backfill("hyperliquid", "funds", datetime.now(UTC) - timedelta(days=400))
            assert backfill.status == "ok", backfill.error_message
            return backfill.rows_written

    backfilled = asyncio.run(run())
    funds = query_df(settings.db, "SELECT pool_id, CAST(balance AS VARCHAR) AS balance, kind FROM fund_balances "
                     "WHERE venue='hyperliquid' AND source='snapshot' ORDER BY pool_id")
    assert list(funds["pool_id"]) == ["HLP", "HLP Liquidator"]
    for pool_id, balance in zip(funds["pool_id"], funds["balance"], strict=True):
        assert Decimal(balance) == venue.pools[pool_id].published()[1]
    assert set(funds["kind"]) == {"hlp_vault"}

    # history: every distinct point of the day/week/month/allTime windows of both vaults, none of perp*
    history = query_df(settings.db, "SELECT pool_id, epoch_ms(ts) AS ms, CAST(balance AS VARCHAR) AS balance "
                       "FROM fund_balances "
                       "WHERE venue='hyperliquid' AND source='history'")
    assert len(history) == backfilled
    hlp = venue.pools["HLP"]
    served = dict(hlp.history)
    hlp_rows = history[history["pool_id"] == "HLP"]
    assert len(hlp_rows) > 100
    assert all(served[ms] == Decimal(bal) for ms, bal in zip(hlp_rows["ms"], hlp_rows["balance"], strict=True))
    assert hlp_rows["ms"].max() == hlp.published()[0]

    oi = query_df(settings.db, "SELECT symbol, oi_raw, oi_base, oi_usd FROM open_interest WHERE venue='hyperliquid'")
    btc = oi[oi["symbol"] == "BTC"].iloc[0]
    assert btc["oi_raw"] == str(venue.contracts["BTC"].oi_contracts)
    assert btc["oi_usd"] == pytest.approx(float(venue.contracts["BTC"].oi_contracts * sim.market.price("BTC")), rel=1e-3)
    rates = query_df(settings.db, "SELECT symbol, funding_rate, interval_h FROM funding_rates WHERE venue='hyperliquid'")
    assert set(rates["funding_rate"]) == {float(venue.contracts["ETH"].funding_rate)}
    prices = query_df(settings.db, "SELECT DISTINCT asset, price_usd FROM prices WHERE venue='hyperliquid'")
    assert dict(zip(prices["asset"], prices["price_usd"], strict=True))["ETH"] == float(sim.market.price("ETH"))


def test_live_value_follows_market_state(sim_factory, tmp_path) -> None:
    """The simulator reads the pool at request time: a new published point is what the next poll stores."""
    sim = sim_factory(["hyperliquid"])
    settings = settings_for(sim, tmp_path / "h.duckdb", ["hyperliquid"])
    pool = sim.market.venue("hyperliquid").pools["HLP"]

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            await collector.run_one("hyperliquid", "funds")
            pool.history.append((pool.published()[0] + 900_000, Decimal("350000000.5")))
            sim.market.frozen_ms = sim.market.now_ms() + 60_000
            await collector.run_one("hyperliquid", "funds")

    asyncio.run(run())
    stored = query_df(settings.db, "SELECT balance_raw FROM fund_balances WHERE venue='hyperliquid' "
                      "AND pool_id='HLP' ORDER BY ts")
    assert list(stored["balance_raw"])[-1] == "350000000.5" and len(stored) == 2


def test_renamed_field_fails_as_payload_error_and_429_is_retried(sim_factory, tmp_path) -> None:
    sim = sim_factory(["hyperliquid"])
    settings = settings_for(sim, tmp_path / "h.duckdb", ["hyperliquid"])
    sim.faults.add("hyperliquid:/info:rename:accountValue=acctValue x1")

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            broken = await collector.run_one("hyperliquid", "funds")
            assert broken.status == "error" and broken.error_class == "PayloadError"
            assert "accountValue" in (broken.error_message or "") and broken.attempts == 1
            sim.faults.add("hyperliquid:/info:429:0 x1")
            retried = await collector.run_one("hyperliquid", "open_interest")
            assert retried.status == "ok" and retried.attempts == 2

    asyncio.run(run())
    assert len(query_df(settings.db, "SELECT * FROM fund_balances WHERE venue='hyperliquid'")) == 0
    assert sorted(VAULTS) == ["HLP", "HLP Liquidator"]


def test_missing_time_falls_back_and_says_so_but_a_missing_value_is_an_error() -> None:
    """Issue 17: a clearinghouseState without ``time`` used to fail the whole job."""
    payload = example_raw(DIR, "clearinghouse_state_info_clearinghouseState.json")
    del payload["time"]
    fund = parse_clearinghouse_state("hyperliquid", "HLP", payload, (FETCHED, "http_date"))
    assert (fund.ts, fund.ts_source) == (FETCHED, "http_date") and fund.balance == Decimal("13109.482328")
    with pytest.raises(PayloadError, match="missing field 'time'"):
        parse_clearinghouse_state("hyperliquid", "HLP", payload)  # no fallback offered: still an error
    del payload["marginSummary"]["accountValue"]
    with pytest.raises(PayloadError, match="accountValue"):
        parse_clearinghouse_state("hyperliquid", "HLP", payload, (FETCHED, "fetch"))
    served = example_raw(DIR, "clearinghouse_state_info_clearinghouseState.json")
    assert parse_clearinghouse_state("hyperliquid", "HLP", served, (FETCHED, "fetch")).ts_source == "venue"


def test_fallback_timestamp_prefers_a_sane_date_header() -> None:
    assert fallback_ts({"Date": "Thu, 22 Feb 2024 17:19:58 GMT"}, FETCHED) == (
        datetime(2024, 2, 22, 17, 19, 58, tzinfo=UTC), "http_date")
    assert fallback_ts({"date": "Thu, 22 Feb 2024 09:00:00 GMT"}, FETCHED) == (FETCHED, "fetch")  # 8 h off
    assert fallback_ts({"Date": "garbage"}, FETCHED) == (FETCHED, "fetch")
    assert fallback_ts(None, FETCHED) == (FETCHED, "fetch")


def test_ten_decimal_account_value_is_stored_exactly(sim_factory, tmp_path) -> None:
    """Hyperliquid publishes up to 10 decimals; fund rows keep them (DECIMAL(38,18), migration 008), and a
    response without ``time`` is stored with the Date header's time, marked ``ts_source = http_date``."""
    sim = sim_factory(["hyperliquid"])
    settings = settings_for(sim, tmp_path / "h.duckdb", ["hyperliquid"])
    pool = sim.market.venue("hyperliquid").pools["HLP"]
    pool.history.append((pool.published()[0] + 1, Decimal("329265410.9079009912")))
    sim.faults.add("hyperliquid:/info:drop:time x2")

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcome = await collector.run_one("hyperliquid", "funds")
            assert outcome.status == "ok", outcome.error_message

    asyncio.run(run())
    stored = query_df(settings.db, "SELECT pool_id, balance::VARCHAR AS balance, usd_value::VARCHAR AS usd, "
                      "balance_raw, ts_source, ts FROM fund_balances WHERE venue='hyperliquid'")
    hlp = stored[stored["pool_id"] == "HLP"].iloc[0]
    assert hlp["balance_raw"] == "329265410.9079009912"
    assert hlp["balance"] == hlp["usd"] == "329265410.907900991200000000"
    assert set(stored["ts_source"]) == {"http_date"}
    assert abs(hlp["ts"].timestamp() - datetime.now(UTC).timestamp()) < 120
