"""The simulated market's state: plain data (contracts, pools, flows, liquidations, venues) that venue
modules and tests read and set, the model's constants, and the internal per-venue/pool/contract model
records. No behaviour lives here: prices (``simulator.prices``), scenarios (``simulator.scenarios``) and
the liquidation engine (``simulator.liquidation_engine``) move this state; ``simulator.market.Market``
owns it. The fund-size calibration against the real venues is ``simulator.calibration``."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from metrics.stress import LeverageDistribution
from simulator.leverage import DayBook

if TYPE_CHECKING:
    from simulator.scenarios import ScenarioPlan

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
STEP_MS = MINUTE_MS  # one model step = one simulated minute

BASE_PRICES: dict[str, Decimal] = {
    "BTC": Decimal("65000"), "ETH": Decimal("3200"), "SOL": Decimal("150"), "BNB": Decimal("580"),
    "XRP": Decimal("0.55"), "DOGE": Decimal("0.12"), "ADA": Decimal("0.45"), "LTC": Decimal("80"),
    "AVAX": Decimal("30"), "LINK": Decimal("14"), "DOT": Decimal("6.5"), "TRX": Decimal("0.12"),
    "TON": Decimal("5.5"), "SUI": Decimal("1.1"), "ARB": Decimal("0.9"), "OP": Decimal("1.8"),
    "APT": Decimal("8"), "NEAR": Decimal("5"), "BCH": Decimal("380"), "ETC": Decimal("24"),
    "HYPE": Decimal("25"), "1000PEPE": Decimal("0.011"), "PEPE": Decimal("0.000011"),
    "WIF": Decimal("2.2"), "SHIB": Decimal("0.000018"), "1000SHIB": Decimal("0.018"),
    "ALTMEX": Decimal("450"), "DEFIMEX": Decimal("220"),  # BitMEX index baskets (.BALTMEX, .BDEFIMEX)
    "USDT": Decimal("1"), "USDC": Decimal("1"), "USD": Decimal("1"),
}
# unit codes some venues use for balances: (asset, units per asset)
PRICE_UNITS: dict[str, tuple[str, Decimal]] = {
    "XBT": ("BTC", Decimal(1)), "XBt": ("BTC", Decimal("1e-8")), "USDt": ("USDT", Decimal("1e-6")),
    "GWei": ("ETH", Decimal("1e-9")), "LAMp": ("SOL", Decimal("1e-9")),
}

# -- model parameters -------------------------------------------------------------------------------
ANNUAL_VOL = {"BTC": 0.48, "ETH": 0.62, "SOL": 0.85, "BNB": 0.5, "XRP": 0.75, "DOGE": 0.9}
BETA = {"BTC": 1.0, "ETH": 1.1, "SOL": 1.35, "BNB": 0.8, "XRP": 1.1, "DOGE": 1.3}
DEFAULT_ANNUAL_VOL = 0.85
DEFAULT_BETA = 1.2
MINUTES_PER_YEAR = 525_600
CALM, VOLATILE, CRISIS = 0, 1, 2
REGIME_VOL = (1.0, 2.2, 3.5)  # volatility multiplier
REGIME_LIQ = (1.0, 2.5, 6.0)  # liquidation-volume multiplier
REGIME_SLIP = (0.0012, 0.0035, 0.035)  # typical fill distance from the mark at liquidation
MM_RANGE = (0.004, 0.010)  # bankruptcy price distance from the liquidation (mark) price
MM_MEAN = sum(MM_RANGE) / 2
LIQ_A, LIQ_B, LIQ_C = 2e-6, 0.006, 3.0  # coarse past (make_history): liquidated share per step A + B|r| + C r^2
LAMBDA0 = 0.25  # liquidation events per pool per calm step
MAX_EVENTS_PER_STEP = 12
LEV_MIN, LEV_MAX = 4.0, 20.0  # exposure (OI notional a pool backs) relative to the pool's size
LEV_REF = 8.0  # typical exposure multiple, for the coarse history model
GROWTH_PER_DAY = 0.0002  # explicit platform revenue, share of the initial balance per day
OI_FLOOR = 0.4  # liquidations never take OI below this share of its initial level
LIQ_WINDOW_MS = 12 * HOUR_MS  # liquidations kept per venue (and at most LIQ_MAX)
LIQ_MAX = 6_000
FLOW_MAX = 20_000
FINE_HISTORY_MS = 2 * DAY_MS  # make_history: native cadence for this long, then hourly, then daily
HOURLY_HISTORY_MS = 14 * DAY_MS
MAX_FULL_HISTORY_POINTS = 4_000


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

    def basis(self, default: Decimal) -> Decimal:
        """The mark's premium over the index (``extra["basis"]``, set by the venue module or moved by the
        liquidation engine), else the venue's ``default``."""
        return Decimal(self.extra.get("basis", default))

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
    first; the current balance is ``history[-1]`` for venues that publish at a cadence. ``balance`` is
    the live (continuous) value, for venues that serve it directly (on-chain accounts, vaults)."""

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
    """A fund movement or event. The model's typed flows (``Market.fund_flows``) cover one period each,
    stamped at its end, ``amount`` signed (+ into the fund, - out of it), OKX's names:
    liquidation_balance_deposit, bankruptcy_loss, platform_revenue. In ``venue.flows`` the model adds
    ``adl`` events (amount 0) and, for hidden funds, ``bankruptcy`` events (amount = funded, positive)."""

    pool_id: str
    asset: str
    ts_ms: int
    flow_type: str
    amount: Decimal
    balance_after: Decimal
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SimLiquidation:
    """One liquidated position. ``fund_delta`` is in the pool's asset (+ surplus into the fund, - deficit
    drawn from it); ``adl_amount`` is the part of a deficit the empty fund could not cover (pool asset).
    ``seq`` increases monotonically per venue (``liq_id`` is its text)."""

    liq_id: str
    symbol: str
    ts_ms: int
    position_side: str  # long | short
    qty_contracts: Decimal
    bankruptcy_price: Decimal
    fill_price: Decimal
    fund_delta: Decimal  # + surplus into the fund, - deficit drawn from it (in pool asset)
    pool_id: str = ""
    seq: int = 0
    mark_price: Decimal = Decimal(0)
    notional_usd: Decimal = Decimal(0)
    adl_amount: Decimal = Decimal(0)
    base: str = ""
    settle: str = ""
    inverse: bool = False
    contract_size: Decimal = Decimal(1)

    @property
    def order_side(self) -> str:
        """The liquidation *order* side (Binance/OKX/HTX semantics): a long is closed by a sell."""
        return "sell" if self.position_side == "long" else "buy"


@dataclass
class SimVenue:
    key: str
    contracts: dict[str, SimContract] = field(default_factory=dict)
    pools: dict[str, SimPool] = field(default_factory=dict)
    flows: list[SimFlow] = field(default_factory=list)
    liquidations: list[SimLiquidation] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def _places(value: Decimal, lo: int = 0, hi: int = 8) -> int:
    """Decimal places to keep for values like ``value`` (a venue's own precision, within [lo, hi])."""
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if 0 < places < 2:
        places = 2
    return min(max(places, lo), hi)


def _cent_places(price: float) -> int:
    """Decimal places for a quantum worth about a cent (BTC 7, ETH 6, USDT 2): live balances move by
    liquidation-sized amounts even where a venue module gave a round number."""
    if price <= 0:
        return 2
    return max(2, min(8, math.ceil(math.log10(price / 0.01))))


def _dec(value: float, places: int) -> Decimal:
    return Decimal(f"{value:.{places}f}")


def _price_places(price: float) -> int:
    """Six significant digits for prices (BTC 0.1, DOGE 1e-6)."""
    if price <= 0:
        return 8
    return max(0, min(12, 5 - math.floor(math.log10(price))))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return min(k, MAX_EVENTS_PER_STEP)
        k += 1


# -- internal model state ---------------------------------------------------------------------------
@dataclass
class _ContractModel:
    venue_key: str
    contract: SimContract
    synthetic: bool  # a pool with no matching contract gets one (not served)
    oi0: float
    oi_places: int
    fr0: float
    basis_owned: bool
    adl_owned: bool
    imbalance: float = 0.0


@dataclass
class _PoolModel:
    venue: SimVenue
    pool: SimPool
    places: int
    b0: float  # initial balance (asset units)
    usd0: float
    contracts: list[_ContractModel]
    cum_weights: list[float]
    main_asset: str
    exposure0: float  # USD notional this pool backs
    pub_step_ms: int
    next_pub_ms: int
    flow_step_ms: int
    last_flow_ms: int
    base_history_len: int
    rng: random.Random
    hidden: bool = False  # a fund the venue does not publish (contracts no published pool covers)
    books: list[DayBook] = field(default_factory=list)  # per contract: today's positions (simulator.leverage)
    ledger_key: str = ""
    period_surplus: Decimal = Decimal(0)
    period_deficit: Decimal = Decimal(0)
    period_adl: Decimal = Decimal(0)
    growth_carry: float = 0.0
    liq_total: Decimal = Decimal(0)  # cumulative fund_delta of all liquidations
    growth_total: Decimal = Decimal(0)  # cumulative platform revenue
    adl_total: Decimal = Decimal(0)
    scenario_loss: float = 0.0  # scheduled deficit requested so far (asset units)
    victim: bool = False
    adl_until_ms: int = 0  # ADL runs until then (an "adl_end" event is written when it passes)
    adl_open: bool = False


@dataclass
class _VenueModel:
    venue: SimVenue
    rng: random.Random
    pools: list[_PoolModel]
    contracts: list[_ContractModel]
    leverage: LeverageDistribution  # who is liquidated by how large a move (simulator.leverage)
    seq: int = 0
    adl_until_ms: int = 0
    pending: list[SimLiquidation] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=lambda: {
        "liq_count": 0.0, "liq_notional_usd": 0.0, "surplus_usd": 0.0, "deficit_usd": 0.0, "adl_usd": 0.0})


def _thin(points: list[tuple[int, Decimal]], keep_last: int) -> list[tuple[int, Decimal]]:
    """Keep the last ``keep_last`` points; before them one point per hour (last 14 days) or per day."""
    if len(points) <= keep_last:
        return list(points)
    head, tail = points[:-keep_last], points[-keep_last:]
    newest = tail[0][0]
    out: list[tuple[int, Decimal]] = []
    last_bucket = None
    for ts, value in head:
        size = HOUR_MS if newest - ts <= HOURLY_HISTORY_MS else DAY_MS
        bucket = (size, ts // size)
        if bucket != last_bucket:
            out.append((ts, value))
            last_bucket = bucket
    return out + tail


class MarketCore:
    """What ``Market``'s mixins (``PriceModel``, ``ScenarioModel``, ``LiquidationEngine``,
    ``VenueModelBuilder``) read of one another, declared once for the type checker: ``Market.__init__``/
    ``_init_model``/``_init_past`` set the state and the mixins define the methods. Annotations only: it
    adds no attribute or method at run time."""

    seed: int
    start_ms: int
    history_days: int
    publish_every_s: int | None
    venues: dict[str, SimVenue]
    prices: dict[str, Decimal]
    _building: str
    _history_calls: dict[str, int]
    _scenario_name: str
    _scenario_venue: str | None
    _plan: ScenarioPlan
    _regime: int
    _price_rng: random.Random
    _moving: list[str]
    _log_px: dict[str, float]
    _anchor: dict[str, float]
    _px_places: dict[str, int]
    _last_r: dict[str, float]
    _ema_r: dict[str, float]
    _prev_btc_r: float
    _fund_flows: dict[str, list[SimFlow]]
    _pool_models: dict[tuple[str, str], _PoolModel]

    if TYPE_CHECKING:
        def now_ms(self) -> int: ...
        def price(self, asset: str) -> Decimal: ...
        def _price_key(self, asset: str) -> str: ...
        def _scenario_regime(self, t: int) -> int | None: ...
        def _scenario_drift(self, t: int) -> float: ...
        def _scheduled_losses(self, vm: _VenueModel, pm: _PoolModel, t: int) -> None: ...
        def _liquidate(self, vm: _VenueModel, pm: _PoolModel, t: int, notional: float, exposure: float,
                       regime: int, scheduled: float | None, chosen: _ContractModel | None = None,
                       side: str | None = None) -> float: ...
