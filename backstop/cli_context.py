"""What every ``backstop`` command body shares: the consoles, the settings the global ``--config``/``--db``
select, the venue check, the plain-or-rich table printer, and the writer's pre-flight. Lives apart from
``backstop.cli`` so the command bodies (``cli_data``, ``cli_processes``) need not import the typer app."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from backstop.cli_args import CliError
from backstop.config import ConfigError, Settings, load_settings

# piped (not a terminal): no wrapping at 80 columns and no colour codes, so scripts get one line per row
console = Console(soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, soft_wrap=True)


def state(ctx: typer.Context) -> dict[str, Any]:
    """The global options (``config``, ``db``) the main callback stored for the command."""
    return ctx.ensure_object(dict)


def settings_from(ctx: typer.Context, db: Path | None = None, **overrides: Any) -> Settings:
    current = state(ctx)
    try:
        return load_settings(current.get("config"), db or current.get("db"), **overrides)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def check_venues(settings: Settings, venues: list[str] | None) -> list[str]:
    if not venues:
        return settings.enabled_venues()
    unknown = [v for v in venues if v not in settings.venues]
    if unknown:
        raise CliError(f"--venue: unknown venue {unknown[0]!r} (known: {', '.join(settings.venues)})")
    return venues


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
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


def check_writable(db: Path) -> None:
    """A writer refuses to start on a database it cannot write (one line, before any venue is polled)."""
    from storage.db import check_writable as storage_check_writable

    storage_check_writable(db)
