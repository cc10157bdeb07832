"""The ``backstop`` command line. Global ``--config``/``--db`` on every command; errors are one line on
stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from backstop.config import ConfigError, Settings, load_settings

try:  # typer >= 0.20 vendors click; older typer uses the click package
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException  # type: ignore[no-redef]

app = typer.Typer(
    help="Backstop: monitor crypto-derivatives exchanges' insurance funds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("backstop")

DATASET_NAMES = ("funds", "fund-flows", "pools", "open-interest", "funding", "prices", "runs", "adl", "liquidation-totals",
                 "liquidations", "liquidation-gaps", "cascades", "alerts", "assessments", "fund-changes")


class CliError(ClickException):
    """A user-facing error: printed as one line."""


def _state(ctx: typer.Context) -> dict[str, Any]:
    return ctx.ensure_object(dict)


def settings_from(ctx: typer.Context, db: Path | None = None, **overrides: Any) -> Settings:
    state = _state(ctx)
    try:
        return load_settings(state.get("config"), db or state.get("db"), **overrides)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def parse_when(text: str | None, option: str) -> datetime | None:
    """ISO date/datetime (UTC if no zone) or a relative age like 30d, 12h, 90m."""
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]
        return datetime.now(UTC) - delta
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option}: expected an ISO date/time or an age like 30d/12h, got {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_venues(settings: Settings, venues: list[str] | None) -> list[str]:
    if not venues:
        return settings.enabled_venues()
    unknown = [v for v in venues if v not in settings.venues]
    if unknown:
        raise CliError(f"--venue: unknown venue {unknown[0]!r} (known: {', '.join(settings.venues)})")
    return venues


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="backstop.toml to read")] = None,
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file (default ./data/backstop.duckdb)")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug|info|warning|error")] = "warning",
) -> None:
    if log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise CliError(f"--log-level: expected debug|info|warning|error, got {log_level!r}")
    _state(ctx).update(config=config, db=db)
    _setup_logging(log_level)


def _print_table(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    if not rows:
        console.print(f"{title}: nothing yet")
        return
    for column in rows[0]:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def _install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass


def _integrations(collector: Any) -> None:
    """Attach optional features (liquidation streams, cascades, alerts) when their modules exist."""
    from backstop.integrations import attach

    attach(collector)


@app.command()
def collect(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="one cycle, print a summary, exit")] = False,
    venue: Annotated[list[str] | None, typer.Option("--venue", help="only this venue (repeatable)")] = None,
) -> None:
    """Run the scheduled collector (or one cycle with --once)."""
    from backstop.service import Collector, summarize

    settings = settings_from(ctx)
    venues = _check_venues(settings, venue)

    async def run() -> int:
        collector = Collector.for_venues(settings, venues)
        _integrations(collector)
        async with collector.running():
            if once:
                outcomes = await collector.run_cycle()
                _print_table("collection cycle", summarize(outcomes))
                return 0 if all(o.status == "ok" for o in outcomes) else 1
            stop = asyncio.Event()
            _install_stop_handlers(stop)
            console.print(f"collecting {', '.join(venues)} into {settings.db} (Ctrl-C to stop)")
            await collector.serve(stop)
            return 0

    raise typer.Exit(asyncio.run(run()))


@app.command()
def backfill(
    ctx: typer.Context,
    venue: Annotated[list[str] | None, typer.Option("--venue", help="only this venue (repeatable)")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO date or age (e.g. 90d)")] = None,
) -> None:
    """Walk the venues' history endpoints back to --since (default: collector.backfill_days)."""
    from backstop.service import Collector, backfill_pairs

    settings = settings_from(ctx)
    venues = _check_venues(settings, venue)
    start = parse_when(since, "--since") or datetime.now(UTC) - timedelta(days=settings.collector.backfill_days)

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
                    err_console.print(f"{outcome.venue} {outcome.dataset}: {outcome.error_class}: {outcome.error_message}")
        return 1 if failures else 0

    raise typer.Exit(asyncio.run(run()))


@app.command()
def status(ctx: typer.Context) -> None:
    """Per venue and dataset: last success, last error, rows, data age."""
    from storage.db import DatabaseMissing
    from storage.queries import collector_status

    settings = settings_from(ctx)
    try:
        frame = collector_status(settings.db)
    except DatabaseMissing as exc:
        raise CliError(str(exc)) from None
    rows = []
    for record in frame.to_dict("records"):
        rows.append({
            "venue": record["venue"], "dataset": record["dataset"], "last status": record["last_status"],
            "last success": _fmt_ts(record["last_success"]), "age": _fmt_age(record["age_s"]),
            "rows": record["rows_written"],
            "last error": f"{record['last_error_class']}: {record['last_error_message']}"
            if record["last_error_class"] else "",
        })
    _print_table(f"collector status ({settings.db})", rows)
    from alerts.judgement import print_status

    print_status(settings, lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))


def _fmt_ts(value: Any) -> str:
    return "" if value is None or str(value) == "NaT" else str(value)[:19]


def _fmt_age(seconds: Any) -> str:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "never"
    if value != value:  # NaN
        return "never"
    return f"{value / 3600:.1f} h" if value >= 3600 else f"{value / 60:.0f} min"


@app.command()
def export(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help=f"one of: {', '.join(DATASET_NAMES)}")],
    venue: Annotated[str | None, typer.Option("--venue")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO date/time or age (30d)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO date/time or age")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="CSV file (default: stdout)")] = None,
) -> None:
    """CSV of a dataset (header row, UTC ISO-8601 timestamps, a venue column). `assessments`: one row per
    venue x pool at --until (default now): venue, pool_id, state, figures, reasons. `fund-changes`: every
    change between two observations of a pool with its kind (trading, injection, transfer, restructure,
    valuation) and whether the kind was inferred (default: the last 7 days)."""
    from alerts.judgement import COMPUTED_EXPORTS, export_computed
    from backstop.integrations import load_optional_exports
    from storage.db import DatabaseMissing
    from storage.export import EXPORTS, export_csv

    load_optional_exports()
    settings = settings_from(ctx)
    if dataset not in EXPORTS and dataset not in COMPUTED_EXPORTS:
        raise CliError(f"unknown dataset {dataset!r} (one of: {', '.join(EXPORTS)})")
    if venue is not None:
        _check_venues(settings, [venue])
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    target = out if out is not None else Path("/dev/stdout")
    try:
        if dataset in COMPUTED_EXPORTS:
            count = export_computed(settings, dataset, target, venue=venue, since=start, until=end)
        else:
            count = export_csv(settings.db, dataset, target, venue=venue, since=start, until=end)
    except DatabaseMissing as exc:
        raise CliError(str(exc)) from None
    if out is not None:
        err_console.print(f"wrote {count} rows to {out}")


@app.command()
def simulate(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8765,
    write_config: Annotated[Path | None, typer.Option("--write-config", help="write a backstop.toml pointing at the simulator")] = None,
    scenario: Annotated[str, typer.Option("--scenario", help="calm | cascade | venue-drain[:VENUE] | adl")] = "calm",
    speed: Annotated[float, typer.Option("--speed", min=0, help="simulated seconds per real second")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    fault: Annotated[list[str] | None, typer.Option("--fault", help="VENUE:PATH:KIND[:ARG] (repeatable)")] = None,
) -> None:
    """Run the local venue simulator (real HTTP/WebSocket server) for tests and your own tools."""
    from backstop.demo import run_simulator

    settings_from(ctx)  # validates --config even though the simulator only needs its own flags
    try:
        code = run_simulator(host=host, port=port, scenario=scenario, speed=speed, seed=seed,
                             faults=list(fault or []), write_config=write_config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    raise typer.Exit(code or 0)


@app.command()
def demo(
    ctx: typer.Context,
    db: Annotated[Path, typer.Option("--db", help="the demo's own DuckDB file")] = Path("data/demo.duckdb"),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="dashboard port")] = 8501,
    scenario: Annotated[str, typer.Option("--scenario")] = "venue-drain",
    speed: Annotated[float | None, typer.Option("--speed", min=0)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    headless: Annotated[bool, typer.Option("--headless", help="no browser window")] = False,
) -> None:
    """Everything on simulated data: simulator + backfill + collector + dashboard (labelled SIMULATED)."""
    from backstop.demo import run_demo

    settings = settings_from(ctx)
    if _state(ctx).get("db") is not None and db == Path("data/demo.duckdb"):
        db = _state(ctx)["db"]
    try:
        code = run_demo(settings, db_path=db, dashboard_port=port, scenario=scenario, speed=speed,
                        seed=seed, headless=headless)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    raise typer.Exit(code or 0)


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


@app.command()
def dashboard(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option("--db")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    host: Annotated[str | None, typer.Option("--host", help="bind address (default 127.0.0.1)")] = None,
) -> None:
    """Serve the Streamlit dashboard (localhost by default)."""
    settings = settings_from(ctx, db)
    command = dashboard_command(settings.db, host or settings.dashboard.host, port or settings.dashboard.port,
                                refresh_s=settings.dashboard.refresh_s)
    console.print(f"dashboard on http://{host or settings.dashboard.host}:{port or settings.dashboard.port}")
    raise typer.Exit(subprocess.call(command))


@app.command()
def run(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    host: Annotated[str | None, typer.Option("--host")] = None,
) -> None:
    """The main job: the scheduled collector and the dashboard on one embedded DuckDB file."""
    from backstop.service import Collector

    settings = settings_from(ctx)
    dash_host, dash_port = host or settings.dashboard.host, port or settings.dashboard.port
    settings.db.parent.mkdir(parents=True, exist_ok=True)
    from storage.db import ensure_database

    ensure_database(settings.db)
    proc = subprocess.Popen(dashboard_command(settings.db, dash_host, dash_port,
                                              refresh_s=settings.dashboard.refresh_s))
    console.print(f"dashboard on http://{dash_host}:{dash_port} - collecting into {settings.db} (Ctrl-C to stop)")

    async def run_collector() -> None:
        collector = Collector.for_venues(settings)
        _integrations(collector)
        async with collector.running():
            stop = asyncio.Event()
            _install_stop_handlers(stop)
            await collector.serve(stop)

    try:
        asyncio.run(run_collector())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


alerts_app = typer.Typer(help="Alert targets and alert history.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("test")
def alerts_test_command(ctx: typer.Context) -> None:
    """Send a test message to every [alerts] target (targets are shown by scheme only)."""
    from alerts.commands import alerts_test

    raise typer.Exit(alerts_test(settings_from(ctx), echo=lambda line: console.print(line, markup=False)))


@alerts_app.command("list")
def alerts_list_command(
    ctx: typer.Context,
    days: Annotated[float, typer.Option("--days", min=0, help="resolved alerts of the last N days")] = 7.0,
) -> None:
    """Firing alerts, then those fired or resolved in the last --days days."""
    from alerts.commands import alerts_list, print_alerts

    print_alerts(alerts_list(settings_from(ctx), days=days), console)


@app.command()
def replay(
    ctx: typer.Context,
    incident: Annotated[str, typer.Argument(help="an incident id from the library, or all")] = "all",
    library: Annotated[Path | None, typer.Option("--library", help="an incidents TOML file of your own")] = None,
) -> None:
    """Replay history's fund incidents through your alert rules (--config): per incident the expected
    outcome, what fired (rule, severity, time, text) and a verdict; exits 1 if any outcome differs."""
    from alerts.judgement import replay_command

    try:
        code = replay_command(settings_from(ctx), incident, library,
                              lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    except (KeyError, ValueError, OSError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    raise typer.Exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point: click errors and config errors become one line on stderr."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="backstop", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err_console.print("backstop: aborted")
        return 130
    except ClickException as exc:
        message = exc.format_message().replace("\n", " ")
        sys.stderr.write(f"backstop: error: {message}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0) if isinstance(result, int) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
