"""Alert lifecycle (firing -> resolved), cooldown against flapping, escalation, failed/disabled rules,
and the engine on a real database (state survives a restart, nothing is re-sent)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from alerts.context import Context, RuleSet, rule_set
from alerts.delivery import Notification
from alerts.engine import AlertEngine
from alerts.lifecycle import plan_changes
from alerts.parameters import DIVERGENCE, FUND_DRAWDOWN, RULES, STALE, DrawdownParams
from backstop.config import AlertRuleConfig, AlertsConfig, ConfigError
from collectors.base import Batch, FundBalance
from metrics.alert_rows import FundWindow, Signal
from storage import alert_store as A
from storage import fund_inputs
from storage.writer import Store

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
COOLDOWN = 3600.0


def sig(severity: str = "warning", venue: str = "okx", rule: str = FUND_DRAWDOWN,
        message: str = "OKX USDT pool −22.4 % in 8 h") -> Signal:
    return Signal(rule, venue, "funds", severity, message, {"drawdown_pct": -22.4}, T0)


class Ledger:
    """Plays ``plan_changes`` against an in-memory alert table, as the engine does against DuckDB."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.ids = (f"a{i}" for i in count(1))

    def firing(self) -> list[A.AlertState]:
        return [A.AlertState(r["id"], r["key"], r["rule"], r["venue"], "funds", r["severity"], r["max"], r["message"],
                             r["fired_at"], r["seen"], r["notified"], r["notified_at"])
                for r in self.rows.values() if r["status"] == "firing"]

    def notified_at(self) -> dict[str, tuple[datetime, str]]:
        out: dict[str, tuple[datetime, str]] = {}
        for r in self.rows.values():
            if r["notified_at"] is not None and (r["key"] not in out or r["notified_at"] >= out[r["key"]][0]):
                out[r["key"]] = (r["notified_at"], r["notified"])
        return out

    def step(self, now: datetime, signals: Sequence[Signal], evaluated: set[str] | None = None,
             disabled: set[str] = frozenset()) -> list[Notification]:  # type: ignore[assignment]
        evaluated = set(RULES) - set(disabled) if evaluated is None else evaluated
        plan = plan_changes(self.firing(), self.notified_at(), signals, evaluated, set(disabled), now, COOLDOWN,
                            {"okx": "OKX"}, new_id=lambda: next(self.ids))
        for o in plan.opened:
            self.rows[o.alert_id] = {"id": o.alert_id, "key": o.signal.dedup_key, "rule": o.signal.rule,
                                     "venue": o.signal.venue, "severity": o.signal.severity, "max": o.signal.severity,
                                     "message": o.signal.message, "fired_at": now, "seen": now, "status": "firing",
                                     "notified": o.signal.severity if o.notified else None,
                                     "notified_at": now if o.notified else None, "reason": None}
        for u in plan.updated:
            row = self.rows[u.alert_id]
            row.update(severity=u.signal.severity, max=u.max_severity, message=u.signal.message, seen=now)
            if u.notified_severity:
                row.update(notified=u.notified_severity, notified_at=now)
        for r in plan.resolved:
            self.rows[r.alert_id].update(status="resolved", reason=r.reason)
        return plan.notifications


def test_fire_update_resolve() -> None:
    ledger = Ledger()
    [fired] = ledger.step(T0, [sig()])
    assert (fired.event, fired.severity, fired.alert_id) == ("firing", "warning", "a1")
    assert fired.title == "[WARNING] fund_drawdown: OKX"
    assert fired.body.startswith("OKX USDT pool −22.4 % in 8 h\nSince 2025-06-01 12:00 UTC")
    assert ledger.step(T0 + timedelta(minutes=5), [sig(message="OKX USDT pool −23.0 % in 8 h")]) == []
    assert ledger.rows["a1"]["message"] == "OKX USDT pool −23.0 % in 8 h"
    [resolved] = ledger.step(T0 + timedelta(minutes=10), [])
    assert resolved.event == "resolved" and resolved.title == "[RESOLVED] fund_drawdown: OKX"
    assert resolved.body.startswith("Cleared after 10 min. Last: OKX USDT pool −23.0 % in 8 h")
    assert ledger.rows["a1"]["status"] == "resolved" and ledger.rows["a1"]["reason"] == "cleared"


def test_flapping_signal_is_quiet_within_the_cooldown() -> None:
    ledger = Ledger()
    sent = ledger.step(T0, [sig()])
    sent += ledger.step(T0 + timedelta(minutes=5), [])  # resolved (announced: the firing was)
    for minute in range(10, 60, 10):  # flaps: back, gone, back ... within the hour
        sent += ledger.step(T0 + timedelta(minutes=minute), [sig()] if minute % 20 == 10 else [])
    assert [n.event for n in sent] == ["firing", "resolved"]
    episodes = list(ledger.rows.values())
    assert len(episodes) == 4 and all(e["notified"] is None for e in episodes[1:])  # recorded, silent
    # still firing once the cooldown has passed: announced once, on the running episode
    sent = ledger.step(T0 + timedelta(minutes=61), [sig()])
    assert [n.event for n in sent] == ["firing"] and sent[0].alert_id == "a4"
    assert ledger.step(T0 + timedelta(minutes=70), [sig()]) == []


def test_escalation_is_always_announced_and_one_signal_per_key() -> None:
    ledger = Ledger()
    ledger.step(T0, [sig()])
    [up] = ledger.step(T0 + timedelta(minutes=1), [sig("critical"), sig("warning")])
    assert up.event == "escalated" and up.title == "[CRITICAL ↑] fund_drawdown: OKX"
    assert ledger.step(T0 + timedelta(minutes=2), [sig("warning")]) == []  # calmer: no news
    assert ledger.rows["a1"]["max"] == "critical" and ledger.rows["a1"]["severity"] == "warning"
    # within the cooldown a new episode is quiet up to the severity already announced (critical here)
    ledger.step(T0 + timedelta(minutes=3), [])
    assert ledger.step(T0 + timedelta(minutes=4), [sig("critical")]) == []


def test_quiet_episode_that_escalates_is_announced_at_once() -> None:
    ledger = Ledger()
    ledger.step(T0, [sig("warning")])
    ledger.step(T0 + timedelta(minutes=1), [])
    assert ledger.step(T0 + timedelta(minutes=2), [sig("warning")]) == []  # flapping: quiet
    [loud] = ledger.step(T0 + timedelta(minutes=3), [sig("critical")])
    assert (loud.event, loud.severity, loud.alert_id) == ("firing", "critical", "a2")
    assert ledger.step(T0 + timedelta(minutes=4), [sig("critical")]) == []


def test_failed_rule_keeps_its_alerts_and_disabled_rule_resolves_quietly() -> None:
    ledger = Ledger()
    ledger.step(T0, [sig(), sig(rule=DIVERGENCE)])
    # fund_drawdown's inputs failed: not evaluated, its alert stays; divergence evaluated, cleared
    sent = ledger.step(T0 + timedelta(minutes=5), [], evaluated={DIVERGENCE})
    assert [(n.event, n.dedup_key) for n in sent] == [("resolved", "divergence|okx|funds")]
    assert ledger.rows["a1"]["status"] == "firing"
    assert ledger.step(T0 + timedelta(minutes=10), [], disabled={FUND_DRAWDOWN}) == []
    assert ledger.rows["a1"]["status"] == "resolved" and ledger.rows["a1"]["reason"] == "rule disabled"


def test_rule_set_from_config() -> None:
    rules = rule_set(AlertsConfig(rules={"divergence": AlertRuleConfig(params={"min_venues": 3}),
                                         "stale": AlertRuleConfig(enabled=False),
                                         "liquidation_cascade": AlertRuleConfig(params={"k": 4})}))
    assert rules.divergence.min_venues == 3 and rules.disabled() == {"stale"}
    with pytest.raises(ConfigError, match="unknown rule 'nope'"):
        rule_set(AlertsConfig(rules={"nope": AlertRuleConfig()}))
    with pytest.raises(ConfigError, match="alerts.rules.cascade: unknown param 'z'"):
        rule_set(AlertsConfig(rules={"cascade": AlertRuleConfig(params={"z": 1})}))


# -- the engine on a database ------------------------------------------------------------------------
class Outbox:
    """Stands in for the Deliverer: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def submit(self, notifications: Sequence[Notification]) -> None:
        self.sent.extend(notifications)

    def wait(self, timeout: float | None = None) -> bool:
        return True


def write_okx(store: Store, at: datetime, balance: float) -> None:
    value = Decimal(str(balance))
    store.write(Batch(funds=[FundBalance("okx", "SWAP:BTC-USDT", "USDT", at, value, str(value), "USDT")]))


def engine(path: Path, outbox: Outbox, rules: RuleSet | None = None) -> AlertEngine:
    ctx = Context(db=path, rules=rules or RuleSet(), cooldown_s=COOLDOWN, labels={"okx": "OKX"},
                  fund_expected_s={"okx": 300.0})
    return AlertEngine(ctx, Store(path), outbox)  # type: ignore[arg-type]


def test_engine_persists_lifecycle_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    store = Store(path)
    for minute in range(0, 8 * 60 + 1, 30):
        write_okx(store, T0 - timedelta(hours=8) + timedelta(minutes=minute), 400e6 - 100_000 * minute)
    outbox = Outbox()
    first = engine(path, outbox).evaluate(now=T0)
    assert first is not None and first.evaluated >= {FUND_DRAWDOWN, DIVERGENCE, STALE}
    assert [n.event for n in outbox.sent] == ["firing"]
    assert outbox.sent[0].body.startswith("OKX USDT pool SWAP:BTC-USDT −12.0 % in 8 h (max 400.0 M → 352.0 M USDT)")
    # a new process (restart): the firing alert is known, nothing is sent again
    restarted = Outbox()
    engine(path, restarted).evaluate(now=T0 + timedelta(minutes=5))
    assert restarted.sent == []
    frame = A.alerts_frame(path)
    assert len(frame) == 1 and frame["status"][0] == "firing" and bool(frame["notified"][0])
    # recovery: the fund is back at its maximum -> resolved, announced
    write_okx(store, T0 + timedelta(minutes=10), 400e6)
    engine(path, restarted).evaluate(now=T0 + timedelta(minutes=10))
    assert [n.event for n in restarted.sent] == ["resolved"]
    assert A.alerts_frame(path)["status"].tolist() == ["resolved"]
    # a rule disabled by config: evaluated as nothing, no alert
    quiet = Outbox()
    off = replace(RuleSet(), drawdown=DrawdownParams(enabled=False))
    write_okx(store, T0 + timedelta(minutes=20), 300e6)
    result = engine(path, quiet, off).evaluate(now=T0 + timedelta(minutes=20))
    assert result is not None and FUND_DRAWDOWN not in result.evaluated and quiet.sent == []


def test_engine_failed_input_query_leaves_alerts_firing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.duckdb"
    store = Store(path)
    for minute in range(0, 8 * 60 + 1, 60):
        write_okx(store, T0 - timedelta(hours=8) + timedelta(minutes=minute), 400e6 - 200_000 * minute)
    outbox = Outbox()
    engine(path, outbox).evaluate(now=T0)
    assert [n.event for n in outbox.sent] == ["firing"]

    def broken(*_: Any, **__: Any) -> list[FundWindow]:
        raise RuntimeError("simulated query failure")

    monkeypatch.setattr(fund_inputs, "fund_windows", broken)
    result = engine(path, outbox).evaluate(now=T0 + timedelta(minutes=5))
    assert result is not None and "simulated query failure" in result.failed[FUND_DRAWDOWN]
    assert FUND_DRAWDOWN not in result.evaluated and STALE in result.evaluated
    assert A.alerts_frame(path)["status"].tolist() == ["firing"] and len(outbox.sent) == 1


async def test_after_cycle_folds_concurrent_calls(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "c.duckdb"
    Store(path).write(Batch())
    eng = engine(path, Outbox())
    calls: list[int] = []
    original = eng.evaluate

    def slow(now: datetime | None = None, as_of: datetime | None = None) -> Any:
        calls.append(1)
        import time

        time.sleep(0.2)
        return original(now, as_of)

    eng.evaluate = slow  # type: ignore[method-assign]
    await asyncio.gather(*(eng.after_cycle() for _ in range(5)))
    assert len(calls) == 2  # the first run, then one re-run for everything that arrived meanwhile
