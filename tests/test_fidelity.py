"""Fidelity of the simulated demo (issue 15): every venue's fund-to-OI is of the real order of magnitude,
so coverage_low stays quiet in a calm demo. One real collect cycle of every venue against the simulator,
coverage computed by the same query and rule the alert engine uses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alerts.rules import CoverageParams, coverage_low
from backstop.service import Collector
from collectors.registry import venue_keys
from simulator.market import COVERAGE_SANE_PCT, FUND_TO_OI_CALIBRATION
from storage.alerts import venue_coverage
from storage.db import read_connection
from tests.conftest import settings_for


def test_calm_demo_coverage_is_calibrated_and_never_low(sim_factory, tmp_path) -> None:
    sim = sim_factory(scenario="calm")
    settings = settings_for(sim, tmp_path / "c.duckdb", list(venue_keys()))

    async def cycle() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            failed = [(o.venue, o.dataset, o.error_message) for o in outcomes if o.status != "ok"]
            assert not failed, failed

    asyncio.run(cycle())
    with read_connection(settings.db) as con:
        coverages = venue_coverage(con, datetime.now(UTC), {}, {})
    measured = {c.venue: 100 * (c.ratio or 0.0) for c in coverages}
    assert set(measured) == set(FUND_TO_OI_CALIBRATION)  # every venue with a fund and OI is calibrated
    low, high = COVERAGE_SANE_PCT
    for venue, pct in measured.items():
        assert low < pct < high, (venue, pct)
        documented = FUND_TO_OI_CALIBRATION[venue][0]
        assert documented / 1.5 < pct < documented * 1.5, (venue, pct, documented)  # the table stays true
    assert coverage_low(coverages, CoverageParams()) == []
