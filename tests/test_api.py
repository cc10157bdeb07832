"""The read-only JSON API as a real server process (`backstop api`), over HTTP, on a database filled by the
collector from the simulator: the same numbers as the dashboard's queries, clear 400s for bad input."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backstop.service import Collector
from simulator.market import Market
from simulator.server import SimulatorThread
from storage.analytics import Grid, fund_series
from storage.assessments import load_assessments
from tests.conftest import settings_for

VENUES = ["okx", "gate", "hyperliquid"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("api") / "api.duckdb"
    sim = SimulatorThread(Market(venues=VENUES, speed=0.0)).start()
    try:
        async def fill() -> None:
            collector = Collector.for_venues(settings_for(sim, db, VENUES))
            async with collector.running():
                await collector.run_cycle()

        asyncio.run(fill())
    finally:
        sim.stop()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "backstop.cli", "--db", str(db), "api", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:  # until the server answers
        try:
            urllib.request.urlopen(f"{base}/openapi.json", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"api did not start: {proc.stderr.read() if proc.stderr else ''}") from None
            time.sleep(0.1)
    yield base, db
    proc.terminate()
    proc.wait(timeout=30)


def test_endpoints_answer_with_the_dashboards_numbers(api: tuple[str, Path]) -> None:
    base, db = api
    status, venues = _call(f"{base}/v1/venues")
    assert status == 200 and {"okx", "gate", "hyperliquid"} <= {v["key"] for v in venues}
    assert next(v for v in venues if v["key"] == "okx")["display_name"] == "OKX"

    status, rows = _call(f"{base}/v1/assessments?venue=okx&venue=gate")
    own = [a for a in load_assessments(db) if a.venue in {"okx", "gate"}]
    assert status == 200 and len(rows) == len(own) > 0
    for row, item in zip(rows, own, strict=True):
        assert (row["venue"], row["pool_id"], row["state"]) == (item.venue, item.pool_id, item.state)
        assert row["fund_usd"] == pytest.approx(item.fund_usd) if item.fund_usd is not None else row["fund_usd"] is None

    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=2)
    query = urllib.parse.urlencode({"venue": "okx", "since": start.isoformat(), "until": end.isoformat(),
                                    "points": 48})
    status, body = _call(f"{base}/v1/funds?{query}")
    assert status == 200 and body["rows"]
    frame = fund_series(db, ["okx"], Grid.for_range(start, end, max_points=48), by="venue")
    assert [r["fund_usd"] for r in body["rows"]] == pytest.approx(list(frame["fund_usd"]))
    assert body["rows"][-1]["ts"].endswith("Z")

    status, alerts = _call(f"{base}/v1/alerts?status=firing")
    assert status == 200 and isinstance(alerts, list)

    status, spec = _call(f"{base}/openapi.json")
    assert status == 200 and {"/v1/venues", "/v1/assessments", "/v1/funds", "/v1/alerts"} <= set(spec["paths"])


@pytest.mark.parametrize(("path", "needle"), [
    ("/v1/funds?venue=nowhere", "unknown venue 'nowhere'"),
    ("/v1/funds?since=yesterday-ish", "since: expected an ISO-8601"),
    ("/v1/funds?since=2026-02-01&until=2026-01-01", "since must be before until"),
    ("/v1/funds?points=1", "points"),
    ("/v1/funds?by=everything", "by"),
    ("/v1/alerts?limit=0", "limit"),
    ("/v1/alerts?status=maybe", "status"),
    ("/v1/assessments?venue=%3Cscript%3E", "unknown venue"),
])
def test_bad_parameters_get_a_clear_400(api: tuple[str, Path], path: str, needle: str) -> None:
    status, body = _call(f"{api[0]}{path}")
    assert status == 400, body
    assert needle in body["detail"] and "\n" not in body["detail"]
