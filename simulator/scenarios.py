"""Scenarios of the simulated market (``calm``, ``cascade``, ``venue-drain[:VENUE]``, ``adl[:VENUE]``):
what each one does and when, relative to the market's ``start_ms`` - the regime it imposes, the drift
of the price path, and the deficits it schedules on the victim venue's pools."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from simulator.market_state import (
    CALM,
    CRISIS,
    HOUR_MS,
    STEP_MS,
    VOLATILE,
    MarketCore,
    _PoolModel,
    _smoothstep,
    _VenueModel,
)

DEFAULT_DEMO_SPEED = 720.0
SCENARIOS = ("calm", "cascade", "venue-drain", "adl")
EVENT_ONSET_MS = 2 * HOUR_MS
CASCADE_CRASH_MS = 2 * HOUR_MS  # the crash itself
CASCADE_CRISIS_MS = 6 * HOUR_MS  # crisis regime from onset
CASCADE_VOLATILE_MS = 12 * HOUR_MS  # volatile regime until then
CASCADE_DROP = 0.15  # BTC log drop during the crash
CASCADE_GAP = 0.02  # of which in the crash's first minute
CASCADE_REBOUND = 0.035
DRAIN_MS = 12 * HOUR_MS
DRAIN_RANGE = (0.38, 0.52)
ADL_MS = 3 * HOUR_MS
ADL_TARGET = 1.25  # scheduled deficits as a share of the fund: the last part is socialised (ADL)
ADL_FLAG_MS = 5 * HOUR_MS
EVENT_END_MS = {"calm": 0, "cascade": EVENT_ONSET_MS + CASCADE_VOLATILE_MS,
                "venue-drain": EVENT_ONSET_MS + DRAIN_MS, "adl": EVENT_ONSET_MS + ADL_FLAG_MS}
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


class ScenarioModel(MarketCore):
    """The scenario part of ``Market`` (mixed in: it reads the market's model state)."""

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
            # a gap down (the first liquidation wave), then bell-shaped: violent middle, exhaustion
            weight = math.sin(math.pi * (k - 0.5) / crash_steps) ** 2 * 2 / crash_steps
            return -(CASCADE_DROP - CASCADE_GAP) * weight - (CASCADE_GAP if k == 1 else 0.0)
        rebound_ms = CASCADE_CRISIS_MS - CASCADE_CRASH_MS
        if CASCADE_CRASH_MS < rel <= CASCADE_CRISIS_MS:
            return CASCADE_REBOUND / (rebound_ms // STEP_MS)
        return 0.0

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
