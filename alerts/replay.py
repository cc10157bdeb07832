"""Replay history's insurance-fund incidents through the configured alert rules (``backstop replay``).

The library (``alerts/incidents.toml``) holds real incidents with their published figures and sources, each
with the outcome the default rules must produce. A replay writes an incident's series into a scratch
database (through the real writer, timestamps shifted so the last point is "now"), evaluates the
configured rules exactly as the collector's engine does (``gather`` + ``run_rules``), and compares what
fired with the expectation — so a user can test their own thresholds against history before trusting them.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from alerts.context import Context, rule_set
from alerts.incidents import Incident, Series, load_library
from alerts.parameters import DIVERGENCE, FUND_ANOMALY, FUND_DRAWDOWN, RULES, severity_rank
from alerts.signals import gather, run_rules
from metrics.alert_rows import Signal
from metrics.formatting import fmt_time
from metrics.fund_changes import RESTRUCTURE, TRANSFER
from records.batch import Batch, FundBalance, Price
from records.vocabulary import STABLE_ASSETS
from storage.db import read_connection
from storage.fund_changes import fund_changes
from storage.writer import Store

LOSS_RULES = (FUND_DRAWDOWN, FUND_ANOMALY, DIVERGENCE)


@dataclass
class Outcome:
    incident: Incident
    as_of: datetime
    signals: list[Signal] = field(default_factory=list)
    restructures: int = 0
    transfers: int = 0
    passed: bool = False
    why: str = ""


def _balances(series: Series, start: datetime, seed: int) -> list[tuple[datetime, float]]:
    """The calm daily history before the incident (a seeded walk of ±noise_pct % a day ending at
    ``level``), then the incident's points."""
    rng = random.Random(f"{seed}:{series.venue}:{series.pool_id}")
    history = []
    value = series.level
    for day in range(1, series.history_days + 1):
        value = value / (1 + rng.uniform(-series.noise_pct, series.noise_pct) / 100.0)
        history.append((start - timedelta(days=day), value))
    points = [(start + timedelta(hours=h), v) for h, v in series.points]
    return sorted(history) + points


def write_incident(incident: Incident, db: Path, end: datetime, seed: int = 1) -> datetime:
    """Write the incident's series into ``db`` so its last point lands at ``end``; returns that time."""
    span_h = max(h for s in incident.series for h, _ in s.points)
    start = end - timedelta(hours=span_h)
    batch = Batch()
    for series in incident.series:
        for ts, value in _balances(series, start, seed):
            amount = Decimal(str(round(value, 8)))
            batch.funds.append(FundBalance(venue=series.venue, pool_id=series.pool_id, asset=series.asset, ts=ts,
                                           balance=amount, balance_raw=str(amount), unit_raw=series.asset,
                                           source="history"))
        if series.asset not in STABLE_ASSETS and series.price_usd:
            days = series.history_days + 3
            batch.prices += [Price(series.venue, series.asset, end - timedelta(days=d), float(series.price_usd),
                                   "index") for d in range(days)]
    Store(db).write(batch, fetched_at=end)
    return end


def run_incident(incident: Incident, settings: Any, workdir: Path, now: datetime | None = None) -> Outcome:
    """Write, evaluate, compare (see the module docstring)."""
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    db = workdir / f"{incident.id}.duckdb"
    as_of = write_incident(incident, db, end)
    venues = sorted({s.venue for s in incident.series})
    cadence = {v: 86_400.0 for v in venues}
    rules = rule_set(settings.alerts)
    ctx = Context(db=db, rules=rules, cooldown_s=0.0, jobs=(), labels=dict(incident.labels), fund_expected_s=cadence,
                  oi_expected_s={})
    with read_connection(db) as con:
        inputs = gather(con, ctx, as_of, as_of)
        signals, _ = run_rules(inputs, ctx, as_of, as_of)
        changes = fund_changes(con, as_of - timedelta(days=2), as_of + timedelta(minutes=1), incident.venue)
    if inputs.failed:
        raise RuntimeError(f"rule inputs failed: {inputs.failed}")
    outcome = Outcome(incident, as_of, signals,
                      restructures=sum(1 for c in changes if c.kind == RESTRUCTURE),
                      transfers=sum(1 for c in changes if c.kind == TRANSFER))
    outcome.passed, outcome.why = verdict(incident, signals, outcome.restructures, outcome.transfers)
    return outcome


def verdict(incident: Incident, signals: Sequence[Signal], restructures: int = 0,
            transfers: int = 0) -> tuple[bool, str]:
    """Does what fired match the expectation? (pass, one-line reason)"""
    mine = [s for s in signals if incident.venue in ("*", s.venue)]
    above_info = [s for s in mine if severity_rank(s.severity) > severity_rank("info")]
    expect = incident.expect
    if expect == "alert":
        wanted = set(incident.rules) or set(RULES)
        hits = [s for s in above_info if s.rule in wanted]
        return bool(hits), f"expected an alert of {', '.join(sorted(wanted))} for {incident.venue}"
    if expect == "critical":
        return any(s.severity == "critical" for s in mine), f"expected a critical alert for {incident.venue}"
    if expect == "no_divergence":
        return not any(s.rule == DIVERGENCE for s in mine), f"expected no divergence alert for {incident.venue}"
    if expect == "quiet":
        return not above_info, f"expected nothing above info for {incident.venue}"
    if expect == "restructure":
        loss = [s for s in mine if s.rule in LOSS_RULES]
        return (not loss and restructures > 0,
                f"expected no loss alert for {incident.venue} and a restructure (found {restructures})")
    if expect == "transfer":
        loss = [s for s in mine if s.rule in LOSS_RULES]
        return (not loss and transfers > 0,
                f"expected no loss alert for {incident.venue} and a transfer (found {transfers})")
    return not signals, "expected no alert of any kind"


def describe(outcome: Outcome) -> list[str]:
    """The report lines of one incident: expected, fired, verdict."""
    inc = outcome.incident
    lines = [f"{inc.id}: {inc.title} — {inc.figures}", f"  source: {inc.source}",
             f"  expected: {inc.expect}" + (f" ({', '.join(inc.rules)})" if inc.rules else "")
             + ("" if inc.venue == "*" else f" for {inc.venue}")]
    if not outcome.signals:
        lines.append("  fired: nothing")
    for s in outcome.signals:
        lines.append(f"  fired: {s.rule} {s.severity} {fmt_time(s.data_ts or outcome.as_of)} — {s.message}")
    if outcome.restructures:
        lines.append(f"  fund changes classified restructure: {outcome.restructures}")
    if outcome.transfers:
        lines.append(f"  fund changes classified transfer: {outcome.transfers}")
    lines.append(f"  verdict: {'PASS' if outcome.passed else 'FAIL'}" + ("" if outcome.passed else f" — {outcome.why}"))
    return lines


def replay(settings: Any, which: str = "all", library: Path | None = None,
           now: datetime | None = None) -> list[Outcome]:
    """Replay one incident (by id) or ``all``; raises ``KeyError`` for an unknown id."""
    incidents = load_library(library)
    if which != "all":
        chosen = [i for i in incidents if i.id == which]
        if not chosen:
            raise KeyError(f"unknown incident {which!r} (one of: all, {', '.join(i.id for i in incidents)})")
        incidents = chosen
    with tempfile.TemporaryDirectory(prefix="backstop-replay-") as tmp:
        return [run_incident(incident, settings, Path(tmp), now) for incident in incidents]
