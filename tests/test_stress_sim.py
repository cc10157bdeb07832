"""The stress test against the simulator: calibration recovers the simulated venue's leverage distribution,
and the cascade scenario's realised fund consumption is within a factor of 2 of the projection made just
before it started. The simulated market is stepped in process and recorded into a real DuckDB file through
the project's write paths (5-minute prices, hourly OI, every liquidation, fund snapshots), as a collector
with complete feeds would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from collectors.base import Batch, FundBalance, OpenInterest, PoolMember, Price
from collectors.liquidations.base import LiquidationRecord
from metrics.stress import FillModel, LeverageDistribution
from simulator.leverage import venue_distribution
from simulator.market import Market
from simulator.market_state import DAY_MS, HOUR_MS, MINUTE_MS
from simulator.scenarios import CASCADE_CRASH_MS
from storage import liquidation_writes as liq_store
from storage.db import write_connection
from storage.stress_inputs import load_inputs, stress_frame
from storage.writer import Store

VENUE = "okx"
DAYS = 10
SCALE_TOLERANCE = 0.20  # recovered leverage scale within ±20 % of the simulator's
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC: day books open at midnight


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class Recorder:
    """Writes what a complete collector would have stored about one simulated venue."""

    market: Market
    db: Path
    last_seq: int = 0
    pending: list[LiquidationRecord] = field(default_factory=list)
    batch: Batch = field(default_factory=Batch)

    def __post_init__(self) -> None:
        self.store = Store(self.db)
        venue = self.market.venue(VENUE)
        members = [PoolMember(VENUE, p.pool_id, s, p.asset) for p in venue.pools.values() for s in p.symbols]
        self.store.write(Batch(pool_members=members), fetched_at=_ts(self.market.model_ms))

    def assets(self) -> set[str]:
        return {c.base for c in self.market.venue(VENUE).contracts.values()}

    def snapshot(self, prices: bool = True, oi: bool = False, funds: bool = False) -> None:
        m, ts = self.market, _ts(self.market.model_ms)
        batch = Batch()
        if prices:
            batch.prices = [Price(VENUE, a, ts, float(m.price(a)), "index") for a in sorted(self.assets())]
        if oi:
            for c in m.venue(VENUE).contracts.values():
                usd = float(c.oi_usd(m.price(c.base)))
                batch.open_interest.append(OpenInterest(VENUE, c.symbol, ts, c.base, c.settle, str(c.oi_contracts),
                                                        "contracts", float(c.contract_size), c.inverse,
                                                        float(c.oi_base(m.price(c.base))), usd))
        if funds:
            for p in m.venue(VENUE).pools.values():
                usd = p.balance * m.price(p.asset)
                batch.funds.append(FundBalance(VENUE, p.pool_id, p.asset, ts, p.balance, str(p.balance), p.asset,
                                               usd_value=usd.quantize(Decimal("0.01"))))
        self.batch.merge(batch)

    def write(self) -> None:
        self.store.write(self.batch, fetched_at=_ts(self.market.model_ms))
        self.batch = Batch()
        with write_connection(self.db) as con:
            liq_store.write_batch(con, self.pending)
        self.pending = []

    def take_liquidations(self) -> None:
        for x in self.market.venue(VENUE).liquidations:
            if x.seq <= self.last_seq:
                continue
            self.last_seq = x.seq
            self.pending.append(LiquidationRecord(
                VENUE, "sim:all", "ws", x.liq_id, _ts(x.ts_ms), x.symbol, x.base, "USDT", x.position_side,
                float(x.fill_price), "fill", None, float(x.qty_contracts), float(x.contract_size), x.inverse,
                float(x.notional_usd), "contracts_x_usd", "complete", False, json.dumps({"id": x.liq_id}),
                _ts(x.ts_ms)))

    def run(self, until_ms: int) -> None:
        """Step in 5-minute increments: prices every 5 min, OI hourly, liquidations as they happen."""
        while self.market.model_ms < until_ms:
            self.market.fast_forward(5 * MINUTE_MS)
            t = self.market.model_ms
            self.snapshot(prices=True, oi=t % HOUR_MS == 0)
            self.take_liquidations()
            if t % DAY_MS == 0:
                self.write()
        self.write()


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[LeverageDistribution, str]:
    db = tmp_path_factory.mktemp("stress") / "calm.duckdb"
    market = Market(seed=3, start_ms=START, history_days=30, scenario="calm", venues=[VENUE])
    recorder = Recorder(market, db)
    recorder.snapshot(prices=True, oi=True, funds=True)
    recorder.run(START + DAYS * DAY_MS)
    recorder.snapshot(funds=True, oi=True)
    recorder.write()
    inputs = load_inputs(db, [VENUE], now=_ts(market.model_ms), calibration_days=DAYS + 1)
    cal = inputs.calibrations[VENUE]
    return cal.distribution, cal.label


def test_calibration_recovers_the_simulated_leverage(calibrated: tuple[LeverageDistribution, str]) -> None:
    distribution, label = calibrated
    truth = venue_distribution(VENUE)
    print(f"\ncalibration: {label}; simulator scale {truth.scale:.2f}, recovered {distribution.scale:.3f}"
          f" (ratio {distribution.scale / truth.scale:.3f})")
    assert label.startswith("calibrated") and f"from {DAYS * 3} asset-days" in label  # BTC, ETH, SOL
    assert distribution.scale == pytest.approx(truth.scale, rel=SCALE_TOLERANCE)
    for move in (0.05, 0.10, 0.20, 0.40):  # what the stress test then projects
        assert distribution.liquidated_share(move) == pytest.approx(truth.liquidated_share(move), rel=0.35)


def test_cascade_consumption_within_factor_two_of_projection(
        calibrated: tuple[LeverageDistribution, str], tmp_path: Path) -> None:
    distribution, _ = calibrated
    start = START + 30 * MINUTE_MS  # the crash (onset + 0..2 h) stays inside one UTC day
    market = Market(seed=5, start_ms=start, history_days=30, scenario="cascade", venues=[VENUE])
    plan = market.plan
    recorder = Recorder(market, tmp_path / "cascade.duckdb")
    recorder.run(plan.onset_ms - 5 * MINUTE_MS)
    recorder.snapshot(prices=True, oi=True, funds=True)  # the state "just before it started"
    recorder.write()
    btc0 = float(market.price("BTC"))
    stats0 = market.stats(VENUE)
    low = btc0
    while market.model_ms < plan.onset_ms + CASCADE_CRASH_MS:
        market.fast_forward(MINUTE_MS)
        low = min(low, float(market.price("BTC")))
    stats1 = market.stats(VENUE)
    realised_move_pct = (1 - low / btc0) * 100
    realised_usd = (stats1["deficit_usd"] - stats0["deficit_usd"]) - (stats1["surplus_usd"] - stats0["surplus_usd"])
    inputs = load_inputs(recorder.db, [VENUE], now=_ts(plan.onset_ms))
    frame = stress_frame(inputs, realised_move_pct, "down", FillModel(), "all", distribution)
    projected_usd = float(frame["deficit_usd"].sum())
    ratio = realised_usd / projected_usd
    print(f"\ncascade: BTC fell {realised_move_pct:.1f} %; realised fund consumption ${realised_usd:,.0f}, "
          f"projected ${projected_usd:,.0f} (ratio {ratio:.2f})")
    assert 0.5 <= ratio <= 2.0
