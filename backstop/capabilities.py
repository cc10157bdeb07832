"""The venue-capability table, generated from the adapters' own declarations (``Capability`` entries and
``fund_label``), so the README cannot drift from the code.

``python -m backstop.capabilities`` prints the Markdown table; ``--write-readme`` rewrites the block
between ``<!-- capabilities:start -->`` and ``<!-- capabilities:end -->`` in README.md (adding the markers
at the end if absent); ``--check`` exits 1 when the README block is stale. tests/test_capabilities.py
fails on a stale README.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backstop.catalog import CATALOG_PATH, catalog_is_current, write_catalog
from collectors.base import VenueAdapter
from collectors.registry import all_adapter_classes

START_MARKER = "<!-- capabilities:start -->"
END_MARKER = "<!-- capabilities:end -->"
README_PATH = Path(__file__).resolve().parent.parent / "README.md"
WRITE_HINT = "run `python -m backstop.capabilities --write-readme`"
HEADER = ("Venue", "Fund", "Dataset", "Endpoint", "Cadence", "History", "Backfill", "Unit", "Note")


def capability_rows(adapters: Mapping[str, type[VenueAdapter]] | None = None) -> list[dict[str, Any]]:
    """One row per venue x declared dataset, in registry order (then declaration order)."""
    classes = all_adapter_classes() if adapters is None else adapters
    return [
        {
            "venue": key, "display_name": klass.display_name, "fund_label": klass.fund_label,
            "dataset": cap.dataset, "endpoint": cap.endpoint, "cadence_s": cap.cadence_s, "history": cap.history,
            "backfill": klass.has_backfill(cap.dataset), "unit": cap.unit, "note": cap.note,
        }
        for key, klass in classes.items()
        for cap in klass.capabilities
    ]


def format_cadence(seconds: float) -> str:
    """86400 -> "1 d", 3600 -> "1 h", 300 -> "5 min", 30 -> "30 s"."""
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _cell(value: object) -> str:
    """Table-safe text: no pipes, no line breaks, no HTML (angle brackets are shown, never parsed)."""
    text = " ".join(str(value).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def capability_markdown(adapters: Mapping[str, type[VenueAdapter]] | None = None) -> str:
    """The Markdown table (venue and fund label on each venue's first row only)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    previous = None
    for row in capability_rows(adapters):
        first = row["venue"] != previous
        previous = row["venue"]
        cells = [
            f"{_cell(row['display_name'])} (`{row['venue']}`)" if first else "",
            _cell(row["fund_label"]) if first else "",
            row["dataset"],
            f"`{_cell(row['endpoint'])}`",
            format_cadence(row["cadence_s"]),
            _cell(row["history"]),
            "yes" if row["backfill"] else "",
            _cell(row["unit"]),
            _cell(row["note"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _marker_span(text: str) -> tuple[int, int] | None:
    """(end of the start marker, start of the end marker), None when both are absent."""
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 and end < 0:
        return None
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"README capabilities markers are broken: need {START_MARKER} before {END_MARKER}")
    return start + len(START_MARKER), end


def readme_block(text: str) -> str | None:
    """The table currently between the markers (None when there are no markers)."""
    span = _marker_span(text)
    return None if span is None else text[span[0]:span[1]].lstrip("\n")


def replace_block(text: str, table: str) -> str:
    """``text`` with the block between the markers replaced by ``table`` (markers appended if absent)."""
    span = _marker_span(text)
    if span is None:
        return f"{text.rstrip()}\n\n{START_MARKER}\n{table}{END_MARKER}\n"
    return f"{text[:span[0]]}\n{table}{text[span[1]:]}"


def write_readme(path: Path = README_PATH, adapters: Mapping[str, type[VenueAdapter]] | None = None) -> bool:
    """Rewrite the README block; True when the file changed."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = replace_block(text, capability_markdown(adapters))
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backstop.capabilities", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write-readme", action="store_true", help="rewrite the README capabilities block")
    action.add_argument("--check", action="store_true", help="exit 1 when the README block is stale")
    parser.add_argument("--readme", type=Path, default=README_PATH, help="README path (default: the repo's)")
    args = parser.parse_args(argv)
    if args.write_readme:
        changed = write_readme(args.readme)
        print(f"{args.readme}: {'updated' if changed else 'already up to date'}")
        print(f"{CATALOG_PATH}: {'updated' if write_catalog() else 'already up to date'}")
        return 0
    if args.check:
        current = readme_block(args.readme.read_text(encoding="utf-8")) if args.readme.exists() else None
        if current != capability_markdown():
            print(f"{args.readme}: venue table is stale; {WRITE_HINT}", file=sys.stderr)
            return 1
        if not catalog_is_current():
            print(f"{CATALOG_PATH}: venue catalog is stale; {WRITE_HINT}", file=sys.stderr)
            return 1
        print(f"{args.readme}: up to date")
        return 0
    sys.stdout.write(capability_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
