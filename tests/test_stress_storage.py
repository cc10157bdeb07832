"""storage.stress_inputs on a hand-written database: which days calibrate (complete feeds only, no feed-gap
days, today excluded), the fitted scale, pools sharing a contract, and the historical columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from collectors.base import Batch, FundBalance, OpenInterest, PoolMember, Price
from collectors.liquidations.base import LiquidationGap, LiquidationRecord
from metrics.stress import LeverageDistribution
from storage import liquidation_writes as liq_store
from storage.db import write_connection
from storage.stress_inputs import load_inputs, stress_frame
from storage.writer import Store

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
OI = 1e9
TRUE = LeverageDistribution().scaled(1.5)


def record(venue: str, ts: datetime, side: str, usd: float, key: str, lower_bound: bool = False) -> LiquidationRecord:
    return LiquidationRecord(venue, "feed", "ws", key, ts, "BTCUSDT", "BTC", "USDT", side, 60_000.0, "fill",
                             usd / 60_000, None, None, False, usd, "base_x_price",
                             "sampled" if lower_bound else "complete", lower_bound, json.dumps({"k": key}), ts)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stress-storage") / "s.duckdb"
    store = Store(path)
    batch = Batch()
    records = []
    for d in range(12, 0, -1):  # 12 whole days before today, BTC moves 1..12 % down and half that up
        day = (NOW - d * DAY).replace(hour=0)
        down, up = d / 100, d / 200
        for venue in ("venuex", "sampled"):
            batch.open_interest.append(OpenInterest(venue, "BTCUSDT", day, "BTC", "USDT", "1", "base", None, False,
                                                    OI / 60_000, OI))
        batch.prices += [Price("venuex", "BTC", day, 60_000.0, "index"),
                         Price("venuex", "BTC", day + timedelta(hours=6), 60_000.0 * (1 - down), "index"),
                         Price("venuex", "BTC", day + timedelta(hours=12), 60_000.0 * (1 + up), "index")]
        records.append(record("venuex", day + timedelta(hours=7), "long", OI * TRUE.liquidated_share(down), f"l{d}"))
        records.append(record("venuex", day + timedelta(hours=13), "short", OI * TRUE.liquidated_share(up), f"s{d}"))
        records.append(record("sampled", day + timedelta(hours=7), "long", 1e6, f"x{d}", lower_bound=True))
        # funds: venuex loses d × 1,000 USDT a day; pool B shares the contract with pool A
        for pool, level in (("A", 3e6), ("B", 1e6)):
            batch.funds.append(FundBalance("venuex", pool, "USDT", day, Decimal(str(level - 1_000 * (78 - d * (d + 1) / 2))),
                                           "x", "USDT"))
    # a wild day the calibration must leave out: a feed gap covers it
    gap_day = (NOW - 3 * DAY).replace(hour=0)
    records.append(record("venuex", gap_day + timedelta(hours=8), "long", 50 * OI, "wild"))
    # today's (incomplete) day is left out too
    records.append(record("venuex", NOW - timedelta(hours=1), "long", 50 * OI, "today"))
    batch.open_interest += [OpenInterest(v, "BTCUSDT", NOW, "BTC", "USDT", "1", "base", None, False, OI / 60_000, OI)
                            for v in ("venuex", "sampled")]
    batch.pool_members += [PoolMember("venuex", "A", "BTCUSDT", "USDT"), PoolMember("venuex", "B", "BTCUSDT", "USDT")]
    store.write(batch, fetched_at=NOW)
    gap = LiquidationGap("venuex", "feed", gap_day + timedelta(hours=2), gap_day + timedelta(hours=3), "disconnect")
    with write_connection(path) as con:
        liq_store.write_batch(con, records, [("open", gap)], fetched_at=NOW)
    return path


def test_calibration_uses_complete_feeds_without_gap_days(db: Path) -> None:
    inputs = load_inputs(db, ["venuex", "sampled"], now=NOW, calibration_days=20)
    cal = inputs.calibrations["venuex"]
    assert cal.source == "calibrated" and cal.days == 11  # 12 days minus the gap day; today excluded
    assert cal.distribution.scale == pytest.approx(1.5, rel=0.01)
    assert inputs.calibrations["sampled"].source == "default"  # a sampled feed is a lower bound


def test_pools_sharing_a_contract_split_it_by_fund(db: Path) -> None:
    inputs = load_inputs(db, ["venuex"], now=NOW)
    frame = stress_frame(inputs, 20.0, "down").set_index("pool_id")
    a, b = frame.loc["A"], frame.loc["B"]
    assert a["oi_usd"] + b["oi_usd"] == pytest.approx(OI)
    assert a["oi_usd"] / b["oi_usd"] == pytest.approx(a["fund_usd"] / b["fund_usd"])
    # history: the level d days back is L − 1,000 × (78 − d(d+1)/2), so the day after it loses 1,000 × d:
    # the worst of the 11 daily changes is 12,000 USD
    assert a["worst_day_loss_usd"] == pytest.approx(12_000.0)
    assert a["history_days"] == 11
    assert a["days_covered_p99"] == pytest.approx(a["fund_usd"] / a["p99_day_loss_usd"])


def test_a_callers_cache_keeps_the_calibration_for_the_day(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The calibration reads complete days only: a long-lived caller (the dashboard, the alert engine)
    passes a cache and re-reads within the day run no calibration query; the next day fits afresh and
    the cache keeps that day only."""
    from storage import stress_history

    cache: stress_history.CalibrationCache = {}
    first = load_inputs(db, ["venuex"], NOW, calibration_cache=cache)
    assert first.calibrations["venuex"].label.startswith("calibrated: leverage ×1.50")
    reads: list[object] = []
    real = stress_history.liquidation_days
    monkeypatch.setattr(stress_history, "liquidation_days", lambda *args: reads.append(args) or real(*args))
    later = load_inputs(db, ["venuex"], NOW + timedelta(hours=3), calibration_cache=cache)
    assert later.calibrations == first.calibrations and reads == []
    load_inputs(db, ["venuex"], NOW + DAY, calibration_cache=cache)
    assert len(reads) == 1 and [key[0] for key in cache] == [(NOW + DAY).date()]
