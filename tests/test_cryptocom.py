"""Crypto.com Exchange: parsers on the examples ccxt's source carries (no verbatim get-insurance example
exists: its parser runs on the same {v, t} envelope of get-valuations), then a collection cycle and the
history backfill through ccxt against the simulator."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from backstop.service import Collector
from collectors.cryptocom import parse_insurance, parse_tickers, parse_valuation_funding
from collectors.errors import PayloadError
from storage.queries import query_df
from tests.conftest import example_raw, settings_for

DIR = "cryptocom"
TICKERS = "tickers_oi_rest_exchange_v1_public_get-tickers_ccxt_comment.json"
VALUATIONS = "valuations_funding_rest_exchange_v1_public_get-valuations_ccxt_comment.json"


def insurance_from_valuations_envelope() -> Any:
    """The valuations example relabelled as the insurance endpoint's (same documented envelope)."""
    payload = copy.deepcopy(example_raw(DIR, VALUATIONS))
    payload["method"] = "public/get-insurance"
    payload["result"]["instrument_name"] = "USD"
    payload["result"]["data"] = [{"v": "5412377.83", "t": 1687892400000}, {"v": "5409011.5", "t": 1687888800000}]
    return payload


def test_insurance_rows_exact_and_unordered() -> None:
    rows = parse_insurance("cryptocom", insurance_from_valuations_envelope())
    assert [(r.pool_id, r.asset, r.balance, r.balance_raw) for r in rows] == [
        ("USD", "USD", Decimal("5412377.83"), "5412377.83"), ("USD", "USD", Decimal("5409011.5"), "5409011.5")]
    assert rows[0].ts == datetime(2023, 6, 27, 19, 0, tzinfo=UTC)


@pytest.mark.parametrize("change", ["code", "v", "t", "data"])
def test_insurance_rejects_broken_payloads(change: str) -> None:
    payload = insurance_from_valuations_envelope()
    if change == "code":
        payload["code"] = 40004
    elif change == "data":
        del payload["result"]["data"]
    else:
        del payload["result"]["data"][0][change]
    with pytest.raises(PayloadError):
        parse_insurance("cryptocom", payload)


def test_tickers_example_open_interest_in_base_coin() -> None:
    batch = parse_tickers("cryptocom", example_raw(DIR, TICKERS))
    (oi,) = batch.open_interest
    assert (oi.symbol, oi.base_asset, oi.oi_raw, oi.oi_base) == ("AVAXUSD-PERP", "AVAX", "10888.9", 10888.9)
    assert oi.oi_usd == pytest.approx(10888.9 * 13.209)
    assert oi.ts == datetime.fromtimestamp(1687402657575 / 1000, tz=UTC)
    assert [(p.asset, p.price_usd, p.source) for p in batch.prices] == [("AVAX", 13.209, "last")]


def test_tickers_skip_spot_pairs() -> None:
    payload = example_raw(DIR, TICKERS)
    payload["result"]["data"].append({"i": "BTC_USD", "a": "30446.00", "t": 1687403045415})  # ccxt's spot example
    assert [r.symbol for r in parse_tickers("cryptocom", payload).open_interest] == ["AVAXUSD-PERP"]


def test_valuations_example_is_the_hourly_funding_rate() -> None:
    rate = parse_valuation_funding("cryptocom", example_raw(DIR, VALUATIONS))
    assert rate is not None
    assert (rate.symbol, rate.funding_rate, rate.funding_rate_raw, rate.interval_h) == (
        "BTCUSD-PERP", -0.000001884, "-0.000001884", 1.0)
    assert rate.next_funding_ts == datetime(2023, 6, 27, 20, 0, tzinfo=UTC)


def test_collect_cycle_and_backfill_store_what_the_simulator_served(sim_factory: Any, tmp_path: Any) -> None:
    sim = sim_factory(["cryptocom"], history_days=30)
    venue = sim.market.venue("cryptocom")
    settings = settings_for(sim, tmp_path / "c.duckdb", ["cryptocom"])

    async def run() -> tuple[list[Any], Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            backfill = await collector.backfill("cryptocom", "funds", datetime(2015, 1, 1, tzinfo=UTC))
            return outcomes, backfill

    outcomes, backfill = asyncio.run(run())
    assert {(o.dataset, o.status) for o in outcomes} == {
        ("funds", "ok"), ("open_interest", "ok"), ("funding", "ok"), ("prices", "ok")}, outcomes
    assert backfill.status == "ok"
    history = venue.pools["USD"].history  # 30 days hourly: more than one 500-row page
    assert len(history) > 500
    stored = query_df(settings.db, "SELECT epoch_ms(ts) AS t, CAST(balance AS VARCHAR) AS b FROM fund_balances "
                      "ORDER BY ts")
    assert [(int(t), Decimal(b)) for t, b in zip(stored["t"], stored["b"], strict=True)] == history
    oi = query_df(settings.db, "SELECT symbol, oi_raw FROM open_interest ORDER BY symbol")
    assert dict(zip(oi["symbol"], oi["oi_raw"], strict=True)) == {
        c.symbol: str(c.oi_contracts) for c in venue.contracts.values()}
    funding = query_df(settings.db, "SELECT symbol, funding_rate_raw FROM funding_rates")
    assert dict(zip(funding["symbol"], funding["funding_rate_raw"], strict=True)) == {
        c.symbol: str(c.funding_rate) for c in venue.contracts.values()}
