"""What the CLI makes of its arguments before any command runs: the one-line error type, dates and ages,
the export's --out file, and global options given after the command name. Kept out of ``backstop.cli`` so
that module stays the list of commands."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:  # typer >= 0.20 vendors click; older typer uses the click package
    from typer._click.exceptions import ClickException as ClickException  # re-exported for backstop.cli
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException  # type: ignore[assignment]

GLOBAL_OPTIONS = ("--config", "--db", "--log-level")
LOG_LEVELS = ("debug", "info", "warning", "error")
# simulator.scenarios.SCENARIOS (not imported here: it pulls numpy into every CLI start; a test keeps them equal)
SCENARIO_HELP = "calm | cascade | venue-drain[:VENUE] | adl[:VENUE]"
MAX_AGE_DAYS = 36_500  # a century: any --since/--days beyond it is a typo, not a window


class CliError(ClickException):
    """A user-facing error: printed as one line."""


def parse_when(text: str | None, option: str) -> datetime | None:
    """ISO date/datetime (UTC if no zone) or a relative age like 30d, 12h, 90m (at most a century)."""
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        days = amount / {"d": 1, "h": 24, "m": 1440}[unit]
        if days > MAX_AGE_DAYS:
            raise CliError(f"{option}: {text!r} reaches back more than {MAX_AGE_DAYS} days")
        return datetime.now(UTC) - timedelta(days=days)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option}: expected an ISO date/time or an age like 30d/12h, got {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """--since/--until as datetimes; an empty window (since at or after until) is an error, not a
    silently empty result."""
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    if start is not None and end is not None and start >= end:
        raise CliError(f"--since {since!r} is not before --until {until!r}: an empty window")
    return start, end


OUT_SUFFIXES: dict[str, tuple[str, ...]] = {"csv": ("", ".csv", ".txt"), "parquet": ("", ".parquet", ".pq")}


def check_out_file(out: Path, fmt: str = "csv") -> None:
    """--out must name a file of the chosen --format in a folder that exists (DuckDB would otherwise pick
    a format from the suffix or fail deep inside COPY)."""
    if out.is_dir():
        raise CliError(f"--out: {out} is a directory; give a file name such as {out / ('export.' + fmt)}")
    if not out.parent.is_dir():
        raise CliError(f"--out: folder {out.parent} does not exist")
    if out.suffix.lower() not in OUT_SUFFIXES[fmt]:
        other = "--format parquet" if fmt == "csv" and out.suffix.lower() in OUT_SUFFIXES["parquet"] else None
        hint = f" (for Parquet add {other})" if other else ""
        raise CliError(f"--out: {out.name} is not a {fmt.upper()} name; use a .{fmt} file{hint}")


def _takes_value(param: Any) -> bool:
    return param.param_type_name == "option" and not getattr(param, "is_flag", False) \
        and not getattr(param, "count", False)


def reorder_global_options(argv: list[str], group: Any) -> list[str]:
    """Move the global options (--config, --db, --log-level) that follow the command name in front of it,
    so ``backstop export funds --db X`` means ``backstop --db X export funds``. A command's own option of
    the same name (``demo --db``, ``dashboard --db``) stays the command's; option values and everything
    after ``--`` are never moved. ``group`` is the click command of the whole CLI."""
    head: list[str] = []
    index = 0
    while index < len(argv) and argv[index].startswith("-"):  # options already before the command
        token = argv[index]
        head.append(token)
        index += 1
        if token.split("=", 1)[0] in GLOBAL_OPTIONS and "=" not in token and index < len(argv):
            head.append(argv[index])
            index += 1
    command, path = group, []
    while index < len(argv) and argv[index] in (getattr(command, "commands", None) or {}):
        command = command.commands[argv[index]]
        path.append(argv[index])
        index += 1
    if not path:
        return list(argv)
    own = {name: _takes_value(p) for p in command.params for name in getattr(p, "opts", [])}
    moved: list[str] = []
    kept: list[str] = []
    while index < len(argv):
        token = argv[index]
        name = token.split("=", 1)[0]
        if token == "--":
            kept += argv[index:]
            break
        if name in GLOBAL_OPTIONS and name not in own:
            takes_next = "=" not in token and index + 1 < len(argv)
            moved += argv[index:index + 2] if takes_next else [token]
            index += 2 if takes_next else 1
            continue
        kept.append(token)
        index += 1
        if own.get(token) and index < len(argv):  # this option's value, whatever it looks like
            kept.append(argv[index])
            index += 1
    return head + moved + path + kept
