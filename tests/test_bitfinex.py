"""Bitfinex derivatives: status-row parsers on ccxt's captured rows and the docs' WS example, the shared
fund decision on the documented data (two pairs, one fund), then a collection cycle and the /hist backfill
(paged) through ccxt against the simulator into a real DuckDB file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import collectors.bitfinex as bitfinex
from backstop.service import Collector
from collectors.bitfinex import (
    fund_batch,
    fund_pools,
    market_batch,
    parse_status,
    parse_status_hist,
    parse_status_row,
    split_key,
)
from collectors.errors import PayloadError
from storage.db import read_connection
from tests.conftest import example, settings_for

STATUS_XRP = "status_deriv_rest_v2_status_deriv_ccxt_comment.json"
STATUS_BTC_2023 = "status_deriv_btc_rest_v2_status_deriv_ccxt_comment.json"
HIST_BTC = "status_deriv_hist_rest_v2_status_deriv_key_hist_ccxt_comment.json"
WS_STATUS = "status_deriv_ws_status_deriv_doc.json"


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


def test_status_row_fields_from_the_captured_xrp_row() -> None:
    (row,) = parse_status(example("bitfinex", STATUS_XRP))
    assert (row.key, row.base, row.settle_code) == ("tXRPF0:USTF0", "XRP", "USTF0")
    assert row.ts == datetime(2024, 1, 26, 8, 16, 26, tzinfo=UTC)
    assert row.insurance_fund == Decimal("37671483.04") and row.open_interest == Decimal("2233562.03115")
    batch = market_batch("bitfinex", [row])
    (oi,) = batch.open_interest
    assert (oi.oi_raw, oi.oi_unit, oi.oi_base, oi.settle_asset) == ("2233562.03115", "contracts", 2233562.03115, "USDT")
    assert oi.oi_usd == pytest.approx(2233562.03115 * 0.5123016)
    (rate,) = batch.funding
    assert (rate.funding_rate, rate.interval_h, rate.mark_price) == (0.0, 8.0, 0.5123016)
    assert rate.next_funding_ts == datetime(2024, 1, 26, 16, tzinfo=UTC)
    assert [(p.asset, p.price_usd, p.source) for p in batch.prices] == [("XRP", 0.5123016, "mark")]


def test_hist_rows_are_shifted_by_one() -> None:
    (row,) = parse_status_hist("tBTCF0:USTF0", example("bitfinex", HIST_BTC))
    assert row.ts == datetime(2024, 1, 26, 18, 53, 11, tzinfo=UTC)
    assert (row.insurance_fund, row.current_funding, row.mark_price, row.open_interest) == (
        Decimal("37671589.7853521"), Decimal("0.00007587"), Decimal("42134.1"), Decimal("5775.20348804"))


def test_ws_status_example_row_has_the_same_positions() -> None:
    chan_id, values = example("bitfinex", WS_STATUS)
    row = parse_status_row(values, "tBTCF0:USTF0")  # the WS update has no KEY, like /hist
    assert chan_id == 335856 and row.insurance_fund == Decimal("1396531.67460709")
    assert (row.current_funding, row.mark_price, row.open_interest) == (
        Decimal("-0.01381344"), Decimal("0.7664"), Decimal("246502.09001551"))


def test_one_shared_fund_on_the_documented_data_stored_once() -> None:
    """The XRP and BTC rows of 2024-01-26 carry the same fund (37,671,483.04 at 08:16, 37,671,589.79 at
    18:53): one pool, stamped with the newer row, both pairs members."""
    (xrp,) = parse_status(example("bitfinex", STATUS_XRP))
    (btc_hist,) = example("bitfinex", HIST_BTC)
    (btc,) = parse_status([["tBTCF0:USTF0", *btc_hist]])
    batch = fund_batch("bitfinex", fund_pools([xrp, btc]))
    (fund,) = batch.funds
    assert (fund.pool_id, fund.asset, fund.unit_raw, fund.balance) == ("USTF0", "USDT", "UST", Decimal("37671589.7853521"))
    assert fund.ts == btc.ts
    assert {(m.pool_id, m.symbol) for m in batch.pool_members} == {("USTF0", "tXRPF0:USTF0"), ("USTF0", "tBTCF0:USTF0")}


def test_disagreeing_fund_values_are_kept_per_pair() -> None:
    """Rows whose fund values differ beyond 1 % are not merged (here: the 2023 BTC row, 36.95 M, next to
    the 2024 XRP row, 37.67 M): each pair is then its own pool, nothing is averaged away."""
    (xrp,) = parse_status(example("bitfinex", STATUS_XRP))
    (btc_2023,) = parse_status(example("bitfinex", STATUS_BTC_2023))
    batch = fund_batch("bitfinex", fund_pools([xrp, btc_2023]))
    assert sorted((f.pool_id, f.balance) for f in batch.funds) == [
        ("tBTCF0:USTF0", Decimal("36950860.76010306")), ("tXRPF0:USTF0", Decimal("37671483.04"))]


def test_keys_that_are_not_derivative_pairs() -> None:
    assert split_key("tAVAXF0:USTF0") == ("AVAX", "USTF0")
    with pytest.raises(PayloadError, match="not a derivative pair"):
        split_key("tBTCUSD")
    assert parse_status([["tBTCUSD", 1706256986000]]) == []  # skipped in keys=ALL


def test_collect_fills_fund_once_oi_funding_prices(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitfinex"])
    settings = settings_for(sim, tmp_path / "bfx.duckdb", ["bitfinex"])
    venue = sim.market.venue("bitfinex")

    async def cycle() -> list[Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return await collector.run_cycle()

    outcomes = asyncio.run(cycle())
    assert {(o.dataset, o.status) for o in outcomes} == {
        (d, "ok") for d in ("funds", "open_interest", "funding", "prices")}
    db = settings.db
    pool = venue.pools["USTF0"]
    assert rows(db, "SELECT pool_id, asset, balance FROM fund_balances WHERE venue='bitfinex'") == [
        ("USTF0", "USDT", pool.balance)]
    assert sorted(r[0] for r in rows(db, "SELECT symbol FROM fund_pool_members WHERE venue='bitfinex'")) == sorted(
        venue.contracts)
    stored_oi = dict(rows(db, "SELECT symbol, oi_raw FROM open_interest WHERE venue='bitfinex'"))
    assert stored_oi == {c.symbol: str(c.oi_contracts) for c in venue.contracts.values()}
    funding = dict(rows(db, "SELECT symbol, funding_rate FROM funding_rates WHERE venue='bitfinex'"))
    assert funding == {c.symbol: float(c.funding_rate) for c in venue.contracts.values()}
    assert {r[0] for r in rows(db, "SELECT asset FROM prices WHERE venue='bitfinex'")} == {"BTC", "ETH", "SOL", "XRP"}


def test_backfill_walks_hist_pages_with_progress(sim_factory, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bitfinex, "HIST_LIMIT", 250)  # several pages per pair (the venue allows 5,000)
    sim = sim_factory(["bitfinex"])
    settings = settings_for(sim, tmp_path / "bfx.duckdb", ["bitfinex"])
    settings.venues["bitfinex"].max_symbols = 2
    pool = sim.market.venue("bitfinex").pools["USTF0"]
    since = datetime.now(UTC) - timedelta(days=30)
    expected = {ts: balance for ts, balance in pool.history if ts >= since.timestamp() * 1000}
    progress: dict[str, list[int]] = {"funds": [], "open_interest": []}

    async def run() -> dict[str, Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return {d: await collector.backfill("bitfinex", d, since, progress[d].append) for d in progress}

    outcomes = asyncio.run(run())
    assert all(o.status == "ok" for o in outcomes.values()), outcomes
    db = settings.db
    stored = dict(rows(db, "SELECT epoch_ms(ts), balance FROM fund_balances WHERE venue='bitfinex' AND pool_id='USTF0'"))
    # every history point, plus the current value (the same row when "now" falls on a 5-minute boundary)
    assert stored == {**expected, sim.market.now_ms(): pool.balance} and len(expected) > 2 * 250
    assert progress["funds"][0] == 1 and len(progress["funds"]) >= 4  # the current fund, then pages
    oi = dict(rows(db, "SELECT symbol, count(*) FROM open_interest WHERE venue='bitfinex' GROUP BY 1"))
    assert oi == {"tBTCF0:USTF0": len(expected), "tETHF0:USTF0": len(expected)}  # max_symbols = 2, preferred first
    assert sum(progress["open_interest"]) == 3 * 2 * len(expected)  # OI, funding and a price per row


def test_a_failed_page_restarts_the_walk_and_a_lasting_failure_is_an_error(sim_factory, tmp_path) -> None:
    """A walk cannot resume mid-way: one 500 on a /hist page restarts it (all history still lands, status ok);
    a /hist endpoint that keeps failing ends the backfill as an error run, never as a short "ok"."""
    sim = sim_factory(["bitfinex"])
    settings = settings_for(sim, tmp_path / "bfx.duckdb", ["bitfinex"])
    pool = sim.market.venue("bitfinex").pools["USTF0"]
    since = datetime.now(UTC) - timedelta(days=30)
    expected = {ts for ts, _ in pool.history if ts >= since.timestamp() * 1000}

    async def backfill() -> Any:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return await collector.backfill("bitfinex", "funds", since)

    sim.faults.add("bitfinex:/v2/status/deriv/*/hist:500 x1")
    recovered = asyncio.run(backfill())
    assert recovered.status == "ok" and recovered.attempts >= 3, recovered
    stored = {r[0] for r in rows(settings.db, "SELECT epoch_ms(ts) FROM fund_balances WHERE venue='bitfinex'")}
    assert expected <= stored

    sim.faults.add("bitfinex:/v2/status/deriv/*/hist:500")
    failed = asyncio.run(backfill())
    assert (failed.status, failed.error_class) == ("error", "ExchangeNotAvailable"), failed
    assert rows(settings.db, "SELECT status, error_class FROM collection_runs WHERE venue='bitfinex' "
                             "AND kind='backfill' ORDER BY finished_at") == [("ok", None),
                                                                             ("error", "ExchangeNotAvailable")]


def test_simulated_hist_endpoints_refuse_bad_queries_as_bitfinex_does(sim_factory) -> None:
    """Both simulated ``/hist`` endpoints (fund status, liquidations) read one query (``hist_query``):
    HTTP 500 with ``["error", 10020, …]`` for a non-number or a limit out of range, a page otherwise."""
    import json
    import urllib.error
    import urllib.request

    sim = sim_factory(["bitfinex"])
    base = sim.base_url("bitfinex")

    def get(path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"{base}{path}", timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    for path, max_limit, page in (("/v2/status/deriv/tBTCF0:USTF0/hist", 5_000, 2), ("/v2/liquidations/hist", 500, 0)):
        assert get(f"{path}?sort=x") == (500, ["error", 10020, "params: invalid"])
        assert get(f"{path}?limit=0") == (500, ["error", 10020, "limit: invalid"])
        assert get(f"{path}?limit={max_limit + 1}") == (500, ["error", 10020, "limit: invalid"])
        status, rows = get(f"{path}?limit=2&sort=1")
        assert status == 200 and isinstance(rows, list) and len(rows) == page  # a calm market: no liquidation yet
        if page:
            assert rows[0][0] < rows[1][0]  # sort=1: oldest first
