"""The stress model on hand-computed cases, its monotonicity, and the calibration fit (pure)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from metrics import stress
from metrics.stress import (
    ContractExposure,
    DayObservation,
    FillModel,
    FundAsset,
    LeverageDistribution,
    PoolInput,
    calibrate,
    history_stats,
    project,
)

# 10x: liquidation within 10 %, entries spread over [5 %, 10 %]; 20x: within [2.5 %, 5 %]
DIST = LeverageDistribution(tiers=((10.0, 0.2), (20.0, 0.1)), maintenance_margin=0.0, entry_spread=0.5)
FILL = FillModel(calm_deficit_rate=0.005, fill_degradation=0.25, max_deficit_rate=0.15, daily_turnover=2.0)
CONTRACTS = (ContractExposure("BTCUSDT", "BTC", 1_000_000.0), ContractExposure("ETHUSDT", "ETH", 500_000.0))


def pool(*assets: FundAsset) -> PoolInput:
    return PoolInput("venuex", "main", CONTRACTS, tuple(assets))


def test_hand_computed_stablecoin_fund() -> None:
    # 8 % down: 10x tier 0.2 × (0.08 − 0.05) / 0.05 = 0.12, 20x tier all 0.1 → 22 % of 1.5 M = 330,000
    # rate = 0.5 % + 0.25 × 330,000 / (2 × 1.5 M) = 3.25 % → deficit 10,725.00; fund 50,000 → 21.45 %
    result = project(pool(FundAsset("USDT", 50_000.0, 1.0, stable=True)), 8.0, "down", DIST, FILL)
    assert result.liquidated_usd == pytest.approx(330_000.00, abs=0.005)
    assert result.deficit_rate == pytest.approx(0.0325, abs=1e-12)
    assert result.deficit_usd == pytest.approx(10_725.00, abs=0.005)
    assert result.fund_after_move_usd == pytest.approx(50_000.00, abs=0.005)
    assert result.consumption_pct == pytest.approx(21.45, abs=1e-9)
    assert result.consumption_native == pytest.approx(10_725.00, abs=0.005)
    assert result.adl_likely is False


def test_hand_computed_coin_fund_falls_with_its_coin() -> None:
    # the same deficit against 1 BTC at 50,000: after an 8 % fall the fund is worth 46,000 →
    # 10,725 / 46,000 = 23.3152 %, and 10,725 / 46,000 = 0.233152 BTC
    btc = FundAsset("BTC", 50_000.0, 50_000.0, stable=False)
    result = project(pool(btc), 8.0, "down", DIST, FILL)
    assert result.fund_after_move_usd == pytest.approx(46_000.00, abs=0.005)
    assert result.consumption_pct == pytest.approx(10_725 / 46_000 * 100, rel=1e-12)
    assert result.fund_native == pytest.approx(1.0)
    assert result.consumption_native == pytest.approx(0.2331521739, rel=1e-9)
    # up 8 %: shorts liquidate the same share, the BTC fund is worth more
    up = project(pool(btc), 8.0, "up", DIST, FILL)
    assert up.deficit_usd == pytest.approx(10_725.00, abs=0.005)
    assert up.fund_after_move_usd == pytest.approx(54_000.00, abs=0.005)


def test_adl_likely_when_consumption_exceeds_fund() -> None:
    # 12 %: every tier liquidated, 30 % of 1.5 M = 450,000 at 0.5 % + 0.25 × 0.15 = 4.25 % → 19,125.00
    result = project(pool(FundAsset("USDT", 10_000.0, 1.0, stable=True)), 12.0, "down", DIST, FILL)
    assert result.deficit_usd == pytest.approx(19_125.00, abs=0.005)
    assert result.adl_likely is True and result.consumption_pct == pytest.approx(191.25)


def test_family_scope_moves_only_the_funds_asset() -> None:
    btc = FundAsset("XBt", 50_000.0, 50_000.0, stable=False)  # XBt is BTC's family
    result = project(pool(btc), 8.0, "down", DIST, FILL, scope="family")
    assert result.moved_oi_usd == 1_000_000.0
    assert result.liquidated_usd == pytest.approx(220_000.0)
    # a stablecoin fund's family is its largest-OI base asset (BTC here)
    stable = project(pool(FundAsset("USDT", 50_000.0, 1.0, stable=True)), 8.0, "down", DIST, FILL, scope="family")
    assert stable.moved_oi_usd == 1_000_000.0


def test_no_fund_gives_no_consumption() -> None:
    result = project(pool(), 20.0, "down", DIST, FILL)
    assert result.liquidated_usd > 0 and result.fund_usd is None
    assert result.consumption_pct is None and result.adl_likely is None


def test_no_open_interest_is_unknown_not_zero() -> None:
    fund = (FundAsset("USDT", 1e6, 1.0, stable=True),)
    result = project(PoolInput("venuex", "stale", (), fund), 20.0, "down", DIST, FILL)
    assert result.fund_usd == 1e6 and result.consumption_pct is None and result.adl_likely is None


def test_monotonic_in_move_and_fill_degradation() -> None:
    """Property over a grid: a bigger move never consumes less; worse fills never consume less."""
    rng = random.Random(7)
    for _ in range(25):
        tiers = tuple((rng.choice([2, 3, 5, 10, 25, 50, 100]) * 1.0, rng.uniform(0, 0.12)) for _ in range(5))
        dist = LeverageDistribution(tiers, rng.uniform(0, 0.01), rng.uniform(0, 1), rng.uniform(0.3, 3))
        fund = FundAsset(rng.choice(["USDT", "BTC"]), rng.uniform(1e4, 1e7), 60_000.0, stable=rng.random() < 0.5)
        p = pool(fund)
        for direction, scope in itertools.product(stress.DIRECTIONS, stress.SCOPES):
            for degradation in (0.0, 0.1, 0.5, 2.0):
                fill = FillModel(fill_degradation=degradation)
                previous = -1.0
                for move in range(0, 41):
                    r = project(p, float(move), direction, dist, fill, scope)
                    assert r.deficit_usd >= previous - 1e-9, (move, direction, scope)
                    previous = r.deficit_usd
            for move in (5.0, 20.0, 40.0):
                deficits = [project(p, move, direction, dist, FillModel(fill_degradation=g), scope).deficit_usd
                            for g in (0.0, 0.1, 0.5, 2.0, 10.0)]
                assert deficits == sorted(deficits)
        # consumption % of a fund that falls with the market also never shrinks with a bigger down move
        pcts = [project(p, float(m), "down", dist, FILL).consumption_pct for m in range(0, 41)]
        assert all(b >= a - 1e-9 for a, b in zip(pcts, pcts[1:], strict=False))


def test_calibration_recovers_a_known_scale() -> None:
    truth = LeverageDistribution().scaled(1.7)
    rng = random.Random(3)
    days = []
    for _ in range(40):
        down, up = abs(rng.gauss(0, 0.03)), abs(rng.gauss(0, 0.03))
        oi = rng.uniform(1e8, 3e8)
        noise = lambda: rng.lognormvariate(0, 0.2)  # noqa: E731
        days.append(DayObservation(oi, down, up, oi * truth.liquidated_share(down) * noise(),
                                   oi * truth.liquidated_share(up) * noise()))
    cal = calibrate(days, LeverageDistribution())
    assert cal.source == "calibrated" and cal.days == 40
    assert cal.distribution.scale == pytest.approx(1.7, rel=0.1)


def test_calibration_falls_back_to_the_default_and_says_why() -> None:
    cal = calibrate([DayObservation(1e8, 0.02, 0.01, 1e6, 0.0)] * 3, LeverageDistribution())
    assert cal.source == "default" and "3 asset-day(s)" in cal.note
    assert calibrate([], LeverageDistribution()).note == "no recorded liquidations"


def test_history_stats() -> None:
    changes = [-100.0] * 98 + [-1_000.0, 500.0]  # 99th percentile of losses (gains count as 0)
    stats = history_stats(changes, 10_000.0, [5.0, 9.0])
    assert stats.worst_day_loss_usd == 1_000.0
    # sorted losses: 0, 98 × 100, 1000 → position 99 × 0.99 = 98.01 → 100 + 0.01 × 900 = 109
    assert stats.p99_day_loss_usd == pytest.approx(109.0)
    assert stats.days_covered == pytest.approx(10_000.0 / stats.p99_day_loss_usd)
    assert stats.worst_day_liquidated_usd == 9.0
    assert history_stats([], 1.0).days_covered is None


def test_vectorised_shares_equal_the_scalar_definition() -> None:
    """The calibration's vectorised ``liquidated_shares`` is the same function as ``liquidated_share``
    (every tier regime: below the nearest entry, inside the spread, beyond the farthest; no spread)."""
    moves = np.array([-0.1, 0.0, 0.001, 0.004, 0.0125, 0.02, 0.05, 0.09, 0.2, 0.5, 1.0])
    for dist in (LeverageDistribution(), LeverageDistribution(entry_spread=0.0), LeverageDistribution().scaled(0.37),
                 LeverageDistribution(((5.0, 0.3), (50.0, 0.2)), 0.01, 1.0)):
        assert dist.liquidated_shares(moves).tolist() == [dist.liquidated_share(float(m)) for m in moves]
        scales = np.array([0.2, 1.0, 3.7])
        grid = dist.liquidated_shares(moves, scales)
        for row, scale in zip(grid, scales, strict=True):
            assert row.tolist() == [dist.scaled(float(scale)).liquidated_share(float(m)) for m in moves]
