"""Who holds what leverage on each simulated venue, and when their positions are liquidated.

Each venue has an explicit leverage distribution: the stress model's default tiers
(``metrics.stress.DEFAULT_TIERS``, one definition of the tiers and of the liquidated-share formula) with
every tier's leverage multiplied by the venue's scale below (venue quirks as data). The market model
liquidates from it: every pool × contract holds a book of positions re-formed at the first step of each
UTC day at that step's price; as the day's low (high) moves away from that open, the share of longs
(shorts) whose liquidation price lies within the move is liquidated, exactly once. So a day's liquidated
notional is ``exposure × share(1 − low/open) + exposure × share(high/open − 1)``: what
``metrics.stress.calibrate`` fits, and what the calibration test must recover.
"""

from __future__ import annotations

from dataclasses import dataclass

from metrics.stress import LeverageDistribution

DAY_MS = 86_400_000
MIN_EVENT_USD = 500.0  # smaller liquidations are carried to the next step (no dust events)
# leverage multiplier per venue (1 = the stress model's default tiers)
VENUE_LEVERAGE_SCALE: dict[str, float] = {
    "binance": 1.2, "bybit": 1.3, "okx": 1.4, "bitmex": 1.5, "hyperliquid": 1.3, "dydx": 1.0,
    "krakenfutures": 1.0, "deribit": 1.1, "gate": 1.2, "htx": 1.1, "mexc": 1.5, "binancecoinm": 1.2,
    "bitget": 1.3, "kucoinfutures": 1.2,
}
DEFAULT_SCALE = 1.0


def venue_distribution(venue: str) -> LeverageDistribution:
    """The simulated venue's leverage distribution."""
    return LeverageDistribution().scaled(VENUE_LEVERAGE_SCALE.get(venue, DEFAULT_SCALE))


@dataclass
class DayBook:
    """The positions of one contract backed by one pool during one UTC day."""

    day: int = -1
    open_px: float = 0.0
    exposure_usd: float = 0.0
    down: float = 0.0
    up: float = 0.0
    done_long: float = 0.0
    done_short: float = 0.0
    carry_long: float = 0.0
    carry_short: float = 0.0

    def step(self, dist: LeverageDistribution, t_ms: int, price: float, exposure_usd: float) -> tuple[float, float]:
        """Long and short notional (USD) liquidated by the step that ends at ``t_ms`` with ``price``."""
        day = t_ms // DAY_MS
        if day != self.day or self.open_px <= 0:
            self.day, self.open_px, self.exposure_usd = day, price, exposure_usd
            self.down = self.up = self.done_long = self.done_short = 0.0
            return 0.0, 0.0
        self.down = max(self.down, 1.0 - price / self.open_px)
        self.up = max(self.up, price / self.open_px - 1.0)
        long_share, short_share = dist.liquidated_share(self.down), dist.liquidated_share(self.up)
        self.carry_long += self.exposure_usd * (long_share - self.done_long)
        self.carry_short += self.exposure_usd * (short_share - self.done_short)
        self.done_long, self.done_short = long_share, short_share
        long_usd = short_usd = 0.0
        if self.carry_long >= MIN_EVENT_USD:
            long_usd, self.carry_long = self.carry_long, 0.0
        if self.carry_short >= MIN_EVENT_USD:
            short_usd, self.carry_short = self.carry_short, 0.0
        return long_usd, short_usd
