"""``backstop collect --venue X`` runs X's liquidation streams only (issue #11: it used to connect every
enabled venue's streams). Real simulator, real feeds, the CLI's own wiring (``Collector.for_venues`` +
``backstop.integrations.attach``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from backstop.config import load_settings
from backstop.integrations import attach
from backstop.service import Collector
from collectors.liquidations.integration import service_for
from collectors.registry import venue_keys
from simulator.market import Market
from simulator.server import SimulatorThread
from simulator.stream_hub import hub_for

STREAM_VENUES = ["binance", "bybit", "okx", "gate"]


def streams_settings(sim: SimulatorThread, db: Path):  # noqa: ANN201 - backstop.config.Settings
    venues = {key: {"enabled": False} for key in venue_keys()}
    for key in STREAM_VENUES:  # all four enabled with their streams on (the default)
        venues[key] = {"enabled": True, "base_url": sim.base_url(key), "intervals": {"liquidations": 0}}
    return load_settings(db_path=db, venues=venues)


def test_collect_venue_limits_liquidation_streams(tmp_path: Path) -> None:
    market = Market(venues=STREAM_VENUES, speed=0)
    with SimulatorThread(market) as sim:
        settings = streams_settings(sim, tmp_path / "venue.duckdb")
        hub = hub_for(market)

        async def scenario() -> tuple[set[str], set[str]]:
            collector = Collector.for_venues(settings, ["binance"])
            attach(collector)
            service = service_for(collector)
            assert service is not None
            async with collector.running():
                tasks = [asyncio.create_task(task(collector)) for task in collector.background]
                try:
                    await asyncio.wait_for(asyncio.gather(*(r.started.wait() for r in service.runners)), 30)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
            feeds = {runner.info.venue for runner in service.runners}
            connected = {key.split(":")[0] for key, log in hub.logs.items() if log.connections}
            return feeds, connected

        feeds, connected = asyncio.run(scenario())
        assert feeds == {"binance"}
        assert connected == {"binance"}


def test_collect_without_venue_runs_every_enabled_venues_streams(tmp_path: Path) -> None:
    """The counterpart: without ``--venue`` the same settings give every enabled venue its feeds."""
    from collectors.liquidations.integration import build_feeds

    market = Market(venues=STREAM_VENUES, speed=0)
    with SimulatorThread(market) as sim:
        settings = streams_settings(sim, tmp_path / "all.duckdb")
        assert {feed.info.venue for feed in build_feeds(settings)} == set(STREAM_VENUES)
        assert {feed.info.venue for feed in build_feeds(settings, only=["binance"])} == {"binance"}
        collector = Collector.for_venues(settings)
        attach(collector)
        service = service_for(collector)
        assert service is not None
        assert {runner.info.venue for runner in service.runners} == set(STREAM_VENUES)
