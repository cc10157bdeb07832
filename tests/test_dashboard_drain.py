"""On the simulator's venue-drain scenario (collected through the real collector, alerts evaluated after
each cycle): every page that shows a venue's state, z or drawdown shows the assessment's, and the firing
critical alert and the Overview agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from alerts.judgement import assessments_for
from backstop.catalog import venue_facts
from backstop.config import load_settings
from metrics import assessment as M
from metrics.formatting import fmt_pct, fmt_signed
from simulator.market_state import HOUR_MS
from storage.queries import query_df
from tests.test_alerts_delivery import Receiver
from tests.test_alerts_e2e import FUND_VENUES, collect, scenario_settings

pytestmark = pytest.mark.e2e
APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def drained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from simulator.market import Market
    from simulator.server import SimulatorThread

    tmp = tmp_path_factory.mktemp("drain")
    receiver = Receiver().start()
    sim = SimulatorThread(Market(venues=FUND_VENUES, scenario="venue-drain:okx", seed=5, speed=0.0,
                                 publish_every_s=4 * 3600)).start()
    try:
        settings = scenario_settings(sim, tmp / "drain.duckdb", FUND_VENUES, receiver)
        end_h = (sim.market.plan.end_ms - sim.market.start_ms) / HOUR_MS + 2
        engine = collect(sim, settings, [0, 4, 8, 12, end_h])
        assert engine.evaluate() is not None
        yield Path(settings.db)
    finally:
        sim.stop()
        receiver.stop()


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with column {column!r}")


def open_page(db: Path, monkeypatch: pytest.MonkeyPatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("BACKSTOP_DB", str(db))
    monkeypatch.delenv("BACKSTOP_SIMULATED", raising=False)
    at = AppTest.from_file(APP, default_timeout=90).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_every_page_quotes_the_assessment(drained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(db_path=drained)
    assessments = assessments_for(settings, venue_facts(settings.enabled_venues()))
    okx = next(a for a in assessments if a.venue == "okx" and a.is_venue)
    name = okx.display_name
    assert okx.state == M.CRITICAL
    fired = query_df(drained, "SELECT venue, severity FROM alerts WHERE status = 'firing' AND severity = 'critical'")
    assert "okx" in set(fired["venue"])  # the critical alert that the pages must agree with

    overview = open_page(drained, monkeypatch)
    table = table_with(overview, "coverage")
    assert table["venue"].iloc[0] == name  # ranked first
    row = table.iloc[0]
    assert row["state"] == "critical"
    assert row["24 h"] == fmt_pct(okx.change_pct("24h"), signed=True)
    assert row["from 30 d max"] == fmt_pct(okx.drawdown_30d_pct)
    badges = [m.value for m in overview.markdown if "CRITICAL" in m.value]
    assert badges and name in badges[0]
    captions = " ".join(c.value for c in overview.caption)
    assert okx.drawdown_30d_pct is not None and okx.drawdown_30d_pct < 0
    assert f"from 8 h max {fmt_pct(okx.drawdown_8h_pct)}" in captions.replace("\\", "")  # Markdown-escaped
    firing = overview.table[0].value
    assert {"CRITICAL" in s for s in firing[firing["venue"] == name]["venue state"]} == {True}

    divergence = open_page(drained, monkeypatch, "views/divergence.py")
    day = table_with(divergence, "robust z")
    day = day[day["window"] == "24 h"].set_index("venue")
    assert day.loc[name, "robust z"] == fmt_signed(okx.divergence_z)
    assert bool(day.loc[name, "flagged"])

    health = open_page(drained, monkeypatch, "views/health.py")
    states = table_with(health, "venue_state")
    assert set(states[states["venue"] == "okx"]["venue_state"]) == {"critical"}

    alerts = open_page(drained, monkeypatch, "views/alerts.py")
    firing = alerts.table[0].value
    assert {"CRITICAL" in s for s in firing[firing["venue"] == name]["venue state"]} == {True}
    assert firing["severity"].iloc[0] == ":red-background[**critical**]"  # critical first
    history = table_with(alerts, "resolved_at")
    assert history["severity_label"].iloc[0] == "critical" and not history.isna().any().any()
    assert "None" not in {str(v) for v in history.to_numpy().ravel()}
    for page in ("views/coverage.py", "views/funds.py"):  # the other tables: no None either
        shown = open_page(drained, monkeypatch, page)
        for df in shown.dataframe:
            if not {"fund_usd", "ts"} & set(df.value.columns):  # display tables, not the numeric chart data
                assert "None" not in {str(v) for v in df.value.to_numpy().ravel()}, page


