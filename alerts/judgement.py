"""What ``backstop status`` (the assessment part), ``backstop export assessments|fund-changes`` and
``backstop replay`` do; the CLI only wires them. Text that may hold exchange words (pool ids, alert
sentences) is printed as plain text, never as console markup."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from alerts.context import assessment_config, context_for
from alerts.replay import describe, replay
from configuration.settings import Settings
from metrics.assessment import ALL_POOLS, EXPORT_COLUMNS, HEALTHY, Assessment, as_row
from metrics.formatting import DASH, fmt_age, fmt_pct, fmt_signed, fmt_usd
from records.venues import VenueFacts
from storage.assessments import load_assessments
from storage.export import write_frame_csv, write_frame_parquet
from storage.fund_changes import fund_changes_frame

COMPUTED_EXPORTS = ("assessments", "fund-changes")


def assessments_for(settings: Settings, venues: Mapping[str, VenueFacts], at: datetime | None = None,
                    cache: dict[str, Any] | None = None) -> list[Assessment]:
    """The assessments as the configured alert rules see them (same venues, cadences and parameters); a
    long-lived caller's ``cache`` keeps what changes once a day (as the alert engine's does)."""
    return load_assessments(settings.db, at, assessment_config(context_for(settings, venues)), cache)


def assessments_frame(settings: Settings, venues: Mapping[str, VenueFacts], at: datetime | None = None,
                      venue: str | None = None) -> pd.DataFrame:
    rows = [as_row(a) for a in assessments_for(settings, venues, at) if venue in (None, a.venue)]
    return pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))  # the header even when nothing is collected


def export_computed(settings: Settings, venues: Mapping[str, VenueFacts], dataset: str, out: Path | str,
                    venue: str | None = None, since: datetime | None = None, until: datetime | None = None,
                    fmt: str = "csv") -> int:
    """CSV (or Parquet) of a computed dataset: ``assessments`` (at ``until``, else now) or ``fund-changes``."""
    if dataset == "assessments":
        frame = assessments_frame(settings, venues, until, venue)
    elif dataset == "fund-changes":
        frame = fund_changes_frame(settings.db, since, until, venue)
    else:
        raise KeyError(dataset)
    return write_frame_parquet(frame, out) if fmt == "parquet" else write_frame_csv(frame, out)


def _num(value: float | None, text: Callable[[float], str]) -> str:
    return DASH if value is None else text(value)


def status_lines(assessments: list[Assessment]) -> list[str]:
    """One line per venue (and per pool that is not healthy): state, fund, figures, reasons."""
    lines = []
    for a in assessments:
        if a.pool_id != ALL_POOLS and a.state == HEALTHY:
            continue
        name = a.display_name if a.pool_id == ALL_POOLS else f"  {a.display_name} {a.asset} pool {a.pool_id}"
        figures = [
            f"fund {fmt_usd(a.fund_usd)}", f"24 h {fmt_pct(a.change_pct('24h'), signed=True)}",
            f"from 8 h max {fmt_pct(a.drawdown_8h_pct)}", f"from 30 d max {fmt_pct(a.drawdown_30d_pct)}",
            f"coverage {fmt_pct(a.coverage_pct, 2)}",
            f"divergence z {_num(a.divergence_z, fmt_signed)}",
            f"anomaly z {_num(a.anomaly_z_24h, fmt_signed)}", f"data age {fmt_age(a.data_age_s)}",
        ]
        lines.append(f"{name}: {a.label}" + (f" since {a.state_since:%Y-%m-%d %H:%M} UTC" if a.state_since else ""))
        lines.append("    " + " · ".join(figures))
        for reason in a.reasons:
            lines.append(f"    - {reason}")
    return lines


def print_status(settings: Settings, venues: Mapping[str, VenueFacts], echo: Callable[[str], None]) -> None:
    assessments = assessments_for(settings, venues)
    if not assessments:
        echo("assessments: nothing collected yet")
        return
    echo(f"assessments at {assessments[0].as_of:%Y-%m-%d %H:%M} UTC (states: healthy, watch, stressed, "
         "critical, no published fund, blind)")
    for line in status_lines(assessments):
        echo(line)


def replay_command(settings: Settings, which: str, library: Path | None, echo: Callable[[str], None]) -> int:
    """Print expected / fired / verdict per incident; 1 when any outcome differs from its expectation."""
    outcomes = replay(settings, which, library)
    for outcome in outcomes:
        for line in describe(outcome):
            echo(line)
    failed = [o.incident.id for o in outcomes if not o.passed]
    echo(f"{len(outcomes) - len(failed)}/{len(outcomes)} incidents as expected"
         + (f"; differ: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
