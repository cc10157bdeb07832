"""USD changes of a fund compare like with like: a pool whose older rows have no USD value (BitMEX's XBt
fund backfilled before the first collected BTC price) must not read as a jump of the venue's USD total
once valuation starts ("BitMEX +88,411 % in 7 d"). Such pools are left out of the change and counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from backstop.catalog import catalog
from collectors.base import Batch, FundBalance, Price
from dashboard import model
from storage import analytics
from storage.writer import Store

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
DAYS = 10


def _bitmex_db(path: Path) -> Path:
    """BitMEX: an XBt fund of ~33,000 BTC and a USDt fund of ~5 M USDT, daily for 10 days, USDt growing
    1 % a day; BTC prices collected for the last two days only (older XBt rows stay unvalued)."""
    funds, prices = [], []
    for day in range(DAYS, -1, -1):
        ts = NOW - timedelta(days=day)
        funds.append(FundBalance("bitmex", "XBt", "BTC", ts, Decimal(33_000 + day), str((33_000 + day) * 10**8), "XBt"))
        usdt = Decimal(5_000_000) * Decimal("1.01") ** (DAYS - day)
        funds.append(FundBalance("bitmex", "USDt", "USDT", ts, usdt.quantize(Decimal(1)), str(int(usdt) * 10**6), "USDt"))
        if day <= 1:
            prices.append(Price("bitmex", "BTC", ts, 90_000.0, "mark"))
    store = Store(path)
    store.write(Batch(funds=funds))
    store.write(Batch(prices=prices))  # valuation starts: rows within 36 h of a price get a USD value
    return path


def test_fund_asof_changes_are_like_for_like(tmp_path: Path) -> None:
    db = _bitmex_db(tmp_path / "b.duckdb")
    frame = analytics.fund_asof(db, ["bitmex"], [timedelta(days=7)]).set_index("offset_s")
    week = frame.loc[7 * 86_400]
    assert week["unvalued"] == 1  # the XBt pool had no USD value a week ago
    # the change covers the USDt pool only, on both sides, and says one pool was left out
    assert week["change_excluded"] == 1
    usdt_now = 5_000_000 * 1.01 ** DAYS
    usdt_then = 5_000_000 * 1.01 ** (DAYS - 7)
    assert week["change_now_usd"] == pytest.approx(usdt_now, rel=1e-6)
    assert week["change_then_usd"] == pytest.approx(usdt_then, rel=1e-6)


def test_overview_change_does_not_jump_when_valuation_starts(tmp_path: Path) -> None:
    db = _bitmex_db(tmp_path / "b.duckdb")
    asof = analytics.fund_asof(db, ["bitmex"], [timedelta(seconds=s) for s in model.CHANGE_OFFSETS_S.values()])
    empty = pd.DataFrame(columns=["venue", "ts", "fund_usd"])
    oi = pd.DataFrame(columns=["venue", "oi_usd"])
    native = analytics.fund_native_latest(db, ["bitmex"])
    summary = model.venue_summary(["bitmex"], catalog(["bitmex"]), asof, native, empty, empty, oi, None, NOW)
    row = summary.iloc[0]
    assert row["change_7d_pct"] == pytest.approx((1.01 ** 7 - 1) * 100, rel=1e-4)  # USDt's +7.2 %, not +58,000 %
    assert row["change_7d_excluded"] == 1
    assert row["change_24h_excluded"] == 0  # a day ago both pools were valued
    assert row["change_24h_pct"] == pytest.approx(
        ((33_000 * 90_000 + 5e6 * 1.01 ** 10) / (33_001 * 90_000 + 5e6 * 1.01 ** 9) - 1) * 100, rel=1e-4)
    assert "1 pool(s) without a USD value" in model.change_note(row, "7d")
    assert "left out" not in model.change_note(row, "24h")
