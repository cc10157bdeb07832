"""What ``backstop alerts test`` and ``backstop alerts list`` do (the CLI only wires them)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from alerts.delivery import Deliverer, Notification
from backstop.config import Settings
from storage.alert_store import alerts_frame


def alerts_test(settings: Settings, echo: Callable[[str], None] = print) -> int:
    """Send a test message to every configured target; print one line per target (scheme only).
    Returns 0 when every target accepted it, 1 otherwise (or when none is configured)."""
    targets = settings.alerts.targets
    if not targets:
        echo("no alert targets configured ([alerts] targets = [\"json://…\", …] in backstop.toml)")
        return 1
    deliverer = Deliverer(targets, retries=settings.alerts.delivery_retries,
                          backoff_base_s=settings.collector.backoff_base_s,
                          backoff_max_s=settings.collector.backoff_max_s)
    now = datetime.now(UTC)
    notification = Notification(
        alert_id=None, dedup_key=None, event="test", severity="info", title="[TEST] Backstop alerts",
        body=f"Test message from Backstop at {now:%Y-%m-%d %H:%M:%S} UTC: this target receives alerts.",
    )
    results = deliverer.deliver(notification)
    for result in results:
        state = "ok" if result.ok else f"failed after {result.attempts} attempt(s): {result.error}"
        echo(f"target {result.target_index + 1} {result.target}: {state}")
    return 0 if all(r.ok for r in results) else 1


def alerts_list(settings: Settings, days: float = 7.0) -> pd.DataFrame:
    """Firing alerts plus those fired or resolved in the last ``days`` days, firing first."""
    frame = alerts_frame(settings.db, since=datetime.now(UTC) - timedelta(days=days))
    return frame[["status", "severity", "rule", "venue", "message", "fired_at", "last_seen_at", "resolved_at",
                  "notified", "alert_id"]]


def print_alerts(frame: pd.DataFrame, console: Any) -> None:
    """Two lines per alert (facts, then the sentence), as plain text: alert sentences may hold exchange
    text, which must not be read as console markup."""
    if frame.empty:
        console.print("no alert fired in this period", markup=False)
        return
    for record in frame.to_dict("records"):
        when = f"since {_cell(record['fired_at'])}"
        if record["status"] == "resolved":
            when = f"{_cell(record['fired_at'])} → {_cell(record['resolved_at'])}"
        quiet = "" if record["notified"] else "  (not notified: cooldown)"
        console.print(f"{record['status']:<9} {record['severity']:<9} {record['rule']:<14} {record['venue']:<10} "
                      f"{when}{quiet}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"    {record['message']}", markup=False, highlight=False, soft_wrap=True)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or str(value) == "NaT":
        return ""
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)
