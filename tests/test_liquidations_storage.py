"""Liquidation storage: idempotent writes, the per-minute rollup, aggregates (sources max-combined,
gaps -> incomplete), coverage rows, cascade detection with price/fund context, CSV exports."""

from __future__ import annotations

import csv
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from collectors.base import Batch, FundBalance, Price
from collectors.liquidations.base import LiquidationGap, LiquidationRecord
from collectors.liquidations.bybit import FEEDS as BYBIT
from collectors.liquidations.gate import REST_FEEDS, WS_FEEDS
from metrics.cascades import CascadeParams
from storage import liquidation_reads, liquidation_writes
from storage.db import read_connection, write_connection
from storage.export import export_csv
from storage.writer import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def record(feed, n: int, ts: datetime, side: str = "long", usd: float = 1_000.0, symbol: str = "BTCUSDT",
           base: str = "BTC", price: float = 60_000.0) -> LiquidationRecord:
    return LiquidationRecord(
        venue=feed.venue, feed=feed.feed, source=feed.source, event_key=f"{symbol}|{n}", ts=ts, symbol=symbol,
        base_asset=base, quote_asset="USDT", side=side, price=price, price_kind="bankruptcy",
        qty_base=usd / price, qty_contracts=None, contract_size=None, inverse=False, notional_usd=usd,
        notional_source="base_x_price", coverage=feed.coverage, lower_bound=feed.lower_bound,
        raw=f'{{"n": {n}}}', received_at=ts,
    )


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "liq.duckdb"
    with write_connection(path):
        pass
    return path


def write(db, records, gaps=(), feeds=()) -> int:
    with write_connection(db) as con:
        return liquidation_writes.write_batch(con, records, list(gaps), list(feeds))


def test_columns_match_the_record() -> None:
    assert [f.name for f in dataclasses.fields(LiquidationRecord)] == list(liquidation_writes.LIQUIDATION_COLUMNS)


def test_idempotent_on_the_event_key_and_rollup_follows(db) -> None:
    feed = BYBIT["linear"]
    batch = [record(feed, i, T0 + timedelta(seconds=10 * i), "long" if i % 2 else "short") for i in range(12)]
    assert write(db, batch, feeds=[feed]) == 12
    assert write(db, batch[3:] + [record(feed, 99, T0 + 3 * MIN)], feeds=[feed]) == 1  # replay + one new
    with read_connection(db) as con:
        assert con.execute("SELECT count(*), count(DISTINCT event_key) FROM liquidations").fetchall() == [(13, 13)]
        minutes = con.execute("SELECT minute, side, usd, events FROM liquidation_minutes ORDER BY 1, 2").fetchall()
        rows = con.execute("SELECT date_trunc('minute', ts), side, sum(notional_usd), count(*) FROM liquidations "
                           "GROUP BY ALL ORDER BY 1, 2").fetchall()
        assert minutes == rows
    frame = liquidation_reads.liquidation_volumes(db, "1h")
    assert frame["long_usd"].sum() == 7_000 and frame["short_usd"].sum() == 6_000  # odd i and #99 are long
    assert not frame["lower_bound"].any() and not frame["incomplete"].any()  # Bybit: complete, no gap
    feeds = liquidation_reads.liquidation_feeds(db)
    assert feeds.loc[0, "coverage"] == "complete" and "500 ms" in feeds.loc[0, "note"]


def test_overlapping_sources_take_the_max_not_the_sum(db) -> None:
    ws, rest = WS_FEEDS["usdt"], REST_FEEDS["usdt"]
    write(db, [record(ws, i, T0 + timedelta(seconds=i), usd=100.0) for i in range(3)], feeds=[ws])  # sampled
    write(db, [record(rest, i, T0 + timedelta(seconds=i), usd=100.0) for i in range(5)], feeds=[rest])
    frame = liquidation_reads.liquidation_volumes(db, "1m", venues=["gate"])
    assert frame["long_usd"].tolist() == [500.0]  # max(300 ws, 500 rest), both lower bounds
    assert frame["events"].tolist() == [5] and frame["lower_bound"].all()


def test_buckets_and_gaps_mark_incomplete(db) -> None:
    feed = BYBIT["linear"]
    rows = [record(feed, i, T0 + i * 7 * MIN, usd=10.0) for i in range(30)]  # 3.5 hours
    gap = LiquidationGap(feed.venue, feed.feed, T0 + 65 * MIN, None, "ConnectionError")
    write(db, rows, gaps=[("open", gap)], feeds=[feed])
    hourly = liquidation_reads.liquidation_volumes(db, "1h")
    assert hourly["total_usd"].sum() == 300 and len(hourly) == 4
    assert hourly["incomplete"].tolist() == [False, True, True, True]  # open gap: incomplete until now
    write(db, [], gaps=[("close", feed.venue, feed.feed, T0 + 70 * MIN)])
    hourly = liquidation_reads.liquidation_volumes(db, "1h")
    assert hourly["incomplete"].tolist() == [False, True, False, False]
    gaps = liquidation_reads.liquidation_gaps(db)
    assert gaps.loc[0, "end_ts"] == T0 + 70 * MIN and not gaps.loc[0, "open"]
    daily = liquidation_reads.liquidation_volumes(db, "1d", since=T0, until=T0 + timedelta(days=1))
    assert daily["total_usd"].tolist() == [300.0]
    with pytest.raises(ValueError, match="unknown bucket"):
        liquidation_reads.liquidation_volumes(db, "7m")


def test_incremental_rollup_equals_a_full_rebuild(db) -> None:
    feed = BYBIT["linear"]
    for chunk in range(5):  # out-of-order batches, with replays
        write(db, [record(feed, chunk * 50 + i, T0 + timedelta(seconds=(chunk * 37 + i * 13) % 900))
                   for i in range(60)], feeds=[feed])
    query = "SELECT venue, source, minute, side, usd, round(qty_base, 9), events FROM liquidation_minutes ORDER BY ALL"
    with write_connection(db) as con:
        incremental = con.execute(query).fetchall()
        liquidation_writes.rebuild_minutes(con)
        assert con.execute(query).fetchall() == incremental


def test_cascade_detection_with_price_and_fund_context(db) -> None:
    feed = BYBIT["linear"]
    rows, n = [], 0
    for minute in range(70):
        stamp = T0 + minute * MIN
        if 60 <= minute < 64:  # the cascade: price falls 64000 -> 60000
            for k in range(10):
                rows.append(record(feed, n, stamp + timedelta(seconds=k), usd=80_000.0, price=64_000 - 1000 * (minute - 60)))
                n += 1
        else:
            rows.append(record(feed, n, stamp + timedelta(seconds=5), usd=5_000.0, side="short"))
            n += 1
    write(db, rows, feeds=[feed])
    store = Store(db)
    pool = [FundBalance("bybit", "USDT", "USDT", T0 + m * MIN, Decimal(10_000_000 - (m >= 62) * 250_000),
                        "x", "USDT", usd_value=Decimal(10_000_000 - (m >= 62) * 250_000)) for m in range(55, 70)]
    store.write(Batch(funds=pool, prices=[Price("binance", "BTC", T0 + 20 * MIN, 64_100.0, "index")]))
    params = CascadeParams(k=5, m=3, window_min=60, floor_usd=100_000)
    run = liquidation_writes.BACKEND.detect_cascades(store, params, now=T0 + 70 * MIN)
    assert {c.scope for c in run.cascades} == {"bybit", "market"} and run.examined_to == T0 + 71 * MIN
    cascades = liquidation_reads.cascade_rows(db)
    bybit = cascades[cascades["venue"] == "bybit"].iloc[0]
    assert bybit["start_ts"] == T0 + 60 * MIN and bybit["end_ts"] == T0 + 64 * MIN
    assert bybit["total_long_usd"] == 3_200_000 and bybit["dominant_asset"] == "BTC"
    assert bybit["price_source"] == "liquidations"  # the only collected price is 40 minutes away
    assert bybit["price_move_pct"] == pytest.approx((61_000 - 64_000) / 64_000 * 100)
    assert bybit["fund_change_usd"] == -250_000 and bybit["fund_pools"] == 1  # 1-minute fund cadence
    liquidation_writes.BACKEND.detect_cascades(store, params, now=T0 + 71 * MIN)  # re-detection updates, no duplicate
    assert len(liquidation_reads.cascade_rows(db)) == 2
    later = liquidation_writes.BACKEND.detect_cascades(store, params, now=T0 + 20 * 60 * MIN)  # 20 h on: out of the lookback
    assert later.cascades == []
    resumed = liquidation_writes.BACKEND.detect_cascades(store, params, now=T0 + 20 * 60 * MIN, since=T0)  # from the last run
    assert {c.scope for c in resumed.cascades} == {"bybit", "market"}


def test_exports(db, tmp_path) -> None:
    feed = BYBIT["linear"]
    write(db, [record(feed, 0, T0)], gaps=[("open", LiquidationGap(feed.venue, feed.feed, T0, T0 + MIN, "x"))],
          feeds=[feed])
    out = tmp_path / "liq.csv"
    assert export_csv(db, "liquidations", out, venue="bybit") == 1
    [row] = list(csv.DictReader(out.open()))
    assert row["side"] == "long" and row["event_key"] == "BTCUSDT|0" and float(row["notional_usd"]) == 1000
    assert export_csv(db, "liquidation-gaps", tmp_path / "gaps.csv") == 1
    assert export_csv(db, "cascades", tmp_path / "cascades.csv", venue="market") == 0
