"""Bitfinex liquidations: the entry parser on the docs' WS example and ccxt's captured REST row, then both
feeds (WS ``liq:global`` and REST ``/v2/liquidations/hist``) end to end: simulator -> real feed code ->
DuckDB, one row per position whichever source saw it first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from backstop.service import Collector
from collectors.errors import PayloadError
from collectors.liquidations.bitfinex import (
    REST_FEED,
    WS_FEED,
    parse_liq_update,
    parse_liquidations_hist,
    split_symbol,
)
from collectors.liquidations.integration import build_feeds, liquidation_tasks, service_for
from simulator.market import Market
from simulator.market_state import SimLiquidation
from simulator.server import SimulatorThread
from storage.liquidation_writes import BACKEND
from storage.queries import query_df
from tests.conftest import example, settings_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_ws_doc_example_margin_pair_short() -> None:
    records, skipped = parse_liq_update(example("bitfinex", "liquidation_ws_status_liq_global_doc.json"), WS_FEED, NOW)
    (record,) = records
    assert skipped == 0
    assert (record.symbol, record.base_asset, record.quote_asset, record.side) == ("tBSVUSD", "BSV", "USD", "short")
    assert record.ts == datetime.fromtimestamp(1574697680.828, tz=UTC)
    assert (record.price, record.price_kind, record.qty_base) == (112.27, "acquired", 2.62932)
    assert record.notional_usd == pytest.approx(2.62932 * 112.27) and record.notional_source == "base_x_price"
    assert record.qty_contracts is None and record.event_key == "pos|142397657"
    assert (record.coverage, record.lower_bound) == ("unconfirmed", True)


def test_rest_ccxt_row_derivative_short_in_contracts() -> None:
    (record,) = parse_liquidations_hist(example("bitfinex", "liquidations_rest_v2_liquidations_hist_ccxt_comment.json"),
                                        REST_FEED, NOW)
    assert (record.symbol, record.base_asset, record.quote_asset, record.side) == ("tAVAXF0:USTF0", "AVAX", "USDT",
                                                                                   "short")
    assert (record.qty_contracts, record.contract_size, record.price) == (8.0, 1.0, 33.255)
    assert record.notional_usd == pytest.approx(8 * 33.255) and record.event_key == "pos|171085137"


def test_heartbeat_unpriced_entries_and_bad_frames() -> None:
    assert parse_liq_update([91684, "hb"], WS_FEED, NOW) == ([], 0)
    unpriced = [91684, [["pos", 1, 1706395919788, None, "tBTCF0:USTF0", 0.5, 40000, None, 0, 0, None, None]]]
    assert parse_liq_update(unpriced, WS_FEED, NOW) == ([], 1)
    with pytest.raises(PayloadError, match="not a liquidation entry"):
        parse_liq_update([91684, [["oops", 1]]], WS_FEED, NOW)
    assert split_symbol("tDOGE:USD") == ("DOGE", "USD", False)


def test_both_feeds_are_built_from_the_config(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitfinex"])
    settings = settings_for(sim, tmp_path / "x.duckdb", ["bitfinex"])
    feeds = build_feeds(settings)
    assert [(f.info.feed, f.info.source) for f in feeds] == [("liq:global", "ws"), ("liquidations/hist", "rest")]
    settings.venues["bitfinex"].streams = False
    settings.venues["bitfinex"].intervals.liquidations = 0
    assert build_feeds(settings) == []


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_ws_and_rest_feeds_store_each_position_once(tmp_path) -> None:
    market = Market(venues=["bitfinex"], speed=0)
    venue = market.venue("bitfinex")

    def liquidate(seq: int, symbol: str, side: str, qty: str, ts_ms: int) -> SimLiquidation:
        price = Decimal("64000") if symbol.startswith("tBTC") else Decimal("3200")
        item = SimLiquidation(f"bfx-{seq}", symbol, ts_ms, side, Decimal(qty), price, price * Decimal("1.001"),
                              Decimal(0), seq=seq)
        venue.liquidations.append(item)
        return item

    before = [liquidate(i, "tBTCF0:USTF0", "long", "0.5", market.now_ms() - 600_000 + i) for i in range(3)]
    with SimulatorThread(market) as sim:
        settings = settings_for(sim, tmp_path / "liq.duckdb", ["bitfinex"])
        settings.venues["bitfinex"].intervals.liquidations = 3600  # one REST poll (the start), then the stream

        async def scenario() -> Any:
            collector = Collector(settings=settings)
            running = [asyncio.create_task(task(collector)) for task in liquidation_tasks(collector, BACKEND)]
            service = service_for(collector)
            assert service is not None
            ws = next(r for r in service.runners if r.info.feed == "liq:global")
            rest = next(r for r in service.runners if r.info.feed == "liquidations/hist")
            await asyncio.wait_for(asyncio.gather(ws.started.wait(), rest.started.wait()), 30)
            await until(lambda: rest.stats.records == 3, "the REST poll to read the 3 earlier positions")
            after = [liquidate(10 + i, "tETHF0:USTF0", "short", "2", market.now_ms() + i) for i in range(4)]
            await until(lambda: ws.stats.records == 4, "the stream to push the 4 new positions")
            await until(lambda: service.sink.written == 7 and service.sink.pending == 0, "7 rows stored")
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            return after

        after = asyncio.run(scenario())
    frame = query_df(settings.db, "SELECT feed, symbol, side, qty_base, price, notional_usd, event_key "
                                  "FROM liquidations WHERE venue='bitfinex' ORDER BY event_key")
    assert len(frame) == 7 and frame["event_key"].is_unique
    by_key = {r.event_key: r for r in frame.itertuples()}
    for item, feed in [(x, "liquidations/hist") for x in before] + [(x, "liq:global") for x in after]:
        row = by_key[f"pos|{100_000_000 + item.seq}"]
        assert (row.feed, row.symbol, row.side, row.price) == (feed, item.symbol, item.position_side,
                                                               float(item.fill_price))
        assert row.notional_usd == pytest.approx(float(item.qty_contracts * item.fill_price))


def test_rest_window_pages_through_full_pages(tmp_path, monkeypatch) -> None:
    """A full page (``REST_LIMIT`` rows) is followed by the next one from its newest MTS (``sort=1``):
    every position of the window is read once, whatever the page size."""
    import collectors.liquidations.bitfinex as module

    monkeypatch.setattr(module, "REST_LIMIT", 4)
    market = Market(venues=["bitfinex"], speed=0)
    venue = market.venue("bitfinex")
    start_ms = market.now_ms() - 3_600_000
    for seq in range(11):
        venue.liquidations.append(SimLiquidation(f"bfx-{seq}", "tBTCF0:USTF0", start_ms + seq * 1000, "long",
                                                 Decimal("0.1"), Decimal("64000"), Decimal("64050"), Decimal(0),
                                                 seq=seq))
    with SimulatorThread(market) as sim:
        feed = module.BitfinexLiquidationsHistFeed(sim.base_url("bitfinex"), 3600, min_interval_s=0)

        async def read() -> list[Any]:
            try:
                assert feed._client is not None
                return await feed.fetch_window(feed._client, datetime.fromtimestamp(start_ms / 1000, UTC),
                                               datetime.fromtimestamp(market.now_ms() / 1000, UTC))
            finally:
                await feed.close()

        records = asyncio.run(read())
    keys = [r.event_key for r in records]
    assert set(keys) == {f"pos|{100_000_000 + seq}" for seq in range(11)}
    assert len(keys) == 11 + 3  # three page boundaries, each re-reading its last millisecond
