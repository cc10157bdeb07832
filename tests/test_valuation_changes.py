"""USD changes of a fund compare like with like: a pool whose older rows have no USD value (BitMEX's XBt
fund backfilled before the first collected BTC price) must not read as a jump of the venue's USD total
once valuation starts ("BitMEX +88,411 % in 7 d")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from collectors.base import Batch, FundBalance, Price
from storage.assessments import load_assessments
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


def test_changes_do_not_jump_when_valuation_starts(tmp_path: Path) -> None:
    """The assessment (what the Overview, the alerts, the API and the exports show): each pool's change is
    native, with a USD change only where both ends have a USD value; the venue's change weights its pools'
    native changes, so BitMEX's XBt pool becoming valued reads as nothing, not +58,000 %."""
    db = _bitmex_db(tmp_path / "b.duckdb")
    found = {(a.pool_id, a.asset): a for a in load_assessments(db) if a.venue == "bitmex"}
    usdt, xbt, venue = found[("USDt", "USDT")], found[("XBt", "BTC")], next(a for a in found.values() if a.is_venue)
    assert usdt.change_pct("7d") == pytest.approx((1.01 ** 7 - 1) * 100, rel=1e-5)  # +7.21 % (whole USDT)
    assert xbt.change_pct("7d") == pytest.approx((33_000 / 33_007 - 1) * 100, rel=1e-6)
    assert xbt.change_usd("7d") is None  # no USD value a week ago: no USD change, not a jump from zero
    assert xbt.change_usd("24h") == pytest.approx(-90_000.0, rel=1e-6)  # valued at both ends: 1 BTC less
    assert venue.fund_usd == pytest.approx(33_000 * 90_000 + 5e6 * 1.01 ** DAYS, rel=1e-6)
    week = venue.change_pct("7d")
    assert week is not None and abs(week) < 0.1  # the BTC pool dominates and barely moved
