"""Bodies of the ``backstop`` commands that run processes and servers: ``collect``, ``backfill``,
``simulate``, ``demo``, ``dashboard``, ``run`` and ``api`` (signal handling, the Streamlit child, the
optional Prometheus and API servers). Registered (names, options, help texts) in ``backstop.cli``."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress

from backstop.children import install_stop_handlers, run_forwarding, spawn, stop_process
from backstop.cli_args import CliError, parse_when
from backstop.cli_context import (
    check_venues,
    check_writable,
    console,
    err_console,
    print_table,
    settings_from,
    state,
)


def integrations(collector: Any, daemon: bool = False) -> None:
    """Attach optional features (liquidation streams, cascades, alerts) when their modules exist; a daemon
    also serves Prometheus `/metrics` when a metrics port is configured."""
    from backstop.integrations import attach

    attach(collector)
    if daemon and collector.settings.metrics.port:
        from backstop.prometheus import serve

        try:
            serve(collector.settings.metrics, collector)
        except OSError as exc:
            raise CliError(f"metrics port {collector.settings.metrics.port}: {exc.strerror or exc}") from None


def collect(ctx: typer.Context, once: bool, venue: list[str] | None, metrics_port: int | None) -> int:
    """The scheduled collector until a signal, or one cycle and its summary (exit 1 if any run failed)."""
    from backstop.service import Collector, summarize

    settings = settings_from(ctx)
    venues = check_venues(settings, venue)
    if metrics_port is not None:
        settings.metrics.port = metrics_port
    check_writable(settings.db)

    async def run() -> int:
        collector = Collector.for_venues(settings, venues)
        integrations(collector, daemon=not once)
        async with collector.running():
            if once:
                outcomes = await collector.run_cycle()
                print_table("collection cycle", summarize(outcomes))
                return 0 if all(o.status == "ok" for o in outcomes) else 1
            stop = asyncio.Event()
            install_stop_handlers(stop)
            console.print(f"collecting {', '.join(venues)} into {settings.db} (Ctrl-C to stop)")
            await collector.serve(stop)
            return 0

    return asyncio.run(run())


def backfill(ctx: typer.Context, venue: list[str] | None, since: str | None) -> int:
    """Every (venue, dataset) history walk at once with a progress bar each; exit 1 if any failed."""
    from backstop.service import Collector, backfill_pairs

    settings = settings_from(ctx)
    venues = check_venues(settings, venue)
    start = parse_when(since, "--since") or datetime.now(UTC) - timedelta(days=settings.collector.backfill_days)
    check_writable(settings.db)

    async def run() -> int:
        collector = Collector.for_venues(settings, venues)
        failures = 0
        async with collector.running():
            pairs = backfill_pairs(collector)
            if not pairs:
                console.print("no venue selected publishes history")
                return 0
            with Progress(console=console) as progress:
                tasks = {pair: progress.add_task(f"{pair[0]} {pair[1]}", total=None) for pair in pairs}

                async def one(pair: tuple[str, str]) -> Any:
                    task = tasks[pair]
                    outcome = await collector.backfill(*pair, start, lambda n: progress.advance(task, n))
                    progress.update(task, total=1, completed=1,
                                    description=f"{pair[0]} {pair[1]}: {outcome.rows_written} rows {outcome.status}")
                    return outcome

                outcomes = await asyncio.gather(*(one(p) for p in pairs))
            for outcome in outcomes:
                if outcome.status != "ok":
                    failures += 1
                    err_console.print(f"backfill failed: {outcome.venue} {outcome.dataset}: {outcome.error_class}: "
                                      f"{outcome.error_message}", markup=False, soft_wrap=True)
        return 1 if failures else 0

    return asyncio.run(run())


def simulate(ctx: typer.Context, host: str, port: int, write_config: Path | None, scenario: str, speed: float,
             seed: int, fault: list[str] | None) -> int:
    """The simulator in the foreground; a bad scenario or fault spec is one line."""
    from backstop.simulate import run_simulator

    settings_from(ctx)  # validates --config even though the simulator only needs its own flags
    try:
        code = run_simulator(host=host, port=port, scenario=scenario, speed=speed, seed=seed,
                             faults=list(fault or []), write_config=write_config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return code or 0


def demo(ctx: typer.Context, db: Path, port: int, scenario: str, speed: float | None, seed: int,
         headless: bool) -> int:
    """The demo on its own database; the global ``--db`` wins over the demo default when given."""
    from backstop.demo import run_demo

    settings = settings_from(ctx)
    if state(ctx).get("db") is not None and db == Path("data/demo.duckdb"):
        db = state(ctx)["db"]
    try:
        code = run_demo(settings, db_path=db, dashboard_port=port, scenario=scenario, speed=speed,
                        seed=seed, headless=headless)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return code or 0


def dashboard_command(db: Path, host: str, port: int, simulated: bool = False,
                      refresh_s: int | None = None) -> list[str]:
    app_path = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_path),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer", "--", "--db", str(db),
    ]
    if simulated:
        command.append("--simulated")
    if refresh_s:
        command += ["--refresh", str(refresh_s)]
    return command


def dashboard(ctx: typer.Context, db: Path | None, port: int | None, host: str | None) -> int:
    """Streamlit in the foreground; its exit code is ours."""
    settings = settings_from(ctx, db)
    command = dashboard_command(settings.db, host or settings.dashboard.host, port or settings.dashboard.port,
                                refresh_s=settings.dashboard.refresh_s)
    console.print(f"dashboard on http://{host or settings.dashboard.host}:{port or settings.dashboard.port}")
    return run_forwarding(command)  # SIGTERM reaches Streamlit; it dies with us (no orphan)


def run(ctx: typer.Context, port: int | None, host: str | None, metrics_port: int | None,
        api_port: int | None) -> None:
    """The collector in this process, the dashboard as a child (terminated, then killed, when we stop)."""
    from backstop.service import Collector

    settings = settings_from(ctx)
    if metrics_port is not None:
        settings.metrics.port = metrics_port
    check_writable(settings.db)
    dash_host, dash_port = host or settings.dashboard.host, port or settings.dashboard.port
    settings.db.parent.mkdir(parents=True, exist_ok=True)
    from storage.db import ensure_database

    ensure_database(settings.db)
    proc = spawn(dashboard_command(settings.db, dash_host, dash_port, refresh_s=settings.dashboard.refresh_s))
    console.print(f"dashboard on http://{dash_host}:{dash_port} - collecting into {settings.db} (Ctrl-C to stop)")
    if api_port is not None:
        from backstop.api import serve_in_thread

        serve_in_thread(settings.db, dash_host, api_port)
        console.print(f"API on http://{dash_host}:{api_port}/v1")

    async def run_collector() -> None:
        collector = Collector.for_venues(settings)
        integrations(collector, daemon=True)
        async with collector.running():
            stop = asyncio.Event()
            install_stop_handlers(stop)
            await collector.serve(stop)

    try:
        asyncio.run(run_collector())
    finally:
        stop_process(proc)


def api(ctx: typer.Context, host: str, port: int) -> None:
    """The read-only JSON API in the foreground."""
    from backstop.api import serve

    settings = settings_from(ctx)
    console.print(f"API on http://{host}:{port}/v1 (OpenAPI: /openapi.json) reading {settings.db}", soft_wrap=True)
    serve(settings.db, host, port)
