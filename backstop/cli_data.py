"""Bodies of the ``backstop`` commands that read the database and print or write it out: ``status``,
``export DATASET``, ``stress`` and ``replay``. Registered (names, options, help texts) in ``backstop.cli``."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import typer

from backstop.cli_args import CliError, check_out_file, parse_window
from backstop.cli_context import check_venues, console, err_console, print_table, settings_from
from backstop.config import Settings

DATASET_NAMES = ("funds", "fund-flows", "pools", "open-interest", "funding", "prices", "runs", "adl", "liquidation-totals",
                 "backstop-positions", "liquidations", "liquidation-gaps", "cascades", "alerts", "assessments",
                 "fund-changes", "stress")


def show_status(ctx: typer.Context) -> None:
    """The collector status table, then each venue's assessment as a block of its own."""
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
    print_table(f"collector status ({settings.db})", rows)
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


def export_dataset(ctx: typer.Context, dataset: str, venue: str | None, since: str | None, until: str | None,
                   out: Path | None, fmt: str, move: float | None) -> None:
    """Validate the window/format/target, then write the dataset (stored, computed or the stress projection)."""
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
        return stress(settings, dataset, move, [venue] if venue else None, None, "both", None, out)
    if dataset not in EXPORTS and dataset not in COMPUTED_EXPORTS:
        raise CliError(f"unknown dataset {dataset!r} (one of: {', '.join(EXPORTS)})")
    if venue is not None:
        check_venues(settings, [venue])
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


def stress(settings: Settings, dataset: str, move: float | None, venues: list[str] | None,
           fill_degradation: float | None, direction: str, scope: str | None, out: Path | None,
           printed: bool = False) -> None:
    """The stress projection printed (``stress``) or exported (``export stress``); bad input is one line."""
    from backstop import stress_cli

    check_venues(settings, venues)
    try:
        stress_cli.run(settings, dataset, move, venues, fill_degradation, direction, scope, out, printed)
    except stress_cli.StressInputError as exc:
        raise CliError(str(exc)) from None


def replay_incidents(ctx: typer.Context, incident: str, library: Path | None) -> int:
    """Replay the incident library through the configured rules; a bad id or library is one line."""
    from alerts.judgement import replay_command

    try:
        code = replay_command(settings_from(ctx), incident, library,
                              lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    except (KeyError, ValueError, OSError) as exc:
        raise CliError(str(exc).strip("'\"")) from None
    return code
