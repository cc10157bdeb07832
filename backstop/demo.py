"""``backstop demo``: Backstop on simulated data, never on the user's database.

The demo starts the venue simulator (a real HTTP server on 127.0.0.1) with a scenario, points every
simulated venue's ``base_url`` at it (``simulated = true``, the demo's own DuckDB file, alerts and
thresholds kept from the user's config), backfills every venue's history concurrently, runs the
scheduled collector with intervals scaled to the simulation speed, and serves the dashboard labelled
SIMULATED. At the default 720x one real second is 12 simulated minutes: a scenario's event starts
about 10 s in and is over within 2 minutes; daily-cadence funds publish a point every 4 simulated hours.

This module runs the demo (simulator thread, backfill alongside the scheduled collector, the dashboard
child); its settings and database are prepared by ``backstop.demo_setup``, its market by
``backstop.simulate`` (shared with ``backstop simulate``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import threading
import time
import urllib.request
import webbrowser
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backstop.children import install_stop_handlers, spawn, stop_process
from backstop.config import Settings
from backstop.demo_setup import demo_settings, prepare_database, same_file
from backstop.service import Collector
from backstop.simulate import Echo, describe_plan, make_market
from collectors.runner import RunOutcome
from simulator.market import Market
from simulator.scenarios import DEFAULT_DEMO_SPEED
from simulator.server import SimulatorThread

log = logging.getLogger(__name__)

DEFAULT_DEMO_DB = Path("data") / "demo.duckdb"
DEFAULT_DEMO_SCENARIO = "venue-drain"
BACKFILL_ORDER = ("funds", "prices", "open_interest", "funding", "adl", "liquidations")


# -- which venues ---------------------------------------------------------------------------------
def simulated_venues() -> list[str]:
    """Venues that have both a collector adapter and a simulator module (in the registry's order)."""
    from collectors.registry import venue_keys
    from simulator.venues import SIM_VENUES

    return [key for key in venue_keys() if key in SIM_VENUES]


# -- collection -------------------------------------------------------------------------------------
@dataclass
class DemoRun:
    """A running demo: the simulator, its market, the settings the collector uses, progress."""

    market: Market
    sim: SimulatorThread
    settings: Settings
    backfill_days: int
    started_monotonic: float = field(default_factory=time.monotonic)
    backfill_seconds: float | None = None  # real seconds until every backfill finished
    backfill_rows: int = 0
    backfill_outcomes: list[RunOutcome] = field(default_factory=list)

    def stop(self) -> None:
        self.sim.stop()


def start_demo(settings_base: Settings, db_path: Path = DEFAULT_DEMO_DB, port: int = 0,
               scenario: str = DEFAULT_DEMO_SCENARIO, speed: float | None = None, seed: int = 7,
               venues: list[str] | None = None) -> DemoRun:
    """Prepare the demo database and start the simulator (127.0.0.1:``port``, 0 = any free port)."""
    speed = DEFAULT_DEMO_SPEED if speed is None else float(speed)
    keys = venues or simulated_venues()
    if same_file(db_path, settings_base.db):
        raise ValueError(f"the demo never writes to your database ({settings_base.db}): choose another --db")
    market = make_market(scenario, speed, seed, keys)
    prepare_database(db_path)
    sim = SimulatorThread(market, host="127.0.0.1", port=port).start()
    settings = demo_settings(settings_base, sim.url, keys, db_path, speed)
    days = min(settings_base.collector.backfill_days, market.history_days)
    return DemoRun(market=market, sim=sim, settings=settings, backfill_days=days)


async def backfill_all(collector: Collector, since: datetime,
                       echo: Echo | None = None) -> list[RunOutcome]:
    """Every venue's history endpoints back to ``since``: venues concurrently, each venue's datasets
    one after the other (funds first, then prices to value them in USD)."""
    from backstop.service import backfill_pairs

    by_venue: dict[str, list[str]] = {}
    for venue, dataset in backfill_pairs(collector):
        by_venue.setdefault(venue, []).append(dataset)

    async def one_dataset(venue: str, dataset: str) -> RunOutcome | None:
        """One dataset; a failed attempt is retried once (writes are idempotent)."""
        outcome: RunOutcome | None = None
        for attempt in (1, 2):
            try:
                outcome = await collector.backfill(venue, dataset, since)
            except Exception as exc:  # noqa: BLE001 - one dataset never stops the demo
                log.warning("backfill %s %s attempt %d failed: %s", venue, dataset, attempt, exc)
                continue
            if outcome.status == "ok":
                break
        if echo:
            state = "failed" if outcome is None else \
                "ok" if outcome.status == "ok" else f"{outcome.error_class}: {outcome.error_message}"
            echo(f"  backfilled {venue} {dataset}: {0 if outcome is None else outcome.rows_written} rows ({state})")
        return outcome

    async def one_venue(venue: str, datasets: list[str]) -> list[RunOutcome]:
        ordered = sorted(datasets, key=lambda d: BACKFILL_ORDER.index(d) if d in BACKFILL_ORDER else 99)
        outcomes = []
        for dataset in ordered:
            outcome = await one_dataset(venue, dataset)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    results = await asyncio.gather(*(one_venue(v, d) for v, d in by_venue.items()))
    return [outcome for outcomes in results for outcome in outcomes]


async def collect(demo: DemoRun, stop: asyncio.Event, echo: Echo | None = None,
                  integrations: bool = True) -> None:
    """Backfill (concurrently) while the scheduled collector already polls, until ``stop`` is set."""
    collector = Collector.for_venues(demo.settings)
    if integrations:
        from backstop.integrations import attach

        attach(collector)
    since = datetime.fromtimestamp(demo.market.now_ms() / 1000, UTC) - timedelta(days=demo.backfill_days)

    async def backfill() -> None:
        started = time.monotonic()
        outcomes = await backfill_all(collector, since, echo)
        demo.backfill_outcomes = outcomes
        demo.backfill_rows = sum(o.rows_written for o in outcomes)
        demo.backfill_seconds = time.monotonic() - started
        if echo:
            echo(f"backfill done: {demo.backfill_rows} rows in {demo.backfill_seconds:.1f} s")

    async with collector.running():
        task = asyncio.create_task(backfill())
        try:
            await collector.serve(stop)
        finally:
            if not task.done():
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001 - reported, the demo still shuts down cleanly
                log.exception("backfill failed")


# -- dashboard ----------------------------------------------------------------------------------------
def start_dashboard(db_path: Path, port: int, refresh_s: int | None = None) -> subprocess.Popen[bytes] | None:
    """``streamlit run dashboard/app.py`` on 127.0.0.1 with BACKSTOP_SIMULATED=1 (None if absent)."""
    app_path = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    if not app_path.exists():
        log.warning("dashboard/app.py not found: running without the dashboard")
        return None
    from backstop.cli_processes import dashboard_command

    env = {**os.environ, "BACKSTOP_SIMULATED": "1", "BACKSTOP_DB": str(db_path)}
    command = dashboard_command(db_path, "127.0.0.1", port, simulated=True, refresh_s=refresh_s)
    # spawn: the child dies with the demo, even on kill -9
    return spawn(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own localhost server
                return True
        except OSError:
            time.sleep(0.5)
    return False


def run_demo(settings_base: Settings, db_path: Path = DEFAULT_DEMO_DB, port: int = 0,
             scenario: str = DEFAULT_DEMO_SCENARIO, speed: float | None = None, seed: int = 7,
             headless: bool = False, dashboard_port: int | None = 8501, echo: Echo = print) -> int:
    """The whole demo until Ctrl-C. ``port`` is the simulator's (0 = any free port); the dashboard
    is served on 127.0.0.1:``dashboard_port`` (None = no dashboard). Raises ValueError on a bad
    scenario, an unknown venue or a --db that is the user's database."""
    demo = start_demo(settings_base, db_path, port, scenario, speed, seed)
    proc = None
    try:
        echo(f"simulator on {demo.sim.url} ({len(demo.market.venues)} venues) - SIMULATED DATA")
        echo(describe_plan(demo.market))
        echo(f"demo database: {db_path}")
        if dashboard_port:
            proc = start_dashboard(db_path, dashboard_port, refresh_s=10)
            if proc is not None:
                url = f"http://127.0.0.1:{dashboard_port}"
                echo(f"dashboard on {url}")
                if not headless:  # once it answers; collection does not wait for it
                    threading.Thread(target=lambda: wait_for_http(url, 60) and webbrowser.open(url),
                                     name="open-browser", daemon=True).start()

        async def main() -> None:
            stop = asyncio.Event()
            install_stop_handlers(stop)
            await collect(demo, stop, echo)

        echo("collecting (Ctrl-C to stop)")
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(proc)
        demo.stop()
    return 0
