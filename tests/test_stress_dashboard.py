"""The Stress page through AppTest on the dashboard fixture, the CLI table and CSV export, and the URL
round trip of the sliders. Expected figures are computed here from the fixture's raw points."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from backstop.cli import main
from dashboard.params import StressControls, parse_stress_params, stress_to_params
from metrics.stress import FillModel, LeverageDistribution
from records.venue_catalog import venue_info
from tests.test_dashboard_app import plotly_values
from tests.test_dashboard_fixture import Fixture, build_fixture

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGE = "views/stress.py"


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return build_fixture(tmp_path_factory.mktemp("stress-dash") / "fixture.duckdb")


@pytest.fixture
def app(fx: Fixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("BACKSTOP_DB", str(fx.path))
    monkeypatch.delenv("BACKSTOP_SIMULATED", raising=False)
    yield AppTest.from_file(APP, default_timeout=60)


def expected_gate_pct(fx: Fixture, move_pct: float, fill_degradation: float = 0.5) -> float:
    """Gate: one USDT pool backing every Gate contract, fund and OI from the fixture's newest points."""
    oi = sum(points[-1][1] for points in fx.oi_usd["gate"].values())
    fund = sum(points[-1][1] for points in fx.funds_usd["gate"].values())
    liquidated = oi * LeverageDistribution().liquidated_share(move_pct / 100)
    deficit = liquidated * FillModel(fill_degradation=fill_degradation).deficit_rate(liquidated, oi)
    return deficit / fund * 100


def open_page(at: AppTest, **params: str) -> AppTest:
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def chart_bars(at: AppTest) -> dict[str, float]:
    import json

    charts = [c for c in at.get("plotly_chart")]
    spec = json.loads(charts[0].proto.spec)
    bar = spec["data"][0]
    return dict(zip(bar["y"], plotly_values(bar["x"]), strict=True))


def test_stress_page_renders_estimates_per_venue(app: AppTest, fx: Fixture) -> None:
    at = open_page(app)
    assert any("20 % move down" in str(h.value) for h in at.subheader)
    assert any("Estimates, not forecasts" in str(c.value) for c in at.caption)
    table = next(df.value for df in at.dataframe if "consumption % of fund (est.)" in df.value.columns)
    assert set(table["basis"]) == {"estimate"}
    gate = table[table["venue"] == "gate"].iloc[0]
    assert gate["consumption % of fund (est.)"] == pytest.approx(expected_gate_pct(fx, 20), rel=1e-9)
    assert gate["calibration"].startswith("default")
    bars = chart_bars(at)
    assert bars[venue_info("gate").display_name] == pytest.approx(expected_gate_pct(fx, 20), rel=1e-9)
    assert list(bars.values()) == sorted(bars.values())  # sorted (largest on top of a horizontal chart)
    assert at.get("download_button")
    stale = venue_info("htx").display_name  # the fixture's HTX stopped 5 days ago: no OI, consumption unknown
    assert any("consumption unknown" in str(c.value) and stale in str(c.value) for c in at.caption)
    assert pd.isna(table[table["venue"] == "htx"].iloc[0]["consumption % of fund (est.)"])
    assert stale not in bars  # unknown, not 0 %


def test_sliders_drive_the_table_and_the_url(app: AppTest, fx: Fixture) -> None:
    at = open_page(app, move="30", dir="up", fill="1")
    assert at.slider(key="stress_move").value == 30 and at.radio(key="stress_dir").value == "up"
    table = next(df.value for df in at.dataframe if "consumption % of fund (est.)" in df.value.columns)
    gate = table[table["venue"] == "gate"].iloc[0]
    assert gate["consumption % of fund (est.)"] == pytest.approx(expected_gate_pct(fx, 30, 1.0), rel=1e-9)
    at.slider(key="stress_move").set_value(10).run()
    assert at.query_params["move"] == ["10"] or at.query_params["move"] == "10"
    table = next(df.value for df in at.dataframe if "consumption % of fund (est.)" in df.value.columns)
    assert table[table["venue"] == "gate"].iloc[0]["consumption % of fund (est.)"] == pytest.approx(
        expected_gate_pct(fx, 10, 1.0), rel=1e-9)


def test_family_toggle_moves_only_the_funds_asset(app: AppTest) -> None:
    at = open_page(app)
    at.toggle(key="stress_family").set_value(True).run()
    assert not at.exception
    assert at.query_params["scope"] in ("family", ["family"])
    table = next(df.value for df in at.dataframe if "consumption % of fund (est.)" in df.value.columns)
    assert set(table["assets moved"]) == {"family"}


def test_bad_url_values_fall_back_with_a_notice(app: AppTest) -> None:
    at = open_page(app, move="abc", dir="sideways")
    assert at.slider(key="stress_move").value == 20 and at.radio(key="stress_dir").value == "down"
    notices = [str(i.value) for i in at.info]
    assert any("move='abc'" in n for n in notices) and any("sideways" in n for n in notices)


def test_stress_params_round_trip() -> None:
    controls = StressControls(25, 0.75, "up", "family")
    assert parse_stress_params(stress_to_params(controls), 0.5) == controls
    assert parse_stress_params({"move": "1000"}, 0.5).move_pct == 20


def test_cli_table_and_export(fx: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(fx.path), "stress", "--move", "20", "--venue", "gate", "--direction", "down"]) == 0
    printed = capsys.readouterr().out
    assert "gate" in printed and f"~{expected_gate_pct(fx, 20):,.1f} %" in printed and "estimate" in printed
    out = tmp_path / "stress.csv"
    assert main(["--db", str(fx.path), "export", "stress", "--move", "20", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    for column in ("venue", "pool_id", "direction", "move_pct", "liquidated_usd", "deficit_usd", "fund_usd",
                   "consumption_pct", "adl_likely", "calibration"):
        assert column in rows[0]
    gate_down = next(r for r in rows if r["venue"] == "gate" and r["direction"] == "down")
    assert float(gate_down["consumption_pct"]) == pytest.approx(expected_gate_pct(fx, 20), rel=1e-9)
    assert {r["direction"] for r in rows} == {"down", "up"}


def test_cli_bad_input_is_one_line(fx: Fixture, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", str(fx.path), "stress", "--move", "-5"]) != 0
    err = capsys.readouterr().err
    assert "--move" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["--db", str(fx.path), "export", "funds", "--move", "20"]) != 0
    assert main(["--db", str(fx.path), "export", "stress", "--since", "7d"]) != 0
    assert "do not apply" in capsys.readouterr().err


def test_stress_config_section(fx: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "backstop.toml"
    config.write_text("[stress]\nfill_degradation = 1.0\n")
    out = tmp_path / "stress.csv"
    assert main(["--config", str(config), "--db", str(fx.path), "export", "stress", "--out", str(out)]) == 0
    gate = next(r for r in csv.DictReader(io.StringIO(out.read_text())) if r["venue"] == "gate")
    assert float(gate["consumption_pct"]) == pytest.approx(expected_gate_pct(fx, 20, 1.0), rel=1e-9)
    capsys.readouterr()
    config.write_text('[stress]\nleverage_tiers = { "2" = 0.9, "3" = 0.5 }\n')
    assert main(["--config", str(config), "--db", str(fx.path), "stress"]) != 0
    err = capsys.readouterr().err
    assert "stress" in err and "more than 1" in err and len(err.strip().splitlines()) == 1
