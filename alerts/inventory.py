"""Rule ``inventory_large``: a backstop (insurance fund, liquidator vault) holds a position that is large
against its own equity.

A backstop that has just taken over a huge position (Hyperliquid, 12 Mar 2025: a ~$286 M ETH long
liquidated into HLP) is in danger before its balance moves: the balance only falls once the position is
closed at a loss. Pure, like ``alerts.fund_rules``: typed rows in (read by ``storage.positions``), signals out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alerts.parameters import RuleParams
from metrics.alert_rows import InventoryPosition, Signal  # its input row (filled by storage.positions)
from metrics.formatting import fmt_compact, venue_label

__all__ = ["INVENTORY_LARGE", "InventoryParams", "InventoryPosition", "inventory_large"]

INVENTORY_LARGE = "inventory_large"


@dataclass(frozen=True)
class InventoryParams(RuleParams):
    threshold_pct: float = 50.0  # fire when one position's notional exceeds this % of the holder's equity
    critical_pct: float = 200.0  # critical above this (the backstop could not absorb a 50 % adverse move)
    min_notional_usd: float = 1_000_000.0  # ignore small leftovers
    lookback_h: float = 2.0  # snapshots older than this are ignored (the stale rule covers silence)


def inventory_large(positions: Sequence[InventoryPosition], params: InventoryParams,
                    labels: Mapping[str, str] = {}) -> list[Signal]:  # noqa: B006
    """One signal per venue x holder: its largest position when that position's notional is at least
    ``threshold_pct`` % of the holder's equity (and at least ``min_notional_usd``); critical from
    ``critical_pct`` %. A holder with no positive equity and a position above the floor is critical."""
    if not params.enabled:
        return []
    worst: dict[tuple[str, str], InventoryPosition] = {}
    for row in positions:
        if row.notional_usd is None or row.notional_usd < params.min_notional_usd:
            continue
        key = (row.venue, row.holder)
        if key not in worst or row.notional_usd > (worst[key].notional_usd or 0.0):
            worst[key] = row
    signals = []
    for (venue, holder), row in sorted(worst.items()):
        share = row.share_pct
        insolvent = row.equity_usd is not None and row.equity_usd <= 0
        if not insolvent and (share is None or share < params.threshold_pct):
            continue
        critical = insolvent or (share is not None and share >= params.critical_pct)
        side = "long" if row.size > 0 else "short"
        notional = row.notional_usd or 0.0
        equity = "no positive equity" if share is None else f"{share:,.0f} % of its {fmt_compact(row.equity_usd or 0.0)} USD equity"
        pnl = f"; unrealised {fmt_compact(row.unrealised_pnl)} USD" if row.unrealised_pnl is not None else ""
        signals.append(Signal(
            rule=INVENTORY_LARGE, venue=venue, scope=holder,
            severity="critical" if critical else params.severity,
            message=(f"{venue_label(labels, venue)} {holder} holds a {side} {row.contract} position of "
                     f"{fmt_compact(notional)} USD, {equity}{pnl}"),
            metrics={"holder": holder, "contract": row.contract, "size": row.size, "notional_usd": notional,
                     "equity_usd": row.equity_usd, "share_pct": share, "unrealised_pnl": row.unrealised_pnl,
                     "threshold_pct": params.threshold_pct},
            data_ts=row.ts,
        ))
    return signals
