"""A small, demo-like Backstop database for the dashboard tests, written through ``storage.writer.Store``.

Six venues, eight days of hourly fund values (Bybit also has a 5-minute isolated pool), hourly open
interest, BTC prices for BitMEX's BTC fund, and collection runs. Shaped so each page has something to show:
Gate's fund fell 18 % 20 h ago (divergence), HTX stopped 5 days ago (stale, "blind on HTX"), and one error
message looks like a spreadsheet formula (CSV neutralising). ``Fixture`` keeps the raw points so tests
compute expected figures on their own, without the dashboard's SQL.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from collectors.base import Batch, FundBalance, OpenInterest, PoolMember, Price
from storage.batch_writes import RunRecord
from storage.db import read_connection
from storage.writer import Store

HOUR = timedelta(hours=1)
BTC_PRICE = 65_000.0
FORMULA_ERROR = '=HYPERLINK("http://evil.example","click")'


@dataclass
class Fixture:
    path: Path
    now: datetime  # newest timestamp written (fresh venues)
    # venue -> pool/asset -> [(ts, usd value)] (oldest first)
    funds_usd: dict[str, dict[tuple[str, str], list[tuple[datetime, float]]]] = field(default_factory=dict)
    # venue -> symbol -> [(ts, oi usd)]
    oi_usd: dict[str, dict[str, list[tuple[datetime, float]]]] = field(default_factory=dict)
    members: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (venue, pool) -> symbols

    def fund_at(self, venue: str, at: datetime, max_gap: timedelta = timedelta(days=3)) -> float:
        """Independent as-of total: per pool the newest point ≤ at (not older than max_gap), summed."""
        total = 0.0
        for points in self.funds_usd[venue].values():
            before = [v for ts, v in points if ts <= at and ts > at - max_gap]
            if before:
                total += before[-1]
        return total

    def oi_at(self, venue: str, at: datetime, symbols: list[str] | None = None) -> float:
        total = 0.0
        for symbol, points in self.oi_usd[venue].items():
            if symbols is not None and symbol not in symbols:
                continue
            before = [v for ts, v in points if ts <= at]
            if before:
                total += before[-1]
        return total


# venue -> (pool, asset, level now (native), 24 h change %, 7 d change %)
FUND_SHAPES: dict[str, list[tuple[str, str, float, float, float]]] = {
    "binance": [("BTCUSDT", "USDT", 1_000_000_000.0, 0.5, 1.0)],
    "okx": [("SWAP:BTC-USDT", "USDT", 500_000_000.0, 0.3, 0.8)],
    "bybit": [("USDT", "USDT", 300_000_000.0, 0.4, 0.9)],
    "gate": [("usdt", "USDT", 82_000_000.0, -18.0, -17.0)],
    "bitmex": [("XBt", "BTC", 29_000.0, 0.2, 0.5)],
    "htx": [("BTC-USDT", "USDT", 21_000_000.0, 0.1, 0.2)],
}
OI_SHAPES: dict[str, dict[str, float]] = {  # venue -> symbol -> OI USD now
    "binance": {"BTCUSDT": 9e9, "ETHUSDT": 4e9, "SOLUSDT": 1e9},
    "okx": {"BTC-USDT-SWAP": 6e9, "ETH-USDT-SWAP": 3e9},
    "bybit": {"BTCUSDT": 7e9, "1000PEPEUSDT": 2e8},
    "gate": {"BTC_USDT": 1.5e9, "ETH_USDT": 5e8},
    "bitmex": {"XBTUSD": 8e8},
    "htx": {"BTC-USDT": 6e8},
}
STALE_VENUE = "htx"
STALE_FOR = timedelta(days=5)


def _level(now_level: float, change_24h: float, change_7d: float, hours_ago: float, venue: str) -> float:
    """Piecewise-linear path hitting the given 24 h and 7 d changes exactly at whole hours."""
    at_24h = now_level / (1 + change_24h / 100)
    at_7d = now_level / (1 + change_7d / 100)
    if venue == "gate":  # flat, then an 18 % step 20 h ago
        return now_level if hours_ago <= 20 else at_24h + (at_7d - at_24h) * max(0.0, hours_ago - 24) / 144
    if hours_ago <= 24:
        return now_level + (at_24h - now_level) * hours_ago / 24
    return at_24h + (at_7d - at_24h) * min(1.0, (hours_ago - 24) / 144)


def build_fixture(path: Path, now: datetime | None = None) -> Fixture:
    """Write the fixture database at ``path`` (must not exist). ``now`` defaults to the clock (rounded)."""
    now = now or datetime.now(UTC).replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 5)
    fx = Fixture(path, now)
    store = Store(path)
    fetched = now
    hours = range(0, 8 * 24 + 1)
    for venue, pools in FUND_SHAPES.items():
        end = now - (STALE_FOR if venue == STALE_VENUE else timedelta(0))
        batch = Batch()
        fx.funds_usd[venue] = {}
        for pool, asset, level, c24, c7 in pools:
            points = []
            for h in reversed(hours):
                ts = end - h * HOUR
                balance = round(_level(level, c24, c7, h, venue), 6)
                batch.funds.append(FundBalance(venue, pool, asset, ts, Decimal(repr(balance)), repr(balance), asset,
                                               source="history"))
                points.append((ts, balance * (BTC_PRICE if asset == "BTC" else 1.0)))
            fx.funds_usd[venue][(pool, asset)] = points
        if venue == "bybit":  # an isolated pool published every 5 minutes, flat
            iso = []
            for m in reversed(range(0, 8 * 24 * 12 + 1)):
                ts = end - m * timedelta(minutes=5)
                batch.funds.append(FundBalance(venue, "1000PEPEUSDT", "USDT", ts, Decimal("3100000"), "3100000",
                                               "USDT"))
                iso.append((ts, 3_100_000.0))
            fx.funds_usd[venue][("1000PEPEUSDT", "USDT")] = iso
        fx.oi_usd[venue] = {}
        for symbol, usd_now in OI_SHAPES[venue].items():
            points = []
            for h in reversed(hours):
                ts = end - h * HOUR
                usd = usd_now * (1 + 0.02 * math.sin(h / 7))
                base = symbol[:3] if not symbol.startswith("1000") else "PEPE"
                price = BTC_PRICE if base in ("BTC", "XBT") else 3_200.0
                batch.open_interest.append(OpenInterest(venue, symbol, ts, base, "USDT", f"{usd / price:.6f}", "base",
                                                        None, False, usd / price, usd))
                points.append((ts, usd))
            fx.oi_usd[venue][symbol] = points
        # pool membership: first pool covers every symbol except the isolated one
        first_pool, first_asset = pools[0][0], pools[0][1]
        covered = [s for s in OI_SHAPES[venue] if not (venue == "bybit" and s == "1000PEPEUSDT")]
        batch.pool_members += [PoolMember(venue, first_pool, s, first_asset) for s in covered]
        fx.members[(venue, first_pool)] = covered
        if venue == "bybit":
            batch.pool_members.append(PoolMember(venue, "1000PEPEUSDT", "1000PEPEUSDT", "USDT"))
            fx.members[(venue, "1000PEPEUSDT")] = ["1000PEPEUSDT"]
        if venue == "bitmex":
            batch.prices += [Price("bitmex", "BTC", end - h * HOUR, BTC_PRICE, "index") for h in hours]
        store.write(batch, fetched_at=fetched)
    _write_runs(store, now)
    return fx


def _write_runs(store: Store, now: datetime) -> None:
    for venue in FUND_SHAPES:
        stale = venue == STALE_VENUE
        for dataset in ("funds", "open_interest"):
            for k in range(6):
                started = now - (STALE_FOR if stale else timedelta(0)) - k * timedelta(minutes=5)
                error = (venue == "gate" and dataset == "funds" and k == 0) or (stale and k < 3)
                run = RunRecord(uuid.uuid4().hex, venue, dataset, "poll", started, started + timedelta(seconds=2),
                                "error" if error else "ok",
                                ("PayloadError" if venue == "gate" else "VenueTimeout") if error else None,
                                (FORMULA_ERROR if venue == "gate" else "GET timed out after 20 s") if error else None,
                                1 if not error else 4)
                store.write(Batch(), run=run, fetched_at=started)


def build_empty(path: Path) -> Path:
    """A migrated database with no rows at all."""
    Store(path).write(Batch())
    return path


def test_fixture_is_what_the_tests_assume(tmp_path: Path) -> None:
    fx = build_fixture(tmp_path / "fx.duckdb")
    with read_connection(fx.path) as con:
        funds = con.execute("SELECT count(*), count(usd_value) FROM fund_balances").fetchall()[0]
        venues = con.execute("SELECT count(DISTINCT venue) FROM open_interest").fetchall()[0][0]
        errors = con.execute("SELECT count(*) FROM collection_runs WHERE status = 'error'").fetchall()[0][0]
    assert funds[0] == funds[1] > 6 * 193  # every fund row got a USD value (stable or BTC price)
    assert venues == 6
    assert errors == 1 + 2 * 3
    change = fx.fund_at("gate", fx.now) / fx.fund_at("gate", fx.now - timedelta(hours=24)) - 1
    assert abs(change * 100 + 18.0) < 1e-6
