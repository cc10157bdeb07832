"""Alert target URLs: what may be shown of one (its scheme) and whether apprise can use it. In the leaf so
the settings check targets at load (``records.config.AlertsConfig``) and ``alerts.delivery`` shows them,
with one definition; apprise is imported only when a target is checked."""

from __future__ import annotations

import logging
import re

REDACTED = "…"
SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def target_label(url: str) -> str:
    """What may be shown of a target: its scheme only, e.g. ``json://…``."""
    match = SCHEME_RE.match(url.strip())
    return f"{match.group(1).lower()}://{REDACTED}" if match else f"(invalid URL){REDACTED}"


def target_problem(url: str) -> str | None:
    """Why apprise cannot use ``url`` (None = it can), by apprise's own parsing: no network, and
    apprise's log lines (which quote the URL) are held back while it parses."""
    import apprise

    logger = logging.getLogger("apprise")
    was_disabled, logger.disabled = logger.disabled, True
    try:
        accepted = apprise.Apprise().add(url)
    finally:
        logger.disabled = was_disabled
    return None if accepted else "not a URL apprise can send to (unknown scheme or malformed)"
