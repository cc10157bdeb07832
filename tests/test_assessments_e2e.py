"""On the simulator's venue-drain scenario (collected through ccxt, alerts evaluated after each cycle): the
alert, the assessment, the export and ``backstop status`` quote one state, one z and one drawdown."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from alerts.context import assessment_config
from alerts.judgement import status_lines
from metrics import assessment as M
from metrics.divergence import divergence
from metrics.formatting import fmt_signed
from simulator.market_state import HOUR_MS
from storage.assessments import load_assessments
from storage.db import read_connection
from storage.fund_inputs import venue_changes
from storage.queries import query_df
from tests.test_alerts_delivery import Receiver
from tests.test_alerts_e2e import FUND_VENUES, collect, scenario_settings
from tests.test_assessments import backstop

pytestmark = pytest.mark.e2e

HOURS_TO_WINDOW = {hours: name for name, hours in M.WINDOWS.items()}


@pytest.fixture
def receiver() -> Any:
    server = Receiver().start()
    yield server
    server.stop()


def test_venue_drain_one_state_one_z_one_drawdown(sim_factory: Any, tmp_path: Path, receiver: Receiver) -> None:
    sim = sim_factory(FUND_VENUES, scenario="venue-drain:okx", seed=5, publish_every_s=4 * 3600)
    settings = scenario_settings(sim, tmp_path / "drain.duckdb", FUND_VENUES, receiver)
    end_h = (sim.market.plan.end_ms - sim.market.start_ms) / HOUR_MS + 2
    engine = collect(sim, settings, [0, 4, 8, 12, end_h])
    evaluation = engine.evaluate()  # once more, now that the last cycle's alerts are stored
    assert evaluation is not None

    fired = query_df(settings.db, "SELECT rule, venue, severity, message, metrics FROM alerts WHERE status = 'firing'")
    div_alert = fired[(fired["rule"] == "divergence") & (fired["venue"] == "okx")].iloc[0]
    dd_alert = fired[(fired["rule"] == "fund_drawdown") & (fired["venue"] == "okx")].iloc[0]
    div_metrics, dd_metrics = json.loads(div_alert["metrics"]), json.loads(dd_alert["metrics"])

    config = assessment_config(engine.ctx)
    assessments = load_assessments(settings.db, evaluation.as_of, config)
    okx = next(a for a in assessments if a.venue == "okx" and a.pool_id == M.ALL_POOLS)
    # one z: the alert's, the assessment's, and the Divergence computation (metrics.divergence on the same
    # like-for-like changes, same window and time)
    with read_connection(settings.db) as con:
        changes = venue_changes(con, evaluation.as_of, [div_metrics["window_h"]], config.fund_expected_s)
    page = {r.venue: r for r in divergence({c.venue: c.change_pct for c in changes},
                                           int(div_metrics["window_h"] * 3600), config.divergence)}
    assert okx.divergence_z == pytest.approx(page["okx"].z)
    assert div_metrics["robust_z"] == pytest.approx(okx.divergence_z, abs=1e-3)
    assert f"robust z {fmt_signed(okx.divergence_z)}" in div_alert["message"]
    assert page["okx"].flagged and not any(r.flagged for v, r in page.items() if v != "okx")

    # one drawdown: the alert's pool and window, the pool's assessment
    pool = next(a for a in assessments if a.venue == "okx" and a.pool_id == dd_metrics["pool_id"])
    figures = pool.window(HOURS_TO_WINDOW[dd_metrics["window_h"]])
    assert figures is not None and figures.drawdown_pct == pytest.approx(dd_metrics["drawdown_pct"], abs=1e-3)

    # one state: a firing critical alert makes the venue critical, nowhere "watch"
    assert {div_alert["severity"], dd_alert["severity"]} == {"critical"}
    assert okx.state == M.CRITICAL and any(r.startswith("critical alert divergence: OKX") for r in okx.reasons)
    calm = [a for a in assessments if a.pool_id == M.ALL_POOLS and a.venue != "okx"]
    assert calm and all(a.state not in (M.CRITICAL, M.NO_FUND) for a in calm)

    # the export and `backstop status` say the same
    config_file = tmp_path / "backstop.toml"
    lines = [f"[venues.{v}]\nenabled = true\nbase_url = '{sim.base_url(v)}'\n" for v in FUND_VENUES]
    config_file.write_text("\n".join(lines))
    out = backstop("--config", str(config_file), "--db", str(settings.db), "export", "assessments",
                   "--until", evaluation.as_of.isoformat(), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    row = next(r for r in rows if r["venue"] == "okx" and r["pool_id"] == M.ALL_POOLS)
    assert row["state"] == "critical" and float(row["divergence_z"]) == pytest.approx(okx.divergence_z)
    pool_row = next(r for r in rows if r["venue"] == "okx" and r["pool_id"] == dd_metrics["pool_id"])
    column = f"change_{HOURS_TO_WINDOW[dd_metrics['window_h']]}_pct"
    assert float(pool_row[column]) == pytest.approx(figures.change_pct)
    assert "critical alert divergence" in row["reasons"]
    text = "\n".join(status_lines(assessments))
    assert "OKX: critical" in text or "okx: critical" in text
    assert f"divergence z {fmt_signed(okx.divergence_z)}" in text

    # the dashboard's data layer serves the same object (the pages read it, with the deployment's config)
    from dashboard import data

    served = data.assessments(str(settings.db), None, evaluation.now)
    served_okx = next(a for a in served if a.venue == "okx" and a.pool_id == M.ALL_POOLS)
    assert served_okx.state == M.CRITICAL and served_okx.display_name == "OKX"
    assert served_okx.divergence_z == pytest.approx(okx.divergence_z)
