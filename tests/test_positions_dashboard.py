"""The Funds page's backstop-positions section through Streamlit's AppTest, on a database the collector
filled from the simulator: the HLP Liquidator mid-takeover (Mar 2025's ETH long) and Orderly's fund."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from backstop.service import Collector
from simulator.inventory import TAKEOVER_DELAY_MS
from simulator.market_state import HOUR_MS, MINUTE_MS
from storage.queries import query_df
from tests.conftest import settings_for

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
VENUES = ["hyperliquid", "orderly"]


@pytest.fixture
def db(sim_factory: Any, tmp_path: Path) -> Path:
    start_ms = (int(time.time() * 1000) - 4 * HOUR_MS) // MINUTE_MS * MINUTE_MS  # the takeover ~1 h ago
    sim = sim_factory(VENUES, scenario="venue-drain:hyperliquid", seed=3, start_ms=start_ms)
    sim.market.run_until(sim.market.plan.onset_ms + TAKEOVER_DELAY_MS + 30 * MINUTE_MS)
    settings = settings_for(sim, tmp_path / "dash.duckdb", VENUES)

    async def cycle() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]

    asyncio.run(cycle())
    return settings.db


def test_funds_page_lists_each_backstops_positions_against_its_equity(db: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKSTOP_DB", str(db))
    monkeypatch.delenv("BACKSTOP_SIMULATED", raising=False)
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("views/funds.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Backstop positions" in [s.value for s in at.subheader]
    shown = next(df.value for df in at.dataframe if "% of equity" in df.value.columns)
    raw = query_df(db, """
        SELECT p.venue, p.contract, p.size, p.notional_usd, p.notional_usd / CAST(f.usd_value AS DOUBLE) * 100 AS pct
        FROM backstop_positions p JOIN fund_balances f
          ON f.venue = p.venue AND f.pool_id = p.holder AND f.ts = p.ts
        ORDER BY p.venue, p.notional_usd DESC""")
    assert shown["contract"].tolist() == raw["contract"].tolist()  # ETH takeover first, then the standing SOL
    assert shown["venue"].tolist() == ["Hyperliquid", "Hyperliquid", "Orderly Network"]
    assert shown["% of equity"].tolist() == pytest.approx(raw["pct"].tolist())
    assert shown["side"].tolist() == ["long" if s > 0 else "short" for s in raw["size"]]
    assert shown["% of equity"].iloc[0] > 1000  # $286 M against the liquidator's ~$12.8 M
    assert "dl-funds-positions" in [b.key for b in at.get("download_button")]
