"""Prometheus integration with real parts: the collector daemon (its own process) polls the simulator and
serves /metrics; Debian's Prometheus server scrapes it; PromQL through Prometheus' HTTP API returns the
simulated fund values that Backstop's own assessment gives; promtool accepts the shipped alert rules."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from collectors.registry import venue_keys
from storage.assessments import load_assessments

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
VENUES = ["okx", "gate", "hyperliquid"]
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 120.0,
              alive: Callable[[], bool] = lambda: True) -> T:
    """Poll ``probe`` until it returns something (application state), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result is not None:
            return result
        if not alive():
            raise AssertionError(f"process died while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None


def _prometheus_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the test setup installs Debian's prometheus package")
    return path


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[Any]]]:
    procs: list[subprocess.Popen[Any]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_shipped_rules_pass_promtool() -> None:
    proc = subprocess.run([_prometheus_binary("promtool"), "check", "rules", str(RULES)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "backstop.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for series in ("backstop_fund_balance_usd", "backstop_fund_coverage_ratio", "backstop_assessment_state",
                   "backstop_last_success_timestamp_seconds", "backstop_run_failures_total"):
        assert series in exprs


@pytest.mark.e2e
def test_prometheus_scrapes_the_collector(sim_factory: Any, tmp_path: Path,
                                          stopper: list[subprocess.Popen[Any]]) -> None:
    prometheus = _prometheus_binary("prometheus")
    sim = sim_factory(VENUES)  # frozen market clock: fund values hold still while we compare
    lines = [f"[venues.{key}]\nenabled = false\n" for key in venue_keys() if key not in VENUES]
    for key in VENUES:
        lines.append(f"[venues.{key}]\nbase_url = '{sim.base_url(key)}'\nstreams = false\n"
                     f"[venues.{key}.intervals]\nfunds = 2\nopen_interest = 2\nprices = 2\n")
    lines.append("[collector]\njitter_s = 0\n[alerts]\nenabled = false\n")
    config = tmp_path / "backstop.toml"
    config.write_text("\n".join(lines))
    db = tmp_path / "prom.duckdb"
    metrics_port = _free_port()
    collector = subprocess.Popen([sys.executable, "-m", "backstop.cli", "--config", str(config), "--db", str(db),
                                  "collect", "--metrics-port", str(metrics_port)],
                                 stdout=subprocess.DEVNULL, stderr=(tmp_path / "collector.log").open("w"))
    stopper.append(collector)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

    def exported() -> str | None:
        text = _get(metrics_url)
        if text is None:
            return None
        fund_lines = [line for line in text.splitlines() if line.startswith("backstop_fund_balance_usd{")]
        return text if all(any(f'venue="{v}"' in line for line in fund_lines) for v in VENUES) else None

    text = _wait_for("the collector's /metrics with every venue's fund", exported,
                     alive=lambda: collector.poll() is None)
    assert "backstop_runs_total{" in text and "backstop_poll_duration_seconds_bucket{" in text
    assert "backstop_assessment_state{" in text
    assert "backstop_writer_lock_waits_total " in text and "backstop_writer_queue_batches " in text

    web_port = _free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: backstop\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    server = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web_port}"],
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
    stopper.append(server)
    api = f"http://127.0.0.1:{web_port}/api/v1"

    def query(promql: str) -> list[dict[str, Any]] | None:
        body = _get(f"{api}/query?{urllib.parse.urlencode({'query': promql})}")
        if body is None:
            return None
        result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
        return result or None

    funds = _wait_for("Prometheus to scrape the fund series",
                      lambda: query("backstop_fund_balance_usd"), alive=lambda: server.poll() is None)
    rules = json.loads(_get(f"{api}/rules") or "{}")
    assert sum(len(g["rules"]) for g in rules["data"]["groups"]) == 7
    assert query('up{job="backstop"} == 1')

    collector.send_signal(signal.SIGTERM)
    collector.wait(timeout=60)
    own = {(a.venue, a.pool_id): a.fund_usd for a in load_assessments(db) if a.fund_usd is not None}
    scraped = {(r["metric"]["venue"], r["metric"]["pool"]): float(r["value"][1]) for r in funds}
    assert {venue for venue, _ in scraped} == set(VENUES)
    for key, value in scraped.items():
        assert key in own, key
        assert value == pytest.approx(own[key], rel=1e-9), key
