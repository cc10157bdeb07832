"""``backstop simulate``: the venue simulator in the foreground, optionally writing a backstop.toml that
points every venue at it; and the simulated market both ``simulate`` and ``demo`` serve (seeded,
scenario checked, wall-capped clock) with the one-line description of its scenario they print."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from backstop.children import install_stop_handlers
from simulator.faults import FaultBook
from simulator.market import Market, catch_up_start_ms, demo_publish_every_s
from simulator.scenarios import parse_scenario
from simulator.server import create_app

CONFIG_MARKER = "# Written by `backstop simulate`"

Echo = Callable[[str], None]


def simulator_venues() -> list[str]:
    """Every venue the simulator serves (``simulate`` serves venues even without an adapter)."""
    from simulator.venues import SIM_VENUES

    return list(SIM_VENUES)


def make_market(scenario: str, speed: float, seed: int, venues: list[str]) -> Market:
    """The demo's market: scenario checked, extra publication points for long cadences at high speed, and
    a clock that starts in the past and never passes the wall clock (no venue timestamp in the future)."""
    parse_scenario(scenario)
    return Market(seed=seed, speed=speed, scenario=scenario, venues=venues,
                  publish_every_s=demo_publish_every_s(speed), start_ms=catch_up_start_ms(speed),
                  wall_capped=True)


def describe_plan(market: Market) -> str:
    plan = market.plan
    if plan.name == "calm":
        return "scenario calm: no event"
    rate = market.speed or 1.0
    onset_s = (plan.onset_ms - market.start_ms) / 1000 / rate
    end_s = (plan.end_ms - market.start_ms) / 1000 / rate
    victim = f" on {plan.venue}" if plan.venue else ""
    return (f"scenario {plan.name}{victim}: starts ~{onset_s:.0f} s in, over by ~{end_s:.0f} s "
            f"(simulated {market.speed:g}x)")


def simulator_config(url: str, venues: list[str]) -> str:
    """backstop.toml text: every simulated venue's base_url at the simulator, the rest disabled."""
    from collectors.registry import venue_keys

    lines = [CONFIG_MARKER + f" for the simulator at {url}. Simulated data only:",
             "# it goes to its own database, never mix it with real data.",
             "simulated = true", 'db = "data/simulated.duckdb"', ""]
    for key in venue_keys():
        lines.append(f"[venues.{key}]")
        lines.append(f'base_url = "{url}/{key}"' if key in venues else "enabled = false")
        lines.append("")
    return "\n".join(lines)


def refuse_foreign_config(path: Path) -> None:
    """ValueError if ``path`` exists and was not written by ``backstop simulate`` (never overwritten)."""
    if path.exists() and not path.read_text(encoding="utf-8").startswith(CONFIG_MARKER):
        raise ValueError(f"{path} exists and was not written by `backstop simulate`: not overwriting it")


def write_simulator_config(path: Path, url: str, venues: list[str]) -> None:
    refuse_foreign_config(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(simulator_config(url, venues), encoding="utf-8")


async def serve_simulator(market: Market, host: str, port: int, faults: FaultBook, stop: asyncio.Event,
                          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``market`` on host:port until ``stop``; ``on_ready(url)`` once bound (port 0 = any)."""
    runner = web.AppRunner(create_app(market, faults), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses  # the bound (host, port) when port=0
    bound: int = addresses[0][1] if addresses else port
    try:
        if on_ready:
            on_ready(f"http://{host}:{bound}")
        await stop.wait()
    finally:
        await runner.cleanup()


def run_simulator(host: str = "127.0.0.1", port: int = 8765, scenario: str = "calm", speed: float = 1.0,
                  seed: int = 1, faults: list[str] | None = None, write_config: Path | None = None,
                  echo: Echo = print) -> int:
    """``backstop simulate``: serve every simulated venue until SIGINT/SIGTERM. With ``write_config``,
    writes a backstop.toml pointing at the server (once the port is bound). Raises ValueError on a
    bad scenario or fault spec, or a config path it did not write itself."""
    book = FaultBook()
    for spec in faults or []:
        book.add(spec)  # FaultSpecError is a ValueError
    if write_config is not None:
        refuse_foreign_config(write_config)
    market = make_market(scenario, speed, seed, simulator_venues())

    def ready(url: str) -> None:
        echo(f"simulator on {url} - venues at {url}/<venue>: {', '.join(market.venues)}")
        echo(describe_plan(market))
        if write_config is not None:
            write_simulator_config(write_config, url, list(market.venues))
            echo(f"wrote {write_config}")
        echo("Ctrl-C to stop")

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_handlers(stop)
        await serve_simulator(market, host, port, book, stop, ready)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
