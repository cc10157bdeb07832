"""The simulated market every fake venue serves from.

State is plain data (prices, contracts with OI and funding, fund pools with their published history,
fund flows, liquidations) that tests may set directly. ``Market.advance()`` moves it along a simulated
clock; with ``speed=0`` the clock is frozen and nothing moves (tests of exact values).
Each venue module in ``simulator.venues`` declares its contracts and pools in ``build(market)`` and
its HTTP routes in ``routes(market)``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

BASE_PRICES: dict[str, Decimal] = {
    "BTC": Decimal("65000"), "ETH": Decimal("3200"), "SOL": Decimal("150"), "BNB": Decimal("580"),
    "XRP": Decimal("0.55"), "DOGE": Decimal("0.12"), "USDT": Decimal("1"), "USDC": Decimal("1"),
    "USD": Decimal("1"),
}


@dataclass
class SimContract:
    symbol: str  # venue-native id
    base: str
    quote: str
    settle: str
    contract_size: Decimal  # base per contract (linear) or USD per contract (inverse)
    inverse: bool
    oi_contracts: Decimal
    funding_rate: Decimal = Decimal("0.0001")
    funding_interval_h: int = 8
    extra: dict[str, Any] = field(default_factory=dict)

    def oi_base(self, price: Decimal) -> Decimal:
        if self.inverse:
            return self.oi_contracts * self.contract_size / price
        return self.oi_contracts * self.contract_size

    def oi_usd(self, price: Decimal) -> Decimal:
        if self.inverse:
            return self.oi_contracts * self.contract_size
        return self.oi_contracts * self.contract_size * price


@dataclass
class SimPool:
    """One insurance fund / pool. ``history`` holds the *published* points (ts_ms, balance), oldest
    first; the current balance is ``history[-1]`` for venues that publish at a cadence."""

    pool_id: str
    asset: str
    symbols: list[str]
    balance: Decimal
    cadence_s: int = 86_400
    history: list[tuple[int, Decimal]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def published(self) -> tuple[int, Decimal]:
        return self.history[-1]


@dataclass
class SimFlow:
    pool_id: str
    asset: str
    ts_ms: int
    flow_type: str
    amount: Decimal
    balance_after: Decimal
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimLiquidation:
    liq_id: str
    symbol: str
    ts_ms: int
    position_side: str  # long | short
    qty_contracts: Decimal
    bankruptcy_price: Decimal
    fill_price: Decimal
    fund_delta: Decimal  # + surplus into the fund, - deficit drawn from it (in pool asset)


@dataclass
class SimVenue:
    key: str
    contracts: dict[str, SimContract] = field(default_factory=dict)
    pools: dict[str, SimPool] = field(default_factory=dict)
    flows: list[SimFlow] = field(default_factory=list)
    liquidations: list[SimLiquidation] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Market:
    """Deterministic from ``seed``. ``speed`` = simulated seconds per real second (0 = frozen)."""

    def __init__(self, seed: int = 1, speed: float = 0.0, start_ms: int | None = None,
                 history_days: int = 90, scenario: str = "calm",
                 venues: list[str] | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.speed = speed
        self.scenario = scenario
        self.history_days = history_days
        self.start_ms = start_ms if start_ms is not None else (int(time.time() * 1000) // MINUTE_MS) * MINUTE_MS
        self._real_start = time.monotonic()
        self.prices: dict[str, Decimal] = dict(BASE_PRICES)
        self.venues: dict[str, SimVenue] = {}
        from simulator.venues import SIM_VENUES, venue_module

        for key in venues or list(SIM_VENUES):
            self.venues[key] = venue_module(key).build(self)
        self.frozen_ms: int | None = None

    # -- clock -----------------------------------------------------------------------------------
    def now_ms(self) -> int:
        if self.frozen_ms is not None:
            return self.frozen_ms
        elapsed = (time.monotonic() - self._real_start) * self.speed
        return self.start_ms + int(elapsed * 1000)

    def venue(self, key: str) -> SimVenue:
        return self.venues[key]

    def price(self, asset: str) -> Decimal:
        return self.prices.get(asset, Decimal("1"))

    def advance(self) -> None:
        """Bring the state up to ``now_ms()``; the market model (scenarios) hooks in here."""

    # -- helpers for venue modules ------------------------------------------------------------------
    def make_history(self, balance: Decimal, cadence_s: int, drift: float = 0.0005,
                     vol: float = 0.004) -> list[tuple[int, Decimal]]:
        """A deterministic published series ending at ``balance`` at the latest cadence boundary."""
        step_ms = cadence_s * 1000
        end = (self.start_ms // step_ms) * step_ms
        points = max(1, (self.history_days * DAY_MS) // step_ms)
        values = [float(balance)]
        for _ in range(points - 1):
            values.append(values[-1] / (1 + drift + self.rng.gauss(0, vol)))
        values.reverse()
        quantum = Decimal("0.00000001")
        return [
            (end - (points - 1 - i) * step_ms, Decimal(repr(v)).quantize(quantum))
            for i, v in enumerate(values)
        ]

    def candles(self, asset: str, since_ms: int | None, limit: int,
                interval_ms: int = DAY_MS) -> list[tuple[int, float, float, float, float, float]]:
        """Daily OHLCV for ``asset`` (deterministic per asset and day), for price backfills."""
        now = self.now_ms()
        end = (now // interval_ms) * interval_ms
        start = since_ms if since_ms is not None else end - (limit - 1) * interval_ms
        start = (start // interval_ms) * interval_ms
        rows = []
        base = float(self.price(asset))
        t = start
        while t <= end and len(rows) < limit:
            days_back = (end - t) / DAY_MS
            local = random.Random(f"{self.seed}:{asset}:{t}")
            close = base * (1 - 0.002 * days_back / 10) * (1 + local.gauss(0, 0.01))
            rows.append((t, close * 0.995, close * 1.01, close * 0.985, close, 1000.0))
            t += interval_ms
        return rows
