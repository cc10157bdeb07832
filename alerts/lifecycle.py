"""An alert's lifecycle, decided purely from what is firing, what was notified and the signals that hold
now (``plan_changes``; the engine reads and writes the ``alerts`` table around it).

All state lives in the ``alerts`` table, so a restart neither forgets nor re-sends:

* a signal whose dedup key has no firing alert opens one (``firing``); a firing alert whose key has no
  signal any more is ``resolved`` - but only when its rule was evaluated (a rule whose query failed
  leaves its alerts as they are) - and quietly when the rule was disabled;
* a firing notification is sent unless the key was notified less than ``cooldown_s`` ago at the same or
  a higher severity (a flapping signal): the episode is recorded but stays silent, and is announced once
  the cooldown has passed if it is still firing; an escalation above the severity last announced is
  always announced at once; a resolution is announced when its firing was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alerts.delivery import Notification
from alerts.parameters import severity_rank
from metrics.alert_rows import Signal
from metrics.formatting import fmt_age, fmt_time, venue_label
from storage.alert_store import AlertOpen, AlertResolve, AlertState, AlertUpdate


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
