"""Every HTTP fault the simulator injects is survived by the collector: the faulted run is recorded with the
class its error deserves (transient: retried up to ``max_retries``; permanent: one attempt), it writes no
data row at all (never half a batch), and every other venue's data lands in the same cycle.

``disconnect`` and ``duplicate`` are accepted by the spec parser, but the HTTP middleware does nothing with
them (they are stream faults), so they are not exercised here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from backstop.config import Settings
from backstop.service import Collector
from collectors.base import ADL, FUNDING, FUNDS, OPEN_INTEREST, PRICES
from collectors.registry import adapter_class
from collectors.runner import RunOutcome
from simulator.faults import FaultRule
from simulator.server import SimulatorThread
from storage.db import read_connection
from tests.conftest import settings_for

MAX_RETRIES = 2
TRANSIENT_ATTEMPTS = MAX_RETRIES + 1


def _venue_ready(key: str) -> bool:
    """Bybit / BitMEX join the cycle only when both their simulator and adapter import cleanly."""
    try:
        import_module(f"simulator.venues.{key}")
        adapter_class(key)
    except Exception:  # noqa: BLE001 - a venue still being written is simply left out
        return False
    return True


VENUES = ["binance", "okx", *(key for key in ("bybit", "bitmex") if _venue_ready(key))]

# the venue path only the funds job calls (Retry-After timing is measured on it)
FUND_PATHS = {"binance": "/fapi/v1/insuranceBalance", "okx": "/api/v5/public/insurance-fund",
              "bybit": "/v5/market/insurance", "bitmex": "/api/v1/insurance"}
# dataset -> (Batch field, table) its rows land in
LANDS_IN = {FUNDS: ("funds", "fund_balances"), OPEN_INTEREST: ("open_interest", "open_interest"),
            FUNDING: ("funding", "funding_rates"), PRICES: ("prices", "prices"), ADL: ("adl", "adl_signals")}


@dataclass
class _NthRequest(FaultRule):
    """A fault that spares the first ``skip`` matching requests: hits one symbol / page in the middle of a
    job (the spec language matches paths, not query strings)."""

    skip: int = 0
    seen: int = 0

    def matches(self, venue: str, path: str) -> bool:
        if not super().matches(venue, path):
            return False
        self.seen += 1
        return self.seen > self.skip


@dataclass
class _Probe(FaultRule):
    """Injects nothing (latency 0); records when each matching request reached the venue."""

    arrivals: list[float] = field(default_factory=list)

    def matches(self, venue: str, path: str) -> bool:
        hit = super().matches(venue, path)
        if hit:
            self.arrivals.append(time.monotonic())
        return hit


def _settings(sim: SimulatorThread, db: Path, timeouts: dict[str, float] | None = None) -> Settings:
    """Small backoffs (Retry-After still honoured up to 5 s), few OKX families so a cycle stays short."""
    settings = settings_for(sim, db, VENUES,
                            collector={"max_retries": MAX_RETRIES, "backoff_base_s": 0.05, "backoff_max_s": 5.0})
    settings.venues["okx"].symbols = ["BTC-USDT"]
    for venue, seconds in (timeouts or {}).items():
        settings.venues[venue].timeout_s = seconds
    return settings


def _cycle(settings: Settings, before: Callable[[int], Awaitable[None]] | None = None,
           cycles: int = 1) -> list[list[RunOutcome]]:
    """``cycles`` collection cycles on one collector; ``before(i)`` runs ahead of cycle i (adds faults)."""

    async def run() -> list[list[RunOutcome]]:
        collector = Collector.for_venues(settings)
        results = []
        async with collector.running():
            for index in range(cycles):
                if before is not None:
                    await before(index)
                results.append(await collector.run_cycle())
        return results

    return asyncio.run(run())


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


def _count(db: Path, table: str, venue: str) -> int:
    return _rows(db, f"SELECT count(*) FROM {table} WHERE venue = ?", [venue])[0][0]  # noqa: S608 - LANDS_IN


def _assert_no_partial_rows(db: Path, outcomes: list[RunOutcome], failed: RunOutcome) -> None:
    """A failed run wrote nothing: its batch is empty, its run row says 0 rows, and the dataset's table has no
    row of that venue unless a job of the same venue that succeeded also fills it (prices)."""
    assert failed.batch.row_count() == 0 and failed.rows_written == 0
    (stored,) = _rows(db, "SELECT status, rows_written FROM collection_runs WHERE run_id = ?", [failed.run_id])
    assert stored == ("error", 0)
    batch_field, table = LANDS_IN[failed.dataset]
    shared = any(getattr(o.batch, batch_field) for o in outcomes if o.venue == failed.venue and o.status == "ok")
    if not shared:
        assert _count(db, table, failed.venue) == 0, f"{failed.venue} {failed.dataset}: rows in {table}"


def _assert_landed(db: Path, outcome: RunOutcome) -> None:
    assert outcome.status == "ok", (outcome.venue, outcome.dataset, outcome.error_class, outcome.error_message)
    assert outcome.batch.row_count() > 0, (outcome.venue, outcome.dataset)
    assert _count(db, LANDS_IN[outcome.dataset][1], outcome.venue) > 0, (outcome.venue, outcome.dataset)


@dataclass(frozen=True)
class Case:
    spec: str  # VENUE:PATH:KIND[:ARG][ xCOUNT]
    datasets: tuple[str, ...]  # the faulted venue's jobs the fault reaches
    status: str
    error_class: str | None
    attempts: int
    message: str = ""  # must appear in the recorded error message
    timeout_s: float | None = None  # the faulted venue's request timeout

    @property
    def venue(self) -> str:
        return self.spec.split(":", 1)[0]


OKX_ALL = (FUNDS, OPEN_INTEREST, FUNDING, PRICES)
BINANCE_PREMIUM = (OPEN_INTEREST, FUNDING, PRICES)  # every job that reads /fapi/v1/premiumIndex
# one Binance and one OKX fault per cycle (their jobs are independent); the venues' other jobs and the
# bystanders (Bybit, BitMEX when present) must land untouched in the same cycle
SCENARIOS: dict[str, tuple[Case, ...]] = {
    "5xx-once-and-persistent": (
        Case("binance:/fapi/v1/insuranceBalance:500 x1", (FUNDS,), "ok", None, 2),
        Case("okx:/api/v5/public/open-interest:502", (OPEN_INTEREST,), "error", "ExchangeNotAvailable",
             TRANSIENT_ATTEMPTS, "502"),
    ),
    "503-persistent-and-latency": (
        Case("binance:/fapi/v1/insuranceBalance:503", (FUNDS,), "error", "ExchangeNotAvailable",
             TRANSIENT_ATTEMPTS, "503"),
        Case("okx:*:latency:300", OKX_ALL, "ok", None, 1, timeout_s=1.0),  # slow but inside the timeout
    ),
    "timeouts": (
        Case("binance:/fapi/v1/insuranceBalance:timeout:3", (FUNDS,), "error", "RequestTimeout",
             TRANSIENT_ATTEMPTS, timeout_s=1.0),
        Case("okx:/api/v5/public/insurance-fund:timeout:3 x1", (FUNDS,), "ok", None, 2, timeout_s=1.0),
    ),
    "malformed-json": (
        Case("binance:/fapi/v1/insuranceBalance:malformed", (FUNDS,), "error", "PayloadError", 1, "malformed JSON"),
        Case("okx:/api/v5/public/open-interest:malformed", (OPEN_INTEREST,), "error", "PayloadError", 1,
             "malformed JSON"),
        *([Case("bitmex:/api/v1/insurance:malformed", (FUNDS,), "error", "PayloadError", 1, "malformed JSON")]
          if "bitmex" in VENUES else []),  # the plain-HTTP client, not ccxt
    ),
    "renamed-field": (
        Case("binance:/fapi/v1/insuranceBalance:rename:marginBalance=mb", (FUNDS,), "error", "PayloadError", 1,
             "missing field 'marginBalance'"),
        Case("okx:/api/v5/public/insurance-fund:rename:balance=bal", (FUNDS,), "error", "PayloadError", 1,
             "details.balance"),
    ),
    "stringified-number": (
        Case("binance:/fapi/v1/openInterest:stringify:openInterest", (OPEN_INTEREST,), "error", "PayloadError", 1,
             "openInterest: expected a number"),
        Case("okx:/api/v5/public/open-interest:stringify:oiCcy", (OPEN_INTEREST,), "error", "PayloadError", 1,
             "oiCcy: expected a number"),
    ),
    "dropped-field": (
        Case("binance:/fapi/v1/premiumIndex:drop:lastFundingRate", BINANCE_PREMIUM, "error", "PayloadError", 1,
             "missing field 'lastFundingRate'"),
        Case("okx:/api/v5/public/funding-rate:drop:fundingRate", (FUNDING,), "error", "PayloadError", 1,
             "missing field 'fundingRate'"),
    ),
}


@pytest.mark.parametrize("cases", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_fault_is_survived_and_others_land(cases: tuple[Case, ...], sim_factory, tmp_path) -> None:
    sim = sim_factory(VENUES)
    settings = _settings(sim, tmp_path / "f.duckdb", {c.venue: c.timeout_s for c in cases if c.timeout_s})
    for case in cases:
        sim.faults.add(case.spec)
    (outcomes,) = _cycle(settings)

    jobs = {(o.venue, o.dataset): o for o in outcomes}
    assert {v for v, _ in jobs} == set(VENUES)
    expected = {(case.venue, dataset): case for case in cases for dataset in case.datasets}
    for key, outcome in jobs.items():
        case = expected.get(key)
        if case is None:  # the faulted venues' other jobs and every bystander: all landed, first try
            _assert_landed(settings.db, outcome)
            assert outcome.attempts == 1, key
            continue
        assert (outcome.status, outcome.error_class, outcome.attempts) == (
            case.status, case.error_class, case.attempts), (key, outcome.error_message)
        assert case.message in (outcome.error_message or ""), outcome.error_message
        if case.status == "error":
            _assert_no_partial_rows(settings.db, outcomes, outcome)
        else:
            _assert_landed(settings.db, outcome)
        if ":latency:" in case.spec:
            assert outcome.duration_s >= 0.3
    stored = _rows(settings.db, "SELECT venue, dataset, status, error_class, attempts FROM collection_runs")
    assert sorted(stored) == sorted((o.venue, o.dataset, o.status, o.error_class, o.attempts) for o in outcomes)


def test_retry_after_is_honoured_on_every_venue(sim_factory, tmp_path) -> None:
    sim = sim_factory(VENUES)
    settings = _settings(sim, tmp_path / "r.duckdb")
    probes = {venue: sim.faults.add(_Probe(venue, FUND_PATHS[venue], "latency", "0")) for venue in VENUES}
    for venue in VENUES:
        sim.faults.add(f"{venue}:{FUND_PATHS[venue]}:429:1 x1")
    (outcomes,) = _cycle(settings)

    for outcome in outcomes:
        _assert_landed(settings.db, outcome)
        if outcome.dataset != FUNDS:
            assert outcome.attempts == 1
            continue
        assert outcome.attempts == 2, outcome.venue
        probe = probes[outcome.venue]
        assert isinstance(probe, _Probe) and len(probe.arrivals) >= 2
        # Retry-After: 1 was waited, not the 0.05 s backoff
        assert probe.arrivals[1] - probe.arrivals[0] >= 0.98, outcome.venue


@dataclass(frozen=True)
class MidJob:
    """A fault on the ``skip + 1``-th call of a job that makes several calls before it returns its batch."""

    venue: str
    path: str
    kind: str
    arg: str
    count: int | None
    skip: int
    dataset: str
    status: str
    attempts: int


NO_HALF_BATCH: dict[str, tuple[MidJob, ...]] = {
    "permanent": (
        # the 3rd of 6 per-symbol OI calls loses its field: the 2 parsed symbols (and premium prices) are dropped
        MidJob("binance", "/fapi/v1/openInterest", "rename", "openInterest=oi", None, 2, OPEN_INTEREST, "error", 1),
        # the 2nd fund pool's page is unparseable: the 1st pool's balances and flows are not written either
        MidJob("okx", "/api/v5/public/insurance-fund", "stringify", "balance", None, 1, FUNDS, "error", 1),
    ),
    # the 3rd OI call fails once: the whole job is retried and every symbol lands exactly once
    "transient": (MidJob("binance", "/fapi/v1/openInterest", "503", "", 1, 2, OPEN_INTEREST, "ok", 2),),
}


@pytest.mark.parametrize("faults", list(NO_HALF_BATCH.values()), ids=list(NO_HALF_BATCH))
def test_fault_inside_a_multi_call_job_writes_no_half_batch(faults: tuple[MidJob, ...], sim_factory,
                                                            tmp_path) -> None:
    sim = sim_factory(VENUES)
    settings = _settings(sim, tmp_path / "h.duckdb")
    rules = [sim.faults.add(_NthRequest(f.venue, f.path, f.kind, f.arg, f.count, skip=f.skip)) for f in faults]
    (outcomes,) = _cycle(settings)

    faulted = {(f.venue, f.dataset): f for f in faults}
    assert [rule.hits for rule in rules] == [1] * len(faults)  # exactly one call in the middle of each job
    for outcome in outcomes:
        fault = faulted.get((outcome.venue, outcome.dataset))
        if fault is None:
            _assert_landed(settings.db, outcome)
            continue
        assert (outcome.status, outcome.attempts) == (fault.status, fault.attempts), outcome.error_message
        if fault.status == "error":
            assert outcome.error_class == "PayloadError"
            _assert_no_partial_rows(settings.db, outcomes, outcome)
            for table in ("fund_flows", "fund_pool_members") if fault.dataset == FUNDS else ():
                assert _count(settings.db, table, fault.venue) == 0
        else:
            symbols = _rows(settings.db, "SELECT symbol, count(*) FROM open_interest WHERE venue = ? GROUP BY ALL",
                            [fault.venue])
            assert len(symbols) == len(sim.market.venue(fault.venue).contracts)
            assert {n for _, n in symbols} == {1}


def test_error_rate_is_retried_deterministically_per_seed(sim_factory, tmp_path) -> None:
    """Random 500s on one path: the FaultBook's seeded draws decide which requests fail, so the attempts of
    the job are known in advance and equal on every run with the same seed."""
    seed, rate = 7, 0.5
    draws = random.Random(seed)
    failures = 0
    while draws.random() < rate:
        failures += 1
    assert 1 <= failures <= MAX_RETRIES  # this seed makes the job fail, then recover within its retries

    sim = sim_factory(VENUES)
    settings = _settings(sim, tmp_path / "e.duckdb")
    sim.faults.add(f"binance:{FUND_PATHS['binance']}:error_rate:{rate}")

    async def reseed(_: int) -> None:
        sim.faults.rng = random.Random(seed)

    cycles = _cycle(settings, reseed, cycles=2)
    for outcomes in cycles:
        funds = next(o for o in outcomes if (o.venue, o.dataset) == ("binance", FUNDS))
        assert (funds.status, funds.attempts) == ("ok", failures + 1), funds.error_message
        assert all(o.status == "ok" for o in outcomes)
    stored = _rows(settings.db, "SELECT attempts FROM collection_runs WHERE venue = 'binance' AND dataset = 'funds'")
    assert stored == [(failures + 1,), (failures + 1,)]
    assert _count(settings.db, "fund_balances", "binance") == len(sim.market.venue("binance").pools)


def test_dark_venue_errors_during_and_recovers_after(sim_factory, tmp_path) -> None:
    dark_s = 4.0
    sim = sim_factory(VENUES)
    settings = _settings(sim, tmp_path / "d.duckdb")
    rule = sim.faults.add(f"okx:*:dark:{dark_s}")

    async def wait_for_light(index: int) -> None:
        if index == 1:
            assert rule.until_monotonic is not None
            await asyncio.sleep(max(0.0, rule.until_monotonic - time.monotonic()) + 0.05)

    during, after = _cycle(settings, wait_for_light, cycles=2)
    assert rule.until_monotonic is not None and time.monotonic() > rule.until_monotonic
    okx_during = [o for o in during if o.venue == "okx"]
    assert {o.dataset for o in okx_during} == set(OKX_ALL)
    for outcome in okx_during:
        assert (outcome.status, outcome.error_class, outcome.attempts) == (
            "error", "ExchangeNotAvailable", TRANSIENT_ATTEMPTS)
        assert outcome.batch.row_count() == 0 and outcome.rows_written == 0
    for outcome in during:
        if outcome.venue != "okx":
            assert outcome.status == "ok", outcome.error_message
    for outcome in after:
        _assert_landed(settings.db, outcome)
    statuses = _rows(settings.db, "SELECT status, count(*) FROM collection_runs WHERE venue = 'okx' GROUP BY ALL")
    assert sorted(statuses) == [("error", len(OKX_ALL)), ("ok", len(OKX_ALL))]


def test_control_endpoint_adds_and_clears_faults(sim_factory) -> None:
    sim = sim_factory(["binance", "okx"])

    async def drive() -> None:
        async with aiohttp.ClientSession() as http:
            async def status(url: str) -> int:
                async with http.get(url) as response:
                    await response.read()
                    return response.status

            okx_marks = f"{sim.base_url('okx')}/api/v5/public/mark-price?instType=SWAP"
            binance_marks = f"{sim.base_url('binance')}/fapi/v1/premiumIndex"
            control = f"{sim.url}/_control/faults"
            assert await status(okx_marks) == 200

            async with http.post(control, json={"add": ["okx:*:503"]}) as response:
                assert response.status == 200
                assert await response.json() == [
                    {"venue": "okx", "path": "*", "kind": "503", "arg": "", "count": None, "hits": 0}]
            assert await status(okx_marks) == 503
            assert await status(binance_marks) == 200  # a fault on one venue leaves the others alone
            async with http.get(control) as response:
                assert [rule["hits"] for rule in await response.json()] == [1]

            async with http.post(control, json={"add": ["okx:*:no-such-kind"]}) as response:
                assert response.status == 400 and "unknown kind" in (await response.json())["error"]

            async with http.post(control, json={"clear": True}) as response:
                assert response.status == 200 and await response.json() == []
            assert await status(okx_marks) == 200

    asyncio.run(drive())
    assert sim.faults.rules == []
