"""Backstop inventory in the simulator: the positions a fund or liquidator vault holds (Hyperliquid's HLP
Liquidator ``assetPositions``, Orderly's insurance-fund ``rows``), driven by the market model's prices and
its scenario plan.

Each holder has a small *standing* position (what the backstop took over earlier and has not closed) and,
when the scenario hits its venue (``venue-drain:V`` / ``adl:V``) or the whole market (``cascade``), a
*takeover*: shortly after the event's onset it takes over one large position from a liquidated account,
holds it for a while and unwinds it by the event's end. Calibration of the Hyperliquid takeover:
12 Mar 2025, a ~$270-307 M ETH long liquidated into HLP (``/work/shared/incidents.md`` #8, crypto.report);
the simulated one is $286 M of ETH at the takeover price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from simulator.market import Market
from simulator.market_state import DAY_MS, MINUTE_MS

TAKEOVER_DELAY_MS = 20 * MINUTE_MS  # after the event's onset
HOLD_SHARE = 0.4  # held whole for this share of the rest of the event, then unwound linearly


@dataclass(frozen=True)
class Holding:
    """One position of a backstop account: signed base size, entry price (USD)."""

    coin: str  # the market model's asset (ETH)
    size: Decimal  # + long, - short
    entry: Decimal

    def mark(self, market: Market) -> Decimal:
        return market.price(self.coin)

    def notional(self, market: Market) -> Decimal:
        return abs(self.size) * self.mark(market)

    def unrealised(self, market: Market) -> Decimal:
        return self.size * (self.mark(market) - self.entry)


@dataclass(frozen=True)
class InventoryPlan:
    """A holder's standing positions (coin, signed USD notional at entry, entry age in days) and its
    takeover (coin, signed USD notional): what a venue module declares as data."""

    standing: tuple[tuple[str, float, float], ...]
    takeover: tuple[str, float] | None = None


def takeover_fraction(market: Market, venue_key: str, now_ms: int) -> float:
    """Share of the takeover still held at ``now_ms``: 0 before it (and without an event on this venue),
    1 while held, falling linearly to 0 at the event's end."""
    plan = market.plan
    if not (plan.name == "cascade" or plan.venue == venue_key):
        return 0.0
    taken = plan.onset_ms + TAKEOVER_DELAY_MS
    if now_ms < taken or now_ms >= plan.end_ms or plan.end_ms <= taken:
        return 0.0
    hold_until = taken + HOLD_SHARE * (plan.end_ms - taken)
    if now_ms <= hold_until:
        return 1.0
    return max(0.0, 1.0 - (now_ms - hold_until) / (plan.end_ms - hold_until))


def holdings(market: Market, venue_key: str, inventory: InventoryPlan, size_places: int = 4) -> list[Holding]:
    """The holder's positions now: standing ones (entered ``age`` days before the market's start) plus
    the part of the takeover still held (entered at the price when it was first seen held: kept in
    ``venue.extra`` so the entry never moves)."""
    quantum = Decimal(1).scaleb(-size_places)
    out = []
    for coin, usd, age_days in inventory.standing:
        entry = market.price_at(coin, market.start_ms - int(age_days * DAY_MS))
        out.append(Holding(coin, (Decimal(repr(usd)) / entry).quantize(quantum), entry))
    if inventory.takeover is not None:
        fraction = takeover_fraction(market, venue_key, market.now_ms())
        if fraction > 0:
            coin, usd = inventory.takeover
            extra = market.venue(venue_key).extra
            entry = extra.setdefault("takeover_entry", market.price(coin))
            size = (Decimal(repr(usd)) * Decimal(repr(fraction)) / entry).quantize(quantum)
            if size:
                out.append(Holding(coin, size, entry))
    return out
