"""``backstop demo`` and ``backstop simulate``: Backstop on simulated data, never on the user's database.

The demo starts the venue simulator (a real HTTP server on 127.0.0.1) with a scenario, points every
simulated venue's ``base_url`` at it (``simulated = true``, the demo's own DuckDB file, alerts and
thresholds kept from the user's config), backfills every venue's history concurrently, runs the
scheduled collector with intervals scaled to the simulation speed, and serves the dashboard labelled
SIMULATED. At the default 720x one real second is 12 simulated minutes: a scenario's event starts
about 10 s in and is over within 2 minutes; daily-cadence funds publish a point every 4 simulated hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.request
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from backstop.config import CollectorConfig, Settings, VenueConfig
from backstop.service import Collector
from collectors.runner import RunOutcome
from simulator.faults import FaultBook
from simulator.market import Market, catch_up_start_ms, demo_publish_every_s
from simulator.scenarios import DEFAULT_DEMO_SPEED, parse_scenario
from simulator.server import SimulatorThread, create_app

log = logging.getLogger(__name__)

DEFAULT_DEMO_DB = Path("data") / "demo.duckdb"
DEFAULT_DEMO_SCENARIO = "venue-drain"
CONFIG_MARKER = "# Written by `backstop simulate`"
# how much simulated time one poll of each dataset may lag (scaled to real seconds by the speed)
DEMO_POLL_SIM_S = {"funds": 3_600, "open_interest": 7_200, "funding": 14_400, "prices": 7_200,
                   "adl": 7_200, "liquidations": 3_600}
MIN_POLL_S, MAX_POLL_S = 3.0, 300.0
BACKFILL_ORDER = ("funds", "prices", "open_interest", "funding", "adl", "liquidations")

Echo = Callable[[str], None]


# -- which venues ---------------------------------------------------------------------------------
def simulated_venues() -> list[str]:
    """Venues that have both a collector adapter and a simulator module (in the registry's order)."""
    from collectors.registry import venue_keys
    from simulator.venues import SIM_VENUES

    return [key for key in venue_keys() if key in SIM_VENUES]


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


# -- settings ---------------------------------------------------------------------------------------
def demo_intervals(speed: float) -> dict[str, float]:
    """Real-second poll intervals: each dataset lags at most its DEMO_POLL_SIM_S of simulated time
    (720x: funds every 5 s), within [3 s, 300 s]; a frozen clock polls every 30 s."""
    if speed <= 0:
        return dict.fromkeys(DEMO_POLL_SIM_S, 30.0)
    return {name: round(min(MAX_POLL_S, max(MIN_POLL_S, sim_s / speed)), 2)
            for name, sim_s in DEMO_POLL_SIM_S.items()}


def demo_settings(settings_base: Settings, sim_url: str, venues: list[str], db_path: Path,
                  speed: float) -> Settings:
    """The user's settings with every simulated venue pointed at the simulator (others disabled), the
    demo's own database, ``simulated=True``; alerts, thresholds and dashboard options are kept."""
    if _same_file(db_path, settings_base.db):
        raise ValueError(f"the demo never writes to your database ({settings_base.db}): choose another --db")
    intervals = demo_intervals(speed)
    venue_cfg: dict[str, VenueConfig] = {}
    for key, cfg in settings_base.venues.items():
        data = cfg.model_dump()
        if key in venues:
            data.update(enabled=True, base_url=f"{sim_url}/{key}", symbols=[], timeout_s=15,
                        intervals={**data["intervals"], **intervals})
        else:
            data.update(enabled=False)
        venue_cfg[key] = VenueConfig.model_validate(data)
    collector = CollectorConfig.model_validate({
        **settings_base.collector.model_dump(), "jitter_s": 0.5, "max_retries": 2, "backoff_base_s": 0.2,
        "backoff_max_s": 2.0})
    # model_copy, not Settings(...): a new Settings would re-read BACKSTOP_* (BACKSTOP_DB would win)
    return settings_base.model_copy(update={
        "db": db_path, "simulated": True, "venues": venue_cfg, "collector": collector})


def _same_file(a: Path, b: Path) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def prepare_database(db_path: Path) -> None:
    """Start the demo on an empty file. A file is only deleted if an earlier demo created it (a
    ``.demo`` marker sits next to it); any other existing file is refused."""
    marker = db_path.with_name(db_path.name + ".demo")
    if db_path.exists():
        if not marker.exists():
            raise ValueError(f"{db_path} exists and was not created by `backstop demo`: choose another --db")
        for path in (db_path, db_path.with_name(db_path.name + ".wal")):
            path.unlink(missing_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("created by `backstop demo`; the demo may delete this database\n", encoding="utf-8")
    from storage.db import migrate, write_connection

    with write_connection(db_path) as con:
        # explicitly: storage.db caches "migrated" per (path, inode), and a recreated file may reuse
        # the inode of the one just deleted
        migrate(con)


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
    if _same_file(db_path, settings_base.db):
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
    from backstop.children import spawn  # dies with the demo, even on kill -9

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


def _stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)


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


# -- entry points -----------------------------------------------------------------------------------
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
            _install_stop_handlers(stop)
            await collect(demo, stop, echo)

        echo("collecting (Ctrl-C to stop)")
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        _stop_process(proc)
        demo.stop()
    return 0


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


def write_simulator_config(path: Path, url: str, venues: list[str]) -> None:
    if path.exists() and not path.read_text(encoding="utf-8").startswith(CONFIG_MARKER):
        raise ValueError(f"{path} exists and was not written by `backstop simulate`: not overwriting it")
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
    if write_config is not None and write_config.exists() and \
            not write_config.read_text(encoding="utf-8").startswith(CONFIG_MARKER):
        raise ValueError(f"{write_config} exists and was not written by `backstop simulate`: not overwriting it")
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
        _install_stop_handlers(stop)
        await serve_simulator(market, host, port, book, stop, ready)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
