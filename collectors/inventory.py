"""The backstop's own positions ("inventory"): what a venue's insurance fund or liquidator vault holds after
taking over liquidated accounts (Hyperliquid's HLP Liquidator ``assetPositions``, Orderly's insurance-fund
``rows``). A backstop that suddenly holds a huge position is an earlier warning than its balance.

Positions come from the same payload as the holder's fund row (``FundBalance`` with ``pool_id == holder``)
and carry the same timestamp, so one funds job writes both in one transaction: the positions of the newest
snapshot fund row are the holder's current inventory, and no positions at that timestamp means flat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

BACKSTOP_POSITIONS = "backstop_positions"  # Batch.extra key (and the writer's table key)


@dataclass(frozen=True, slots=True)
class BackstopPosition:
    """One open position of a backstop account at a snapshot. Field order = table column order."""

    venue: str
    holder: str  # the fund row's pool_id (its balance is the holder's equity)
    contract: str  # venue-native contract id (ETH, PERP_ETH_USDC)
    ts: datetime  # the snapshot's venue timestamp (= the holder's fund row ts)
    size: float  # signed base quantity: + long, - short
    size_raw: str  # as served
    entry_price: float | None
    mark_price: float | None
    unrealised_pnl: float | None  # in the settle asset
    notional_usd: float | None  # |size| x mark (the venue's own position value where it states one)
    settle_asset: str

    @property
    def side(self) -> str:
        return "long" if self.size > 0 else "short"
