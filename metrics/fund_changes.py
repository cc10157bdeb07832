"""Classified fund changes and the own-history anomaly score (pure).

Every change between two consecutive observations of a pool gets one kind:

* ``trading`` - liquidation losses or surpluses (the only kind the drawdown and anomaly rules judge);
* ``injection`` - a top-up by the venue;
* ``transfer`` - a governance or internal transfer out;
* ``restructure`` - a pool appears, disappears, splits or changes its member contracts (never pages);
* ``valuation`` - the USD value moved with the asset price while the native balance did not.

Published kinds are taken as published (OKX's typed rows, Deribit's bankruptcy events: ``inferred`` False);
the rest are inferred from the numbers (a new or vanished pool id, a round-number jump far larger than
the pool's usual move) and marked ``inferred``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

TRADING, INJECTION, TRANSFER, RESTRUCTURE, VALUATION = "trading", "injection", "transfer", "restructure", "valuation"
CHANGE_KINDS: tuple[str, ...] = (TRADING, INJECTION, TRANSFER, RESTRUCTURE, VALUATION)

# Published flow types (fund_flows.flow_type) -> change kind.
PUBLISHED_KINDS: dict[str, str] = {
    "liquidation_balance_deposit": TRADING,  # OKX: liquidation surplus paid in
    "bankruptcy_loss": TRADING,  # OKX: a bankrupt position's loss paid out
    "adl": TRADING,  # OKX: ADL event rows
    "platform_revenue": INJECTION,  # OKX: the platform tops the fund up
    "bankruptcy_funded": TRADING,  # Deribit: a bankruptcy paid by the fund
    "socialized_loss": TRADING,  # Deribit: what the fund could not pay, socialised
}
MAD_SCALE = 1.4826
# The own-history anomaly: a trading change this many robust z below the fund's usual changes, and a fall of
# at least this many percent, is unusual (the alert rule's defaults and the assessment's "stressed").
ANOMALY_Z = 8.0
ANOMALY_MIN_CHANGE_PCT = 2.0


@dataclass(frozen=True)
class ChangeContext:
    """What the classifier knows about one step besides the two balances."""

    published_kind: str | None = None  # from the venue's typed rows in the interval (largest by amount)
    usual_move: float | None = None  # median |native change| of the pool's past steps (native units)
    jump_multiple: float = 10.0  # a round-number step this many usual moves large is a top-up / transfer


@dataclass(frozen=True)
class Classified:
    kind: str
    inferred: bool
    reason: str


def is_round(amount: float) -> bool:
    """A round figure a person would choose for a top-up: 500, 2,500, 30,000,000 (≥ 2 trailing zeros
    and at most two significant digits)."""
    value = abs(amount)
    if value < 100 or not math.isfinite(value):
        return False
    exponent = int(math.floor(math.log10(value)))
    scale = 10 ** max(exponent - 1, 2)
    return bool(abs(value / scale - round(value / scale)) < 1e-9 * max(1.0, value / scale))


def is_round_share(amount: float, balance: float) -> bool:
    """A round amount at the scale of the balance (a multiple of a tenth of its order of magnitude): a
    decided transfer out, not the ragged sum of liquidation losses (which may look round in thousands)."""
    if balance <= 0 or not math.isfinite(balance) or not math.isfinite(amount) or amount == 0:
        return False
    unit = 10.0 ** (math.floor(math.log10(balance)) - 1)
    ratio = abs(amount) / unit
    return abs(ratio - round(ratio)) < 1e-9 * max(1.0, ratio)


def classify(prev_native: float | None, native: float | None, prev_usd: float | None = None,
             usd: float | None = None, context: ChangeContext | None = None) -> Classified:
    """The kind of the step prev -> current (see the module docstring)."""
    context = context or ChangeContext()
    if prev_native is None and native is not None:
        return Classified(RESTRUCTURE, True, "pool appears")
    if native is None:
        return Classified(RESTRUCTURE, True, "pool no longer published")
    if context.published_kind is not None:
        kind = PUBLISHED_KINDS.get(context.published_kind, TRADING)
        return Classified(kind, False, f"published as {context.published_kind}")
    assert prev_native is not None
    delta = native - prev_native
    if abs(delta) <= 1e-12 * max(abs(prev_native), 1.0):
        moved = prev_usd is not None and usd is not None and abs(usd - prev_usd) > 1e-9 * max(abs(prev_usd), 1.0)
        return Classified(VALUATION if moved else TRADING, False, "native balance unchanged")
    usual = context.usual_move
    if usual is not None and usual > 0 and abs(delta) >= context.jump_multiple * usual:
        if delta > 0 and is_round(delta):
            return Classified(INJECTION, True, "round-number step in, far above the usual move")
        if delta < 0 and is_round_share(delta, prev_native):
            return Classified(TRANSFER, True, "round-number step out, far above the usual move")
    return Classified(TRADING, False, "balance change")


def robust_own_z(value: float, history: Sequence[float], floor: float = 0.0) -> float | None:
    """(value − median(history)) ÷ max(1.4826 · MAD(history), floor): how unusual a change is for this
    fund. None without history."""
    finite = [h for h in history if math.isfinite(h)]
    if not finite or not math.isfinite(value):
        return None
    med = statistics.median(finite)
    mad = statistics.median([abs(h - med) for h in finite])
    scale = max(MAD_SCALE * mad, floor)
    if scale <= 0:
        return 0.0 if value == med else math.copysign(math.inf, value - med)
    return (value - med) / scale


def usual_move(history: Sequence[float]) -> float | None:
    """Median absolute change: the fund's usual move over the window (same units as the history)."""
    finite = [abs(h) for h in history if math.isfinite(h)]
    return statistics.median(finite) if finite else None
