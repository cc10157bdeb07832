"""Pure metrics: coverage, changes and drawdowns, robust z divergence, health rules, formatting, CSV safety."""

from __future__ import annotations

import io
import math
import statistics
from datetime import UTC, datetime

import pandas as pd
import pytest

from metrics.coverage import coverage_pct, coverage_series
from metrics.csv_safe import neutralise_cell, safe_frame, to_csv_bytes
from metrics.divergence import DivergenceRule, divergence, explain, robust_z, robust_z_frame
from metrics.drawdown import drawdown_pct
from metrics.formatting import fmt_age, fmt_amount, fmt_duration, fmt_pct, fmt_usd
from metrics.health import (
    DatasetState,
    blindness,
    freshness,
)


def test_coverage() -> None:
    assert coverage_pct(500e6, 10e9) == pytest.approx(5.0)
    assert coverage_pct(1.0, 0.0) is None
    assert coverage_pct(None, 1.0) is None
    assert coverage_pct(1.0, math.nan) is None
    out = coverage_series(pd.Series([1.0, 2.0, None]), pd.Series([100.0, 0.0, 5.0]))
    assert out.iloc[0] == pytest.approx(1.0) and math.isnan(out.iloc[1]) and math.isnan(out.iloc[2])


def test_drawdowns() -> None:
    assert drawdown_pct(90.0, [100.0, 95.0, None]) == pytest.approx(-10.0)
    assert drawdown_pct(110.0, [100.0]) == 0.0  # at a new high


def test_robust_z_matches_the_textbook_formula() -> None:
    """Leave-one-out: the venue is measured against the median and MAD of the other venues."""
    changes = {"binance": 0.5, "okx": 0.3, "bybit": 0.4, "gate": -18.0, "bitmex": 0.2}
    peers = [v for k, v in changes.items() if k != "gate"]
    med = statistics.median(peers)
    mad = statistics.median([abs(v - med) for v in peers])
    expected = (-18.0 - med) / max(1.4826 * mad, 0.5, 1.0 * abs(med))
    assert robust_z(-18.0, peers, mad_floor=0.5, common_move_factor=1.0) == pytest.approx(expected)
    rows = {r.venue: r for r in divergence(changes, 86_400, DivergenceRule())}
    assert rows["gate"].flagged and rows["gate"].z == pytest.approx(expected)
    assert rows["gate"].median_pct == pytest.approx(med)
    assert not any(r.flagged for v, r in rows.items() if v != "gate")


def test_one_divergence_algorithm_for_page_and_alert() -> None:
    """The alert rule's z is the page's z for the same changes (one function: metrics.divergence)."""
    from datetime import UTC, datetime

    from alerts import fund_rules
    from alerts.parameters import DivergenceParams
    from metrics.alert_rows import VenueChange

    changes = {"binance": -0.2, "okx": -21.8, "bybit": -0.3, "gate": 0.4, "bitmex": -0.5}
    page = {r.venue: r for r in divergence(changes, 86_400, DivergenceParams().rule())}
    rows = [VenueChange(v, 24.0, c, 1, 1e8, 1e8, datetime(2026, 1, 1, tzinfo=UTC)) for v, c in changes.items()]
    [signal] = fund_rules.divergence(rows, DivergenceParams())
    assert signal.metrics["robust_z"] == pytest.approx(page["okx"].z, abs=1e-3)
    assert [v for v, r in page.items() if r.flagged] == ["okx"]


def test_divergence_needs_enough_venues_and_a_real_gap() -> None:
    few = divergence({"a": -30.0, "b": 0.1}, 3_600)
    assert [r.z for r in few] == [None, None] and not any(r.flagged for r in few)
    # tiny spread: a 0.5 pp gap is far in z terms without the floor, but under min_gap_pct
    close = divergence({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.5}, 3_600, DivergenceRule(mad_floor_pct=0.0))
    assert not any(r.flagged for r in close)
    assert robust_z(1.0, [1.0, 1.0, 1.0]) == 0.0
    assert robust_z(2.0, [1.0, 1.0, 1.0, 2.0]) == math.inf


def test_explanation_reads_like_a_sentence() -> None:
    row = divergence({"gate": -18.0, "a": 0.4, "b": 0.3, "c": 0.5, "d": 0.45}, 86_400)[-1]
    assert row.venue == "gate"
    text = explain(row, "Gate")
    assert text.startswith("Gate's fund \u221218.0 % in 24 h while the other venues' median moved +0.4 %")
    assert "<" not in text


def test_freshness_and_blindness() -> None:
    assert freshness(100, 300) == "fresh"
    assert freshness(1_100, 300) == "late"
    assert freshness(3_000, 300) == "stale"
    assert freshness(None, 300) == "stale"
    ok = DatasetState("okx", "funds", 60, 86_400)
    dead = DatasetState("htx", "funds", 5 * 86_400, 86_400, "error", "VenueTimeout")
    partial = blindness([ok, dead], {"htx": "HTX"})
    assert partial.level == "partial" and partial.blind_venues == ("htx",)
    assert "HTX" in partial.message and "VenueTimeout" in partial.message
    assert blindness([dead]).level == "blind"
    assert blindness([]).level == "blind"
    assert blindness([ok]).level == "ok"
    assert blindness([ok]).message == "All venues have delivered data within their expected cadence."
    # a stale dataset on a venue that still has fresh data: not blind, but never "all delivered"
    late_oi = DatasetState("okx", "open_interest", 5 * 3_600, 300)
    mixed = blindness([ok, late_oi], {"okx": "OKX"})
    assert mixed.level == "ok" and mixed.message == "Every venue has some fresh data; 1 dataset is stale: OKX open_interest."


def test_formatting() -> None:
    assert fmt_usd(1.234e9) == "$1.23 B"
    assert fmt_usd(-4.5e6) == "\u2212$4.50 M"
    assert fmt_usd(950) == "$950"
    assert fmt_usd(None) == "—" and fmt_usd(math.nan) == "—"
    assert fmt_pct(-18.04) == "\u221218.0 %"
    assert fmt_pct(0.4, signed=True) == "+0.4 %"
    assert fmt_pct(-0.01, signed=True) == "+0.0 %"  # no "−0.0"
    assert fmt_amount(61.73143554, "BTC") == "61.73 BTC"
    assert fmt_amount(793_930_579.3, "USDT") == "793.93 M USDT"
    assert fmt_age(45) == "45 s" and fmt_age(720) == "12 min" and fmt_age(3 * 3600) == "3.0 h"
    assert fmt_age(3 * 86400) == "3.0 d"
    assert fmt_duration(3600) == "1 h" and fmt_duration(86_400) == "24 h" and fmt_duration(604_800) == "7 d"


@pytest.mark.parametrize("text", ["=1+1", "+1+1", "-1-", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("x")',
                                  "-2+3+cmd|' /C calc'!A0", "-inf", "- 1", "-1e", "\t1", "+-1"])
def test_formula_cells_are_neutralised(text: str) -> None:
    assert neutralise_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["-0.00081069", "-7.5e-07", "+1", "-1", "-.5", "3.", "1E+10", "0"])
def test_numeric_strings_are_never_neutralised(text: str) -> None:
    """A raw number stored as text (funding_rate_raw) must stay a number in the spreadsheet."""
    assert neutralise_cell(text) == text


def test_csv_keeps_numbers_and_neutralises_text() -> None:
    frame = pd.DataFrame({
        "venue": ["gate", "=cmd|' /C calc'!A0"],
        "change_pct": [-18.0, 0.4],
        "ts": [datetime(2026, 1, 1, tzinfo=UTC)] * 2,
        "@col": ["-x", "ok"],
    })
    raw = to_csv_bytes(frame).decode()
    back = pd.read_csv(io.StringIO(raw))
    assert back["change_pct"].tolist() == [-18.0, 0.4]  # numbers stay numbers, sign kept
    assert back["venue"].tolist() == ["gate", "'=cmd|' /C calc'!A0"]
    assert back["'@col"].tolist() == ["'-x", "ok"]
    assert back["ts"].tolist() == ["2026-01-01T00:00:00Z"] * 2
    assert safe_frame(frame)["venue"].iloc[1].startswith("'")
    assert frame["venue"].iloc[1].startswith("=")  # the input is not modified


def test_vectorised_z_matches_the_scalar_rule() -> None:
    import random

    rng = random.Random(3)
    rows = []
    for t in range(40):
        for venue in "abcdef"[: rng.randint(2, 6)]:
            rows.append({"ts": t, "venue": venue, "change_pct": rng.gauss(0, 1) * (20 if rng.random() < 0.1 else 1)})
    frame = pd.DataFrame(rows)
    fast = robust_z_frame(frame).set_index(["ts", "venue"])
    for t, group in frame.groupby("ts"):
        for row in divergence(dict(zip(group["venue"], group["change_pct"], strict=True)), 0):
            got = fast.loc[(t, row.venue)]
            if row.z is None:
                assert pd.isna(got["z"]) and not got["flagged"]
            else:
                assert got["z"] == pytest.approx(row.z) and bool(got["flagged"]) == row.flagged
                assert got["median_pct"] == pytest.approx(row.median_pct)
