"""Bitget's risk reserve (insurance fund): the daily-record parser on both documented revisions of Bitget's
own example, the pool parser on the documented shape (Bitget publishes no example for risk-reserve-all or
risk-reserve-hour: those tests use the documented field list), then a collection cycle and a backfill
through ccxt against the simulator into a real DuckDB file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backstop.service import Collector
from collectors.bitget import parse_risk_reserve, parse_risk_reserve_all, pool_lead
from collectors.errors import PayloadError
from storage.db import read_connection
from tests.conftest import example_raw, settings_for

DAILY = "insurance_history_rest_api_v3_market_risk-reserve.json"
DAILY_OLD = "insurance_history_rest_api_v3_market_risk-reserve_older_doc.json"
# the documented risk-reserve-all shape (field list: list[].symbols, coin, balance); no example exists
ALL_SHAPE: dict[str, Any] = {"code": "00000", "msg": "success", "requestTime": 1753793743942, "data": {"list": [
    {"symbols": ["ETHUSDT", "BTCUSDT"], "coin": "USDT", "balance": "95815.6773460800020000"},
    {"symbols": ["PEPEUSDT"], "coin": "USDT", "balance": "1234.5"},
]}}


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


def test_daily_records_example_balances_exact_newest_first() -> None:
    points = parse_risk_reserve("bitget", "BTCUSDT", example_raw("bitget", DAILY))
    assert [(p.ts, p.balance, p.balance_raw) for p in points] == [
        (datetime(2025, 7, 28, 16, tzinfo=UTC), Decimal("95815.6773460800020000"), "95815.6773460800020000"),
        (datetime(2025, 7, 27, 16, tzinfo=UTC), Decimal("95805.8303195521250000"), "95805.8303195521250000"),
    ]
    # the documented amount is the change over the period: 95805.83 + 9.847 = 95815.68
    assert points[1].balance + Decimal("9.8470265278770000") == points[0].balance
    assert {(p.pool_id, p.asset, p.unit_raw, p.source) for p in points} == {("BTCUSDT", "USDT", "USDT", "history")}
    since = datetime(2025, 7, 28, tzinfo=UTC)
    assert [p.ts for p in parse_risk_reserve("bitget", "BTCUSDT", example_raw("bitget", DAILY), since)] == [
        datetime(2025, 7, 28, 16, tzinfo=UTC)]


def test_older_revision_without_record_balances_uses_total_balance_at_request_time() -> None:
    (point,) = parse_risk_reserve("bitget", "BTCUSDT", example_raw("bitget", DAILY_OLD))
    assert point.balance == Decimal("213035.884276676283") and point.source == "snapshot"
    assert point.ts == datetime.fromtimestamp(1731146572.299, tz=UTC)


def test_bad_envelope_is_an_error() -> None:
    with pytest.raises(PayloadError, match="40034"):
        parse_risk_reserve("bitget", "X", {"code": "40034", "msg": "Parameter symbol does not exist", "data": None})
    with pytest.raises(PayloadError, match="riskReserveRecords"):
        parse_risk_reserve("bitget", "X", {"code": "00000", "requestTime": 1, "data": {"coin": "USDT"}})
    no_balance = {"code": "00000", "requestTime": 1753793743942, "data": {"totalBalance": "", "coin": "USDT",
                  "riskReserveRecords": [{"type": "", "amount": "1", "ts": "1753718400000"}]}}
    with pytest.raises(PayloadError, match="no balance"):  # nothing to store must not look like "no history"
        parse_risk_reserve("bitget", "X", no_balance)
    empty = {"code": "00000", "requestTime": 1753793743942, "data": {"totalBalance": "", "coin": "USDT",
             "riskReserveRecords": []}}
    assert parse_risk_reserve("bitget", "X", empty) == []  # a pool with no records yet


def test_pools_and_members_from_the_documented_all_shape() -> None:
    batch = parse_risk_reserve_all("bitget", ALL_SHAPE)
    assert [(f.pool_id, f.balance, f.ts) for f in batch.funds] == [
        ("BTCUSDT", Decimal("95815.6773460800020000"), datetime.fromtimestamp(1753793743.942, tz=UTC)),
        ("PEPEUSDT", Decimal("1234.5"), datetime.fromtimestamp(1753793743.942, tz=UTC))]
    assert {(m.pool_id, m.symbol) for m in batch.pool_members} == {
        ("BTCUSDT", "ETHUSDT"), ("BTCUSDT", "BTCUSDT"), ("PEPEUSDT", "PEPEUSDT")}
    # defensive variants: data as the list itself, symbols as one comma-separated string
    variant = {"code": "00000", "requestTime": 1753793743942,
               "data": [{"symbols": "SOLUSDT,XRPUSDT", "coin": "USDT", "balance": "5"}]}
    assert [(m.pool_id, m.symbol) for m in parse_risk_reserve_all("bitget", variant).pool_members] == [
        ("SOLUSDT", "SOLUSDT"), ("SOLUSDT", "XRPUSDT")]
    assert pool_lead(["ZECUSDT", "AAVEUSDT"]) == "AAVEUSDT" and pool_lead(["DOGEUSDT", "ETHUSDT"]) == "ETHUSDT"
    with pytest.raises(PayloadError, match="balance"):
        parse_risk_reserve_all("bitget", {"code": "00000", "requestTime": 1753793743942, "data": {"list": [
            {"symbols": ["BTCUSDT"], "coin": "USDT"}]}})


def test_collect_and_backfill_fill_pools_members_and_history(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitget"])
    settings = settings_for(sim, tmp_path / "bitget.duckdb", ["bitget"])
    venue = sim.market.venue("bitget")
    progress: list[int] = []

    async def run() -> tuple[list[Any], Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            backfill = await collector.backfill("bitget", "funds", datetime.now(UTC) - timedelta(days=90),
                                                progress.append)
        return outcomes, backfill

    outcomes, backfill = asyncio.run(run())
    assert {(o.dataset, o.status) for o in outcomes} == {("funds", "ok"), ("open_interest", "ok"), ("funding", "ok")}
    db = settings.db
    members = rows(db, "SELECT pool_id, symbol FROM fund_pool_members WHERE venue='bitget' ORDER BY 1, 2")
    assert members == sorted((p.pool_id, s) for p in venue.pools.values() for s in p.symbols)
    snapshots = dict(rows(db, "SELECT pool_id, balance FROM fund_balances WHERE venue='bitget' AND source='snapshot'"))
    assert snapshots == {p.pool_id: p.published()[1] for p in venue.pools.values()}

    assert backfill.status == "ok" and backfill.kind == "backfill"
    # progress per page: the pools, then per pool its hourly and its daily records
    assert progress == [len(venue.pools)] + [168, 90] * len(venue.pools)
    stored_history = rows(db, "SELECT count(*) FROM fund_balances WHERE venue='bitget' AND source='history'")[0][0]
    assert backfill.rows_written == stored_history  # the snapshots were already stored; 00:00 points once
    for pool in venue.pools.values():
        stored = dict(rows(db, "SELECT epoch_ms(ts), balance FROM fund_balances WHERE venue='bitget' AND pool_id=?",
                           [pool.pool_id]))
        hourly = pool.history[-168:]
        daily = [p for p in pool.history if p[0] % 86_400_000 == 0][-90:]
        # the records, plus the polled value (one row with the newest record when "now" is on the hour)
        assert stored == {**dict(hourly + daily), sim.market.now_ms(): pool.published()[1]}
        assert len(stored) > 168 + 1  # the daily records reach further back than the hourly ones


def test_symbols_filter_keeps_pools_covering_them(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitget"])
    settings = settings_for(sim, tmp_path / "f.duckdb", ["bitget"])
    settings.venues["bitget"].symbols = ["SOLUSDT"]

    async def run() -> Any:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return await collector.adapters["bitget"].fetch_funds(None)

    batch = asyncio.run(run())
    assert [f.pool_id for f in batch.funds] == ["ETHUSDT"]  # the shared pool that covers SOLUSDT
    assert sorted(m.symbol for m in batch.pool_members) == ["ETHUSDT", "SOLUSDT"]
