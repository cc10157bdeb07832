"""Fidelity of the simulated demo (issue 15): every venue's fund-to-OI is of the real order of magnitude,
so coverage_low stays quiet in a calm demo. One real collect cycle of every venue against the simulator,
coverage computed by the same query and rule the alert engine uses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import duckdb
import pytest

from alerts.fund_rules import coverage_low
from alerts.parameters import CoverageParams
from backstop.service import Collector
from collectors.registry import venue_keys
from simulator.calibration import COVERAGE_SANE_PCT, FUND_TO_OI_CALIBRATION
from storage.assessments import load_assessments
from storage.coverage_inputs import venue_coverage
from storage.db import migrate, read_connection
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
    # the coverage the alert judges is the one every screen shows (the assessment), venue by venue
    assessed = {a.venue: a.coverage_pct for a in load_assessments(settings.db) if a.is_venue}
    for venue, pct in measured.items():
        assert assessed[venue] == pytest.approx(pct, rel=1e-9), venue


def test_migration_008_keeps_existing_rows_and_widens_precision(tmp_path) -> None:
    """A database written before 008: its rows survive, old rows read ts_source 'venue', and a value with
    more than 8 decimals now keeps them."""
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    try:
        migrate(con, target=5)
        con.execute("INSERT INTO fund_balances VALUES ('hyperliquid', 'HLP', 'USDC', '2026-01-01', 1.5, '1.5', "
                    "'USDC', 1.5, 'stable', 'hlp_vault', 'snapshot', '2026-01-01')")
        con.execute("INSERT INTO open_interest VALUES ('bitmex', 'XBTEUR', '2026-01-01', 'BTC', 'BTC', '1', "
                    "'contracts', 1.0, true, 1.0, 1.0, '2026-01-01')")
        migrate(con)
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'fund_balances'").fetchall())
        assert types["balance"] == types["usd_value"] == "DECIMAL(38,18)"
        assert con.execute("SELECT ts_source, balance::VARCHAR FROM fund_balances").fetchall() == [
            ("venue", "1.500000000000000000")]
        assert con.execute("SELECT ts_source, oi_usd_note FROM open_interest").fetchall() == [("venue", None)]
        con.execute("UPDATE fund_balances SET usd_value = 329265410.9079009912")
        assert con.execute("SELECT usd_value::VARCHAR FROM fund_balances").fetchall() == [
            ("329265410.907900991200000000",)]
    finally:
        con.close()
