"""Alert delivery: apprise to every configured target, retried with backoff, every attempt recorded.

Never blocks collection: ``Deliverer.submit`` hands notifications to one background thread (apprise is
synchronous) and returns at once; each target is tried ``1 + retries`` times with exponential backoff.
Target URLs carry secrets (tokens, passwords): they are only ever shown as their scheme (``json://…``),
and a logging filter removes every fragment of them from apprise's and urllib3's own log lines (apprise
logs the full URL at debug level and on parse errors).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import apprise
from pydantic import SecretStr

from records.alert_targets import REDACTED, SCHEME_RE, target_label
from storage.alert_store import DeliveryAttempt

log = logging.getLogger(__name__)

_SPLIT_RE = re.compile(r"[/:@?&=#,;]+")
_LOGGERS_WITH_URLS = ("apprise", "urllib3", "urllib3.connectionpool", "requests")

NOTIFY_TYPES = {
    "critical": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "info": apprise.NotifyType.INFO,
    "resolved": apprise.NotifyType.SUCCESS,
}


def secret_fragments(url: str) -> set[str]:
    """Every piece of a target URL worth hiding: the URL, its parts after the scheme, and each token."""
    url = url.strip()
    rest = SCHEME_RE.sub("", url)
    pieces = {url, rest, unquote(url), unquote(rest)}
    parts = urlsplit(url)
    pieces.update(p for p in (parts.netloc, parts.path, parts.query, parts.fragment) if p)
    for chunk in list(pieces):
        pieces.update(_SPLIT_RE.split(chunk))
        pieces.update(_SPLIT_RE.split(unquote(chunk)))
    # very short pieces ("1", "api") would shred ordinary log text without hiding anything
    return {p for p in pieces if len(p) >= 4}


class SecretRedactor(logging.Filter):
    """Rewrites log records so no fragment of a registered target URL survives."""

    def __init__(self) -> None:
        super().__init__("backstop-secrets")
        self._secrets: list[str] = []
        self._lock = threading.Lock()

    def register(self, urls: Sequence[str]) -> None:
        with self._lock:
            found = set(self._secrets)
            for url in urls:
                found |= secret_fragments(url)
            self._secrets = sorted(found, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a broken record is still redacted as text
                message = str(record.msg)
            record.msg = self.redact(message)
            record.args = None
        return True


REDACTOR = SecretRedactor()
for _name in _LOGGERS_WITH_URLS:
    logging.getLogger(_name).addFilter(REDACTOR)


class _Capture(logging.Handler):
    """Collects apprise's warnings during one attempt: the failure reason we record (redacted)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(REDACTOR.redact(record.getMessage()))


_capture_lock = threading.Lock()


@dataclass(frozen=True)
class Notification:
    """One message about one alert event, sent to every target."""

    alert_id: str | None
    dedup_key: str | None
    event: str  # firing | escalated | resolved | test
    severity: str  # info | warning | critical | resolved
    title: str
    body: str


@dataclass(frozen=True)
class DeliveryResult:
    target_index: int
    target: str  # scheme only
    ok: bool
    attempts: int
    error: str | None


RecordFn = Callable[[list[DeliveryAttempt]], None]


class Deliverer:
    """Sends notifications to the configured apprise targets (see module docstring)."""

    def __init__(self, targets: Sequence[SecretStr | str], retries: int = 3, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 30.0, record: RecordFn | None = None,
                 sleep: Callable[[float], None] = time.sleep, title_prefix: str = "") -> None:
        self._urls = [t.get_secret_value() if isinstance(t, SecretStr) else str(t) for t in targets]
        self.title_prefix = title_prefix  # "[SIMULATED] " in demo mode: never mistaken for a real event
        REDACTOR.register(self._urls)
        self.retries = max(0, retries)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.record = record
        self.sleep = sleep
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[Any]] = []
        self._lock = threading.Lock()

    @property
    def labels(self) -> list[str]:
        return [target_label(url) for url in self._urls]

    def __repr__(self) -> str:  # never the URLs
        return f"Deliverer(targets={self.labels}, retries={self.retries})"

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_base_s * (2 ** (attempt - 1)), self.backoff_max_s))

    # -- synchronous ---------------------------------------------------------------------------------
    def deliver(self, notification: Notification) -> list[DeliveryResult]:
        """Every target in turn, each with its retries; returns one result per target."""
        return [self._deliver_one(index, url, notification) for index, url in enumerate(self._urls)]

    def _deliver_one(self, index: int, url: str, notification: Notification) -> DeliveryResult:
        label = target_label(url)
        attempts = 1 + self.retries
        error: str | None = None
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            attempted_at = datetime.now(UTC)
            ok, error, permanent = self._send(url, notification)
            duration_ms = (time.monotonic() - started) * 1000
            self._record(DeliveryAttempt(
                delivery_id=uuid.uuid4().hex, alert_id=notification.alert_id, dedup_key=notification.dedup_key,
                event=notification.event, target=label, target_index=index, attempt=attempt,
                attempted_at=attempted_at, ok=ok, error=error, duration_ms=duration_ms,
            ))
            if ok:
                log.info("alert %s %s delivered to target %d (%s)", notification.event, notification.dedup_key,
                         index, label)
                return DeliveryResult(index, label, True, attempt, None)
            if permanent or attempt == attempts:
                break
            wait = self.delay(attempt)
            log.info("alert delivery to target %d (%s) failed (%s); retry %d in %.1fs", index, label, error,
                     attempt, wait)
            self.sleep(wait)
        log.warning("alert %s %s not delivered to target %d (%s): %s", notification.event,
                    notification.dedup_key, index, label, error)
        return DeliveryResult(index, label, False, attempt, error)

    def _send(self, url: str, notification: Notification) -> tuple[bool, str | None, bool]:
        """(ok, redacted error, permanent). Apprise reports failure as False plus a log line."""
        sender = apprise.Apprise()
        if not sender.add(url):
            return False, "invalid or unsupported target URL", True
        capture = _Capture()
        logger = logging.getLogger("apprise")
        with _capture_lock:
            logger.addHandler(capture)
            try:
                result = sender.notify(
                    body=notification.body, title=self.title_prefix + notification.title,
                    notify_type=NOTIFY_TYPES.get(notification.severity, apprise.NotifyType.INFO),
                    body_format=apprise.NotifyFormat.TEXT,
                )
            except Exception as exc:  # noqa: BLE001 - a plugin bug is a failed attempt, not a crash
                return False, REDACTOR.redact(f"{type(exc).__name__}: {exc}")[:500], False
            finally:
                logger.removeHandler(capture)
        if bool(result):
            return True, None, False
        reason = "; ".join(capture.lines) or "target reported failure"
        return False, reason[:500], False

    def _record(self, attempt: DeliveryAttempt) -> None:
        if self.record is None:
            return
        try:
            self.record([attempt])
        except Exception:  # noqa: BLE001 - recording must never stop delivery
            log.exception("could not record alert delivery attempt")

    # -- background ----------------------------------------------------------------------------------
    def submit(self, notifications: Sequence[Notification]) -> Future[Any] | None:
        """Queue notifications on the delivery thread; returns immediately."""
        if not notifications or not self._urls:
            return None
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-delivery")
            future = self._executor.submit(self._deliver_all, list(notifications))
            self._pending = [f for f in self._pending if not f.done()] + [future]
        return future

    def _deliver_all(self, notifications: list[Notification]) -> list[DeliveryResult]:
        results = []
        for notification in notifications:
            try:
                results.extend(self.deliver(notification))
            except Exception:  # noqa: BLE001 - keep the delivery thread alive
                log.exception("alert delivery failed")
        return results

    def wait(self, timeout: float | None = None) -> bool:
        """Block until queued deliveries are done (tests, shutdown); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [f for f in self._pending if not f.done()]
            if not pending:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            try:
                pending[0].result(timeout=remaining)
            except Exception:  # noqa: BLE001 - failures are logged by the worker
                continue

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=False)
