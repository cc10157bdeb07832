"""A backfill survives a transient error mid-walk without losing history, and one that gives up is recorded
as a failed run and makes ``backstop backfill`` exit non-zero naming the venue and dataset.

Every venue's backfill is walked twice against one frozen simulator: once clean, once with a 503 on the
walk's second request. Both databases must hold the same rows (before the fix a retry resumed a finished
async generator: the walk ended early and the run said "ok")."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backstop.service import Collector, backfill_pairs
from collectors.registry import adapter_class, venue_keys
from collectors.runner import RunOutcome
from simulator.faults import FaultRule
from simulator.server import SimulatorThread
from storage.db import read_connection
from tests.conftest import settings_for

SINCE = datetime(2015, 1, 1, tzinfo=UTC)
BACKFILL_VENUES = [k for k in venue_keys() if any(adapter_class(k).has_backfill(c.dataset)
                                                   for c in adapter_class(k).capabilities)]
TABLES = ("fund_balances", "fund_flows", "open_interest", "funding_rates", "prices", "adl_signals")


@dataclass
class _NthRequest(FaultRule):
    """Spares the first ``skip`` matching requests, then faults ``count`` of them (a page mid-walk)."""

    skip: int = 0
    seen: int = 0

    def matches(self, venue: str, path: str) -> bool:
        if not super().matches(venue, path):
            return False
        self.seen += 1
        return self.seen > self.skip


def _backfill_all(sim: SimulatorThread, db: Path, venue: str, fault: FaultRule | None,
                  hits: list[int] | None = None) -> list[RunOutcome]:
    settings = settings_for(sim, db, [venue],
                            collector={"max_retries": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.5})
    settings.venues[venue].max_symbols = 3  # a few series per venue keep the walk short

    async def run() -> list[RunOutcome]:
        collector = Collector.for_venues(settings)
        outcomes = []
        async with collector.running():
            for pair in backfill_pairs(collector):
                if fault is not None:
                    fault.hits, fault.seen = 0, 0
                    sim.faults.add(fault)
                outcomes.append(await collector.backfill(*pair, SINCE))
                sim.faults.clear()
                if fault is not None and hits is not None:
                    hits.append(fault.hits)
        return outcomes

    return asyncio.run(run())


def _table_counts(db: Path, venue: str) -> dict[str, int]:
    with read_connection(db) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t} WHERE venue = ?", [venue]).fetchall()[0][0]  # noqa: S608
                for t in TABLES}


@pytest.mark.parametrize("venue", BACKFILL_VENUES)
def test_one_transient_error_mid_walk_loses_no_history(sim_factory, tmp_path: Path, venue: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_class("bitmex"), "page_size", 50)  # several pages, so the 503 lands mid-walk
    sim = sim_factory([venue], seed=11)
    clean = _backfill_all(sim, tmp_path / "clean.duckdb", venue, None)
    assert clean and all(o.status == "ok" for o in clean), [(o.dataset, o.error_message) for o in clean]
    fault = _NthRequest(venue, "*", "503", count=1, skip=1)
    hits: list[int] = []
    faulted = _backfill_all(sim, tmp_path / "faulted.duckdb", venue, fault, hits)
    assert all(o.status == "ok" for o in faulted), [(o.dataset, o.error_message) for o in faulted]
    assert hits == [1] * len(faulted)  # every walk met its 503
    assert _table_counts(tmp_path / "faulted.duckdb", venue) == _table_counts(tmp_path / "clean.duckdb", venue)
    assert [o.rows_written for o in faulted] == [o.rows_written for o in clean]


def test_okx_funding_history_survives_one_503(sim_factory, tmp_path: Path) -> None:
    """The issue's reproduction: one 503 on OKX funding history used to store only the first page (or
    nothing) and call the run ok."""
    sim = sim_factory(["okx"], seed=11)

    def backfill(db: Path, fault: FaultRule | None) -> tuple[RunOutcome, int]:
        settings = settings_for(sim, db, ["okx"])
        settings.venues["okx"].symbols = ["BTC-USDT"]

        async def run() -> RunOutcome:
            collector = Collector.for_venues(settings)
            async with collector.running():
                if fault is not None:
                    sim.faults.add(fault)
                return await collector.backfill("okx", "funding", SINCE)

        outcome = asyncio.run(run())
        sim.faults.clear()
        with read_connection(db) as con:
            return outcome, con.execute("SELECT count(*) FROM funding_rates WHERE venue = 'okx'").fetchall()[0][0]

    _, clean_rows = backfill(tmp_path / "clean.duckdb", None)
    fault = _NthRequest("okx", "/api/v5/public/funding-rate-history", "503", count=1, skip=1)
    outcome, stored = backfill(tmp_path / "okx.duckdb", fault)
    assert fault.hits == 1
    assert outcome.status == "ok", outcome.error_message
    assert stored == outcome.rows_written == clean_rows > 200  # several pages, none dropped after the 503


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_backfill_without_network_records_errors_and_exits_nonzero(tmp_path: Path) -> None:
    port = _closed_port()
    venues = ["okx", "bitmex", "deribit"]
    env = {**os.environ, "BACKSTOP_COLLECTOR__MAX_RETRIES": "1", "BACKSTOP_COLLECTOR__BACKOFF_BASE_S": "0.05"}
    for venue in venues:
        env[f"BACKSTOP_VENUES__{venue.upper()}__BASE_URL"] = f"http://127.0.0.1:{port}/{venue}"
        env[f"BACKSTOP_VENUES__{venue.upper()}__TIMEOUT_S"] = "2"
    db = tmp_path / "nonet.duckdb"
    args = [sys.executable, "-m", "backstop.cli", "--db", str(db), "backfill", "--since", "30d"]
    for venue in venues:
        args += ["--venue", venue]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    with read_connection(db) as con:
        runs = con.execute("SELECT venue, dataset, status, error_class FROM collection_runs "
                           "WHERE kind = 'backfill' ORDER BY ALL").fetchall()
    expected = sorted((v, c.dataset) for v in venues for c in adapter_class(v).capabilities
                      if adapter_class(v).has_backfill(c.dataset))
    assert sorted((v, d) for v, d, _, _ in runs) == expected
    assert all(status == "error" and error_class for _, _, status, error_class in runs), runs
    for venue, dataset in expected:
        assert f"backfill failed: {venue} {dataset}" in proc.stderr, proc.stderr
