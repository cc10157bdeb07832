"""``backstop stress`` and ``backstop export stress``: the stress table (storage.stress_inputs.stress_table)
with the assumptions of the ``[stress]`` config section. Every figure is an estimate (README "Stress test")."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from backstop.config import Settings
from metrics.csv_safe import to_csv_bytes
from metrics.formatting import fmt_usd
from storage.stress_inputs import stress_table

EXPORT_COLUMNS = ["venue", "pool_id", "direction", "move_pct", "scope", "oi_usd", "liquidated_usd", "deficit_rate_pct",
                  "deficit_usd", "fund_usd", "fund_after_move_usd", "consumption_pct", "fund_asset",
                  "consumption_native", "adl_likely", "calibration", "worst_day_loss_usd", "p99_day_loss_usd",
                  "days_covered_p99", "worst_day_liquidated_usd"]
DIRECTIONS = ("down", "up", "both")
DEFAULT_MOVE_PCT = 20.0


class StressInputError(ValueError):
    """Bad --move / --fill-degradation / --direction / --scope: one line for the CLI."""


def check_options(move: float, fill_degradation: float | None, direction: str, scope: str | None) -> None:
    if not math.isfinite(move) or not 0 < move < 100:
        raise StressInputError(f"--move: expected a percentage between 0 and 100, got {move:g}")
    if fill_degradation is not None and (not math.isfinite(fill_degradation) or fill_degradation < 0):
        raise StressInputError(f"--fill-degradation: expected a number >= 0, got {fill_degradation:g}")
    if direction not in DIRECTIONS:
        raise StressInputError(f"--direction: expected one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if scope is not None and scope not in ("all", "family"):
        raise StressInputError(f"--scope: expected all or family, got {scope!r}")


def table(settings: Settings, move: float, fill_degradation: float | None = None, venues: list[str] | None = None,
          direction: str = "both", scope: str | None = None) -> pd.DataFrame:
    check_options(move, fill_degradation, direction, scope)
    cfg = settings.stress
    return stress_table(settings.db, move, direction, venues=venues or None, scope=scope or cfg.scope,
                        fill=cfg.fill_model(fill_degradation), prior=cfg.distribution(),
                        calibration_days=cfg.calibration_days, history_days=cfg.history_days,
                        min_calibration_days=cfg.min_calibration_days, calibrate_from_history=cfg.calibrate)


def _pct(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"~{value:,.1f} %"


def _count(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):,.0f}"


def _usd(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else "~" + fmt_usd(float(value))


def _calibration(label: str) -> str:
    return label.split(" from ")[0].replace("calibrated: leverage ", "calibrated ").split(":")[0]


def printable_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for the terminal table (numbers rounded and marked ~ as estimates)."""
    rows = []
    for r in frame.itertuples(index=False):
        rows.append({
            "venue": r.venue, "pool": r.pool_id, "dir": r.direction,
            "liquidated": _usd(r.liquidated_usd), "deficit": _usd(r.deficit_usd), "fund": _usd(r.fund_usd),
            "consumed": _pct(r.consumption_pct),
            "ADL": "likely" if r.adl_likely is True else ("" if r.adl_likely is False else "—"),
            "p99 day loss": _usd(r.p99_day_loss_usd),
            "days cov.": _count(r.days_covered_p99),
            "calibration": _calibration(str(r.calibration)),
        })
    return rows


def print_table(frame: pd.DataFrame, move: float) -> None:
    """The table on stdout (at least 150 columns wide, so pool ids stay readable when piped) and the
    calibration notes under it."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.width = max(console.width, 150)
    rows = printable_rows(frame)
    title = f"Stress test: a {move:g} % move, every figure an estimate (README: Stress test)"
    if not rows:
        console.print(f"{title}: no open interest or fund data yet")
        return
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
    for venue, label in sorted(set(zip(frame["venue"], frame["calibration"], strict=True))):
        console.print(f"{venue}: {label}", markup=False, highlight=False)


def run(settings: Settings, dataset: str, move: float | None, venues: list[str] | None,
        fill_degradation: float | None, direction: str, scope: str | None, out: Path | None, printed: bool) -> None:
    """``backstop stress`` (printed) or ``backstop export stress`` (CSV to ``out`` or stdout)."""
    from storage.db import DatabaseMissing

    if dataset != "stress":
        raise StressInputError("--move applies to the stress dataset only")
    move = DEFAULT_MOVE_PCT if move is None else move
    try:
        frame = table(settings, move, fill_degradation, venues, direction, scope)
    except DatabaseMissing as exc:
        raise StressInputError(str(exc)) from None
    if printed:
        print_table(frame, move)
        return
    count = write_csv(frame, out)
    if out is not None:
        print(f"wrote {count} rows to {out}", file=sys.stderr)


def write_csv(frame: pd.DataFrame, out: Path | None) -> int:
    """The export columns as CSV (formula-safe text, numbers intact) to ``out`` or stdout."""
    data = to_csv_bytes(frame[EXPORT_COLUMNS])
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.write_bytes(data)
    return len(frame)
