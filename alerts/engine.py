"""Alert evaluation after each collection cycle: rule inputs (DuckDB) -> rules -> lifecycle -> delivery.

Lifecycle (all state lives in the ``alerts`` table, so a restart neither forgets nor re-sends):

* a signal whose dedup key has no firing alert opens one (``firing``); a firing alert whose key has no
  signal any more is ``resolved`` - but only when its rule was evaluated (a rule whose query failed
  leaves its alerts as they are) - and quietly when the rule was disabled;
* a firing notification is sent unless the key was notified less than ``cooldown_s`` ago at the same or
  a higher severity (a flapping signal): the episode is recorded but stays silent, and is announced once
  the cooldown has passed if it is still firing; an escalation above the severity last announced is
  always announced at once; a resolution is announced when its firing was.

``AlertEngine.after_cycle`` is the collector hook (the composition root builds one engine per collector,
``backstop.integrations.alert_engine_for``): one evaluation at a time (calls arriving meanwhile fold into
one re-run), run in a thread with a timeout, deliveries handed to a background thread - collection never
waits for a notification.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts import fund_rules, market_rules, monitor_rules
from alerts import inventory as inv
from alerts.delivery import Deliverer, Notification
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
    severity_rank,
)
from configuration.settings import Settings
from metrics.alert_rows import (
    AdlReading,
    CascadeEvent,
    Freshness,
    FundWindow,
    Signal,
    StreamGap,
    VenueChange,
    VenueCoverage,
)
from metrics.assessment import Assessment, AssessmentParams
from metrics.formatting import fmt_age, fmt_time, venue_label
from records.config import AlertsConfig, ConfigError
from records.venues import VenueFacts
from storage import alert_store as db_alerts
from storage import positions as db_positions
from storage.alert_store import AlertOpen, AlertResolve, AlertState, AlertUpdate, JobExpectation
from storage.assessments import AnomalySettings, AssessmentConfig, StressSettings, load_assessments
from storage.db import DatabaseBusy
from storage.writer import Store

log = logging.getLogger(__name__)

EVALUATION_TIMEOUT_S = 60.0
# [alerts.rules.<name>] sections read by other features (the cascade detector's parameters)
EXTERNAL_RULES = ("liquidation_cascade",)


# -- configuration -----------------------------------------------------------------------------------
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


# -- inputs and rules ----------------------------------------------------------------------------------
@dataclass
class Inputs:
    windows: list[FundWindow] = field(default_factory=list)
    changes: list[VenueChange] = field(default_factory=list)
    coverage: list[VenueCoverage] = field(default_factory=list)
    cascades: list[CascadeEvent] = field(default_factory=list)
    adl: list[AdlReading] = field(default_factory=list)
    freshness: list[Freshness] = field(default_factory=list)
    gaps: list[StreamGap] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    inventory: list[inv.InventoryPosition] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # rule -> error (its alerts are left untouched)


def gather(con: Any, ctx: Context, now: datetime, as_of: datetime,
           cache: dict[str, Any] | None = None) -> Inputs:
    """Run every enabled rule's input query; a failing query disables only the rules that need it.
    ``cache`` (the engine's) keeps the coverage medians for the day: they move once a day."""
    rs = ctx.rules
    inputs = Inputs()
    cache = {} if cache is None else cache

    def medians() -> Any:
        key = (as_of.date(), rs.coverage.median_days)
        if cache.get("medians_key") != key:
            cache["medians"] = db_alerts.coverage_medians(con, as_of, rs.coverage.median_days)
            cache["medians_key"] = key
        return cache["medians"]

    def run(needed_by: Sequence[str], fn: Callable[[], Any]) -> Any:
        wanted = [name for name in needed_by if rs.by_name()[name].enabled]
        if not wanted:
            return []
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - one broken query must not silence the other rules
            log.exception("alert inputs for %s failed", ", ".join(wanted))
            for name in wanted:
                inputs.failed[name] = f"{type(exc).__name__}: {exc}"
            return []

    change_windows = sorted(set(rs.divergence.windows_h) | set(rs.drawdown.windows_h))
    if rs.divergence.enabled or rs.drawdown.enabled:  # drawdown sentences quote the peers' median
        try:
            inputs.changes = db_alerts.venue_changes(con, as_of, change_windows, ctx.fund_expected_s)
        except Exception as exc:  # noqa: BLE001 - see run()
            log.exception("alert inputs for divergence failed")
            if rs.divergence.enabled:
                inputs.failed[DIVERGENCE] = f"{type(exc).__name__}: {exc}"
    inputs.windows = run([FUND_DRAWDOWN], lambda: db_alerts.fund_windows(
        con, as_of, rs.drawdown.windows_h, ctx.fund_expected_s))
    inputs.coverage = run([COVERAGE_LOW], lambda: db_alerts.venue_coverage(
        con, as_of, ctx.fund_expected_s, ctx.oi_expected_s, medians=medians()))
    inputs.cascades = run([CASCADE], lambda: db_alerts.recent_cascades(
        con, as_of, lookback=timedelta(hours=rs.cascade.lookback_h)))
    inputs.adl = run([ADL_NEAR], lambda: db_alerts.latest_adl(
        con, as_of, lookback=timedelta(hours=max(rs.adl.lookback_h, rs.adl.okx_lookback_h))))
    inputs.freshness = run([STALE], lambda: db_alerts.freshness(con, now, ctx.jobs))
    inputs.gaps = run([STALE], lambda: db_alerts.open_stream_gaps(con))
    if rs.anomaly.enabled or rs.drawdown.enabled:  # drawdowns skip transfers/restructures the assessments classify
        try:
            inputs.assessments = load_assessments(con, as_of, assessment_config(ctx), cache)
        except Exception as exc:  # noqa: BLE001 - see run(); drawdowns then judge without the change kinds
            log.exception("alert inputs for fund_anomaly failed")
            if rs.anomaly.enabled:
                inputs.failed[FUND_ANOMALY] = f"{type(exc).__name__}: {exc}"
    inputs.inventory = run([inv.INVENTORY_LARGE], lambda: db_positions.inventory_positions(
        con, as_of, timedelta(hours=rs.inventory.lookback_h)))
    return inputs


def run_rules(inputs: Inputs, ctx: Context, now: datetime, as_of: datetime) -> tuple[list[Signal], set[str]]:
    """All signals, and the rules that were evaluated (enabled and their inputs read)."""
    rs, labels = ctx.rules, ctx.labels
    produced: dict[str, Callable[[], list[Signal]]] = {
        FUND_DRAWDOWN: lambda: fund_rules.fund_drawdown(inputs.windows, rs.drawdown, inputs.changes, labels, {
            (a.venue, a.pool_id, a.asset): a.recent_change_kinds for a in inputs.assessments if not a.is_venue}),
        COVERAGE_LOW: lambda: fund_rules.coverage_low(inputs.coverage, rs.coverage, labels),
        DIVERGENCE: lambda: fund_rules.divergence(inputs.changes, rs.divergence, labels),
        CASCADE: lambda: market_rules.cascade(inputs.cascades, rs.cascade, as_of, labels),
        ADL_NEAR: lambda: market_rules.adl_near(inputs.adl, rs.adl, as_of, labels),
        STALE: lambda: monitor_rules.stale(inputs.freshness, inputs.gaps, rs.stale, now, labels,
                                           data_ages=not ctx.simulated),
        FUND_ANOMALY: lambda: fund_rules.fund_anomaly(inputs.assessments, rs.anomaly, labels),
        inv.INVENTORY_LARGE: lambda: inv.inventory_large(inputs.inventory, rs.inventory, labels),
    }
    signals: list[Signal] = []
    evaluated: set[str] = set()
    for name, fn in produced.items():
        if not rs.by_name()[name].enabled or name in inputs.failed:
            continue
        try:
            signals.extend(fn())
            evaluated.add(name)
        except Exception:  # noqa: BLE001 - a rule bug leaves its alerts as they are
            log.exception("alert rule %s failed", name)
    return signals, evaluated


# -- lifecycle (pure) -----------------------------------------------------------------------------------
@dataclass
class Plan:
    opened: list[AlertOpen] = field(default_factory=list)
    updated: list[AlertUpdate] = field(default_factory=list)
    resolved: list[AlertResolve] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


def _title(event: str, severity: str, signal_rule: str, venue_label: str) -> str:
    tag = {"firing": severity.upper(), "escalated": f"{severity.upper()} ↑", "resolved": "RESOLVED"}[event]
    return f"[{tag}] {signal_rule}: {venue_label}"


def plan_changes(firing: Sequence[AlertState], notified: Mapping[str, tuple[datetime, str]], signals: Sequence[Signal],
                 evaluated: set[str], disabled: set[str], now: datetime, cooldown_s: float,
                 labels: Mapping[str, str] = {},  # noqa: B006 - read-only default
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> Plan:
    """What one evaluation changes (see the module docstring). Pure: the caller reads and writes."""
    plan = Plan()
    by_key: dict[str, Signal] = {}
    for signal in signals:  # one signal per key: the most severe wins
        current = by_key.get(signal.dedup_key)
        if current is None or severity_rank(signal.severity) > severity_rank(current.severity):
            by_key[signal.dedup_key] = signal
    open_by_key = {alert.dedup_key: alert for alert in firing}

    def may_announce(key: str, severity: str) -> bool:
        last = notified.get(key)
        return (last is None or (now - last[0]).total_seconds() >= cooldown_s
                or severity_rank(severity) > severity_rank(last[1]))

    for key, signal in by_key.items():
        name = venue_label(labels, signal.venue)
        alert = open_by_key.get(key)
        if alert is None:
            notify = may_announce(key, signal.severity)
            alert_id = new_id()
            plan.opened.append(AlertOpen(alert_id, signal, notify))
            if notify:
                plan.notifications.append(Notification(
                    alert_id, key, "firing", signal.severity,
                    _title("firing", signal.severity, signal.rule, name),
                    f"{signal.message}\nSince {fmt_time(now)} · {key}"))
            continue
        max_severity = max(alert.max_severity, signal.severity, key=severity_rank)
        event = None
        if alert.notified_severity is None:
            if may_announce(key, signal.severity):
                event = "firing"
        elif severity_rank(signal.severity) > severity_rank(alert.notified_severity):
            event = "escalated"
        plan.updated.append(AlertUpdate(alert.alert_id, signal, max_severity,
                                        signal.severity if event else None))
        if event:
            plan.notifications.append(Notification(
                alert.alert_id, key, event, signal.severity, _title(event, signal.severity, signal.rule, name),
                f"{signal.message}\nSince {fmt_time(alert.fired_at)} · {key}"))
    for key, alert in open_by_key.items():
        if key in by_key:
            continue
        if alert.rule in disabled:
            plan.resolved.append(AlertResolve(alert.alert_id, "rule disabled"))
        elif alert.rule in evaluated:
            plan.resolved.append(AlertResolve(alert.alert_id, "cleared"))
            if alert.notified_severity is not None:
                lasted = fmt_age((now - alert.fired_at).total_seconds())
                plan.notifications.append(Notification(
                    alert.alert_id, key, "resolved", "resolved",
                    _title("resolved", alert.severity, alert.rule, venue_label(labels, alert.venue)),
                    f"Cleared after {lasted}. Last: {alert.message}\n{key}"))
    return plan


# -- the engine -----------------------------------------------------------------------------------
@dataclass
class Evaluation:
    now: datetime
    as_of: datetime
    signals: list[Signal]
    evaluated: set[str]
    failed: dict[str, str]
    plan: Plan


class AlertEngine:
    """Evaluates one database's alerts; writes through ``store``; sends through ``deliverer``."""

    def __init__(self, ctx: Context, store: Store, deliverer: Deliverer,
                 timeout_s: float = EVALUATION_TIMEOUT_S) -> None:
        self.ctx = ctx
        self.store = store
        self.deliverer = deliverer
        self.timeout_s = timeout_s
        self._thread_lock = threading.Lock()
        self._running = False
        self._again = False
        self._cache: dict[str, Any] = {}

    @classmethod
    def for_settings(cls, settings: Settings, venues: Mapping[str, VenueFacts], store: Store | None = None,
                     jobs: Sequence[tuple[str, str]] | None = None) -> AlertEngine:
        ctx = context_for(settings, venues, jobs)
        store = store or Store(Path(settings.db))
        deliverer = Deliverer(
            settings.alerts.targets, retries=settings.alerts.delivery_retries,
            backoff_base_s=max(settings.collector.backoff_base_s, 0.01),
            backoff_max_s=max(settings.collector.backoff_max_s, 0.01),
            record=lambda attempts: store.execute_write(lambda con: db_alerts.record_deliveries(con, attempts)),
            title_prefix="[SIMULATED] " if settings.simulated else "",
        )
        return cls(ctx, store, deliverer)

    def evaluate(self, now: datetime | None = None, as_of: datetime | None = None) -> Evaluation | None:
        """One synchronous evaluation; None when another one is still running (it is skipped)."""
        if not self._thread_lock.acquire(blocking=False):
            return None
        try:
            now = now or datetime.now(UTC)
            def read(con: Any) -> tuple[datetime, Inputs]:
                clock = as_of or db_alerts.data_clock(con, now)
                return clock, gather(con, self.ctx, now, clock, self._cache)

            as_of, inputs = self.store.read(read)  # the writer's own connection (one handle per process)
            signals, evaluated = run_rules(inputs, self.ctx, now, as_of)
            plan = self.store.execute_write(lambda con: self._reconcile(con, signals, evaluated, now))
            if plan.notifications:
                self.deliverer.submit(plan.notifications)
            if plan.opened or plan.resolved:
                log.info("alerts: %d opened, %d resolved, %d firing signals",
                         len(plan.opened), len(plan.resolved), len(signals))
            return Evaluation(now, as_of, signals, evaluated, inputs.failed, plan)
        finally:
            self._thread_lock.release()

    def _reconcile(self, con: Any, signals: list[Signal], evaluated: set[str], now: datetime) -> Plan:
        firing = db_alerts.firing_alerts(con)
        notified = db_alerts.last_notified(con)
        plan = plan_changes(firing, notified, signals, evaluated, self.ctx.rules.disabled(), now,
                            self.ctx.cooldown_s, self.ctx.labels)
        db_alerts.apply_changes(con, now, plan.opened, plan.updated, plan.resolved)
        return plan

    async def after_cycle(self) -> None:
        """Evaluate in a thread; concurrent calls fold into one re-run; never longer than ``timeout_s``."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            while True:
                self._again = False
                try:
                    await asyncio.wait_for(asyncio.to_thread(self.evaluate), timeout=self.timeout_s)
                except TimeoutError:
                    log.warning("alert evaluation took longer than %.0fs; it finishes in the background",
                                self.timeout_s)
                    return
                except DatabaseBusy as exc:  # another process held the file: next cycle evaluates again
                    log.warning("alert evaluation skipped: %s", exc)
                    return
                if not self._again:
                    return
        finally:
            self._running = False

    def wait_deliveries(self, timeout: float | None = None) -> bool:
        return self.deliverer.wait(timeout)
