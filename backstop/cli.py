"""The ``backstop`` command line. Global ``--config``/``--db``/``--log-level`` on every command (before or
after the command name); errors are one line on stderr with a non-zero exit, never a traceback; output is
plain and unwrapped when stdout is not a terminal (tab-separated tables for scripts)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from backstop import cli_data, cli_processes
from backstop.cli_args import (
    LOG_LEVELS,
    MAX_AGE_DAYS,
    SCENARIO_HELP,
    ClickException,
    CliError,
)
from backstop.cli_args import reorder_global_options as _reorder
from backstop.cli_context import console, err_console, settings_from, state
from backstop.cli_data import DATASET_NAMES
from backstop.lake_cli import lake_app
from backstop.process_memory import limit_malloc_arenas

app = typer.Typer(
    help="Backstop: monitor crypto-derivatives exchanges' insurance funds.",
    epilog="Global options (--config, --db, --log-level) may also follow the command name.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: no "<bool>" metavars, "[alerts]" is not eaten as markup
)
log = logging.getLogger("backstop")


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
    state(ctx).update(config=config, db=db)
    _setup_logging(log_level)


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
    raise typer.Exit(cli_processes.collect(ctx, once, venue, metrics_port))


@app.command()
def backfill(
    ctx: typer.Context,
    venue: Annotated[list[str] | None, typer.Option("--venue", metavar="VENUE",
                                                    help="only this venue (repeatable)")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="ISO date or age (e.g. 90d)")] = None,
) -> None:
    """Walk the venues' history endpoints back to --since (default: collector.backfill_days)."""
    raise typer.Exit(cli_processes.backfill(ctx, venue, since))


@app.command()
def status(ctx: typer.Context) -> None:
    """Per venue and dataset: last success, last error, rows, data age. Then each venue's assessment (and
    every pool that is not healthy): state (healthy, watch, stressed, critical, no published fund, blind),
    fund, 24 h change, drawdowns, coverage, divergence and anomaly z, data age, and the reasons."""
    cli_data.show_status(ctx)


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
    cli_data.export_dataset(ctx, dataset, venue, since, until, out, fmt, move)


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
    cli_data.stress(settings_from(ctx), "stress", move, venue, fill_degradation, direction, scope, None, printed=True)


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
    raise typer.Exit(cli_processes.simulate(ctx, host, port, write_config, scenario, speed, seed, fault))


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
    raise typer.Exit(cli_processes.demo(ctx, db, port, scenario, speed, seed, headless))


@app.command()
def dashboard(
    ctx: typer.Context,
    db: Annotated[Path | None, typer.Option("--db", metavar="PATH", help="DuckDB file to show (default: the global --db)")] = None,
    port: Annotated[int | None, typer.Option("--port", metavar="PORT", min=1, max=65535, help="port (default [dashboard] port, 8501)")] = None,
    host: Annotated[str | None, typer.Option("--host", metavar="HOST", help="bind address (default 127.0.0.1)")] = None,
) -> None:
    """Serve the Streamlit dashboard (localhost by default)."""
    raise typer.Exit(cli_processes.dashboard(ctx, db, port, host))


@app.command()
def run(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", metavar="PORT", min=1, max=65535, help="dashboard port (default [dashboard] port, 8501)")] = None,
    host: Annotated[str | None, typer.Option("--host", metavar="HOST", help="dashboard bind address (default 127.0.0.1)")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", metavar="PORT", min=1, max=65535, help="serve Prometheus /metrics on this port (127.0.0.1 unless metrics.host is set)")] = None,
    api_port: Annotated[int | None, typer.Option("--api-port", metavar="PORT", min=1, max=65535, help="also serve the read-only JSON API on this port (same host as the dashboard)")] = None,
) -> None:
    """The main job: the scheduled collector and the dashboard on one embedded DuckDB file."""
    cli_processes.run(ctx, port, host, metrics_port, api_port)


@app.command()
def api(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="listen port")] = 8502,
) -> None:
    """Serve the read-only JSON API (/v1/venues, /v1/assessments, /v1/funds, /v1/alerts; /openapi.json)."""
    cli_processes.api(ctx, host, port)


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
    raise typer.Exit(cli_data.replay_incidents(ctx, incident, library))


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

    limit_malloc_arenas()  # the collector and the dashboard server run for months (backstop.process_memory)
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
