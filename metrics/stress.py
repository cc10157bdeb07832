"""Stress test of insurance funds: how much of each fund would a one-day move of X % consume? (pure)

An estimate, not a forecast. The model (README "Stress test"):

* **Liquidated notional.** Open interest (one side, USD) per contract × the share of positions whose
  liquidation price lies within the move, from a leverage distribution: tiers of (leverage, share of OI);
  the rest of the OI is unlevered or hedged and never liquidated. A tier of leverage L sits at most
  ``d = 1/L − maintenance_margin`` from its liquidation price; entries are spread, so its positions'
  distances are uniform on ``[(1 − entry_spread)·d, d]``. A down move liquidates longs, an up move shorts.
* **Fills.** The loss beyond the bankruptcy price per liquidated dollar grows with the liquidated
  notional relative to the usual daily volume (approximated as ``daily_turnover × OI``: Backstop does not
  collect trading volume): ``rate = calm_deficit_rate + fill_degradation × liquidated / usual volume``,
  capped at ``max_deficit_rate``.
* **Consumption** = Σ liquidated × rate (USD), as % of the fund *after* the move (a BTC fund loses USD
  value as BTC falls) and in the fund's native unit. ``ADL likely`` when consumption exceeds the fund.
* **Scope.** ``all``: every contract moves (crypto moves are correlated); ``family``: only contracts of
  the fund's own asset family (a stablecoin fund's family is its largest-OI base asset).
* **Calibration.** One number per venue, the leverage scale ``s`` (every tier's leverage × s), fitted
  by least squares of recorded daily liquidated notional against OI × share(daily move). Daily moves
  rarely reach the low-leverage tiers' distances, so tier shapes are not identifiable from history; the
  scale is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

DIRECTIONS = ("down", "up")
SCOPES = ("all", "family")
# (leverage, share of one side's OI); the remaining 72.2 % is unlevered or hedged. Chosen so that a 2 % day
# liquidates ~0.4 % of OI, 10 % ~4 %, 20 % ~12 %, 40 % ~24 % (the order of recent cascades' reported totals)
DEFAULT_TIERS: tuple[tuple[float, float], ...] = (
    (2.0, 0.10), (3.0, 0.08), (5.0, 0.06), (10.0, 0.03), (25.0, 0.005), (50.0, 0.002), (100.0, 0.001),
)
DEFAULT_MAINTENANCE_MARGIN = 0.005
DEFAULT_ENTRY_SPREAD = 0.5
DEFAULT_CALM_DEFICIT_RATE = 0.005  # 0.5 % of notional beyond bankruptcy at calm size
DEFAULT_FILL_DEGRADATION = 0.5  # + 0.5 % of notional per 1 % of usual daily volume liquidated
DEFAULT_MAX_DEFICIT_RATE = 0.15
DEFAULT_DAILY_TURNOVER = 2.0  # usual daily volume ≈ 2 × OI
MIN_CALIBRATION_DAYS = 7
SCALE_RANGE = (0.1, 10.0)
ASSET_ALIASES = {"XBT": "BTC", "XBt": "BTC", "WBTC": "BTC", "WETH": "ETH", "STETH": "ETH", "GWei": "ETH"}


def asset_family(asset: str) -> str:
    """BTC for XBT/XBt/WBTC, PEPE for 1000PEPE: contracts and funds of one asset family move together."""
    name = ASSET_ALIASES.get(asset, asset).upper()
    name = ASSET_ALIASES.get(name, name)
    for prefix in ("1000000", "10000", "1000"):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


@dataclass(frozen=True)
class LeverageDistribution:
    """Tiers of (leverage, share of OI); ``scale`` multiplies every tier's leverage (the calibrated knob)."""

    tiers: tuple[tuple[float, float], ...] = DEFAULT_TIERS
    maintenance_margin: float = DEFAULT_MAINTENANCE_MARGIN
    entry_spread: float = DEFAULT_ENTRY_SPREAD
    scale: float = 1.0

    def __post_init__(self) -> None:
        if any(lev <= 0 or share < 0 for lev, share in self.tiers):
            raise ValueError("leverage tiers need leverage > 0 and share >= 0")
        if sum(share for _, share in self.tiers) > 1 + 1e-9:
            raise ValueError("leverage tier shares add up to more than 1 (of the open interest)")
        if not 0 <= self.entry_spread <= 1 or not 0 <= self.maintenance_margin < 0.5 or self.scale <= 0:
            raise ValueError("entry_spread must be in [0, 1], maintenance_margin in [0, 0.5), scale > 0")

    def scaled(self, scale: float) -> LeverageDistribution:
        return replace(self, scale=scale)

    def distances(self) -> list[tuple[float, float]]:
        """(max distance to liquidation as a fraction of price, share of OI) per tier."""
        out = []
        for lev, share in self.tiers:
            out.append((max(1.0 / (lev * self.scale) - self.maintenance_margin, 1e-6), share))
        return out

    def liquidated_share(self, move: float) -> float:
        """Share of OI whose liquidation price lies within a move of ``move`` (a fraction, ≥ 0)."""
        if move <= 0:
            return 0.0
        total = 0.0
        for far, share in self.distances():
            near = far * (1.0 - self.entry_spread)
            if move >= far:
                total += share
            elif move > near:
                total += share * (move - near) / (far - near)
        return total

    def liquidated_shares(self, moves: npt.NDArray[np.float64],
                          scales: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.float64]:
        """``liquidated_share`` of every move at once, with the same arithmetic element by element; with
        ``scales``, one row per leverage scale (the calibration's whole search grid in one pass)."""
        scale = np.asarray([self.scale] if scales is None else scales, dtype=np.float64)[:, None]
        total = np.zeros((scale.shape[0], moves.shape[0]))
        for lev, share in self.tiers:
            far = np.maximum(1.0 / (lev * scale) - self.maintenance_margin, 1e-6)
            near = far * (1.0 - self.entry_spread)
            with np.errstate(divide="ignore", invalid="ignore"):  # far == near: that branch is never taken
                partial = share * (moves - near) / (far - near)
            total += np.where(moves >= far, share, np.where(moves > near, partial, 0.0))
        total = np.where(moves > 0, total, 0.0)
        return total[0] if scales is None else total


@dataclass(frozen=True)
class FillModel:
    """Loss beyond bankruptcy per liquidated dollar, growing with liquidated size vs usual volume."""

    calm_deficit_rate: float = DEFAULT_CALM_DEFICIT_RATE
    fill_degradation: float = DEFAULT_FILL_DEGRADATION
    max_deficit_rate: float = DEFAULT_MAX_DEFICIT_RATE
    daily_turnover: float = DEFAULT_DAILY_TURNOVER

    def deficit_rate(self, liquidated_usd: float, oi_usd: float) -> float:
        usual_volume = self.daily_turnover * oi_usd
        ratio = liquidated_usd / usual_volume if usual_volume > 0 else 0.0
        return min(self.max_deficit_rate, self.calm_deficit_rate + self.fill_degradation * ratio)


@dataclass(frozen=True)
class ContractExposure:
    symbol: str
    base_asset: str
    oi_usd: float  # one side, the part this pool backs


@dataclass(frozen=True)
class FundAsset:
    asset: str
    fund_usd: float
    price_usd: float | None  # None: no price known (native figures left empty)
    stable: bool  # a stablecoin keeps its USD value whatever the market does


@dataclass(frozen=True)
class PoolInput:
    venue: str
    pool_id: str
    contracts: tuple[ContractExposure, ...]
    fund_assets: tuple[FundAsset, ...] = ()  # empty: no published fund


@dataclass(frozen=True)
class Calibration:
    """The leverage distribution used for a venue and where it came from."""

    distribution: LeverageDistribution
    source: str  # "default" | "calibrated" | "given"
    note: str
    days: int = 0
    rms_error_usd: float | None = None

    @property
    def label(self) -> str:
        return f"{self.source}: {self.note}" if self.note else self.source


@dataclass(frozen=True)
class StressResult:
    venue: str
    pool_id: str
    direction: str
    move_pct: float
    scope: str
    oi_usd: float
    moved_oi_usd: float
    liquidated_usd: float
    deficit_rate: float
    deficit_usd: float
    fund_usd: float | None
    fund_after_move_usd: float | None
    consumption_pct: float | None
    fund_asset: str | None
    fund_native: float | None
    consumption_native: float | None
    adl_likely: bool | None
    calibration: str
    extra: dict[str, float | None] = field(default_factory=dict)


def _moved_families(pool: PoolInput, scope: str) -> set[str] | None:
    """None = everything moves; else the asset families that move."""
    if scope == "all":
        return None
    families = {asset_family(a.asset) for a in pool.fund_assets if not a.stable}
    if not families and pool.contracts:
        biggest = max(pool.contracts, key=lambda c: c.oi_usd)
        families = {asset_family(biggest.base_asset)}
    return families


def project(pool: PoolInput, move_pct: float, direction: str, distribution: LeverageDistribution,
            fill: FillModel, scope: str = "all", calibration: str = "default") -> StressResult:
    """Projected fund consumption of one pool for a move of ``move_pct`` % down or up."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if not 0 <= move_pct < 100:
        raise ValueError(f"move must be in [0, 100) %, got {move_pct}")
    move = move_pct / 100.0
    moved = _moved_families(pool, scope)
    oi = sum(c.oi_usd for c in pool.contracts)
    moved_oi = sum(c.oi_usd for c in pool.contracts if moved is None or asset_family(c.base_asset) in moved)
    liquidated = moved_oi * distribution.liquidated_share(move)
    rate = fill.deficit_rate(liquidated, oi)
    deficit = liquidated * rate
    factor = 1.0 - move if direction == "down" else 1.0 + move
    fund = fund_after = None
    fund_asset = fund_native = consumption_native = None
    if pool.fund_assets:
        fund = sum(a.fund_usd for a in pool.fund_assets)
        fund_after = 0.0
        for a in pool.fund_assets:
            falls = not a.stable and (moved is None or asset_family(a.asset) in moved)
            fund_after += a.fund_usd * (factor if falls else 1.0)
        main = max(pool.fund_assets, key=lambda a: a.fund_usd)
        fund_asset = main.asset
        if main.price_usd:
            falls = not main.stable and (moved is None or asset_family(main.asset) in moved)
            price_after = main.price_usd * (factor if falls else 1.0)
            fund_native = main.fund_usd / main.price_usd
            consumption_native = deficit / price_after
    consumption = deficit / fund_after * 100.0 if fund_after and pool.contracts else None
    adl = deficit > fund_after if fund_after is not None and pool.contracts else None  # no OI known: unknown
    return StressResult(pool.venue, pool.pool_id, direction, move_pct, scope, oi, moved_oi, liquidated, rate,
                        deficit, fund, fund_after, consumption, fund_asset, fund_native, consumption_native,
                        adl, calibration)


# -- calibration -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DayObservation:
    """One venue × day × base asset: OI at the day's start, the day's moves from its first price, and the
    liquidated notional of long and short positions that day."""

    oi_usd: float
    down_move: float  # 1 − low / open (≥ 0)
    up_move: float  # high / open − 1 (≥ 0)
    long_usd: float
    short_usd: float


@dataclass(frozen=True)
class _Days:
    """The observations as columns (one array per field) for vectorised least squares."""

    oi_usd: npt.NDArray[np.float64]
    down_move: npt.NDArray[np.float64]
    up_move: npt.NDArray[np.float64]
    long_usd: npt.NDArray[np.float64]
    short_usd: npt.NDArray[np.float64]

    @classmethod
    def of(cls, days: Sequence[DayObservation]) -> _Days:
        def column(name: str) -> npt.NDArray[np.float64]:
            return np.array([getattr(d, name) for d in days], dtype=np.float64)

        return cls(column("oi_usd"), column("down_move"), column("up_move"), column("long_usd"), column("short_usd"))


def _sse(days: _Days, dist: LeverageDistribution, scales: npt.NDArray[np.float64] | None = None
         ) -> npt.NDArray[np.float64]:
    """Squared error of the liquidated notional, longs (down moves) and shorts (up moves), over all days:
    one value per leverage scale (``dist``'s own scale when none are given)."""
    long_error = days.long_usd - days.oi_usd * dist.liquidated_shares(days.down_move, scales)
    short_error = days.short_usd - days.oi_usd * dist.liquidated_shares(days.up_move, scales)
    return np.atleast_1d(np.sum(long_error * long_error, axis=-1) + np.sum(short_error * short_error, axis=-1))


def calibrate(days: Sequence[DayObservation], prior: LeverageDistribution,
              min_days: int = MIN_CALIBRATION_DAYS, scale_range: tuple[float, float] = SCALE_RANGE) -> Calibration:
    """Least-squares leverage scale: a log-spaced grid, then golden-section refinement around the best.

    Fewer than ``min_days`` distinct days with liquidations gives the prior (and says so)."""
    usable = [d for d in days if d.oi_usd > 0 and (d.long_usd > 0 or d.short_usd > 0)]
    if len(usable) < min_days:
        why = "no recorded liquidations" if not usable else f"{len(usable)} asset-day(s) of liquidations < {min_days}"
        return Calibration(prior, "default", why, len(usable))
    columns = _Days.of(usable)
    lo, hi = (math.log(x) for x in scale_range)
    grid = [lo + (hi - lo) * i / 120 for i in range(121)]
    errors = _sse(columns, prior, np.exp(np.array(grid))).tolist()
    best = min(range(len(grid)), key=errors.__getitem__)
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    golden = (math.sqrt(5) - 1) / 2

    def error(log_scale: float) -> float:
        return float(_sse(columns, prior.scaled(math.exp(log_scale)))[0])

    c, d = b - golden * (b - a), a + golden * (b - a)
    error_c, error_d = error(c), error(d)
    for _ in range(36):  # one new point per step; the bracket shrinks to 3e-8 of two grid steps
        if error_c <= error_d:
            b, d, error_d = d, c, error_c
            c = b - golden * (b - a)
            error_c = error(c)
        else:
            a, c, error_c = c, d, error_d
            d = a + golden * (b - a)
            error_d = error(d)
    scale = math.exp((a + b) / 2)
    fitted = prior.scaled(scale)
    rms = math.sqrt(float(_sse(columns, fitted)[0]) / (2 * len(usable)))
    note = f"leverage ×{scale:.2f} from {len(usable)} asset-days"
    if scale <= scale_range[0] * 1.01 or scale >= scale_range[1] * 0.99:
        note += " (at the search bound)"
    return Calibration(fitted, "calibrated", note, len(usable), rms)


# -- historical view -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryStats:
    days: int
    worst_day_loss_usd: float | None
    p99_day_loss_usd: float | None
    days_covered: float | None  # fund ÷ the 99th-percentile daily loss
    worst_day_liquidated_usd: float | None


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def history_stats(daily_fund_change_usd: Iterable[float], fund_usd: float | None,
                  daily_liquidated_usd: Iterable[float] = ()) -> HistoryStats:
    """Worst day, 99th-percentile day (losses; a gain counts as no loss) and how many such days the fund
    covers now."""
    losses = [max(0.0, -c) for c in daily_fund_change_usd if c == c]
    liquidated = [x for x in daily_liquidated_usd if x == x]
    worst_liq = max(liquidated) if liquidated else None
    if not losses:
        return HistoryStats(0, None, None, None, worst_liq)
    p99 = _percentile(losses, 0.99)
    covered = fund_usd / p99 if fund_usd is not None and p99 > 0 else None
    return HistoryStats(len(losses), max(losses), p99, covered, worst_liq)
