"""All alert SQL but the rule inputs: the alert rows, their lifecycle and delivery attempts (written
through ``storage.writer.Store.execute_write``), and the reads of the CLI and the dashboard. The rule
inputs live in ``storage.rule_inputs`` (data clock) and ``storage.fund_inputs``, ``storage.coverage_inputs``,
``storage.freshness_inputs``, ``storage.liquidation_inputs``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from metrics.alert_rows import Signal
from storage.db import DatabaseMissing, read_connection
from storage.rule_inputs import table_exists


@dataclass(frozen=True)
class AlertState:
    """A firing alert as stored."""

    alert_id: str
    dedup_key: str
    rule: str
    venue: str
    scope: str
    severity: str
    max_severity: str
    message: str
    fired_at: datetime
    last_seen_at: datetime
    notified_severity: str | None
    last_notified_at: datetime | None


@dataclass(frozen=True)
class AlertOpen:
    alert_id: str
    signal: Signal
    notified: bool


@dataclass(frozen=True)
class AlertUpdate:
    alert_id: str
    signal: Signal
    max_severity: str
    notified_severity: str | None  # set when this evaluation notifies


@dataclass(frozen=True)
class AlertResolve:
    alert_id: str
    reason: str


@dataclass(frozen=True)
class DeliveryAttempt:
    delivery_id: str
    alert_id: str | None
    dedup_key: str | None
    event: str
    target: str  # scheme only
    target_index: int
    attempt: int
    attempted_at: datetime
    ok: bool
    error: str | None
    duration_ms: float


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _jsonable(float(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def metrics_json(metrics: Mapping[str, Any]) -> str:
    """The triggering numbers as JSON (non-finite floats become null, times ISO-8601)."""
    return json.dumps(_jsonable(metrics), sort_keys=True)


def firing_alerts(con: duckdb.DuckDBPyConnection) -> list[AlertState]:
    rows = con.execute(
        """
        SELECT alert_id, dedup_key, rule, venue, scope, severity, max_severity, message, fired_at, last_seen_at,
               notified_severity, last_notified_at
        FROM alerts WHERE status = 'firing' ORDER BY fired_at
        """
    ).fetchall()
    return [AlertState(*r) for r in rows]


def last_notified(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[datetime, str]]:
    """Per dedup key, the last firing/escalation notification (any episode) and its severity: the
    cooldown clock, and the level an escalation must exceed."""
    return {key: (at, severity) for key, at, severity in con.execute(
        "SELECT dedup_key, max(last_notified_at), arg_max(notified_severity, last_notified_at) FROM alerts "
        "WHERE last_notified_at IS NOT NULL GROUP BY dedup_key"
    ).fetchall()}


def apply_changes(con: duckdb.DuckDBPyConnection, now: datetime, opened: Sequence[AlertOpen],
                  updated: Sequence[AlertUpdate], resolved: Sequence[AlertResolve]) -> None:
    """Write one evaluation's lifecycle changes in one transaction."""
    if not (opened or updated or resolved):
        return
    con.execute("BEGIN TRANSACTION")
    try:
        if opened:
            con.executemany(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?, ?, ?, ?, 1, NULL, NULL, ?, ?)",
                [[o.alert_id, o.signal.dedup_key, o.signal.rule, o.signal.venue, o.signal.scope,
                  o.signal.severity, o.signal.severity, o.signal.message, o.signal.message,
                  metrics_json(o.signal.metrics), o.signal.data_ts, now, now,
                  o.signal.severity if o.notified else None, now if o.notified else None]
                 for o in opened],
            )
        if updated:
            con.executemany(
                """
                UPDATE alerts SET severity = ?, max_severity = ?, message = ?, metrics = ?, last_seen_at = ?,
                       evaluations = evaluations + 1,
                       notified_severity = coalesce(?, notified_severity),
                       last_notified_at = CASE WHEN ? IS NULL THEN last_notified_at ELSE ? END
                WHERE alert_id = ? AND status = 'firing'
                """,
                [[u.signal.severity, u.max_severity, u.signal.message, metrics_json(u.signal.metrics), now,
                  u.notified_severity, u.notified_severity, now, u.alert_id] for u in updated],
            )
        if resolved:
            con.executemany(
                "UPDATE alerts SET status = 'resolved', resolved_at = ?, resolved_reason = ? "
                "WHERE alert_id = ? AND status = 'firing'",
                [[now, r.reason, r.alert_id] for r in resolved],
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def record_deliveries(con: duckdb.DuckDBPyConnection, attempts: Sequence[DeliveryAttempt]) -> None:
    if not attempts:
        return
    con.executemany(
        "INSERT INTO alert_deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[a.delivery_id, a.alert_id, a.dedup_key, a.event, a.target, a.target_index, a.attempt, a.attempted_at,
          a.ok, a.error, a.duration_ms] for a in attempts],
    )


ALERT_COLUMNS = ["alert_id", "status", "severity", "rule", "venue", "scope", "message", "fired_at",
                 "last_seen_at", "resolved_at", "resolved_reason", "notified", "max_severity", "data_ts",
                 "first_message", "metrics", "dedup_key"]


def _empty_alerts() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in ALERT_COLUMNS})


def alerts_frame(db: Path | str, status: str | None = None, rules: Sequence[str] | None = None,
                 venues: Sequence[str] | None = None, since: datetime | None = None,
                 limit: int = 5000) -> pd.DataFrame:
    """Alerts, firing first then newest first. ``since`` keeps firing ones plus those fired or resolved
    after it. An empty frame (same columns) when there is no database or no alerts table yet."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if status:
        where.append("status = ?")
        params.append(status)
    if rules:
        where.append("list_contains(?, rule)")
        params.append(list(rules))
    if venues:
        where.append("list_contains(?, venue)")
        params.append(list(venues))
    if since is not None:
        where.append("(status = 'firing' OR fired_at >= ? OR resolved_at >= ?)")
        params.extend([since, since])
    try:
        with read_connection(db) as con:
            if not table_exists(con, "alerts"):
                return _empty_alerts()
            return con.execute(
                f"""
                SELECT alert_id, status, severity, rule, venue, scope, message, fired_at, last_seen_at,
                       resolved_at, resolved_reason, notified_severity IS NOT NULL AS notified, max_severity,
                       data_ts, first_message, metrics, dedup_key
                FROM alerts WHERE {' AND '.join(where)}
                ORDER BY status = 'firing' DESC, fired_at DESC LIMIT ?
                """,  # noqa: S608 - fixed clauses, values are parameters
                [*params, limit],
            ).df()
    except DatabaseMissing:
        return _empty_alerts()


def deliveries_frame(db: Path | str, alert_id: str | None = None, limit: int = 1000) -> pd.DataFrame:
    """Delivery attempts, newest first (targets as scheme only)."""
    try:
        with read_connection(db) as con:
            if not table_exists(con, "alert_deliveries"):
                return pd.DataFrame()
            where = "alert_id = ?" if alert_id else "1 = 1"
            params: list[Any] = [alert_id] if alert_id else []
            return con.execute(
                f"SELECT * FROM alert_deliveries WHERE {where} ORDER BY attempted_at DESC LIMIT ?",  # noqa: S608
                [*params, limit],
            ).df()
    except DatabaseMissing:
        return pd.DataFrame()


def alert_markers(db: Path | str, venues: Sequence[str] | None, start: datetime, end: datetime) -> pd.DataFrame:
    """Alert markers for fund charts: one row per alert episode whose triggering data time (else the
    firing time) falls in [start, end]: ts, venue, rule, severity, status, message, alert_id."""
    columns = ["ts", "venue", "rule", "severity", "status", "message", "alert_id"]
    where: list[str] = ["coalesce(data_ts, fired_at) BETWEEN ? AND ?"]
    params: list[Any] = [start, end]
    if venues:
        where.append("list_contains(?, venue)")
        params.append(list(venues))
    try:
        with read_connection(db) as con:
            if not table_exists(con, "alerts"):
                return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
            return con.execute(
                f"""
                SELECT coalesce(data_ts, fired_at) AS ts, venue, rule, max_severity AS severity, status,
                       first_message AS message, alert_id
                FROM alerts WHERE {' AND '.join(where)} ORDER BY ts
                """,  # noqa: S608 - fixed clauses
                params,
            ).df()
    except DatabaseMissing:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


