"""What ``backstop demo`` runs against: the user's settings with every simulated venue pointed at the
simulator (poll intervals scaled to the simulation speed) and the demo's own DuckDB file, which is never
the user's database and is only ever deleted if an earlier demo created it."""

from __future__ import annotations

from pathlib import Path

from backstop.config import CollectorConfig, Settings, VenueConfig

# how much simulated time one poll of each dataset may lag (scaled to real seconds by the speed)
DEMO_POLL_SIM_S = {"funds": 3_600, "open_interest": 7_200, "funding": 14_400, "prices": 7_200,
                   "adl": 7_200, "liquidations": 3_600}
MIN_POLL_S, MAX_POLL_S = 3.0, 300.0


def demo_intervals(speed: float) -> dict[str, float]:
    """Real-second poll intervals: each dataset lags at most its DEMO_POLL_SIM_S of simulated time
    (720x: funds every 5 s), within [3 s, 300 s]; a frozen clock polls every 30 s."""
    if speed <= 0:
        return dict.fromkeys(DEMO_POLL_SIM_S, 30.0)
    return {name: round(min(MAX_POLL_S, max(MIN_POLL_S, sim_s / speed)), 2)
            for name, sim_s in DEMO_POLL_SIM_S.items()}


def demo_settings(settings_base: Settings, sim_url: str, venues: list[str], db_path: Path,
                  speed: float) -> Settings:
    """The user's settings with every simulated venue pointed at the simulator (others disabled), the
    demo's own database, ``simulated=True``; alerts, thresholds and dashboard options are kept."""
    if same_file(db_path, settings_base.db):
        raise ValueError(f"the demo never writes to your database ({settings_base.db}): choose another --db")
    intervals = demo_intervals(speed)
    venue_cfg: dict[str, VenueConfig] = {}
    for key, cfg in settings_base.venues.items():
        data = cfg.model_dump()
        if key in venues:
            data.update(enabled=True, base_url=f"{sim_url}/{key}", symbols=[], timeout_s=15,
                        intervals={**data["intervals"], **intervals})
        else:
            data.update(enabled=False)
        venue_cfg[key] = VenueConfig.model_validate(data)
    collector = CollectorConfig.model_validate({
        **settings_base.collector.model_dump(), "jitter_s": 0.5, "max_retries": 2, "backoff_base_s": 0.2,
        "backoff_max_s": 2.0})
    # model_copy, not Settings(...): a new Settings would re-read BACKSTOP_* (BACKSTOP_DB would win)
    return settings_base.model_copy(update={
        "db": db_path, "simulated": True, "venues": venue_cfg, "collector": collector})


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (``~`` and symlinks resolved)."""
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def prepare_database(db_path: Path) -> None:
    """Start the demo on an empty file. A file is only deleted if an earlier demo created it (a
    ``.demo`` marker sits next to it); any other existing file is refused."""
    marker = db_path.with_name(db_path.name + ".demo")
    if db_path.exists():
        if not marker.exists():
            raise ValueError(f"{db_path} exists and was not created by `backstop demo`: choose another --db")
        for path in (db_path, db_path.with_name(db_path.name + ".wal")):
            path.unlink(missing_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("created by `backstop demo`; the demo may delete this database\n", encoding="utf-8")
    from storage.db import migrate, write_connection

    with write_connection(db_path) as con:
        # explicitly: storage.db caches "migrated" per (path, inode), and a recreated file may reuse
        # the inode of the one just deleted
        migrate(con)
