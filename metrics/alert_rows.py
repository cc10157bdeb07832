"""What the alert rules read and emit: the typed rows storage's rule-input queries compute in DuckDB
(``storage.rule_inputs`` lists them; one dataclass per kind of input) and the ``Signal`` a rule
returns. Plain data shared by storage (which fills them) and alerts (which judge them), so neither
imports the other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from metrics.drawdown import drawdown_pct


# -- signals ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signal:
    """A condition that holds at evaluation time. ``dedup_key`` identifies the alert it belongs to."""

    rule: str
    venue: str
    scope: str  # what inside the venue: "funds", "venue", "binance_adl_risk", a cascade id ...
    severity: str
    message: str  # one human sentence, plain text (may contain exchange text: never render as HTML)
    metrics: Mapping[str, Any] = field(default_factory=dict)  # the numbers that triggered
    data_ts: datetime | None = None  # venue timestamp of the triggering data (chart markers)

    @property
    def dedup_key(self) -> str:
        return f"{self.rule}|{self.venue}|{self.scope}"


# -- rule inputs (computed in DuckDB by storage's *_inputs modules) ------------------------------------------
@dataclass(frozen=True)
class FundWindow:
    """One fund series (venue x pool x asset) over one look-back window, in the fund's native units.

    ``start_*`` is the as-of value at the window start (the last point at or before it, if recent
    enough); ``max_*`` is over the start value and every point inside the window; ``points`` counts both.
    A window shorter than the series' cadence is not produced at all (a daily fund has no 8 h view)."""

    venue: str
    pool_id: str
    asset: str
    window_h: float
    cadence_s: float
    points: int
    max_balance: float | None
    max_ts: datetime | None
    last_balance: float
    last_ts: datetime
    start_balance: float | None = None
    start_ts: datetime | None = None
    max_usd: float | None = None
    last_usd: float | None = None
    start_usd: float | None = None

    @property
    def drawdown_pct(self) -> float | None:
        """Fall from the window maximum in %, None when the maximum is not positive (no relative scale):
        ``metrics.drawdown.drawdown_pct``, the one drawdown function."""
        if self.max_balance is None or self.max_balance <= 0:
            return None
        return drawdown_pct(self.last_balance, [self.max_balance])

    @property
    def size_usd(self) -> float | None:
        if self.max_usd is not None:
            return self.max_usd
        if self.last_usd is not None and self.last_balance and self.max_balance:
            return self.last_usd / self.last_balance * self.max_balance
        return None


@dataclass(frozen=True)
class VenueChange:
    """Like-for-like change of a venue's funds over a window: the USD-weighted mean of each live pool's
    native change (a pool that stops being published drops out rather than reading as a fall to zero)."""

    venue: str
    window_h: float
    change_pct: float
    pools: int
    start_usd: float
    end_usd: float
    last_ts: datetime | None = None


@dataclass(frozen=True)
class VenueCoverage:
    """Fund (USD) over open interest (USD) now, and the median of the daily ratio over past days."""

    venue: str
    fund_usd: float
    oi_usd: float
    fund_ts: datetime | None
    oi_ts: datetime | None
    median_ratio: float | None = None  # fraction, not %
    median_days: int = 0
    unpriced_pools: int = 0

    @property
    def ratio(self) -> float | None:
        return self.fund_usd / self.oi_usd if self.oi_usd > 0 else None


@dataclass(frozen=True)
class CascadeEvent:
    """One liquidation cascade as detected by the liquidation pipeline (table ``cascades``); ``venue`` is
    the cascade's scope: a venue key, or ``market`` for a market-wide one."""

    venue: str
    cascade_id: str
    started_at: datetime
    ended_at: datetime | None = None  # None while ongoing
    notional_usd: float | None = None
    side: str | None = None  # the liquidated side that dominated
    minutes: int | None = None
    dominant_asset: str | None = None
    price_move_pct: float | None = None
    fund_change_usd: float | None = None
    incomplete: bool = False  # touched a feed gap
    lower_bound: bool = False  # sampled feeds: the sum is a lower bound


@dataclass(frozen=True)
class AdlReading:
    """The latest ADL indicator per venue x scope x signal type (``adl_signals``)."""

    venue: str
    scope: str
    signal_type: str
    ts: datetime
    level: str | None = None
    value: float | None = None
    threshold: float | None = None
    distance: float | None = None


@dataclass(frozen=True)
class Freshness:
    """One collector job (venue x dataset): its last runs and its newest stored venue timestamp."""

    venue: str
    dataset: str
    poll_interval_s: float
    cadence_s: float  # how often the venue publishes a new value (capability)
    first_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_status: str | None = None
    last_error_class: str | None = None
    newest_data_ts: datetime | None = None


@dataclass(frozen=True)
class StreamGap:
    """An open gap of a liquidation stream (``liquidation_gaps`` without an end): the monitor is blind."""

    venue: str
    stream: str
    started_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class InventoryPosition:
    """One open position of a backstop at its newest snapshot, with the holder's equity at that snapshot."""

    venue: str
    holder: str
    contract: str
    ts: datetime
    size: float  # signed base quantity
    notional_usd: float | None
    unrealised_pnl: float | None
    equity_usd: float | None  # the holder's fund row (USD) at the same snapshot

    @property
    def share_pct(self) -> float | None:
        """Position notional as a % of the holder's equity (None without a positive equity)."""
        if self.notional_usd is None or self.equity_usd is None or self.equity_usd <= 0:
            return None
        return self.notional_usd / self.equity_usd * 100.0
