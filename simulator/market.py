"""The simulated market every fake venue serves from.

State is plain data (prices, contracts with OI and funding, fund pools with their published history,
fund flows, liquidations) that tests may set directly. ``Market.advance()`` moves it along a simulated
clock in fixed one-minute steps; with ``speed=0`` the clock is frozen and nothing moves (tests of exact
values) unless a test calls ``fast_forward``. Each venue module in ``simulator.venues`` declares its
contracts and pools in ``build(market)`` and its HTTP routes in ``ROUTES`` (``simulator.routing``), and
reads every dynamic value from this state at request time.

The model, deterministic from ``seed`` (and the venue list):

* one price path per asset, shared by all venues: a random walk with volatility regimes (calm,
  volatile, crisis) and occasional jumps; alts follow BTC with a beta, partly with a one-step lag
  (BTC leads), plus their own noise. Venues add a small basis (``contract.extra["basis"]``).
* each pool absorbs the liquidations of the contracts it covers. Who is liquidated follows each venue's
  explicit leverage distribution (``simulator.leverage``): positions re-formed at each UTC day's open are
  liquidated as the day's low/high moves through their liquidation prices (the stress test's model, so
  its calibration can be checked against a known truth). The regime sets how far fills land from the
  mark: a fill better than the bankruptcy price pays the surplus into the fund, a worse one draws the
  deficit from it (margin -> fund -> ADL once the fund is empty). Liquidated positions leave the OI.
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

import math
import random
import threading
import time
from decimal import Decimal

from records.vocabulary import STABLE_ASSETS
from simulator.liquidation_engine import LiquidationEngine
from simulator.market_state import (
    BASE_PRICES,
    CALM,
    MINUTE_MS,
    STEP_MS,
    SimFlow,
    SimVenue,
    _PoolModel,
    _price_places,
    _VenueModel,
)
from simulator.prices import PriceModel
from simulator.scenarios import ScenarioModel, ScenarioPlan, parse_scenario
from simulator.venue_model import VenueModelBuilder


class Market(PriceModel, ScenarioModel, LiquidationEngine, VenueModelBuilder):
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

    def _step(self, t: int) -> None:
        self._step_prices(t)
        for vm in self._venue_models.values():
            self._step_venue(vm, t)
        self._model_ms = t



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

