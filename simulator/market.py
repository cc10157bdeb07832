"""The simulated market every fake venue serves from.

State is plain data (prices, contracts with OI and funding, fund pools with their published history,
fund flows, liquidations) that tests may set directly. ``Market.advance()`` moves it along a simulated
clock in fixed one-minute steps; with ``speed=0`` the clock is frozen and nothing moves (tests of exact
values) unless a test calls ``fast_forward``. Each venue module in ``simulator.venues`` declares its
contracts and pools in ``build(market)`` and its HTTP routes in ``routes(market)``, and reads every
dynamic value from this state at request time.

The model, deterministic from ``seed`` (and the venue list):

* one price path per asset, shared by all venues: a random walk with volatility regimes (calm,
  volatile, crisis) and occasional jumps; alts follow BTC with a beta, partly with a one-step lag
  (BTC leads), plus their own noise. Venues add a small basis (``contract.extra["basis"]``).
* each pool absorbs the liquidations of the contracts it covers. Liquidation volume grows with the
  size of price moves and the regime; a fill better than the bankruptcy price pays the surplus into the
  fund, a worse one draws the deficit from it (margin -> fund -> ADL once the fund is empty).
  Liquidated positions leave the open interest.
* ``pool.balance`` moves with every liquidation; it also earns a slow explicit growth (platform revenue)
  credited at publication boundaries. ``pool.history`` gains a published point at each cadence boundary
  (``publish_every_s`` adds extra points for long cadences, for demos at high speed).
  ``market.fund_flows(venue)`` holds the typed flows of each period (deposits, losses, revenue), so that
  over any interval ``balance change == sum(liquidation fund_delta) + sum(platform_revenue flows)``.
* ``venue.flows`` receives only events a venue publishes: ``adl`` start/end rows (OKX style: ``extra``
  adlType/maxBal/maxBalTs) when a fund runs dry, and ``bankruptcy`` rows (Deribit style: ``amount`` =
  funded, ``extra["socialized"]``) from the hidden funds of contracts no published pool covers.
* funding rates lean with positioning (long/short imbalance pushed by price momentum) and recent drift.
* scenarios (``calm``, ``cascade``, ``venue-drain[:VENUE]``, ``adl[:VENUE]``) schedule their event
  relative to ``start_ms`` (see ``ScenarioPlan``).
* the clock never runs ahead of the wall clock when ``wall_capped`` (demos): a fast market starts in the
  past (``catch_up_start_ms``), plays at ``speed`` until it reaches the present, then goes on at 1x, so
  every venue timestamp is a real "now" or earlier and data ages, staleness and chart ranges stay true.
* ``make_history`` gives venue modules a published past from the same model (hourly price path with a
  couple of stress episodes), ending exactly at the pool's current balance.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from records.vocabulary import STABLE_ASSETS  # one list for every layer

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
LIQ_A, LIQ_B, LIQ_C = 2e-6, 0.006, 3.0  # liquidated share of exposure per step: A + B|r| + C r^2
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

# -- scenario schedule (relative to start_ms; at the demo's default 720x, 1 h sim = 5 s real) --------
DEFAULT_DEMO_SPEED = 720.0
SCENARIOS = ("calm", "cascade", "venue-drain", "adl")
EVENT_ONSET_MS = 2 * HOUR_MS
CASCADE_CRASH_MS = 2 * HOUR_MS  # the crash itself
CASCADE_CRISIS_MS = 6 * HOUR_MS  # crisis regime from onset
CASCADE_VOLATILE_MS = 12 * HOUR_MS  # volatile regime until then
CASCADE_DROP = 0.15  # BTC log drop during the crash
CASCADE_REBOUND = 0.035
DRAIN_MS = 12 * HOUR_MS
DRAIN_RANGE = (0.38, 0.52)
ADL_MS = 3 * HOUR_MS
ADL_TARGET = 1.25  # scheduled deficits as a share of the fund: the last part is socialised (ADL)
ADL_FLAG_MS = 5 * HOUR_MS
EVENT_END_MS = {"calm": 0, "cascade": EVENT_ONSET_MS + CASCADE_VOLATILE_MS,
                "venue-drain": EVENT_ONSET_MS + DRAIN_MS, "adl": EVENT_ONSET_MS + ADL_FLAG_MS}


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


# -- scenarios --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScenarioPlan:
    """What a scenario does and when (absolute simulated ms)."""

    name: str
    venue: str | None  # the victim of venue-drain / adl
    onset_ms: int
    end_ms: int  # the event is fully played out by then
    drain_fraction: float = 0.0  # venue-drain: share of each victim pool drained; adl: ADL_TARGET

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "venue": self.venue, "onset_ms": self.onset_ms, "end_ms": self.end_ms,
                "drain_fraction": round(self.drain_fraction, 4)}


def parse_scenario(text: str) -> tuple[str, str | None]:
    """``calm`` | ``cascade`` | ``venue-drain[:VENUE]`` | ``adl[:VENUE]`` -> (name, venue or None)."""
    name, _, venue = (text or "calm").strip().partition(":")
    name = name.strip().lower()
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {text!r} (one of: calm, cascade, venue-drain[:VENUE], adl[:VENUE])")
    if venue and name not in ("venue-drain", "adl"):
        raise ValueError(f"scenario {name!r} takes no venue")
    return name, (venue.strip() or None)


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
    seq: int = 0
    adl_until_ms: int = 0
    pending: list[SimLiquidation] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=lambda: {
        "liq_count": 0.0, "liq_notional_usd": 0.0, "surplus_usd": 0.0, "deficit_usd": 0.0, "adl_usd": 0.0})


class Market:
    """Deterministic from ``seed``. ``speed`` = simulated seconds per real second (0 = frozen).

    ``publish_every_s`` (demos): pools whose cadence is longer also publish a point at this cadence,
    so a daily venue shows a several-hour event while it happens."""

    def __init__(self, seed: int = 1, speed: float = 0.0, start_ms: int | None = None,
                 history_days: int = 90, scenario: str = "calm",
                 venues: list[str] | None = None, publish_every_s: int | None = None,
                 wall_capped: bool = False) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # for venue modules' own use in build(); the model has its own
        self.speed = speed
        self.scenario = scenario
        self._scenario_name, self._scenario_venue = parse_scenario(scenario)
        self.history_days = history_days
        self.publish_every_s = publish_every_s
        self.start_ms = start_ms if start_ms is not None else (int(time.time() * 1000) // MINUTE_MS) * MINUTE_MS
        self._real_start = time.monotonic()
        self._offset_ms = 0
        self.wall_capped = wall_capped
        self.frozen_ms: int | None = None
        self._lock = threading.RLock()
        self.prices: dict[str, Decimal] = dict(BASE_PRICES)
        self.venues: dict[str, SimVenue] = {}
        self._history_calls: dict[str, int] = {}
        self._building = ""
        self._init_past()
        from simulator.venues import SIM_VENUES, venue_module

        for key in venues or list(SIM_VENUES):
            self._building = key
            self.venues[key] = venue_module(key).build(self)
        self._building = ""
        self._init_model()

    # -- clock -----------------------------------------------------------------------------------
    def now_ms(self) -> int:
        if self.frozen_ms is not None:
            return self.frozen_ms + self._offset_ms
        elapsed = (time.monotonic() - self._real_start) * self.speed
        sim_ms = self.start_ms + int(elapsed * 1000)
        if self.wall_capped:
            sim_ms = min(sim_ms, int(time.time() * 1000))
        return sim_ms + self._offset_ms

    def venue(self, key: str) -> SimVenue:
        return self.venues[key]

    def price(self, asset: str) -> Decimal:
        """USD price of an asset (or of a unit such as XBt = 1e-8 BTC); unknown assets are 1."""
        found = self.prices.get(asset)
        if found is not None:
            return found
        unit = PRICE_UNITS.get(asset)
        if unit is not None:
            return self.prices.get(unit[0], Decimal(1)) * unit[1]
        return self.prices.get(asset.upper(), Decimal(1))

    @property
    def model_ms(self) -> int:
        """Simulated time the state has been stepped to (<= now_ms())."""
        return self._model_ms

    @property
    def plan(self) -> ScenarioPlan:
        return self._plan

    def advance(self) -> None:
        """Bring the state up to ``now_ms()`` in whole steps. Cheap when nothing is due (it runs on
        every simulator request); thread-safe. At speed 0 the market stays put even when a test moves
        the clock through ``frozen_ms`` (exact-value tests); ``fast_forward`` steps it explicitly."""
        if self.speed > 0:
            self._step_to_now()

    def _step_to_now(self) -> None:
        if self.now_ms() < self._model_ms + STEP_MS:
            return
        with self._lock:
            target = self.now_ms()
            while self._model_ms + STEP_MS <= target:
                self._step(self._model_ms + STEP_MS)

    def fast_forward(self, sim_ms: int) -> None:
        """Move the simulated clock on by ``sim_ms`` and step the model there (any speed)."""
        with self._lock:
            self._offset_ms += int(sim_ms)
            self._step_to_now()

    def run_until(self, ts_ms: int) -> None:
        """Fast-forward until the simulated clock reads at least ``ts_ms``."""
        with self._lock:
            delta = ts_ms - self.now_ms()
            if delta > 0:
                self.fast_forward(delta)

    # -- read helpers ------------------------------------------------------------------------------
    def fund_flows(self, venue: str) -> list[SimFlow]:
        """The model's typed flows of ``venue`` (one row per type per period; see ``SimFlow``)."""
        return self._fund_flows[venue]

    def ledger(self, venue: str, pool_id: str) -> dict[str, Decimal]:
        """Cumulative accounting of one pool since start: liquidation fund deltas, platform revenue,
        deficits left to ADL (pool asset units). Hidden funds are ``~ASSET``."""
        model = self._pool_models[(venue, pool_id)]
        return {"liquidations": model.liq_total, "growth": model.growth_total, "adl": model.adl_total}

    def stats(self, venue: str) -> dict[str, float]:
        """Cumulative liquidation statistics of a venue since start (USD; never trimmed)."""
        return dict(self._venue_models[venue].stats)

    def adl_active(self, venue: str) -> bool:
        return self.model_ms < self._venue_models[venue].adl_until_ms

    def price_at(self, asset: str, ts_ms: int) -> Decimal:
        """The asset's hourly close at or before ``ts_ms`` (current price after the last bar)."""
        bars = self._bars.get(self._price_key(asset))
        if bars is None:
            return self.price(asset)
        index = bisect.bisect_right(self._bar_ts, ts_ms // HOUR_MS * HOUR_MS) - 1
        if index < 0 or index >= len(bars):
            return self.price(asset)
        scale = self.price(asset) / self.price(self._price_key(asset))
        close = bars[index][3]
        return _dec(close, _price_places(close)) * scale

    # -- helpers for venue modules ------------------------------------------------------------------
    def make_history(self, balance: Decimal, cadence_s: int, drift: float | None = None,
                     vol: float | None = None, offset_s: int = 0) -> list[tuple[int, Decimal]]:
        """A deterministic published series ending at ``balance`` at the latest cadence boundary
        (boundaries at multiples of ``cadence_s`` from the epoch, shifted by ``offset_s``, e.g. 8 h).

        It follows the market model's past: the common liquidation/stress factor (with a couple of
        stress dips) times a per-pool sensitivity, plus the pool's own noise; ``drift`` (per day) and
        ``vol`` (daily) adjust the pool's own trend and noise. Long series at short cadences are
        coarser in the past: the native cadence for the last 2 days, hourly for 14 days, daily before.
        """
        step_ms = max(1, int(cadence_s)) * 1000
        offset = int(offset_s) * 1000
        end = ((self.start_ms - offset) // step_ms) * step_ms + offset
        n_total = max(1, (self.history_days * DAY_MS) // step_ms)
        first = end - (n_total - 1) * step_ms
        if n_total <= MAX_FULL_HISTORY_POINTS:
            ts = np.arange(first, end + 1, step_ms, dtype=np.int64)
        else:  # thin the past: whole hours beyond FINE_HISTORY_MS, whole days beyond HOURLY_HISTORY_MS
            def aligned(lo: int, hi: int, unit: int) -> np.ndarray:
                """Grid points in [lo, hi] on whole ``unit``s (from ``offset``), or every unit-th point."""
                if unit % step_ms == 0:
                    return np.arange(lo + (offset - lo) % unit, hi + 1, unit, dtype=np.int64)
                stride = max(1, unit // step_ms) * step_ms  # on the cadence grid, counted from the end
                return np.arange(end - ((end - lo) // stride) * stride, hi + 1, stride, dtype=np.int64)

            fine_lo = end - (max(1, FINE_HISTORY_MS // step_ms) - 1) * step_ms  # on the cadence grid
            hourly_lo = end - HOURLY_HISTORY_MS + 1
            ts = np.concatenate([aligned(first, min(hourly_lo - 1, fine_lo - 1), DAY_MS),
                                 aligned(max(first, hourly_lo), fine_lo - 1, HOUR_MS),
                                 np.arange(max(first, fine_lo), end + 1, step_ms, dtype=np.int64)])
            ts = np.unique(ts)
        calls = self._history_calls[self._building] = self._history_calls.get(self._building, 0) + 1
        rng = np.random.default_rng([self.seed, 7_919, calls] + [ord(c) for c in self._building[:24]])
        beta = float(rng.lognormal(0.0, 0.3))
        daily_vol = 0.003 if vol is None else float(vol)
        trend = 0.0 if drift is None else float(drift)
        common = np.interp(ts.astype(np.float64), self._factor_ts, self._factor)
        common_end = float(np.interp(float(end), self._factor_ts, self._factor))
        days = (ts - end).astype(np.float64) / DAY_MS
        gaps = np.diff(days, prepend=days[0])
        idio = np.cumsum(rng.standard_normal(len(ts)) * np.sqrt(np.maximum(gaps, 0.0)) * daily_vol)
        log_rel = beta * (common - common_end) + (idio - idio[-1]) + trend * days
        values = float(balance) * np.exp(log_rel)
        places = _places(balance)
        out = [(int(t), Decimal(f"{v:.{places}f}")) for t, v in zip(ts.tolist(), values.tolist(), strict=True)]
        out[-1] = (int(end), balance)
        return out

    def candles(self, asset: str, since_ms: int | None, limit: int,
                interval_ms: int = DAY_MS) -> list[tuple[int, float, float, float, float, float]]:
        """OHLCV of ``asset`` from the model's price path (hourly bars, aggregated to ``interval_ms``),
        from ``since_ms`` (or the last ``limit`` intervals) up to now."""
        key = self._price_key(asset)
        scale = float(self.price(asset) / self.price(key)) if key != asset else 1.0
        bars = self._bars.get(key)
        if bars is None:
            flat = float(self.price(asset))
            bars = [[flat, flat, flat, flat, 0.0] for _ in self._bar_ts]
        now = self.now_ms()
        interval_ms = max(HOUR_MS, interval_ms)
        end = (now // interval_ms) * interval_ms
        start = since_ms if since_ms is not None else end - (limit - 1) * interval_ms
        start = (start // interval_ms) * interval_ms
        rows: list[tuple[int, float, float, float, float, float]] = []
        index = bisect.bisect_left(self._bar_ts, start)
        while index < len(self._bar_ts) and len(rows) < limit:
            bucket = self._bar_ts[index] // interval_ms * interval_ms
            if bucket > end:
                break
            o, h, lo, c, v = bars[index]
            index += 1
            while index < len(self._bar_ts) and self._bar_ts[index] // interval_ms * interval_ms == bucket:
                bar = bars[index]
                h, lo, c, v = max(h, bar[1]), min(lo, bar[2]), bar[3], v + bar[4]
                index += 1
            rows.append((bucket, o * scale, h * scale, lo * scale, c * scale, v))
        return rows

    # -- the past (hourly, vectorised) -------------------------------------------------------------
    def _init_past(self) -> None:
        """Hourly price path of every known asset over the history window, with regimes and two
        stress episodes, ending at today's prices; plus the common fund factor those prices imply."""
        hours = max(2, self.history_days * 24 + 24)
        rng = np.random.default_rng([self.seed, 101])
        regimes = np.zeros(hours, dtype=np.int64)
        state = CALM
        flips = rng.random(hours)
        for k in range(hours):
            if state == CALM and flips[k] < 1 / 48:
                state = VOLATILE
            elif state == VOLATILE and flips[k] < 1 / 10:
                state = CALM
            regimes[k] = state
        drift = np.zeros(hours)
        for lo, hi in ((0.15, 0.35), (0.6, 0.85)):
            begin = int(hours * rng.uniform(lo, hi))
            drop = rng.uniform(0.08, 0.16)
            drift[begin:begin + 3] -= drop / 3
            drift[begin + 3:begin + 15] += drop * 0.2 / 12
            regimes[begin:begin + 10] = CRISIS
            regimes[begin + 10:begin + 46] = np.maximum(regimes[begin + 10:begin + 46], VOLATILE)
        drift -= drift.sum() / hours  # markets recovered from those episodes over the window
        vol_mult = np.asarray(REGIME_VOL)[regimes]
        sigma_h = ANNUAL_VOL["BTC"] / math.sqrt(MINUTES_PER_YEAR) * math.sqrt(60)
        jumps = (rng.random(hours) < 1 / 60) * rng.normal(0, 0.015, hours)
        noise = rng.standard_normal(hours) * sigma_h * vol_mult + jumps
        noise -= 0.8 * noise.mean()  # mostly a bridge: prices 90 days ago were not wildly elsewhere
        self._past_btc = noise + drift
        self._past_regimes = regimes
        self._past_vol_mult = vol_mult
        hour_now = self.start_ms // HOUR_MS * HOUR_MS
        self._bar_ts: list[int] = [hour_now - (hours - 1 - k) * HOUR_MS for k in range(hours)]
        self._bars: dict[str, list[list[float]]] = {}
        for asset in self.prices:
            if asset not in STABLE_ASSETS:
                self._bars[asset] = self._past_bars(asset, float(self.prices[asset]))
        # the common fund factor (log), per hour end: growth + net liquidation surplus/deficit
        r_m = np.abs(self._past_btc) / math.sqrt(60)
        liq_mult = np.asarray(REGIME_LIQ)[regimes]
        frac_h = 60 * (LIQ_A + LIQ_B * r_m + LIQ_C * r_m ** 2) * liq_mult
        net = MM_MEAN - (0.8 * np.asarray(REGIME_SLIP)[regimes] + 0.5 * r_m)
        increments = LEV_REF * frac_h * net + GROWTH_PER_DAY / 24
        self._factor = np.cumsum(increments)
        self._factor_ts = np.asarray([t + HOUR_MS for t in self._bar_ts], dtype=np.float64)
        self._factor_ts[-1] = float(self.start_ms)

    def _past_bars(self, asset: str, p_end: float) -> list[list[float]]:
        hours = len(self._past_btc)
        rng = np.random.default_rng([self.seed, 211] + [ord(c) for c in asset[:16]])
        beta = BETA.get(asset, DEFAULT_BETA)
        sigma = ANNUAL_VOL.get(asset, DEFAULT_ANNUAL_VOL) / math.sqrt(MINUTES_PER_YEAR) * math.sqrt(60)
        if asset == "BTC":
            returns = self._past_btc
        else:
            lagged = np.concatenate([[0.0], self._past_btc[:-1]])
            idio = math.sqrt(max(sigma ** 2 - (beta * sigma / 1.6) ** 2, (0.4 * sigma) ** 2))
            returns = beta * (0.75 * self._past_btc + 0.25 * lagged) + \
                rng.standard_normal(hours) * idio * self._past_vol_mult
        log_close = np.cumsum(returns)
        closes = p_end * np.exp(log_close - log_close[-1])
        opens = np.concatenate([[closes[0] / math.exp(returns[0])], closes[:-1]])
        wick = np.abs(rng.standard_normal((2, hours))) * sigma * 0.6 * self._past_vol_mult
        highs = np.maximum(opens, closes) * np.exp(wick[0])
        lows = np.minimum(opens, closes) * np.exp(-wick[1])
        volume = 1000.0 * (1 + 60 * np.abs(returns))
        bars = np.stack([opens, highs, lows, closes, volume], axis=1).tolist()
        bars[-1] = [bars[-1][0], max(bars[-1][1], p_end), min(bars[-1][2], p_end), p_end, bars[-1][4]]
        return bars

    def _price_key(self, asset: str) -> str:
        if asset in self.prices:
            return asset
        unit = PRICE_UNITS.get(asset)
        if unit is not None:
            return unit[0]
        return asset.upper()

    # -- the live model ----------------------------------------------------------------------------
    def _init_model(self) -> None:
        self._model_ms = self.start_ms
        self._price_rng = random.Random(f"{self.seed}:prices")
        self._regime = CALM
        self._moving: list[str] = []
        self._log_px: dict[str, float] = {}
        self._anchor: dict[str, float] = {}
        self._px_places: dict[str, int] = {}
        self._last_r: dict[str, float] = {}
        self._ema_r: dict[str, float] = {}
        self._prev_btc_r = 0.0
        for venue in self.venues.values():
            for contract in venue.contracts.values():
                if contract.base not in self.prices and self._price_key(contract.base) not in self.prices:
                    self.prices[contract.base] = Decimal(1)
        for asset, price in self.prices.items():
            if asset in STABLE_ASSETS or price <= 0:
                continue
            self._moving.append(asset)
            self._log_px[asset] = self._anchor[asset] = math.log(float(price))
            self._px_places[asset] = _price_places(float(price))
            self._last_r[asset] = 0.0
            self._ema_r[asset] = 0.0
            if asset not in self._bars:
                self._bars[asset] = self._past_bars(asset, float(price))
        self._moving.sort(key=lambda asset: asset != "BTC")  # BTC leads: stepped first, alts follow it
        self._venue_models: dict[str, _VenueModel] = {}
        self._pool_models: dict[tuple[str, str], _PoolModel] = {}
        self._fund_flows: dict[str, list[SimFlow]] = {key: [] for key in self.venues}
        for key, venue in self.venues.items():
            self._venue_models[key] = self._venue_model(key, venue)
        self._plan = self._make_plan()
        for vm in self._venue_models.values():
            for pm in vm.pools:
                pm.victim = vm.venue.key == self._plan.venue and not pm.hidden

    def _venue_model(self, key: str, venue: SimVenue) -> _VenueModel:
        rng = random.Random(f"{self.seed}:venue:{key}")
        contracts: dict[str, _ContractModel] = {}
        for contract in venue.contracts.values():
            contracts[contract.symbol] = self._contract_model(key, contract, synthetic=False)
        covered: dict[str, list[SimPool]] = {}
        pool_contracts: dict[str, list[_ContractModel]] = {}
        for pool in venue.pools.values():
            chosen = self._match_contracts(venue, pool, contracts)
            if not chosen:
                chosen = [self._synthetic_contract(key, pool)]
            pool_contracts[pool.pool_id] = chosen
            for cm in chosen:
                covered.setdefault(cm.contract.symbol, []).append(pool)
        pools = []
        for pool in venue.pools.values():
            pools.append(self._pool_model(venue, pool, pool_contracts[pool.pool_id], covered, rng))
        # contracts no published pool covers still liquidate, into a hidden fund per settle asset
        hidden: dict[str, list[_ContractModel]] = {}
        for symbol, cm in contracts.items():
            if symbol not in covered:
                hidden.setdefault(cm.contract.settle, []).append(cm)
        for asset, members in hidden.items():
            oi_usd = sum(float(cm.contract.oi_usd(self.price(cm.contract.base))) for cm in members)
            balance = _dec(oi_usd / LEV_REF / (float(self.price(asset)) or 1.0), 8)
            pool = SimPool(asset, asset, [cm.contract.symbol for cm in members], balance, extra={"hidden": True})
            for cm in members:
                covered[cm.contract.symbol] = [pool]
            pools.append(self._pool_model(venue, pool, members, covered, rng, hidden=True))
        model = _VenueModel(venue, rng, pools, list(contracts.values()))
        for pm in pools:
            self._pool_models[(key, pm.ledger_key)] = pm
            for cm in pm.contracts:
                if cm.synthetic:
                    model.contracts.append(cm)
        return model

    def _contract_model(self, venue_key: str, contract: SimContract, synthetic: bool) -> _ContractModel:
        return _ContractModel(
            venue_key=venue_key, contract=contract, synthetic=synthetic,
            oi0=max(float(contract.oi_contracts), 1e-9), oi_places=_places(contract.oi_contracts, hi=6),
            fr0=float(contract.funding_rate), basis_owned="basis" not in contract.extra,
            adl_owned="adl_risk" not in contract.extra,
        )

    @staticmethod
    def _match_contracts(venue: SimVenue, pool: SimPool,
                         contracts: dict[str, _ContractModel]) -> list[_ContractModel]:
        """The contracts whose losses this pool absorbs: its listed symbols, else symbols sharing a
        prefix (BTC-USDT ~ BTC-USDT-SWAP), else (no symbols) every contract settled in its asset."""
        chosen = [contracts[s] for s in pool.symbols if s in contracts]
        if chosen:
            return chosen
        if pool.symbols:
            return [cm for sym, cm in contracts.items()
                    if any(sym.startswith(s) or s.startswith(sym) for s in pool.symbols if s)]
        same = [cm for cm in contracts.values() if cm.contract.settle == pool.asset]
        return same or list(contracts.values())

    def _synthetic_contract(self, venue_key: str, pool: SimPool) -> _ContractModel:
        symbol = pool.symbols[0] if pool.symbols else f"{pool.asset}-PERP"
        base = "BTC"
        for quote in ("-USDT-SWAP", "-USD-SWAP", "_USDT", "_USD", "-USDT", "-USD", "USDT", "USDC", "USD",
                      "/USDT", "-PERP"):
            if symbol.upper().endswith(quote) and len(symbol) > len(quote):
                candidate = symbol[: -len(quote)].upper().replace("-", "").replace("_", "")
                if self._price_key(candidate) in self.prices:
                    base = self._price_key(candidate)
                break
        price = float(self.price(base))
        usd = float(pool.balance * self.price(pool.asset))
        oi = max(usd * LEV_REF / price, 1.0)
        contract = SimContract(symbol, base, "USD", pool.asset, Decimal(1), False,
                               _dec(oi, 3), extra={"synthetic": True})
        return self._contract_model(venue_key, contract, synthetic=True)

    def _pool_model(self, venue: SimVenue, pool: SimPool, contracts: list[_ContractModel],
                    covered: dict[str, list[SimPool]], rng: random.Random, hidden: bool = False) -> _PoolModel:
        usd0 = float(pool.balance * self.price(pool.asset))
        exposure = 0.0
        weights = []
        for cm in contracts:
            contract = cm.contract
            oi_usd = float(contract.oi_usd(self.price(contract.base)))
            backers = sum(float(p.balance * self.price(p.asset)) for p in covered[contract.symbol])
            share = usd0 / backers if backers > 0 else 1.0 / len(covered[contract.symbol])
            exposure += oi_usd * share
            weights.append(max(oi_usd, 1e-9))
        exposure = min(max(exposure, LEV_MIN * usd0), LEV_MAX * usd0)
        total = sum(weights)
        cum, acc = [], 0.0
        for w in weights:
            acc += w / total
            cum.append(acc)
        cum[-1] = 1.0
        main = contracts[max(range(len(contracts)), key=lambda i: weights[i])].contract.base
        if hidden:  # settles daily at 08:00 UTC (Deribit's session), never published
            last_ts = (self.start_ms - 8 * HOUR_MS) // DAY_MS * DAY_MS + 8 * HOUR_MS
        else:
            last_ts = pool.history[-1][0] if pool.history else self.start_ms
        cadence_ms = max(1, int(pool.cadence_s)) * 1000
        pub_step = cadence_ms if not self.publish_every_s else min(cadence_ms, int(self.publish_every_s) * 1000)
        next_pub = last_ts + pub_step
        if next_pub <= self.start_ms:
            next_pub += ((self.start_ms - next_pub) // pub_step + 1) * pub_step
        return _PoolModel(
            venue=venue, pool=pool, places=max(_places(pool.balance), _cent_places(float(self.price(pool.asset)))),
            b0=float(pool.balance), usd0=usd0,
            contracts=contracts, cum_weights=cum, main_asset=main, exposure0=exposure,
            pub_step_ms=pub_step, next_pub_ms=next_pub, flow_step_ms=max(pub_step, HOUR_MS),
            last_flow_ms=self.start_ms, base_history_len=len(pool.history),
            rng=random.Random(f"{self.seed}:pool:{venue.key}:{'~' if hidden else ''}{pool.pool_id}"),
            hidden=hidden, ledger_key=f"~{pool.pool_id}" if hidden else pool.pool_id,
        )

    def _make_plan(self) -> ScenarioPlan:
        name, venue = self._scenario_name, self._scenario_venue
        onset = self.start_ms + EVENT_ONSET_MS
        end = self.start_ms + EVENT_END_MS[name]
        if name == "calm":
            return ScenarioPlan(name, None, self.start_ms, self.start_ms)
        if name == "cascade":
            return ScenarioPlan(name, None, onset, end)
        candidates = sorted(k for k, v in self.venues.items() if any(p.balance > 0 for p in v.pools.values()))
        # (only venues with a published fund: a hidden fund's drain would be invisible)
        if venue is None:
            if not candidates:
                raise ValueError(f"scenario {name!r} needs a venue with a fund")
            venue = random.Random(f"{self.seed}:victim").choice(candidates)
        elif venue not in self.venues:
            raise ValueError(f"scenario {name!r}: venue {venue!r} is not simulated (have: {', '.join(self.venues)})")
        if name == "venue-drain":
            fraction = random.Random(f"{self.seed}:drain").uniform(*DRAIN_RANGE)
        else:
            fraction = ADL_TARGET
        return ScenarioPlan(name, venue, onset, end, fraction)

    # -- one step --------------------------------------------------------------------------------
    def _scenario_regime(self, t: int) -> int | None:
        plan = self._plan
        rel = t - plan.onset_ms
        if plan.name == "cascade" and rel >= 0:
            if rel < CASCADE_CRISIS_MS:
                return CRISIS
            if rel < CASCADE_VOLATILE_MS:
                return VOLATILE
        if plan.name == "venue-drain" and 0 <= rel < DRAIN_MS:
            return CALM
        return None

    def _scenario_drift(self, t: int) -> float:
        """Scheduled BTC log return of the step ending at ``t`` (the cascade's crash and rebound)."""
        plan = self._plan
        if plan.name != "cascade":
            return 0.0
        rel = t - plan.onset_ms
        crash_steps = CASCADE_CRASH_MS // STEP_MS
        if 0 < rel <= CASCADE_CRASH_MS:
            k = rel // STEP_MS
            # bell-shaped: slow start, violent middle, exhaustion
            weight = math.sin(math.pi * (k - 0.5) / crash_steps) ** 2 * 2 / crash_steps
            return -CASCADE_DROP * weight
        rebound_ms = CASCADE_CRISIS_MS - CASCADE_CRASH_MS
        if CASCADE_CRASH_MS < rel <= CASCADE_CRISIS_MS:
            return CASCADE_REBOUND / (rebound_ms // STEP_MS)
        return 0.0

    def _step(self, t: int) -> None:
        self._step_prices(t)
        for vm in self._venue_models.values():
            self._step_venue(vm, t)
        self._model_ms = t

    def _step_prices(self, t: int) -> None:
        rng = self._price_rng
        forced = self._scenario_regime(t)
        if forced is not None:
            self._regime = forced
        else:
            u = rng.random()
            if self._regime == CALM and u < 1 / 2880:
                self._regime = VOLATILE
            elif self._regime == VOLATILE and u < 1 / 480:
                self._regime = CALM
            elif self._regime == CRISIS and u < 1 / 240:
                self._regime = VOLATILE
        mult = REGIME_VOL[self._regime]
        calm_event = self._plan.name == "venue-drain" and forced is not None
        jump_p = 0.0 if calm_event else (1 / 2880) * (2.0 if self._regime else 1.0)
        btc_jump = rng.gauss(-0.002, 0.012) if rng.random() < jump_p else 0.0
        if btc_jump and self._regime == CALM and rng.random() < 0.5 and forced is None:
            self._regime = VOLATILE
        sigma_btc = ANNUAL_VOL["BTC"] / math.sqrt(MINUTES_PER_YEAR)
        btc_r = 0.0
        hour = (t - 1) // HOUR_MS * HOUR_MS
        new_bar = hour > self._bar_ts[-1]
        if new_bar:
            self._bar_ts.append(hour)
        for asset in self._moving:
            z = rng.gauss(0.0, 1.0)
            sigma = ANNUAL_VOL.get(asset, DEFAULT_ANNUAL_VOL) / math.sqrt(MINUTES_PER_YEAR)
            pull = -1.0e-5 * (self._log_px[asset] - self._anchor[asset])
            if asset == "BTC":
                r = sigma_btc * mult * z + btc_jump + self._scenario_drift(t) + pull
                btc_r = r
            else:
                beta = BETA.get(asset, DEFAULT_BETA)
                lead = beta * (0.6 * btc_r + 0.4 * self._prev_btc_r)  # BTC is stepped first
                idio = math.sqrt(max(sigma ** 2 - (beta * sigma_btc) ** 2, (0.4 * sigma) ** 2))
                r = lead + idio * mult * z + pull
            old = math.exp(self._log_px[asset])
            self._log_px[asset] += r
            price = math.exp(self._log_px[asset])
            self._last_r[asset] = r
            self._ema_r[asset] += (r - self._ema_r[asset]) / 480
            self.prices[asset] = _dec(price, self._px_places[asset])
            bars = self._bars[asset]
            volume = 20.0 * (1 + 60 * abs(r) * mult)
            if new_bar or len(bars) < len(self._bar_ts):
                bars.append([old, max(old, price), min(old, price), price, volume])
            else:
                bar = bars[-1]
                bar[1], bar[2], bar[3], bar[4] = max(bar[1], price), min(bar[2], price), price, bar[4] + volume
        self._prev_btc_r = btc_r

    def _step_venue(self, vm: _VenueModel, t: int) -> None:
        rng = vm.rng
        plan = self._plan
        regime = self._regime
        for cm in vm.contracts:
            self._step_contract(cm, rng, t)
        liq_mult = 4.0 if plan.name == "cascade" and 0 < t - plan.onset_ms <= CASCADE_CRASH_MS else 1.0
        for pm in vm.pools:
            r = self._last_r.get(pm.main_asset, 0.0)
            frac = (LIQ_A + LIQ_B * abs(r) + LIQ_C * r * r) * REGIME_LIQ[regime] * liq_mult
            exposure = pm.exposure0 * self._oi_factor(pm)
            notional = exposure * frac
            calm_ref = LIQ_A + LIQ_B * 0.00055 + LIQ_C * 0.00055 ** 2
            lam = LAMBDA0 * min(MAX_EVENTS_PER_STEP / LAMBDA0 / 2, max(1.0, math.sqrt(frac / calm_ref)))
            count = _poisson(rng, lam)
            for _ in range(count):
                size = notional / lam * rng.lognormvariate(-0.32, 0.8)
                self._liquidate(vm, pm, t, size, exposure, regime, None)
            if pm.victim and plan.name in ("venue-drain", "adl"):
                self._scheduled_losses(vm, pm, t)
        if vm.pending:
            vm.pending.sort(key=lambda liq: liq.ts_ms)
            for liq in vm.pending:
                vm.seq += 1
                liq.seq = vm.seq
                liq.liq_id = str(vm.seq)
            vm.venue.liquidations.extend(vm.pending)
            vm.pending = []
        for pm in vm.pools:
            if t >= pm.next_pub_ms:
                self._publish(pm, t)
            if pm.adl_open and t >= pm.adl_until_ms:
                pm.adl_open = False
                pool = pm.pool
                vm.venue.flows.append(SimFlow(pool.pool_id, pool.asset, t, "adl", Decimal(0), pool.balance,
                                              extra={"adlType": "adl_end"}))
        if t % (10 * STEP_MS) == 0:
            self._trim(vm, t)
        self._adl_levels(vm, t)

    def _oi_factor(self, pm: _PoolModel) -> float:
        total = 0.0
        for cm in pm.contracts:
            total += float(cm.contract.oi_contracts) / cm.oi0
        return max(OI_FLOOR, min(2.0, total / len(pm.contracts)))

    def _step_contract(self, cm: _ContractModel, rng: random.Random, t: int) -> None:
        contract = cm.contract
        r = self._last_r.get(self._price_key(contract.base), 0.0)
        ema = self._ema_r.get(self._price_key(contract.base), 0.0)
        # positioning: longs pile in on rallies, are flushed on drops; slowly mean-reverting
        cm.imbalance += -cm.imbalance / 1440 + 8.0 * r + rng.gauss(0.0, 0.004)
        cm.imbalance = max(-1.0, min(1.0, cm.imbalance))
        oi = float(contract.oi_contracts)
        pull = -0.0005 * math.log(max(oi, 1e-12) / cm.oi0)
        oi *= math.exp(pull + 0.0006 * rng.gauss(0.0, 1.0) + 0.3 * r)
        oi = max(oi, OI_FLOOR * cm.oi0 * 0.5)
        contract.oi_contracts = _dec(oi, cm.oi_places)
        scale = contract.funding_interval_h / 8
        rate_8h = cm.fr0 / scale if scale else cm.fr0
        rate_8h += 0.0003 * cm.imbalance + 0.01 * ema * 480  # ema * 480 ~ the last 8 h return
        rate_8h = max(-0.003, min(0.003, rate_8h))
        rate = rate_8h * scale
        # never so close to zero that Decimal would print it in exponent form (venues echo str())
        contract.funding_rate = _dec(math.copysign(max(abs(rate), 1e-6), rate), 8)
        if cm.basis_owned:
            basis = 2.0 * rate_8h + rng.gauss(0.0, 0.0001)
            plan = self._plan
            if plan.venue == cm.venue_key and plan.name in ("venue-drain", "adl"):
                length = DRAIN_MS if plan.name == "venue-drain" else ADL_MS
                rel = (t - plan.onset_ms) / length
                if 0 <= rel <= 1:
                    basis -= 0.02 * math.sin(math.pi * rel)  # the victim venue's marks dislocate
            contract.extra["basis"] = _dec(max(-0.03, min(0.004, basis)), 6)

    def _liquidate(self, vm: _VenueModel, pm: _PoolModel, t: int, notional: float, exposure: float,
                   regime: int, scheduled: float | None) -> float:
        """One liquidation of ``notional`` USD on one of the pool's contracts. ``scheduled`` (pool asset
        units): a deficit the scenario requires, filled far beyond bankruptcy. Returns the deficit
        requested (pool asset units) for scheduled ones."""
        rng = pm.rng
        index = bisect.bisect_left(pm.cum_weights, rng.random()) if len(pm.contracts) > 1 else 0
        cm = pm.contracts[min(index, len(pm.contracts) - 1)]
        contract = cm.contract
        key = self._price_key(contract.base)
        r = self._last_r.get(key, 0.0)
        sigma = ANNUAL_VOL.get(key, DEFAULT_ANNUAL_VOL) / math.sqrt(MINUTES_PER_YEAR)
        basis = float(contract.extra.get("basis", 0)) if not cm.synthetic else 0.0
        mark = float(self.price(contract.base)) * (1 + basis)
        if mark <= 0:
            return 0.0
        pool_px = float(self.price(pm.pool.asset)) or 1.0
        # linear PnL is in the quote currency, inverse PnL in the base coin (whatever unit settles it)
        value_px = float(self.price(contract.base)) if contract.inverse else float(self.price(contract.quote)) or 1.0
        mm = rng.uniform(*MM_RANGE)
        if scheduled is not None:
            long = rng.random() < 0.8
            excess = rng.uniform(0.04, 0.12)
            slip = mm + excess
            notional = scheduled * pool_px / excess
        else:
            p_long = 0.5 - max(-0.42, min(0.42, r / (4 * sigma)))
            long = rng.random() < p_long
            slip = abs(rng.gauss(0.0, REGIME_SLIP[regime])) + 0.5 * abs(r) + 0.5 * notional / max(exposure, 1.0)
        cs = float(contract.contract_size) or 1.0
        quantum = 10.0 ** -cm.oi_places
        if contract.inverse:
            qty = max(quantum, round(notional / cs / quantum) * quantum)
        else:
            qty = max(quantum, round(notional / (mark * cs) / quantum) * quantum)
        places = _price_places(mark)
        if long:
            bankrupt, fill = mark * (1 - mm), mark * (1 - slip)
        else:
            bankrupt, fill = mark * (1 + mm), mark * (1 + slip)
        bankrupt = round(bankrupt, places)
        fill = max(round(fill, places), 10.0 ** -places)
        if contract.inverse:
            pnl = qty * cs * ((1 / bankrupt - 1 / fill) if long else (1 / fill - 1 / bankrupt))
            notional_usd = qty * cs
        else:
            pnl = qty * cs * ((fill - bankrupt) if long else (bankrupt - fill))
            notional_usd = qty * cs * mark * value_px
        delta = pnl * value_px / pool_px
        fund_delta = _dec(delta, pm.places)
        pool = pm.pool
        adl = Decimal(0)
        after = pool.balance + fund_delta
        if after <= 0:
            adl = -after
            fund_delta = -pool.balance
            after = Decimal(0)  # plain 0, not 0E-8
        pool.balance = after
        pm.liq_total += fund_delta
        if fund_delta >= 0:
            pm.period_surplus += fund_delta
        else:
            pm.period_deficit += fund_delta
        ts = t - STEP_MS + rng.randint(1, STEP_MS)
        if adl:
            pm.period_adl += adl
            pm.adl_total += adl
            vm.adl_until_ms = max(vm.adl_until_ms, t + 2 * HOUR_MS)
            pm.adl_until_ms = t + 2 * HOUR_MS
            if not pm.adl_open and not pm.hidden:
                pm.adl_open = True
                peak_ts, peak = max(pool.history, key=lambda point: point[1]) if pool.history else (ts, pool.balance)
                vm.venue.flows.append(SimFlow(pool.pool_id, pool.asset, ts, "adl", Decimal(0), pool.balance,
                                              extra={"adlType": "bal_adl_start", "maxBal": peak, "maxBalTs": peak_ts}))
        floor = OI_FLOOR * cm.oi0
        left = float(contract.oi_contracts) - qty
        if left >= floor:
            contract.oi_contracts = _dec(left, cm.oi_places)
        elif float(contract.oi_contracts) > floor:
            contract.oi_contracts = _dec(floor, cm.oi_places)
        cm.imbalance += (-1 if long else 1) * min(0.05, notional_usd / max(exposure, 1.0) * 5)
        stats = vm.stats
        stats["liq_count"] += 1
        stats["liq_notional_usd"] += notional_usd
        value = float(fund_delta) * pool_px
        if value >= 0:
            stats["surplus_usd"] += value
        else:
            stats["deficit_usd"] -= value
        stats["adl_usd"] += float(adl) * pool_px
        vm.pending.append(SimLiquidation(
            liq_id="", symbol=contract.symbol, ts_ms=ts,
            position_side="long" if long else "short", qty_contracts=_dec(qty, cm.oi_places),
            bankruptcy_price=_dec(bankrupt, places), fill_price=_dec(fill, places), fund_delta=fund_delta,
            pool_id=pool.pool_id, mark_price=_dec(mark, places), notional_usd=_dec(notional_usd, 2),
            adl_amount=adl, base=contract.base, settle=contract.settle, inverse=contract.inverse,
            contract_size=contract.contract_size,
        ))
        return -delta if scheduled is not None else 0.0

    def _scheduled_losses(self, vm: _VenueModel, pm: _PoolModel, t: int) -> None:
        """venue-drain / adl: deficits following a smooth schedule, as a few liquidations per step."""
        plan = self._plan
        length = DRAIN_MS if plan.name == "venue-drain" else ADL_MS
        rel = (t - plan.onset_ms) / length
        if rel <= 0 or rel > 1 + STEP_MS / length:
            return
        target = plan.drain_fraction * pm.b0 * _smoothstep(rel)
        needed = target - pm.scenario_loss
        if needed <= 10.0 ** -pm.places * 10:
            return
        parts = 1 + pm.rng.randrange(3)
        for _ in range(parts):
            requested = self._liquidate(vm, pm, t, 0.0, pm.exposure0, CRISIS, needed / parts)
            pm.scenario_loss += requested if requested > 0 else needed / parts

    def _publish(self, pm: _PoolModel, t: int) -> None:
        """Cross one or more publication boundaries: credit growth and write the period's flows when a
        flow period ends, then publish the balance at the latest boundary."""
        boundary = pm.next_pub_ms + ((t - pm.next_pub_ms) // pm.pub_step_ms) * pm.pub_step_ms
        pm.next_pub_ms = boundary + pm.pub_step_ms
        pool = pm.pool
        if boundary // pm.flow_step_ms != pm.last_flow_ms // pm.flow_step_ms:
            growth_f = pm.b0 * GROWTH_PER_DAY * (boundary - pm.last_flow_ms) / DAY_MS + pm.growth_carry
            growth = _dec(growth_f, pm.places)
            if growth < 0:
                growth = Decimal(0)
            pm.growth_carry = growth_f - float(growth)
            start_balance = pool.balance - pm.period_surplus - pm.period_deficit
            pool.balance += growth
            pm.growth_total += growth
            flows = self._fund_flows[pm.venue.key]
            running = start_balance
            for flow_type, amount in (("liquidation_balance_deposit", pm.period_surplus),
                                      ("bankruptcy_loss", pm.period_deficit),
                                      ("platform_revenue", growth)):
                if amount:
                    running += amount
                    flows.append(SimFlow(pm.ledger_key, pool.asset, boundary, flow_type, amount, running))
            if pm.hidden and pm.period_deficit:
                funded = -pm.period_deficit
                quantum = Decimal(1).scaleb(-pm.places)
                pm.venue.flows.append(SimFlow(
                    pool.pool_id, pool.asset, boundary, "bankruptcy", funded, Decimal(0),
                    extra={"socialized": pm.period_adl, "session_profit_loss": pm.period_surplus,
                           "session_tax": (funded * Decimal("0.0015")).quantize(quantum),
                           "session_tax_rate": Decimal("0.0015")}))
            pm.period_surplus = pm.period_deficit = pm.period_adl = Decimal(0)
            pm.last_flow_ms = boundary
        if pm.hidden:
            return
        pool.history.append((boundary, pool.balance))

    def _trim(self, vm: _VenueModel, t: int) -> None:
        venue = vm.venue
        liqs = venue.liquidations
        if liqs and (len(liqs) > LIQ_MAX or liqs[0].ts_ms < t - LIQ_WINDOW_MS):
            cutoff = t - LIQ_WINDOW_MS
            drop = max(len(liqs) - LIQ_MAX, bisect.bisect_left([x.ts_ms for x in liqs[:2000]], cutoff))
            if drop > 0:
                del liqs[:drop]
        flows = self._fund_flows[venue.key]
        if len(flows) > FLOW_MAX * 1.2:
            del flows[: len(flows) - FLOW_MAX]
        for pm in vm.pools:
            history = pm.pool.history
            if pm.pub_step_ms < HOUR_MS and len(history) > pm.base_history_len + 3 * 1440:
                pm.pool.history = _thin(history, keep_last=1440)
                pm.base_history_len = len(pm.pool.history) - 1440

    def _adl_levels(self, vm: _VenueModel, t: int) -> None:
        """ADL risk of each contract from its backing pools' drawdown (only where the venue module did
        not set a fixed level): high while ADL runs or a pool is nearly empty, medium below 70 %."""
        if t % (5 * STEP_MS):
            return
        adl_on = t < vm.adl_until_ms
        levels: dict[int, int] = {}
        for pm in vm.pools:
            ratio = float(pm.pool.balance) / pm.b0 if pm.b0 > 0 else 1.0
            rank = 2 if adl_on or ratio < 0.1 else 1 if ratio < 0.7 else 0
            for cm in pm.contracts:
                levels[id(cm)] = max(levels.get(id(cm), 0), rank)
        for cm in vm.contracts:
            if cm.adl_owned and not cm.synthetic:
                cm.contract.extra["adl_risk"] = ("low", "medium", "high")[levels.get(id(cm), 0)]


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


CATCH_UP_S = 120.0  # a fast demo market reaches the present this many real seconds after it starts


def catch_up_start_ms(speed: float, now_ms: int | None = None, catch_up_s: float = CATCH_UP_S) -> int:
    """Where a wall-capped market at ``speed`` starts so that it reaches the wall clock after
    ``catch_up_s`` real seconds (it gains ``speed - 1`` s per second); ``now`` itself at speed <= 1.
    At the demo's 720x: about 24 h back, so a scenario (onset 2 h, over by 14 h) is history by then."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    lead_ms = int(max(0.0, speed - 1.0) * catch_up_s * 1000)
    return (now_ms - lead_ms) // MINUTE_MS * MINUTE_MS


def demo_publish_every_s(speed: float) -> int | None:
    """Extra publication cadence for a demo at ``speed``: about one point per 20 real seconds, at a
    whole number of hours (720x -> 4 h), so daily venues show a several-hour event as it happens."""
    if speed <= 60:
        return None
    hours = max(1, min(24, round(speed * 20 / 3600)))
    while 24 % hours:
        hours -= 1
    return hours * 3600

