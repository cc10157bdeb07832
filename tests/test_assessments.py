"""The assessment (pure judgement), classified fund changes, and the incident replay with the default rules."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.replay import load_library, replay
from backstop.config import load_settings
from metrics import assessment as M
from metrics.fund_changes import (
    INJECTION,
    RESTRUCTURE,
    TRADING,
    TRANSFER,
    VALUATION,
    ChangeContext,
    classify,
    robust_own_z,
)
from tests.test_config_cli import write

ROOT = Path(__file__).resolve().parents[1]


def backstop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, importing this checkout (not whatever is installed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "backstop.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)

T = datetime(2026, 1, 1, 12, tzinfo=UTC)


def inputs(**kw: object) -> M.AssessmentInputs:
    base: dict[str, object] = {"venue": "okx", "display_name": "OKX", "pool_id": "*", "asset": "USDT", "as_of": T,
                               "fund_native": 400e6, "fund_usd": 400e6, "fund_ts": T, "freshness": "fresh",
                               "data_age_s": 60.0, "expected_age_s": 300.0}
    base.update(kw)
    return M.AssessmentInputs(**base)  # type: ignore[arg-type]


def window(name: str, change_pct: float | None = None, drawdown_pct: float | None = None) -> M.WindowFigures:
    return M.WindowFigures(name, M.WINDOWS[name], 100.0, 100.0, change_pct, change_pct, None, drawdown_pct)


def test_healthy_watch_stressed_and_reasons() -> None:
    assert M.assess(inputs()).state == M.HEALTHY and M.assess(inputs()).reasons == ()
    watch = M.assess(inputs(windows=(window("24h", -2.5, -2.5),)))
    assert watch.state == M.WATCH and watch.reasons == ("24 h change \u22122.5 %",)
    stressed = M.assess(inputs(windows=(window("24h", -6.0), window("30d", None, -12.0))))
    assert stressed.state == M.STRESSED and len(stressed.reasons) == 2
    assert stressed.drawdown_30d_pct == -12.0
    assert M.assess(inputs(windows=(window("8h", None, -2.0),))).state == M.WATCH  # from the 8 h max
    assert M.assess(inputs(windows=(window("30d", None, -12.0),))).state == M.STRESSED


def test_critical_from_a_firing_critical_alert_or_an_empty_fund() -> None:
    since = T - timedelta(hours=3)
    alert = M.Finding("coverage_low", "critical", "MEXC fund covers 0.10 % of open interest", since)
    a = M.assess(inputs(findings=(alert,), windows=(window("24h", -2.5),)))
    assert a.state == M.CRITICAL and a.state_since == since
    assert a.reasons[0].startswith("critical alert coverage_low: MEXC fund covers")
    empty = M.assess(inputs(fund_native=0.0, fund_usd=0.0))
    assert empty.state == M.CRITICAL and "at or below zero" in empty.reasons[0]
    drained = M.assess(inputs(fund_native=0.0, windows=(M.WindowFigures("30d", 720.0, 90.0, 100.0),)))
    assert drained.state == M.CRITICAL
    # an account that was never funded in view (dYdX's isolated markets) is watched, not critical
    never = M.assess(inputs(fund_native=0.0, fund_usd=0.0, windows=(M.WindowFigures("30d", 720.0, 0.0, 0.0),)))
    assert never.state == M.WATCH and never.reasons == ("the venue's funds empty: no positive balance in the last 30 d",)


def test_no_fund_and_blind_are_never_watch() -> None:
    oi_only = M.assess(inputs(has_fund=False, fund_native=None, fund_usd=None, oi_usd=5e9))
    assert oi_only.state == M.NO_FUND and oi_only.label == "no published fund"
    stale = M.assess(inputs(freshness="stale", data_age_s=5 * 86_400.0, expected_age_s=86_400.0))
    assert stale.state == M.BLIND and stale.reasons[0].startswith("data stale: newest fund value 5.0 d old")
    # what is known to be bad stays bad
    worse = M.assess(inputs(freshness="stale", fund_native=-1.0))
    assert worse.state == M.CRITICAL
    assert M.state_rank(M.CRITICAL) > M.state_rank(M.STRESSED) > M.state_rank(M.BLIND) > M.state_rank(M.WATCH)


def test_anomaly_divergence_and_coverage_percentile() -> None:
    a = M.assess(inputs(anomaly_z_24h=-25.9, divergence_z=-40.0, oi_usd=400e8,
                        coverage_history_pct=tuple(2.0 + i / 10 for i in range(30))))
    assert a.state == M.STRESSED
    assert a.coverage_pct == pytest.approx(1.0) and a.coverage_percentile == 0.0
    text = " | ".join(a.reasons)
    assert "own-history robust z \u221225.9" in text and "robust z \u221240.0" in text and "coverage 1.00 %" in text
    row = M.as_row(a)
    assert list(row) == list(M.EXPORT_COLUMNS) and row["state"] == "stressed" and row["reasons"].count("; ") == 2


def test_change_classification() -> None:
    assert classify(None, 5.0).kind == RESTRUCTURE
    assert classify(5.0, None).kind == RESTRUCTURE
    assert classify(10.0, 10.0, 500.0, 520.0) == classify(10.0, 10.0, 500.0, 520.0)
    assert classify(10.0, 10.0, 500.0, 520.0).kind == VALUATION
    published = classify(100.0, 90.0, context=ChangeContext(published_kind="platform_revenue"))
    assert published.kind == INJECTION and not published.inferred
    # Deribit's 500 BTC top-up after March 2020: a round step in, far above the usual move
    top_up = classify(183.0, 683.0, context=ChangeContext(usual_move=1.0))
    assert top_up.kind == INJECTION and top_up.inferred
    out = classify(20_000_000.0, 10_000_000.0, context=ChangeContext(usual_move=50_000.0))
    assert out.kind == TRANSFER and out.inferred
    # Binance 10 Oct 2025 (~190 M of 1.23 B) and dYdX v3 (~9 M of 22.5 M): losses, however round the
    # published figure, are not transfers at the fund's scale
    assert classify(1.23e9, 1.04e9, context=ChangeContext(usual_move=3e6)).kind == TRADING
    assert classify(22.5e6, 13.5e6, context=ChangeContext(usual_move=3e4)).kind == TRADING
    assert classify(100.0, 99.5, context=ChangeContext(usual_move=0.3)).kind == TRADING


def test_own_history_z() -> None:
    calm = [0.3, -0.2, 0.1, -0.3, 0.2, -0.1] * 10
    assert robust_own_z(-4.6, calm) == pytest.approx(-4.6 / (1.4826 * 0.2), rel=1e-6)
    assert robust_own_z(1.0, []) is None


EXPECTED = {  # the table, with the default rules
    "bitmex-2020-03-12": ("alert", {"fund_anomaly"}),
    "binance-2020-05-10": ("critical", {"fund_drawdown"}),
    "bitmex-2020-03-peers": ("no_divergence", None),
    "dydx-2023-11-17": ("critical", {"fund_drawdown"}),
    "bitmex-2017-03": ("critical", {"fund_drawdown"}),
    "hyperliquid-2025-03-12": ("quiet", set()),
    "binance-2025-10-10": ("alert", {"fund_drawdown"}),
    "bybit-2025-12-restructure": ("restructure", set()),
    "drift-2026-04-transfer": ("transfer", set()),
    "calm-90d": ("none", set()),
}


def test_replay_of_the_incident_library_with_the_default_rules() -> None:
    library = {i.id: i for i in load_library()}
    assert set(library) == set(EXPECTED)
    assert all(i.source for i in library.values())
    outcomes = {o.incident.id: o for o in replay(load_settings(None, None))}
    for incident_id, (expect, rules) in EXPECTED.items():
        outcome = outcomes[incident_id]
        assert outcome.incident.expect == expect
        assert outcome.passed, (incident_id, outcome.why, [s.message for s in outcome.signals])
        venue = outcome.incident.venue
        fired = {s.rule for s in outcome.signals if venue in ("*", s.venue)}
        if rules is not None:
            assert rules <= fired if rules else not fired, (incident_id, fired)
    bitmex = next(s for s in outcomes["bitmex-2020-03-12"].signals if s.rule == "fund_anomaly")
    assert bitmex.message.startswith("BitMEX BTC pool XBt fund \u22124.6 % in 24 h, ")
    assert "its usual daily move (own-history robust z \u2212" in bitmex.message
    assert {s.severity for s in outcomes["binance-2020-05-10"].signals if s.venue == "binance"} >= {"critical"}
    assert not [s for s in outcomes["bitmex-2020-03-peers"].signals if s.venue == "bitmex"]
    assert outcomes["bybit-2025-12-restructure"].restructures >= 2
    assert outcomes["drift-2026-04-transfer"].transfers == 1
    assert outcomes["calm-90d"].signals == []


def test_drawdown_ignores_a_transfer_or_restructure_in_its_window() -> None:
    from alerts import fund_rules
    from alerts.parameters import DrawdownParams
    from metrics.alert_rows import FundWindow

    row = FundWindow("drift", "insurance", "USDC", 24.0, 86_400.0, 2, 20e6, T, 10e6, T, max_usd=20e6)
    assert [s.severity for s in fund_rules.fund_drawdown([row], DrawdownParams())] == ["critical"]
    kinds = {("drift", "insurance", "USDC"): ("transfer",)}
    assert fund_rules.fund_drawdown([row], DrawdownParams(), recent_kinds=kinds) == []
    older = {("drift", "insurance", "USDC"): ("trading", "transfer")}  # the transfer was the day before
    assert fund_rules.fund_drawdown([row], DrawdownParams(), recent_kinds=older)


def test_incident_annotations_are_dated_with_a_source() -> None:
    from alerts.incidents import chart_annotations

    notes = chart_annotations()
    assert [a.day.isoformat() for a in notes][:2] == ["2017-03-10", "2020-03-12"]
    assert all(a.source and a.venues for a in notes)
    assert len(notes) == len(EXPECTED) - 1  # every incident but the calm reference


def test_replay_cli_exits_non_zero_on_a_mismatch(tmp_path: Path) -> None:
    """Thresholds raised so far that BitMEX's 2017 depletion is only a warning: the replay says so."""
    config = write(tmp_path, "[alerts.rules.fund_drawdown]\nparams = {critical_pct = 101}\n")
    result = backstop("--config", str(config), "replay", "bitmex-2017-03", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "verdict: FAIL — expected a critical alert for bitmex" in result.stdout
    assert result.stdout.rstrip().endswith("0/1 incidents as expected; differ: bitmex-2017-03")
    ok = backstop("replay", "calm-90d", cwd=tmp_path)
    assert ok.returncode == 0 and "verdict: PASS" in ok.stdout
    unknown = backstop("replay", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.startswith("backstop: error: unknown incident 'nope'")


def test_one_fund_as_of_definition_for_dashboard_and_alerts(tmp_path: Path) -> None:
    """A pool silent for longer than 3 x its cadence drops out of the venue's total and of the alert inputs
    alike; one that is merely quiet counts in both (storage.fund_asof)."""
    from decimal import Decimal

    from collectors.base import Batch, FundBalance
    from storage.assessments import AssessmentConfig, load_assessments
    from storage.db import read_connection
    from storage.fund_inputs import fund_windows
    from storage.writer import Store

    def point(pool: str, ts: datetime, value: float) -> FundBalance:
        return FundBalance(venue="okx", pool_id=pool, asset="USDT", ts=ts, balance=Decimal(str(value)),
                           balance_raw=str(value), unit_raw="USDT")

    end = datetime(2026, 1, 10, tzinfo=UTC)
    batch = Batch()
    for hour in range(0, 48):
        ts = end - timedelta(hours=hour)
        batch.funds.append(point("live", ts, 100.0))
        if hour >= 4:  # silent for the last 4 h: gone at an hourly cadence, current at a daily one
            batch.funds.append(point("stopped", ts, 50.0))
    db = tmp_path / "asof.duckdb"
    Store(db).write(batch)
    for expected_s, total, pools in ((3_600.0, 100.0, {"live"}), (86_400.0, 150.0, {"live", "stopped"})):
        config = AssessmentConfig(fund_expected_s={"okx": expected_s})
        venue = next(a for a in load_assessments(db, end, config) if a.is_venue)
        assert venue.fund_usd == pytest.approx(total)
        with read_connection(db) as con:
            windows = fund_windows(con, end, [24.0], {"okx": expected_s})
        assert {w.pool_id for w in windows} == pools


def test_computed_exports_neutralise_formulas_and_keep_numbers(tmp_path: Path) -> None:
    import pandas as pd

    from storage.export import write_frame_csv

    frame = pd.DataFrame({"venue": ["=HYPERLINK(1)", "okx"], "change_24h_pct": [-4.6, None],
                          "as_of": [T, T], "reasons": ["-1 pool down", "fine"]})
    out = tmp_path / "a.csv"
    assert write_frame_csv(frame, out) == 2
    lines = out.read_text().splitlines()
    assert lines[0] == "venue,change_24h_pct,as_of,reasons"
    assert lines[1] == "'=HYPERLINK(1),-4.6,2026-01-01T12:00:00.000000Z,'-1 pool down"
    assert lines[2] == "okx,,2026-01-01T12:00:00.000000Z,fine"


def test_exports_and_status_on_an_empty_database(tmp_path: Path) -> None:
    from storage.db import ensure_database

    db = tmp_path / "empty.duckdb"
    ensure_database(db)
    for dataset in ("assessments", "fund-changes"):
        result = backstop("--db", str(db), "export", dataset, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("venue,") and len(result.stdout.splitlines()) == 1
    status = backstop("--db", str(db), "status", cwd=tmp_path)
    assert status.returncode == 0 and "assessments: nothing collected yet" in status.stdout


def test_charts_annotate_the_incident_library_with_sources() -> None:
    """The Funds chart's event bands: the curated stress events plus the replay's incidents (once per day
    and venue), each with its source."""
    from dashboard.charts import stress_events

    events = stress_events(datetime(2017, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
    assert not events.duplicated(["date", "venue"]).any() and (events["source"] != "").all()
    dydx = events[events["venue"] == "dydx"]
    assert dydx["what_happened"].iloc[0].startswith("dYdX v3 insurance fund, YFI, 17 Nov 2023")
    assert "runfi.com" in dydx["source"].iloc[0]
    assert len(events[(events["venue"] == "bitmex") & (events["date"] == "2020-03-12")]) == 1  # CSV row kept


def test_stress_consumption_of_a_whole_fund_puts_the_venue_on_watch() -> None:
    """#13: the state takes the stress figure into account (>= 100 % of the fund at a 20 % fall: watch)."""
    calm = M.assess(inputs(stress_consumption_pct=35.0))
    assert calm.state == M.HEALTHY and calm.stress_consumption_pct == 35.0
    consumed = M.assess(inputs(stress_consumption_pct=140.0))
    assert consumed.state == M.WATCH
    assert consumed.reasons == ("a 20 % fall would consume ~140 % of this fund (stress estimate: ADL likely)",)


def test_every_assessment_carries_the_stress_tables_figure(sim_factory, tmp_path: Path) -> None:
    """The figure on the assessment is the Stress page's (storage.stress_inputs), for venue and pool rows."""
    import asyncio

    from backstop.service import Collector
    from storage.assessments import load_assessments
    from storage.stress_inputs import stress_table, venue_consumption
    from tests.conftest import settings_for

    venues = ["okx", "gate", "hyperliquid"]
    sim = sim_factory(venues)
    settings = settings_for(sim, tmp_path / "s.duckdb", venues)

    async def cycle() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            await collector.run_cycle()

    asyncio.run(cycle())
    at = datetime.now(UTC)
    assessed = {(a.venue, a.pool_id): a for a in load_assessments(settings.db, at)}
    frame = stress_table(settings.db, 20.0, "down", now=at)
    per_venue = venue_consumption(frame)
    checked = 0
    for row in per_venue.itertuples():
        if row.consumption_pct == row.consumption_pct:  # not NaN
            assert assessed[(row.venue, M.ALL_POOLS)].stress_consumption_pct == pytest.approx(row.consumption_pct)
            checked += 1
    for row in frame.itertuples():
        if (row.venue, row.pool_id) in assessed and row.consumption_pct == row.consumption_pct:
            assert assessed[(row.venue, row.pool_id)].stress_consumption_pct == pytest.approx(row.consumption_pct)
            checked += 1
    assert checked >= len(venues)
