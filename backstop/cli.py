"""The ``backstop`` command line. Global ``--config``/``--db``/``--log-level`` on every command (before or
after the command name); errors are one line on stderr with a non-zero exit, never a traceback; output is
plain and unwrapped when stdout is not a terminal (tab-separated tables for scripts)."""

from __future__ import annotations

import asyncio
import logging
import os
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

from backstop.children import run_forwarding, spawn
from backstop.cli_args import (
    LOG_LEVELS,
    MAX_AGE_DAYS,
    SCENARIO_HELP,
    ClickException,
    CliError,
    check_out_file,
    parse_when,
    parse_window,
)
from backstop.cli_args import reorder_global_options as _reorder
from backstop.config import ConfigError, Settings, load_settings
from backstop.lake_cli import lake_app

app = typer.Typer(
    help="Backstop: monitor crypto-derivatives exchanges' insurance funds.",
    epilog="Global options (--config, --db, --log-level) may also follow the command name.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: no "<bool>" metavars, "[alerts]" is not eaten as markup
)
# piped (not a terminal): no wrapping at 80 columns and no colour codes, so scripts get one line per row
console = Console(soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("backstop")

DATASET_NAMES = ("funds", "fund-flows", "pools", "open-interest", "funding", "prices", "runs", "adl", "liquidation-totals",
                 "backstop-positions", "liquidations", "liquidation-gaps", "cascades", "alerts", "assessments",
                 "fund-changes", "stress")


def _state(ctx: typer.Context) -> dict[str, Any]:
    return ctx.ensure_object(dict)


def settings_from(ctx: typer.Context, db: Path | None = None, **overrides: Any) -> Settings:
    state = _state(ctx)
    try:
        return load_settings(state.get("config"), db or state.get("db"), **overrides)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


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
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="PATH",
        help="backstop.toml to read (default ./backstop.toml if present, or $BACKSTOP_CONFIG)")] = None,
    db: Annotated[Path | None, typer.Option("--db", metavar="PATH", help="DuckDB file (default ./data/backstop.duckdb)")] = None,
    log_level: Annotated[str, typer.Option("--log-level", metavar="LEVEL", help="one of: debug | info | warning | error")] = "warning",
) -> None:
    if log_level.lower() not in LOG_LEVELS:
        raise CliError(f"--log-level: expected one of {' | '.join(LOG_LEVELS)}, got {log_level!r}")
    _state(ctx).update(config=config, db=db)
    _setup_logging(log_level)


def _print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """A rich table on a terminal; piped, a header line and one tab-separated line per row (no title)."""
    if not rows:
        console.print(f"{title}: nothing yet", markup=False)
        return
    if not console.is_terminal:
        def cell(value: Any) -> str:
            return "" if value is None else " ".join(str(value).split())  # no tab/newline inside a cell

        lines = ["\t".join(str(c) for c in rows[0])] + ["\t".join(cell(v) for v in row.values()) for row in rows]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=title)
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


def _integrations(collector: Any, daemon: bool = False) -> None:
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


@app.command()
def collect(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="one cycle, print a summary, exit")] = False,
    venue: Annotated[list[str] | None, typer.Option("--venue", metavar="VENUE",
                                                    help="only this venue (repeatable)")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", min=1, max=65535, metavar="PORT",
                                                     help="serve Prometheus /metrics on this port (127.0.0.1 "
                                                          "unless metrics.host is set)")] = None,
) -> None:
    """Run the scheduled collector (or one cycle with --once)."""
    from backstop.service import Collector, summarize

    settings = settings_from(ctx)
    venues = _check_venues(settings, venue)
    if metrics_port is not None:
        settings.metrics.port = metrics_port
    _check_writable(settings.db)

    async def run() -> int:
        collector = Collector.for_venues(settings, venues)
        _integrations(collector, daemon=not once)
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
    venue: Annotated[list[str] | None, typer.Option("--venue", metavar="VENUE",
                                                    help="only this venue (repeatable)")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="ISO date or age (e.g. 90d)")] = None,
) -> None:
    """Walk the venues' history endpoints back to --since (default: collector.backfill_days)."""
    from backstop.service import Collector, backfill_pairs

    settings = settings_from(ctx)
    venues = _check_venues(settings, venue)
    start = parse_when(since, "--since") or datetime.now(UTC) - timedelta(days=settings.collector.backfill_days)
    _check_writable(settings.db)

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

    raise typer.Exit(asyncio.run(run()))


@app.command()
def status(ctx: typer.Context) -> None:
    """Per venue and dataset: last success, last error, rows, data age. Then each venue's assessment (and
    every pool that is not healthy): state (healthy, watch, stressed, critical, no published fund, blind),
    fund, 24 h change, drawdowns, coverage, divergence and anomaly z, data age, and the reasons."""
    from storage.queries import collector_status

    settings = settings_from(ctx)
    frame = collector_status(settings.db)
    rows = []
    for record in frame.to_dict("records"):
        rows.append({
            "venue": record["venue"], "dataset": record["dataset"], "last status": record["last_status"],
            "last success": _fmt_ts(record["last_success"]), "age": _fmt_age(record["age_s"]),
            "rows": record["rows_written"],
            "last error": f"{record['last_error_class']}: {record['last_error_message']}"
            if isinstance(record["last_error_class"], str) and record["last_error_class"] else "",
        })
    _print_table(f"collector status ({settings.db})", rows)
    from alerts.judgement import print_status
    from backstop.catalog import venue_facts

    console.print("")  # the assessments follow the table as a block of their own
    print_status(settings, venue_facts(settings.enabled_venues()),
                 lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))


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
    dataset: Annotated[str, typer.Argument(metavar="DATASET", help=f"one of: {', '.join(DATASET_NAMES)}")],
    venue: Annotated[str | None, typer.Option("--venue", metavar="VENUE", help="only this venue (a venue key, e.g. okx)")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="from this ISO date/time or age (30d), inclusive")] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="WHEN", help="to this ISO date/time or age, exclusive")] = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="file to write, in an existing folder "
                                                           "(default: stdout; required for parquet)")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="csv | parquet (typed columns, for engines)")] = "csv",
    move: Annotated[float | None, typer.Option("--move", metavar="PCT", help="stress only: the move in % (default 20)")] = None,
) -> None:
    """CSV (header row, UTC ISO-8601 timestamps, a venue column) or Parquet of a dataset. `assessments`: one
    row per venue x pool at --until (default now): venue, pool_id, state, figures, reasons. `fund-changes`:
    every change between two observations of a pool with its kind (trading, injection, transfer,
    restructure, valuation) and whether the kind was inferred (default: the last 7 days)."""
    import duckdb

    from alerts.judgement import COMPUTED_EXPORTS, export_computed
    from backstop.catalog import venue_facts
    from storage.db import DatabaseMissing
    from storage.export import EXPORTS, export_csv, export_parquet

    settings = settings_from(ctx)
    if dataset == "stress" or move is not None:
        if since or until:
            raise CliError("--since/--until do not apply to the stress dataset (it projects the current state)")
        if fmt != "csv":
            raise CliError("--format: the stress dataset is exported as CSV (its projection is recomputed on each call)")
        return _stress(settings, dataset, move, [venue] if venue else None, None, "both", None, out)
    if dataset not in EXPORTS and dataset not in COMPUTED_EXPORTS:
        raise CliError(f"unknown dataset {dataset!r} (one of: {', '.join(EXPORTS)})")
    if venue is not None:
        _check_venues(settings, [venue])
    start, end = parse_window(since, until)
    if fmt not in {"csv", "parquet"}:
        raise CliError(f"--format: expected csv or parquet, got {fmt!r}")
    if fmt == "parquet" and out is None:
        raise CliError("--format parquet needs --out FILE (Parquet is not written to a terminal)")
    if out is not None:
        check_out_file(out, fmt)
    target = out if out is not None else Path("/dev/stdout")
    writer = export_parquet if fmt == "parquet" else export_csv
    try:
        if dataset in COMPUTED_EXPORTS:
            count = export_computed(settings, venue_facts(settings.enabled_venues()), dataset, target, venue=venue,
                                    since=start, until=end, fmt=fmt)
        else:
            count = writer(settings.db, dataset, target, venue=venue, since=start, until=end)
    except DatabaseMissing as exc:
        raise CliError(str(exc)) from None
    except duckdb.IOException as exc:  # the database opened (that error is DatabaseUnusable): the file failed
        if out is None and "Broken pipe" in str(exc):  # `| head`: the reader left, as with any Unix tool
            raise typer.Exit(128 + signal.SIGPIPE) from None
        raise CliError(f"--out: cannot write {target}: {str(exc).splitlines()[0].removeprefix('IO Error: ')}") from None
    if out is not None:
        err_console.print(f"wrote {count} rows to {out}")


@app.command("stress")
def stress_command(
    ctx: typer.Context,
    move: Annotated[float, typer.Option("--move", help="the one-day move in %")] = 20.0,
    fill_degradation: Annotated[float | None, typer.Option("--fill-degradation", help="deficit rate added per "
                                "unit of liquidated/usual volume (default: stress config section)")] = None,
    venue: Annotated[list[str] | None, typer.Option("--venue", help="repeatable; default all")] = None,
    direction: Annotated[str, typer.Option("--direction", help="down|up|both")] = "both",
    scope: Annotated[str | None, typer.Option("--scope", help="all|family (default: stress config section)")] = None,
) -> None:
    """Estimated fund consumption if every asset moved X % in a day (README "Stress test")."""
    _stress(settings_from(ctx), "stress", move, venue, fill_degradation, direction, scope, None, printed=True)


def _stress(settings: Settings, dataset: str, move: float | None, venues: list[str] | None,
            fill_degradation: float | None, direction: str, scope: str | None, out: Path | None,
            printed: bool = False) -> None:
    from backstop import stress_cli

    _check_venues(settings, venues)
    try:
        stress_cli.run(settings, dataset, move, venues, fill_degradation, direction, scope, out, printed)
    except stress_cli.StressInputError as exc:
        raise CliError(str(exc)) from None


def _check_writable(db: Path) -> None:
    """A writer refuses to start on a database it cannot write (one line, before any venue is polled)."""
    from storage.db import check_writable

    check_writable(db)


@app.command()
def simulate(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=0, max=65535, help="HTTP/WebSocket port (0 = any free)")] = 8765,
    write_config: Annotated[Path | None, typer.Option("--write-config", metavar="FILE", help="write a backstop.toml pointing at the simulator")] = None,
    scenario: Annotated[str, typer.Option("--scenario", metavar="SCENARIO", help=f"one of: {SCENARIO_HELP}")] = "calm",
    speed: Annotated[float, typer.Option("--speed", metavar="X", min=0, help="simulated seconds per real second")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="market model seed (same seed, same market)")] = 1,
    fault: Annotated[list[str] | None, typer.Option("--fault", metavar="SPEC", help="VENUE:PATH:KIND[:ARG][ xCOUNT] (repeatable); KIND one of 429, 500, 502, 503, error_rate, latency, timeout, malformed, rename, stringify, drop, dark, disconnect, duplicate")] = None,
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
    db: Annotated[Path, typer.Option("--db", metavar="PATH", help="the demo's own DuckDB file")] = Path("data/demo.duckdb"),
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="dashboard port")] = 8501,
    scenario: Annotated[str, typer.Option("--scenario", metavar="SCENARIO", help=f"one of: {SCENARIO_HELP}")] = "venue-drain",
    speed: Annotated[float | None, typer.Option("--speed", metavar="X", min=0, help="market clock: simulated seconds per real second (default 720 until it "
                               "reaches the present, then real time)")] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="market model seed (same seed, same market)")] = 7,
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
    db: Annotated[Path | None, typer.Option("--db", metavar="PATH", help="DuckDB file to show (default: the global --db)")] = None,
    port: Annotated[int | None, typer.Option("--port", metavar="PORT", min=1, max=65535, help="port (default [dashboard] port, 8501)")] = None,
    host: Annotated[str | None, typer.Option("--host", metavar="HOST", help="bind address (default 127.0.0.1)")] = None,
) -> None:
    """Serve the Streamlit dashboard (localhost by default)."""
    settings = settings_from(ctx, db)
    command = dashboard_command(settings.db, host or settings.dashboard.host, port or settings.dashboard.port,
                                refresh_s=settings.dashboard.refresh_s)
    console.print(f"dashboard on http://{host or settings.dashboard.host}:{port or settings.dashboard.port}")
    raise typer.Exit(run_forwarding(command))  # SIGTERM reaches Streamlit; it dies with us (no orphan)


@app.command()
def run(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", metavar="PORT", min=1, max=65535, help="dashboard port (default [dashboard] port, 8501)")] = None,
    host: Annotated[str | None, typer.Option("--host", metavar="HOST", help="dashboard bind address (default 127.0.0.1)")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", metavar="PORT", min=1, max=65535, help="serve Prometheus /metrics on this port (127.0.0.1 unless metrics.host is set)")] = None,
    api_port: Annotated[int | None, typer.Option("--api-port", metavar="PORT", min=1, max=65535, help="also serve the read-only JSON API on this port (same host as the dashboard)")] = None,
) -> None:
    """The main job: the scheduled collector and the dashboard on one embedded DuckDB file."""
    from backstop.service import Collector

    settings = settings_from(ctx)
    if metrics_port is not None:
        settings.metrics.port = metrics_port
    _check_writable(settings.db)
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
        _integrations(collector, daemon=True)
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


@app.command()
def api(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="listen port")] = 8502,
) -> None:
    """Serve the read-only JSON API (/v1/venues, /v1/assessments, /v1/funds, /v1/alerts; /openapi.json)."""
    from backstop.api import serve

    settings = settings_from(ctx)
    console.print(f"API on http://{host}:{port}/v1 (OpenAPI: /openapi.json) reading {settings.db}", soft_wrap=True)
    serve(settings.db, host, port)


@app.command()
def compact(ctx: typer.Context) -> None:
    """Apply [retention] (old raw rows downsampled or dropped; funds and rollups kept) and rewrite the
    file to reclaim the space; prints rows removed and bytes before/after."""
    from backstop.maintenance import run_compact

    raise typer.Exit(run_compact(settings_from(ctx), echo=lambda line: console.print(line, markup=False)))


alerts_app = typer.Typer(help="Alert targets and alert history.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(alerts_app, name="alerts")
app.add_typer(lake_app, name="lake")


@alerts_app.command("test")
def alerts_test_command(ctx: typer.Context) -> None:
    """Send a test message to every [alerts] target (targets are shown by scheme only)."""
    from alerts.commands import alerts_test

    raise typer.Exit(alerts_test(settings_from(ctx), echo=lambda line: console.print(line, markup=False)))


@alerts_app.command("list")
def alerts_list_command(
    ctx: typer.Context,
    days: Annotated[float, typer.Option("--days", metavar="N", min=0, max=MAX_AGE_DAYS,
                                        help="resolved alerts of the last N days")] = 7.0,
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


def reorder_global_options(argv: list[str]) -> list[str]:
    """``backstop export funds --db X`` -> ``backstop --db X export funds`` (see backstop.cli_args)."""
    return _reorder(argv, typer.main.get_command(app))


def _error_line(message: str) -> int:
    sys.stderr.write(f"backstop: error: {' '.join(message.split())}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point: click errors, config errors and database errors become one line on stderr."""
    import duckdb

    from storage.db import DatabaseBusy, DatabaseMissing, DatabaseUnusable

    command = typer.main.get_command(app)
    args = reorder_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        result = command.main(args=args, prog_name="backstop", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err_console.print("backstop: aborted")
        return 130
    except ClickException as exc:
        return _error_line(exc.format_message())
    except (DatabaseMissing, DatabaseBusy, DatabaseUnusable) as exc:
        return _error_line(str(exc))
    except duckdb.Error as exc:
        return _error_line(f"database: {str(exc).splitlines()[0]}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort: still one line; the traceback at debug level
        log.debug("unexpected error", exc_info=True)
        return _error_line(f"unexpected {type(exc).__name__}: {exc} (--log-level debug shows the traceback)")
    return int(result or 0) if isinstance(result, int) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
