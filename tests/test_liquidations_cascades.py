"""Cascade detection (pure): start, end, peak, totals, incomplete minutes, ongoing cascades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metrics.cascades import (
    CascadeParams,
    MinuteVolume,
    detect_cascades,
    fill_minutes,
    pct_move,
    value_across,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def series(values: list[tuple[float, float]], incomplete: set[int] = frozenset()) -> list[MinuteVolume]:
    return [MinuteVolume(T0 + i * MIN, long_usd, short_usd, i in incomplete) for i, (long_usd, short_usd) in
            enumerate(values)]


def calm_then_burst(burst: list[tuple[float, float]], calm_minutes: int = 60, calm: float = 20_000.0,
                    after: int = 5) -> list[MinuteVolume]:
    return series([(calm, 0.0)] * calm_minutes + burst + [(calm, 0.0)] * after)


PARAMS = CascadeParams(k=5, m=3, window_min=60, floor_usd=50_000, quiet_min=2)


def test_start_end_peak_and_totals() -> None:
    burst = [(400_000, 50_000), (900_000, 100_000), (300_000, 20_000), (250_000, 0)]
    [cascade] = detect_cascades("bybit", calm_then_burst(burst), PARAMS)
    assert cascade.start == T0 + 60 * MIN  # the first of the m minutes above threshold
    assert cascade.end == T0 + 64 * MIN  # first quiet minute (exclusive end)
    assert cascade.peak_minute == T0 + 61 * MIN and cascade.peak_usd == 1_000_000
    assert cascade.total_long_usd == 1_850_000 and cascade.total_short_usd == 170_000
    assert cascade.baseline_usd == 20_000 and cascade.threshold_usd == 100_000  # k x median
    assert cascade.minutes == 4 and not cascade.ongoing and not cascade.incomplete


def test_needs_m_minutes_and_respects_the_floor() -> None:
    two_minutes = [(900_000, 0), (900_000, 0)]
    assert detect_cascades("x", calm_then_burst(two_minutes), PARAMS) == []
    quiet_market = series([(10.0, 0.0)] * 60 + [(1_000.0, 0.0)] * 5)  # 100 x the median, under the floor
    assert detect_cascades("x", quiet_market, PARAMS) == []


def test_single_dip_does_not_end_a_cascade() -> None:
    burst = [(500_000, 0)] * 3 + [(10_000, 0)] + [(500_000, 0)] * 2
    [cascade] = detect_cascades("x", calm_then_burst(burst), PARAMS)
    assert cascade.minutes == 6 and cascade.end == T0 + 66 * MIN


def test_ongoing_cascade_has_no_end() -> None:
    [cascade] = detect_cascades("x", calm_then_burst([(500_000, 0)] * 4, after=0), PARAMS)
    assert cascade.ongoing and cascade.end is None and cascade.last_minute == T0 + 63 * MIN


def test_gap_minutes_are_excluded_from_the_baseline_and_flag_the_cascade() -> None:
    values = [(20_000.0, 0.0)] * 60 + [(500_000.0, 0.0)] * 3 + [(0.0, 0.0)] * 3
    flagged = series(values, incomplete={5, 6, 61})
    [cascade] = detect_cascades("x", flagged, PARAMS)
    assert cascade.incomplete and cascade.baseline_usd == 20_000
    too_little_history = series(values, incomplete=set(range(0, 55)))
    assert detect_cascades("x", too_little_history, PARAMS) == []  # 5 known minutes < min_history


def test_two_cascades_in_one_series() -> None:
    values = [(20_000.0, 0.0)] * 60 + [(600_000.0, 0.0)] * 3 + [(20_000.0, 0.0)] * 10 + [(0.0, 700_000.0)] * 4
    first, second = detect_cascades("market", series(values + [(0.0, 0.0)] * 3), PARAMS)
    assert first.start == T0 + 60 * MIN and second.start == T0 + 73 * MIN
    assert second.total_short_usd == 2_800_000


def test_fill_minutes_zero_fills_and_marks_gaps() -> None:
    values = {T0 + 2 * MIN: (5.0, 1.0, True)}
    filled = fill_minutes(values, T0, T0 + 5 * MIN, [(T0 + 3 * MIN + timedelta(seconds=20), T0 + 4 * MIN)])
    assert [p.total_usd for p in filled] == [0, 0, 6, 0, 0]
    assert [p.incomplete for p in filled] == [False, False, False, True, False]
    assert filled[2].lower_bound
    open_gap = fill_minutes({}, T0, T0 + 3 * MIN, [(T0 + MIN, None)])
    assert [p.incomplete for p in open_gap] == [False, True, True]


def test_value_across_needs_points_bracketing_the_window() -> None:
    points = [(T0 - 2 * MIN, 100.0), (T0 + 5 * MIN, 90.0), (T0 + 12 * MIN, 70.0)]
    assert value_across(points, T0, T0 + 10 * MIN, timedelta(minutes=5)) == (100.0, 70.0)
    assert value_across(points, T0, T0 + 10 * MIN, timedelta(minutes=1)) is None  # cadence too coarse
    assert value_across(points, T0, None, timedelta(minutes=5)) is None  # ongoing
    assert pct_move(100.0, 90.0) == pytest.approx(-10.0) and pct_move(None, 1.0) is None


def test_params_from_config() -> None:
    params = CascadeParams.from_mapping({"k": 4, "m": 2, "floor_usd": 1e6})
    assert params.m == 2 and isinstance(params.m, int) and params.floor_usd == 1e6
    with pytest.raises(ValueError, match="unknown cascade parameter"):
        CascadeParams.from_mapping({"kk": 1})
    with pytest.raises(ValueError):
        CascadeParams(k=0)
