"""The dashboard on data collected from the simulated Bitget risk reserve and Bitfinex's shared fund: every
page renders through AppTest (no exception), and the Funds page shows both venues' funds."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from backstop.service import Collector
from tests.conftest import settings_for
from tests.test_dashboard_app import APP, PAGES, no_exception, texts

pytestmark = pytest.mark.e2e


def test_pages_render_with_bitget_and_bitfinex_funds(sim_factory, tmp_path, monkeypatch) -> None:
    venues = ["bitget", "bitfinex"]
    sim = sim_factory(venues)
    settings = settings_for(sim, tmp_path / "dash.duckdb", venues)

    async def collect() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert all(o.status == "ok" for o in outcomes), [o.error_message for o in outcomes]
            since = datetime.now(UTC) - timedelta(days=14)
            for venue in venues:
                assert (await collector.backfill(venue, "funds", since)).status == "ok"

    asyncio.run(collect())
    monkeypatch.setenv("BACKSTOP_DB", str(settings.db))
    monkeypatch.delenv("BACKSTOP_SIMULATED", raising=False)
    app = AppTest.from_file(APP, default_timeout=90)
    app.run()
    no_exception(app)
    for page in PAGES[1:]:
        app.switch_page(page).run()
        no_exception(app)
        if page == "views/funds.py":
            charts = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
            traces = {str(trace.get("name")) for spec in charts for trace in spec.get("data", [])}
            tables = " ".join(df.value.to_csv() for df in app.dataframe)
            shown = " ".join([*traces, tables, *texts(app)])
            assert "Bitfinex" in shown and "Bitget" in shown, sorted(traces)
