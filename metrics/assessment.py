"""One assessment per venue and pool at a time t: the figures and the judgement every surface shows (pure).

The Overview / Health / Divergence / Alerts pages, ``backstop status``, ``backstop export assessments`` and
the alert engine all read ``Assessment`` objects built by ``assess`` from ``AssessmentInputs`` (gathered in
SQL by ``storage.assessments``), so a venue has one state and one set of numbers everywhere.

States (``STATES``, worst last in ``SEVERITY_ORDER``):

* ``critical`` - a firing critical alert, the fund at or below zero, or the venue's ADL trigger met;
* ``stressed`` - a firing warning alert, a fall past the stressed thresholds, or an own-history anomaly;
* ``watch`` - a smaller fall, a divergence from the other venues, low coverage for this venue, ADL near;
* ``healthy`` - none of these;
* ``no_fund`` (shown as "no published fund") - the venue publishes open interest but no fund: never
  "watch" for lack of a fund;
* ``blind`` - Backstop's own data on the fund is stale, so nothing can be confirmed (a critical finding
  still wins: what is known to be bad stays bad).

Changes are in the fund's native units (USD beside them): a BTC fund losing BTC is a loss, a BTC fund whose
USD value falls with the BTC price is not. ``pool_id == ALL_POOLS`` is the venue as a whole (its pools'
changes USD-weighted, like-for-like).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from metrics.coverage import coverage_pct
from metrics.formatting import fmt_age, fmt_pct, fmt_signed
from metrics.fund_changes import ANOMALY_Z
from metrics.health import FRESH, LATE, STALE, HealthRules

HEALTHY, WATCH, STRESSED, CRITICAL, NO_FUND, BLIND = "healthy", "watch", "stressed", "critical", "no_fund", "blind"
STATES: tuple[str, ...] = (HEALTHY, WATCH, STRESSED, CRITICAL, NO_FUND, BLIND)
SEVERITY_ORDER: tuple[str, ...] = (NO_FUND, HEALTHY, WATCH, BLIND, STRESSED, CRITICAL)  # least to most severe
STATE_LABELS: dict[str, str] = {NO_FUND: "no published fund"}
ALL_POOLS = "*"  # pool_id of the venue-level assessment

# window label -> hours: the look-backs every assessment carries
WINDOWS: dict[str, float] = {"1h": 1.0, "8h": 8.0, "24h": 24.0, "7d": 168.0, "30d": 720.0}

FINDING_SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


def state_rank(state: str) -> int:
    """Position in ``SEVERITY_ORDER`` (higher = worse); unknown states rank lowest."""
    return SEVERITY_ORDER.index(state) if state in SEVERITY_ORDER else -1


def state_label(state: str) -> str:
    """What a person reads: 'no published fund' for ``no_fund``, the state itself otherwise."""
    return STATE_LABELS.get(state, state)


def worst_state(states: Sequence[str]) -> str:
    return max(states, key=state_rank) if states else HEALTHY


@dataclass(frozen=True)
class WindowFigures:
    """A fund over one look-back: native change (the judgement's unit), USD beside it, drawdown from the
    window's maximum. Absent (None) where the fund publishes less often than the window."""

    window: str  # "1h", "8h", "24h", "7d", "30d"
    window_h: float
    start_native: float | None = None
    max_native: float | None = None
    change_native: float | None = None
    change_pct: float | None = None  # native change in percent of the start value
    change_usd: float | None = None
    drawdown_pct: float | None = None  # (last − max) ÷ max × 100, ≤ 0


@dataclass(frozen=True)
class Finding:
    """A condition behind a state: a firing alert (rule, severity, its one-line message) or a threshold."""

    rule: str
    severity: str  # info / warning / critical
    message: str
    since: datetime | None = None
    pool_id: str | None = None  # None = the venue as a whole


@dataclass(frozen=True)
class AdlSummary:
    """The venue's own ADL indicator: level ``none`` / ``near`` / ``triggered`` and a one-line text."""

    level: str
    text: str
    ts: datetime | None = None


@dataclass(frozen=True)
class AssessmentParams:
    """Thresholds of the state (the health thresholds live in ``metrics.health.HealthRules``)."""

    health: HealthRules = field(default_factory=HealthRules)
    divergence_z: float = 3.5  # |z| at or past this (a fall) puts the venue on watch
    anomaly_watch_z: float = 4.0  # own-history robust z of the 24 h / 7 d change (a fall)
    anomaly_stressed_z: float = ANOMALY_Z  # where the fund_anomaly alert fires (warning)
    coverage_low_percentile: float = 5.0  # coverage in the lowest 5 % of the venue's own history


@dataclass(frozen=True)
class AssessmentInputs:
    """Everything ``assess`` needs, gathered by ``storage.assessments`` (or built by hand in tests)."""

    venue: str
    display_name: str
    pool_id: str
    asset: str
    as_of: datetime
    has_fund: bool = True
    fund_native: float | None = None
    fund_usd: float | None = None
    fund_ts: datetime | None = None
    windows: tuple[WindowFigures, ...] = ()
    oi_usd: float | None = None
    coverage_history_pct: tuple[float, ...] = ()  # the venue's daily coverage (%) over past days
    divergence_z: float | None = None
    divergence_window_h: float | None = None
    anomaly_z_24h: float | None = None
    anomaly_z_7d: float | None = None
    usual_move_24h_pct: float | None = None  # median |24 h trading change| over the history
    usual_move_7d_pct: float | None = None
    adl: AdlSummary | None = None
    data_age_s: float | None = None
    expected_age_s: float | None = None
    freshness: str | None = None  # fresh / late / stale (metrics.health.freshness)
    stress_consumption_pct: float | None = None  # share of the fund a stress scenario consumes (metrics.stress)
    findings: tuple[Finding, ...] = ()  # firing alerts of this venue / pool


@dataclass(frozen=True)
class Assessment:
    """One venue × pool at ``as_of``: figures (native, USD beside), state, reasons, since when."""

    venue: str
    display_name: str
    pool_id: str
    asset: str
    as_of: datetime
    fund_native: float | None
    fund_usd: float | None
    fund_ts: datetime | None
    windows: tuple[WindowFigures, ...]
    drawdown_8h_pct: float | None
    drawdown_30d_pct: float | None
    oi_usd: float | None
    coverage_pct: float | None
    coverage_percentile: float | None  # % of the venue's past days with coverage at or below today's
    divergence_z: float | None
    anomaly_z_24h: float | None
    anomaly_z_7d: float | None
    adl_level: str | None
    adl_text: str | None
    data_age_s: float | None
    expected_age_s: float | None
    freshness: str | None
    stress_consumption_pct: float | None
    usual_move_24h_pct: float | None
    usual_move_7d_pct: float | None
    state: str
    reasons: tuple[str, ...]
    state_since: datetime | None
    findings: tuple[Finding, ...] = ()

    @property
    def label(self) -> str:
        return state_label(self.state)

    @property
    def is_venue(self) -> bool:
        return self.pool_id == ALL_POOLS

    def window(self, name: str) -> WindowFigures | None:
        """The figures of one window ("24h"), None when the fund publishes less often than that."""
        return next((w for w in self.windows if w.window == name), None)

    def change_pct(self, name: str) -> float | None:
        figures = self.window(name)
        return figures.change_pct if figures else None

    def change_native(self, name: str) -> float | None:
        figures = self.window(name)
        return figures.change_native if figures else None

    def change_usd(self, name: str) -> float | None:
        figures = self.window(name)
        return figures.change_usd if figures else None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def percentile_of(value: float | None, history: Sequence[float]) -> float | None:
    """Share of ``history`` at or below ``value``, in percent; None without a value or a history."""
    finite = [h for h in history if _finite(h)]
    if not _finite(value) or not finite:
        return None
    assert value is not None
    return sum(1 for h in finite if h <= value) / len(finite) * 100.0


def _fund_text(inputs: AssessmentInputs) -> str:
    return "the venue's funds" if inputs.pool_id == ALL_POOLS else f"{inputs.asset} pool"


def assess(inputs: AssessmentInputs, params: AssessmentParams | None = None) -> Assessment:
    """Judge one venue or pool from its inputs: the state is the worst condition found, the reasons list
    every condition (worst first), and ``state_since`` is the earliest firing time behind the state."""
    params = params or AssessmentParams()
    rules = params.health
    figures = {w.window: w for w in inputs.windows}
    dd8 = figures["8h"].drawdown_pct if "8h" in figures else None
    dd30 = figures["30d"].drawdown_pct if "30d" in figures else None
    change_24h = figures["24h"].change_pct if "24h" in figures else None
    coverage = coverage_pct(inputs.fund_usd, inputs.oi_usd)
    percentile = percentile_of(coverage, inputs.coverage_history_pct)

    found: list[tuple[str, str, datetime | None]] = []  # (state, reason, since)
    for finding in inputs.findings:
        state = {"critical": CRITICAL, "warning": STRESSED}.get(finding.severity, WATCH)
        found.append((state, f"{finding.severity} alert {finding.rule}: {finding.message}", finding.since))

    if not inputs.has_fund:
        notes = ["the venue publishes no insurance fund (open interest only)"]
        if inputs.freshness == STALE:
            notes.append("its open interest data is stale")
        return _result(inputs, params, NO_FUND, tuple(notes), None, dd8, dd30, coverage, percentile)

    what = _fund_text(inputs)
    if _finite(inputs.fund_native) and inputs.fund_native is not None and inputs.fund_native <= 0:
        found.append((CRITICAL, f"{what} at or below zero", inputs.fund_ts))
    if inputs.adl is not None and inputs.adl.level == "triggered":
        found.append((CRITICAL, f"ADL: {inputs.adl.text}", inputs.adl.ts))
    elif inputs.adl is not None and inputs.adl.level == "near":
        found.append((WATCH, f"ADL: {inputs.adl.text}", inputs.adl.ts))
    if inputs.freshness == STALE:
        found.append((BLIND, f"data stale: newest fund value {fmt_age(inputs.data_age_s)} old "
                             f"(expected every {fmt_age(inputs.expected_age_s)})", inputs.fund_ts))

    if change_24h is not None and change_24h <= rules.stressed_change_24h_pct:
        found.append((STRESSED, f"24 h change {fmt_pct(change_24h, signed=True)}", None))
    elif change_24h is not None and change_24h <= rules.watch_change_24h_pct:
        found.append((WATCH, f"24 h change {fmt_pct(change_24h, signed=True)}", None))
    if dd30 is not None and dd30 <= rules.stressed_drawdown_30d_pct:
        found.append((STRESSED, f"{fmt_pct(dd30)} from its 30 d max", None))
    elif dd30 is not None and dd30 <= rules.watch_drawdown_30d_pct:
        found.append((WATCH, f"{fmt_pct(dd30)} from its 30 d max", None))
    if dd8 is not None and dd8 <= rules.watch_drawdown_8h_pct:
        found.append((WATCH, f"{fmt_pct(dd8)} from its 8 h max", None))
    for label, z in (("24 h", inputs.anomaly_z_24h), ("7 d", inputs.anomaly_z_7d)):
        if z is None or not math.isfinite(z) or z > -params.anomaly_watch_z:
            continue
        level = STRESSED if z <= -params.anomaly_stressed_z else WATCH
        found.append((level, f"{label} change unusual for this fund (own-history robust z {fmt_signed(z)})", None))
    z = inputs.divergence_z
    if z is not None and math.isfinite(z) and z <= -params.divergence_z:
        found.append((WATCH, f"diverges from the other venues (robust z {fmt_signed(z)})", None))
    if percentile is not None and percentile <= params.coverage_low_percentile and len(inputs.coverage_history_pct) >= 7:
        found.append((WATCH, f"coverage {fmt_pct(coverage, 2)} of open interest, lowest "
                             f"{percentile:.0f} % of its last {len(inputs.coverage_history_pct)} days", None))
    if inputs.freshness == LATE:
        found.append((WATCH, f"data late: newest fund value {fmt_age(inputs.data_age_s)} old", inputs.fund_ts))

    if not found:
        return _result(inputs, params, HEALTHY, (), None, dd8, dd30, coverage, percentile)
    state = worst_state([s for s, _, _ in found])
    ordered = sorted(found, key=lambda item: -state_rank(item[0]))
    reasons = tuple(dict.fromkeys(reason for _, reason, _ in ordered))
    times = [since for s, _, since in found if s == state and since is not None]
    return _result(inputs, params, state, reasons, min(times) if times else None, dd8, dd30, coverage, percentile)


def _result(inputs: AssessmentInputs, params: AssessmentParams, state: str, reasons: tuple[str, ...],
            since: datetime | None, dd8: float | None, dd30: float | None, coverage: float | None,
            percentile: float | None) -> Assessment:
    del params  # the thresholds are applied by ``assess``; kept for a uniform call
    return Assessment(
        venue=inputs.venue, display_name=inputs.display_name, pool_id=inputs.pool_id, asset=inputs.asset,
        as_of=inputs.as_of, fund_native=inputs.fund_native, fund_usd=inputs.fund_usd, fund_ts=inputs.fund_ts,
        windows=inputs.windows, drawdown_8h_pct=dd8, drawdown_30d_pct=dd30, oi_usd=inputs.oi_usd,
        coverage_pct=coverage, coverage_percentile=percentile, divergence_z=inputs.divergence_z,
        anomaly_z_24h=inputs.anomaly_z_24h, anomaly_z_7d=inputs.anomaly_z_7d,
        adl_level=inputs.adl.level if inputs.adl else None, adl_text=inputs.adl.text if inputs.adl else None,
        data_age_s=inputs.data_age_s, expected_age_s=inputs.expected_age_s, freshness=inputs.freshness,
        stress_consumption_pct=inputs.stress_consumption_pct, usual_move_24h_pct=inputs.usual_move_24h_pct,
        usual_move_7d_pct=inputs.usual_move_7d_pct, state=state, reasons=reasons,
        state_since=since, findings=inputs.findings,
    )


# The flat export / status columns, in order (one row per venue × pool).
EXPORT_COLUMNS: tuple[str, ...] = (
    "venue", "display_name", "pool_id", "asset", "as_of", "state", "state_label", "state_since",
    "fund_native", "fund_usd", "fund_ts",
    *(f"change_{w}_native" for w in WINDOWS), *(f"change_{w}_pct" for w in WINDOWS),
    *(f"change_{w}_usd" for w in WINDOWS),
    "drawdown_8h_pct", "drawdown_30d_pct", "oi_usd", "coverage_pct", "coverage_percentile", "divergence_z",
    "anomaly_z_24h", "anomaly_z_7d", "adl_level", "adl_text", "data_age_s", "expected_age_s", "freshness",
    "stress_consumption_pct", "reasons",
)


def as_row(a: Assessment) -> dict[str, object]:
    """One flat row (``EXPORT_COLUMNS``): windows spread into columns, reasons joined with '; '."""
    row: dict[str, object] = {
        "venue": a.venue, "display_name": a.display_name, "pool_id": a.pool_id, "asset": a.asset,
        "as_of": a.as_of, "state": a.state, "state_label": a.label, "state_since": a.state_since,
        "fund_native": a.fund_native, "fund_usd": a.fund_usd, "fund_ts": a.fund_ts,
    }
    for name in WINDOWS:
        row[f"change_{name}_native"] = a.change_native(name)
        row[f"change_{name}_pct"] = a.change_pct(name)
        row[f"change_{name}_usd"] = a.change_usd(name)
    row.update({
        "drawdown_8h_pct": a.drawdown_8h_pct, "drawdown_30d_pct": a.drawdown_30d_pct, "oi_usd": a.oi_usd,
        "coverage_pct": a.coverage_pct, "coverage_percentile": a.coverage_percentile,
        "divergence_z": a.divergence_z, "anomaly_z_24h": a.anomaly_z_24h, "anomaly_z_7d": a.anomaly_z_7d,
        "adl_level": a.adl_level, "adl_text": a.adl_text, "data_age_s": a.data_age_s,
        "expected_age_s": a.expected_age_s, "freshness": a.freshness,
        "stress_consumption_pct": a.stress_consumption_pct, "reasons": "; ".join(a.reasons),
    })
    return {name: row[name] for name in EXPORT_COLUMNS}


__all__ = [
    "ALL_POOLS", "BLIND", "CRITICAL", "EXPORT_COLUMNS", "FRESH", "HEALTHY", "NO_FUND", "SEVERITY_ORDER",
    "STATES", "STATE_LABELS", "STRESSED", "WATCH", "WINDOWS", "AdlSummary", "Assessment", "AssessmentInputs",
    "AssessmentParams", "Finding", "WindowFigures", "as_row", "assess", "percentile_of", "state_label",
    "state_rank", "worst_state",
]
