"""Shared fixtures: the venue payload examples, a local simulator, settings pointed at it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backstop.config import Settings, load_settings
from simulator.market import Market
from simulator.server import SimulatorThread

EXAMPLES = Path(__file__).parent / "fixtures" / "exchange-api"


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll the application's own state until ``condition``; the timeout only catches a hang."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for: {what}")
        time.sleep(0.05)


def example(venue_dir: str, name: str) -> Any:
    """A verbatim example payload (tests/fixtures/exchange-api, copied from shared/exchange-api)."""
    return json.loads((EXAMPLES / venue_dir / name).read_text(encoding="utf-8"), parse_float=Decimal)


def example_raw(venue_dir: str, name: str) -> Any:
    """The same payload parsed the way ccxt parses JSON (floats), for parsers fed by ccxt."""
    return json.loads((EXAMPLES / venue_dir / name).read_text(encoding="utf-8"))


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimulatorThread]]:
    """Start simulators (frozen clock unless ``speed`` is given); all are stopped at teardown."""
    started: list[SimulatorThread] = []

    def start(venues: list[str] | None = None, **market_kwargs: Any) -> SimulatorThread:
        market_kwargs.setdefault("speed", 0.0)
        sim = SimulatorThread(Market(venues=venues, **market_kwargs)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def settings_for(sim: SimulatorThread, db: Path, venues: list[str], **overrides: Any) -> Settings:
    """Settings whose listed venues point at ``sim`` and all others are disabled."""
    from collectors.registry import venue_keys

    venue_cfg: dict[str, Any] = {key: {"enabled": False} for key in venue_keys()}
    for key in venues:
        venue_cfg[key] = {"enabled": True, "base_url": sim.base_url(key)}
    overrides.setdefault("collector", {"max_retries": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.5})
    return load_settings(db_path=db, venues=venue_cfg, **overrides)
