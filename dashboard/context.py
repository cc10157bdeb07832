"""Where the dashboard reads from and how it behaves: ``--db``/``--config`` after ``--`` on the
``streamlit run`` command line, else BACKSTOP_DB / BACKSTOP_SIMULATED and the settings file."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from configuration.settings import ConfigError, Settings, load_settings

TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class AppContext:
    db: str
    simulated: bool
    refresh_s: int
    cache_ttl_s: int
    intervals: dict[str, dict[str, float]]  # venue -> dataset -> poll interval (s)
    notice: str | None = None  # a config problem, shown once; defaults are used
    config: str | None = None  # the settings file (the assessments use the deployment's alert rules)


def _args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--simulated", action="store_true")
    parser.add_argument("--refresh", type=int)  # seconds between auto-refreshes (dashboard.refresh_s)
    known, _ = parser.parse_known_args(list(argv))
    return known


def load_context(argv: Sequence[str], env: Mapping[str, str]) -> AppContext:
    """Never raises: a bad config file gives defaults plus a notice."""
    args = _args(argv)
    notice = None
    try:
        settings = load_settings(config_path=args.config, db_path=args.db)
    except ConfigError as exc:
        notice = f"Configuration problem, using defaults: {exc}"
        try:
            settings = load_settings(config_path=None, db_path=args.db) if args.config else Settings()
        except ConfigError:
            settings = Settings.model_construct()
    db = args.db or Path(env.get("BACKSTOP_DB") or settings.db)
    simulated = bool(args.simulated or env.get("BACKSTOP_SIMULATED", "").strip().lower() in TRUE
                     or getattr(settings, "simulated", False))
    dash = settings.dashboard
    intervals = {key: cfg.intervals.model_dump() for key, cfg in settings.venues.items()}
    refresh_s = args.refresh if args.refresh and args.refresh > 0 else int(dash.refresh_s)
    return AppContext(str(db), simulated, refresh_s, int(dash.cache_ttl_s), intervals, notice,
                      None if notice or args.config is None else str(args.config))


def cache_ttl_s() -> int:
    """TTL for st.cache_data, read once at import of the data layer."""
    import sys

    try:
        return load_context(sys.argv[1:], os.environ).cache_ttl_s
    except Exception:  # noqa: BLE001 - the TTL must never stop the app from starting
        return 30
