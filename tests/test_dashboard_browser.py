"""The dashboard as a person sees it, in Debian's Chromium: `backstop demo` (venue-drain) and `backstop run`
with every venue unreachable. Every wait is on the app's state (script run finished, an element or a URL
present), never on time, so these pass on a loaded 2-core machine.

Screenshots of every page at 1500×1100 go to test-output/screenshots/ (gitignored) for review.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from backstop.catalog import catalog
from tests.test_browser import CHARTS_DRAWN, ROOT, SHOTS, _free_port, launch_chromium, settle

# the demo's 90-day backfill alone takes ~30 s on a quiet machine and minutes on a loaded one
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3000)]
BUSY_MS = 300_000  # a page whose reads wait for the demo's writer (one DuckDB writer) on a loaded machine
VIEWPORT = {"width": 1500, "height": 1100}
PAGES = ["", "overview", "alerts", "liquidations", "funds", "coverage", "divergence", "health"]
PAYLOADS = ["![a](http://evil.example/pixel.png)", "[Log in again](https://evil.example/)"]
STATE_WORDS = ("CRITICAL", "STRESSED", "WATCH", "BLIND")


def _start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "backstop.cli", *args], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


BACKFILL_S = 1200  # the demo's backfill: ~30 s on a quiet machine, many minutes on a crowded one


def _wait_for_log(proc: subprocess.Popen[bytes], log: Path, text: str, timeout_s: float = BACKFILL_S) -> None:
    """The process reported ``text`` (its own state), within a generous bound for a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"never saw {text!r}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_chromium()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("demo")
    port = _free_port()
    log = tmp / "demo.log"
    # the drained venue named, not left to the seed (adding venues changes which one a seed picks)
    proc = _start(["demo", "--headless", "--scenario", "venue-drain:hyperliquid", "--db", str(tmp / "demo.duckdb"),
                   "--port", str(port)], log)
    try:
        _wait_for_log(proc, log, "backfill done")
        _wait_for_log(proc, log, "dashboard on")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def _main_text(page: Any) -> str:
    return str(page.locator('[data-testid="stMain"]').inner_text())


def _person_checks(page: Any, name: str) -> None:
    """What a person must never see: a traceback, 'None' in a table or text, Streamlit's Deploy button."""
    assert page.locator('[data-testid="stException"]').count() == 0, name
    body = str(page.inner_text("body"))
    assert not re.search(r"\bNone\b", body), (name, [ln for ln in body.splitlines() if "None" in ln][:5])
    assert "Traceback" not in body, name
    assert page.get_by_text("Deploy", exact=True).count() == 0, name
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0, name


def shoot(page: Any, name: str) -> None:
    """``name``.png at 1500×1100 as a person first sees it, and ``name``-full.png with the whole page
    (Streamlit scrolls inside its main block, so the viewport grows to the content for that one)."""
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    height = int(page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"))
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(height + 40, VIEWPORT["height"]), 9000)})
    page.wait_for_function(CHARTS_DRAWN)
    page.screenshot(path=str(SHOTS / f"{name}-full.png"))
    page.set_viewport_size(VIEWPORT)


def _goto(page: Any, url: str, title: str | None = None) -> None:
    page.goto(url, timeout=BUSY_MS)
    settle(page, title, BUSY_MS)


def test_demo_pages_as_a_person_sees_them(demo: str, browser: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        # wait until the drain has played out: the Overview shows a critical venue (app state, not time)
        deadline = time.monotonic() + 240
        while True:
            _goto(page, f"{demo}/", "Overview")
            if page.get_by_text("CRITICAL", exact=True).count() > 0:
                break
            assert time.monotonic() < deadline, _main_text(page)[:2000]
        text = _main_text(page)
        names = {v.display_name for v in catalog().values()}
        named = sorted((text.find(n), n) for n in names if n in text)
        assert named and named[0][1] == "Hyperliquid", named[:4]  # the drained venue is the first named
        for path in PAGES:
            _goto(page, f"{demo}/{path}")
            assert "Page not found" not in str(page.inner_text("body")), path
            _person_checks(page, path or "overview")
            assert "SIMULATED DATA" in str(page.inner_text("body"))
            shoot(page, f"demo-{path or 'root'}")
        _goto(page, f"{demo}/overview", "Overview")  # /overview is the Overview, not "Page not found"
        assert page.get_by_text("What needs attention now").count() == 1
    finally:
        context.close()


def _liq_signature(page: Any) -> str:
    """What a person compares: the page's range/venue line, its totals and the chart's bars."""
    caption = page.locator('[data-testid="stCaptionContainer"]', has_text="→").first.inner_text()
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    bars = page.locator(".js-plotly-plot .bars path").count()
    return f"{caption}|{metrics}|{bars}"


def _pick(page: Any, widget: Any, option: str) -> None:
    """Open the widget, type the option's name (long lists are virtualised: an option below the fold is not
    in the page until the list is filtered or scrolled), then click it."""
    widget.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click()


def test_every_range_and_venue_control_changes_liquidations(demo: str, browser: Any) -> None:
    from dashboard.params import RANGE_LABELS

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        _goto(page, f"{demo}/liquidations?range=24h", "Liquidations")
        seen = {_liq_signature(page)}
        sidebar = page.locator('[data-testid="stSidebar"]')
        for key, label in RANGE_LABELS.items():
            if key == "24h":
                continue
            _pick(page, sidebar.locator('[data-testid="stSelectbox"]'), label)
            page.wait_for_function(f"() => location.search.includes('range={key}')", timeout=BUSY_MS)
            settle(page, "Liquidations", BUSY_MS)
            signature = _liq_signature(page)
            assert signature not in seen, (key, signature)
            seen.add(signature)
            _person_checks(page, f"liquidations {key}")
        _pick(page, sidebar.locator('[data-testid="stMultiSelect"]'), "Hyperliquid")
        page.wait_for_function("() => location.search.includes('venues=hyperliquid')", timeout=BUSY_MS)
        page.keyboard.press("Escape")
        settle(page, "Liquidations", BUSY_MS)
        signature = _liq_signature(page)
        assert signature not in seen and "Hyperliquid" in signature, signature
        shoot(page, "demo-liquidations-hyperliquid")
    finally:
        context.close()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_url_injection_renders_as_text_and_fetches_nothing(demo: str, browser: Any, payload: str) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if (urlparse(request.url).hostname or "").endswith("evil.example") else None)
    try:
        from urllib.parse import quote

        _goto(page, f"{demo}/?range={quote(payload)}&venues={quote('okx,' + payload)}", "Overview")
        page.get_by_text(f"not understood: {payload}", exact=True).wait_for(timeout=30_000)
        assert page.locator('a[href*="evil.example"]').count() == 0
        assert page.locator('img[src*="evil.example"]').count() == 0
        assert outside == []
        _person_checks(page, "injection")
        shoot(page, f"demo-injection-{PAYLOADS.index(payload)}")
    finally:
        context.close()


def test_page_controls_live_in_the_url(demo: str, browser: Any) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        _goto(page, f"{demo}/funds?range=7d&funds-scale=indexed&funds-zoom=signal", "Funds")
        assert "funds-scale=indexed" in page.url and "funds-zoom=signal" in page.url
        page.get_by_role("radio", name="Log", exact=True).click()  # a person switches the scale
        page.wait_for_function("() => location.search.includes('funds-scale=log')", timeout=60_000)
        settle(page, "Funds")
        for role, label in (("radio", "Linear"), ("radio", "Log"), ("radio", "Indexed (start = 100)"),
                            ("button", "Stress events"), ("button", "Cascades"), ("button", "Alerts")):
            button = page.get_by_role(role, name=label, exact=True)  # type: ignore[arg-type]
            box = button.bounding_box()
            assert box is not None and button.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), label
        shoot(page, "demo-funds-controls")
    finally:
        context.close()


def test_run_mode_with_no_venue_reachable_says_so(browser: Any, tmp_path: Path) -> None:
    closed = _free_port()  # nothing listens here: every venue's connection is refused
    venues = list(catalog())
    config = tmp_path / "backstop.toml"
    config.write_text("[collector]\nmax_retries = 0\nbackoff_base_s = 0.05\n[dashboard]\nrefresh_s = 5\n" + "".join(
        f"[venues.{v}]\nbase_url = \"http://127.0.0.1:{closed}\"\n" for v in venues))
    port = _free_port()
    log = tmp_path / "run.log"
    proc = _start(["--config", str(config), "--db", str(tmp_path / "run.duckdb"), "run", "--port", str(port)], log)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        _wait_for_log(proc, log, "dashboard on", 120)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:  # the dashboard answers once Streamlit is up
            try:
                _goto(page, f"{base}/")
                break
            except Exception:  # noqa: BLE001 - connection refused until the server listens
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-3000:]
        # the no-data page refreshes by itself until the collector's failed polls are in
        page.get_by_text("No venue is reachable", exact=False).wait_for(timeout=180_000)
        settle(page)
        text = str(page.inner_text("body"))
        assert re.search(r"0 of \d+ venues reachable", text), text[:2000]
        assert "backstop demo" in text
        _person_checks(page, "run mode")
        shoot(page, "run-unreachable-overview")
        links = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        assert any("Collector health" in t for t in links) and any("Alerts" in t for t in links), links
        _goto(page, f"{base}/health", "Collector health")
        assert page.get_by_text("No venue is reachable", exact=False).count() >= 1
        _person_checks(page, "run mode health")
        shoot(page, "run-unreachable-health")
        _goto(page, f"{base}/alerts", "Alerts")
        _person_checks(page, "run mode alerts")
        shoot(page, "run-unreachable-alerts")
        _wait_for_log(proc, log, "cycle 1: 0/", 180)  # the terminal says it too, once per cycle
        assert re.search(r"cycle 1: 0/\d+ venues ok — last error: ", log.read_text())
    finally:
        context.close()
        _stop(proc)


def test_empty_page_refreshes_by_itself_when_data_arrives(browser: Any, tmp_path: Path) -> None:
    """The no-data page says it checks again by itself: it must switch to the data without a reload."""
    import shutil
    import urllib.request

    from tests.test_dashboard_fixture import build_empty, build_fixture

    db = build_empty(tmp_path / "live.duckdb")
    port = _free_port()
    with (tmp_path / "streamlit.log").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.headless",
             "true", "--server.address", "127.0.0.1", "--server.port", str(port), "--client.toolbarMode", "viewer",
             "--browser.gatherUsageStats", "false", "--", "--db", str(db), "--refresh", "5"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.3)
        _goto(page, f"http://127.0.0.1:{port}/")
        page.get_by_text("Backstop has no data yet").wait_for(timeout=60_000)
        filled = build_fixture(tmp_path / "filled.duckdb").path
        shutil.copyfile(filled, tmp_path / "incoming.duckdb")
        os.replace(tmp_path / "incoming.duckdb", db)  # the data arrives while the page is open
        page.get_by_text("What needs attention now").wait_for(timeout=180_000)  # no reload
        settle(page, "Overview")
        _person_checks(page, "refreshed overview")
    finally:
        context.close()
        _stop(proc)
