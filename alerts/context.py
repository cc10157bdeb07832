"""What an alert evaluation knows about the deployment: the rules' parameters (``RuleSet``, built from
``[alerts.rules.<name>]`` by ``rule_set``) and one database's ``Context`` (venues, cadences, poll
intervals, labels, cooldown), built from the settings and the venues' declarations by ``context_for``.
``assessment_config`` gives the assessments the same view, so an alert and an assessment quote one number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts import inventory as inv
from alerts.parameters import (
    ADL_NEAR,
    CASCADE,
    COVERAGE_LOW,
    DIVERGENCE,
    FUND_ANOMALY,
    FUND_DRAWDOWN,
    PARAM_TYPES,
    RULES,
    STALE,
    AdlParams,
    AnomalyParams,
    CascadeParams,
    CoverageParams,
    DivergenceParams,
    DrawdownParams,
    RuleParams,
    StaleParams,
    build_params,
)
from configuration.settings import Settings
from metrics.assessment import AssessmentParams
from records.config import AlertsConfig, ConfigError
from records.venues import VenueFacts
from storage.assessments import AnomalySettings, AssessmentConfig, StressSettings
from storage.freshness_inputs import JobExpectation

# [alerts.rules.<name>] sections read by other features (the cascade detector's parameters)
EXTERNAL_RULES = ("liquidation_cascade",)


@dataclass(frozen=True)
class RuleSet:
    drawdown: DrawdownParams = field(default_factory=DrawdownParams)
    coverage: CoverageParams = field(default_factory=CoverageParams)
    divergence: DivergenceParams = field(default_factory=DivergenceParams)
    cascade: CascadeParams = field(default_factory=CascadeParams)
    adl: AdlParams = field(default_factory=AdlParams)
    stale: StaleParams = field(default_factory=StaleParams)
    anomaly: AnomalyParams = field(default_factory=AnomalyParams)
    inventory: inv.InventoryParams = field(default_factory=inv.InventoryParams)

    def by_name(self) -> dict[str, RuleParams]:
        return {FUND_DRAWDOWN: self.drawdown, COVERAGE_LOW: self.coverage, DIVERGENCE: self.divergence,
                CASCADE: self.cascade, ADL_NEAR: self.adl, STALE: self.stale, FUND_ANOMALY: self.anomaly,
                inv.INVENTORY_LARGE: self.inventory}

    def disabled(self) -> set[str]:
        return {name for name, params in self.by_name().items() if not params.enabled}


def rule_set(config: AlertsConfig) -> RuleSet:
    """Rule parameters from ``[alerts.rules.<name>]``; unknown rules/params raise ``ConfigError``."""
    unknown = sorted(set(config.rules) - set(RULES) - {inv.INVENTORY_LARGE} - set(EXTERNAL_RULES))
    if unknown:
        known = ", ".join((*RULES, inv.INVENTORY_LARGE, *EXTERNAL_RULES))
        raise ConfigError(f"alerts.rules: unknown rule {unknown[0]!r} (known: {known})")
    built: dict[str, Any] = {}
    for name, kind in {**PARAM_TYPES, inv.INVENTORY_LARGE: inv.InventoryParams}.items():
        try:
            built[name] = build_params(kind, config.rules.get(name))
        except ValueError as exc:
            raise ConfigError(f"alerts.rules.{name}: {exc}") from None
    return RuleSet(drawdown=built[FUND_DRAWDOWN], coverage=built[COVERAGE_LOW],
                   divergence=built[DIVERGENCE], cascade=built[CASCADE], adl=built[ADL_NEAR],
                   stale=built[STALE], anomaly=built[FUND_ANOMALY], inventory=built[inv.INVENTORY_LARGE])


@dataclass(frozen=True)
class Context:
    """What one database's evaluation needs to know about the deployment."""

    db: Path
    rules: RuleSet
    cooldown_s: float
    jobs: tuple[JobExpectation, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    fund_expected_s: Mapping[str, float] = field(default_factory=dict)  # per venue
    oi_expected_s: Mapping[str, float] = field(default_factory=dict)
    simulated: bool = False  # no data-age staleness: simulated venue time runs faster (see monitor_rules.stale)
    stress: StressSettings = field(default_factory=StressSettings)  # the assessments' stress figure ([stress])


def stress_settings(settings: Settings) -> StressSettings:
    """The assessments' stress projection from ``[stress]`` (the Stress page and CLI read the same section)."""
    cfg = settings.stress
    return StressSettings(distribution=cfg.distribution(), fill=cfg.fill_model(), calibration_days=cfg.calibration_days,
                          min_calibration_days=cfg.min_calibration_days, calibrate=cfg.calibrate)


def context_for(settings: Settings, venues: Mapping[str, VenueFacts],
                jobs: Sequence[tuple[str, str]] | None = None) -> Context:
    """Build the context from settings and the venues' declarations (their capabilities give each
    dataset's cadence; the poll intervals come from the settings). ``jobs`` defaults to every venue x
    dataset with a non-zero interval, which is what ``Collector.jobs()`` schedules."""
    classes = dict(venues)
    if jobs is None:
        jobs = [
            (venue, cap.dataset) for venue, klass in classes.items() for cap in klass.capabilities
            if getattr(settings.venues[venue].intervals, cap.dataset, 0) > 0 and klass.implements(cap.dataset)
        ]
    expectations = []
    for venue, dataset in jobs:
        cap = classes[venue].capability(dataset) if venue in classes else None
        interval = float(getattr(settings.venues[venue].intervals, dataset, 0) or 0)
        cadence = float(cap.cadence_s) if cap else interval
        expectations.append(JobExpectation(venue, dataset, interval or cadence, cadence or interval))

    def expected(dataset: str) -> dict[str, float]:
        out = {}
        for venue, klass in classes.items():
            cap = klass.capability(dataset)
            interval = float(getattr(settings.venues[venue].intervals, dataset, 0) or 0)
            value = max(float(cap.cadence_s) if cap else 0.0, interval)
            if value > 0:
                out[venue] = value
        return out

    return Context(
        db=Path(settings.db), rules=rule_set(settings.alerts), cooldown_s=float(settings.alerts.cooldown_s),
        jobs=tuple(expectations), labels={v: facts.display_name for v, facts in classes.items()},
        fund_expected_s=expected("funds"), oi_expected_s=expected("open_interest"),
        simulated=bool(getattr(settings, "simulated", False)), stress=stress_settings(settings),
    )


def assessment_config(ctx: Context) -> AssessmentConfig:
    """The assessments as this deployment's rules see them: same venues, cadences, divergence rule and
    anomaly settings, so an alert and the assessment quote the same numbers."""
    rs = ctx.rules
    return AssessmentConfig(
        labels=dict(ctx.labels), fund_expected_s=dict(ctx.fund_expected_s), oi_expected_s=dict(ctx.oi_expected_s),
        divergence=rs.divergence.rule(), divergence_window_h=min(rs.divergence.windows_h, default=24.0),
        anomaly=AnomalySettings(history_days=rs.anomaly.history_days, min_history=rs.anomaly.min_history),
        params=AssessmentParams(anomaly_stressed_z=rs.anomaly.z_threshold, divergence_z=rs.divergence.z_threshold),
        stress=ctx.stress,
    )
