"""Deribit: bankruptcy-settlement and book-summary parsers, then end to end through ccxt (poll, backfill
along the continuation cursor, faults).

No verbatim Deribit example is in the fixtures (SOURCES.md): the payloads below are ccxt deribit source
comments (fetch_liquidations, fetch_open_interest), whose field names match the Deribit docs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backstop.service import Collector
from collectors.deribit import DeribitAdapter, parse_book_summary, parse_settlements
from collectors.errors import PayloadError
from simulator.venues.deribit import current_funding
from storage.queries import query_df
from tests.conftest import settings_for

SETTLEMENTS = {
    "jsonrpc": "2.0",
    "result": {
        "settlements": [
            {"type": "bankruptcy", "timestamp": 1696579200041, "funded": 10000.0, "session_bankrupcy": 10000.0,
             "session_profit_loss": 112951.68715857354, "session_tax": 0.15, "session_tax_rate": 0.0015,
             "socialized": 0.001},
            {"type": "settlement", "timestamp": 1696550400000, "instrument_name": "BTC-PERPETUAL",
             "session_profit_loss": 1.2, "profit_loss": 0.1},
        ],
        "continuation": "5dHzoGyD8Hs8KURoUhfgXgHpJTA5oyapoudSmNeAfEftqRbjNE6jNNUpo2oCu1khnZL9ao",
    },
    "usIn": 1696652052254890, "usOut": 1696652052255733, "usDiff": 843, "testnet": False,
}
BOOK = {
    "jsonrpc": "2.0",
    "result": [
        {"high": 93099.5, "low": 81773.0, "last": 87197.0, "instrument_name": "BTC-PERPETUAL", "bid_price": 87083.0,
         "ask_price": 87149.5, "open_interest": 9978911260, "mark_price": 87102.01, "creation_timestamp": 1763674177068,
         "price_change": -3.2032, "volume": 7377.18657991, "estimated_delivery_price": 87047.2, "base_currency": "BTC",
         "quote_currency": "USD", "volume_usd": 661040250.0, "volume_notional": 661040250.0,
         "current_funding": 1.2966e-4, "funding_8h": -8.1069e-4, "mid_price": 87116.25},
        {"instrument_name": "SOL_USDC-PERPETUAL", "base_currency": "SOL", "quote_currency": "USDC",
         "open_interest": 1520.5, "mark_price": 150.25, "estimated_delivery_price": 150.2,
         "creation_timestamp": 1763674177068, "funding_8h": 0.0001},
    ],
    "usIn": 1763674177068845, "usOut": 1763674177068996, "usDiff": 151, "testnet": True,
}


def test_settlements_become_typed_flows() -> None:
    flows, cursor, oldest = parse_settlements("deribit", "BTC", SETTLEMENTS)
    assert cursor == SETTLEMENTS["result"]["continuation"]
    assert oldest == datetime.fromtimestamp(1696550400, tz=UTC)  # the settlement row still bounds the page
    funded, socialized = flows
    assert (funded.flow_type, funded.amount, funded.pool_id, funded.asset) == (
        "bankruptcy_funded", Decimal("10000.0"), "BTC", "BTC")
    assert (socialized.flow_type, socialized.amount) == ("socialized_loss", Decimal("0.001"))
    assert funded.ts == datetime.fromtimestamp(1696579200.041, tz=UTC)
    detail = json.loads(funded.detail)
    assert detail["session_bankrupcy"] == "10000.0" and detail["session_tax_rate"] == "0.0015"


def test_settlements_end_of_cursor_and_zero_socialized() -> None:
    payload = {"result": {"settlements": [{"type": "bankruptcy", "timestamp": 1696579200041, "funded": 0.5,
                                           "socialized": 0, "session_bankruptcy": 0.5}], "continuation": "none"}}
    flows, cursor, _ = parse_settlements("deribit", "ETH", payload)
    assert cursor is None and [f.flow_type for f in flows] == ["bankruptcy_funded"]
    with pytest.raises(PayloadError, match="missing field 'funded'"):
        parse_settlements("deribit", "ETH", {"result": {"settlements": [{"type": "bankruptcy", "timestamp": 1696579200041}]}})


def test_book_summary_oi_units() -> None:
    batch = parse_book_summary("deribit", BOOK)
    perp, linear = batch.open_interest
    assert perp.inverse and perp.oi_unit == "usd" and perp.oi_usd == 9978911260.0 and perp.oi_raw == "9978911260"
    assert perp.oi_base == pytest.approx(9978911260 / 87102.01) and perp.settle_asset == "BTC"
    assert not linear.inverse and linear.oi_unit == "base" and linear.oi_base == 1520.5 and linear.settle_asset == "USDC"
    assert linear.oi_usd == pytest.approx(1520.5 * 150.25) and linear.oi_usd_note is None
    assert [(f.symbol, f.funding_rate, f.interval_h) for f in batch.funding] == [
        ("BTC-PERPETUAL", 1.2966e-4, 8.0), ("SOL_USDC-PERPETUAL", 0.0001, 8.0)]  # current_funding shown
    assert [(p.asset, p.price_usd) for p in batch.prices] == [("BTC", 87047.2), ("SOL", 150.2)]


def test_current_and_trailing_funding_are_both_stored_and_labelled() -> None:
    """Deribit's own example: current_funding 1.2966e-4 and funding_8h -8.1069e-4 have opposite signs."""
    perp, linear = parse_book_summary("deribit", BOOK).funding
    assert perp.funding_rate == 1.2966e-4 and perp.funding_8h == -8.1069e-4
    assert (perp.funding_rate_raw, perp.funding_8h_raw) == ("0.00012966", "-0.00081069")
    # a row without current_funding: the trailing figure is the only one and fills both, labelled
    assert linear.funding_rate == linear.funding_8h == 0.0001


def test_non_usd_linear_book_has_no_usd_value() -> None:
    row = {"instrument_name": "ETH_BTC-PERPETUAL", "base_currency": "ETH", "quote_currency": "BTC",
           "open_interest": 12.5, "mark_price": 0.0375, "creation_timestamp": 1763674177068}
    (oi,) = parse_book_summary("deribit", {"result": [row]}).open_interest
    assert oi.oi_base == 12.5 and oi.oi_usd is None and "BTC" in (oi.oi_usd_note or "")


def _served_events(sim, currency: str) -> list:
    return [f for f in sim.market.venue("deribit").flows if f.pool_id == currency and f.flow_type == "bankruptcy"]


def test_poll_backfill_along_cursor_and_values_served(sim_factory, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(DeribitAdapter, "poll_page_count", 10)
    monkeypatch.setattr(DeribitAdapter, "backfill_page_count", 7)  # several continuation pages
    sim = sim_factory(["deribit"])
    settings = settings_for(sim, tmp_path / "r.duckdb", ["deribit"])
    venue = sim.market.venue("deribit")

    async def run() -> int:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
            polled = query_df(settings.db, "SELECT count(*) AS n FROM fund_flows WHERE flow_type='bankruptcy_funded'")
            assert polled["n"][0] == 30  # newest 10 per currency
            backfill = await collector.backfill("deribit", "funds", datetime.now(UTC) - timedelta(days=400))
            assert backfill.status == "ok", backfill.error_message
            return backfill.rows_written

    asyncio.run(run())
    stored = query_df(settings.db, "SELECT pool_id, epoch_ms(ts) AS ms, flow_type, CAST(amount AS VARCHAR) AS amount "
                      "FROM fund_flows WHERE venue='deribit'")
    for currency in ("BTC", "ETH", "USDC"):
        served = _served_events(sim, currency)
        rows = stored[(stored["pool_id"] == currency) & (stored["flow_type"] == "bankruptcy_funded")]
        assert sorted(zip(rows["ms"], map(Decimal, rows["amount"]), strict=True)) == sorted(
            (f.ts_ms, f.amount) for f in served)
        social = stored[(stored["pool_id"] == currency) & (stored["flow_type"] == "socialized_loss")]
        assert sorted(map(Decimal, social["amount"])) == sorted(
            f.extra["socialized"] for f in served if f.extra["socialized"] != 0)

    oi = query_df(settings.db, "SELECT symbol, oi_raw, oi_usd, oi_unit FROM open_interest WHERE venue='deribit'")
    perp = oi[oi["symbol"] == "BTC-PERPETUAL"].iloc[0]
    contract = venue.contracts["BTC-PERPETUAL"]
    assert perp["oi_unit"] == "usd" and Decimal(perp["oi_raw"]) == contract.oi_contracts * contract.contract_size
    assert len(oi) == len(venue.contracts)
    rates = query_df(settings.db, "SELECT symbol, funding_rate, funding_8h FROM funding_rates WHERE venue='deribit'")
    perpetuals = [c for c in venue.contracts.values() if c.symbol.endswith("PERPETUAL")]
    assert dict(zip(rates["symbol"], rates["funding_rate"], strict=True)) == {
        c.symbol: float(current_funding(c)) for c in perpetuals}  # current shown
    assert dict(zip(rates["symbol"], rates["funding_8h"], strict=True)) == {
        c.symbol: float(c.funding_rate) for c in perpetuals}  # trailing 8 h beside it


def test_new_event_is_picked_up_by_the_next_poll(sim_factory, tmp_path) -> None:
    sim = sim_factory(["deribit"])
    settings = settings_for(sim, tmp_path / "r.duckdb", ["deribit"])
    template = _served_events(sim, "ETH")[-1]

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            await collector.run_one("deribit", "funds")
            sim.market.venue("deribit").flows.append(type(template)(
                "ETH", "ETH", sim.market.now_ms(), "bankruptcy", Decimal("1.25"), Decimal(0), {"socialized": Decimal(0)}))
            outcome = await collector.run_one("deribit", "funds")
            assert outcome.status == "ok" and outcome.rows_written == 1  # only the new event is new

    asyncio.run(run())
    amounts = query_df(settings.db, "SELECT CAST(amount AS VARCHAR) AS a FROM fund_flows WHERE pool_id='ETH' "
                       "ORDER BY ts DESC LIMIT 1")
    assert Decimal(amounts["a"][0]) == Decimal("1.25")


def test_stringified_amount_is_a_payload_error_and_timeout_is_retried(sim_factory, tmp_path) -> None:
    sim = sim_factory(["deribit"])
    settings = settings_for(sim, tmp_path / "r.duckdb", ["deribit"])
    settings.venues["deribit"].timeout_s = 0.5
    sim.faults.add("deribit:/api/v2/public/get_last_settlements_by_currency:stringify:funded x1")

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            broken = await collector.run_one("deribit", "funds")
            assert broken.status == "error" and broken.error_class == "PayloadError" and broken.attempts == 1
            assert "funded" in (broken.error_message or "")
            sim.faults.add("deribit:/api/v2/public/get_book_summary_by_currency:timeout:2 x1")
            retried = await collector.run_one("deribit", "open_interest")
            assert retried.status == "ok" and retried.attempts == 2, retried.error_message

    asyncio.run(run())
    assert len(query_df(settings.db, "SELECT * FROM fund_flows WHERE venue='deribit'")) == 0
