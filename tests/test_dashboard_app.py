"""The Streamlit app through AppTest: every page on the fixture, on an empty and a missing database, URL
controls, banners, and the figures on screen checked against values computed here from the raw points."""

from __future__ import annotations

import base64
import json
import statistics
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from metrics.formatting import fmt_pct
from tests.test_dashboard_fixture import FORMULA_ERROR, Fixture, build_empty, build_fixture

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = ["views/overview.py", "views/funds.py", "views/coverage.py", "views/divergence.py", "views/health.py"]


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return build_fixture(tmp_path_factory.mktemp("dash") / "fixture.duckdb")


@pytest.fixture
def app(fx: Fixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("BACKSTOP_DB", str(fx.path))
    monkeypatch.delenv("BACKSTOP_SIMULATED", raising=False)
    yield AppTest.from_file(APP, default_timeout=60)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def texts(at: AppTest) -> list[str]:
    out = [str(e.value) for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error",
                                     "success", "text") for e in at.get(kind)]
    return out


def plotly_values(values: object) -> list[float]:
    """Plotly JSON arrays are plain lists or typed base64 ({"dtype", "bdata"})."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)  # type: ignore[call-overload]


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with column {column!r}")


def test_every_page_renders_on_the_fixture(app: AppTest) -> None:
    app.run()
    no_exception(app)
    for page in PAGES[1:]:
        app.switch_page(page).run()
        no_exception(app)
        assert app.title, page
        assert app.get("download_button"), f"{page} has no CSV download"


@pytest.mark.parametrize("kind", ["empty", "missing"])
def test_every_page_explains_how_to_start(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "empty.duckdb"
    if kind == "empty":
        build_empty(db)
    monkeypatch.setenv("BACKSTOP_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60).run()
    for page in [None, *PAGES[1:]]:
        if page:
            at.switch_page(page).run()
        no_exception(at)
        shown = " ".join(texts(at))
        assert "Backstop has no data yet" in shown
        assert "backstop collect" in shown and "backstop demo" in shown
    assert not db.exists() or kind == "empty"  # a missing database is never created by the dashboard


def test_overview_figures_match_independent_computation(app: AppTest, fx: Fixture) -> None:
    from backstop.catalog import catalog

    name = {k: v.display_name for k, v in catalog(list(fx.funds_usd)).items()}
    app.run()
    no_exception(app)
    table = frame_with(app, "coverage").set_index("venue")
    now = fx.now
    # ranked worst first: Gate's 18 % fall (stressed), then HTX (blind: stale for 5 days), then the healthy
    assert list(table.index[:2]) == [name["gate"], name["htx"]]
    assert table.loc[name["gate"], "state"] == "stressed" and table.loc[name["htx"], "state"] == "blind"
    assert table.loc[name["okx"], "state"] == "healthy"
    # coverage = fund / OI, both as of the newest point, summed over pools / contracts
    okx_cov = fx.fund_at("okx", now) / fx.oi_at("okx", now) * 100
    assert table.loc[name["okx"], "coverage"] == fmt_pct(okx_cov, 2)
    for venue in ("binance", "gate", "bitmex"):
        expected = (fx.fund_at(venue, now) / fx.fund_at(venue, now - timedelta(hours=24)) - 1) * 100
        assert table.loc[name[venue], "24 h"] == fmt_pct(expected, signed=True)
    assert "None" not in table.drop(columns=["trend"]).to_string()
    # "what needs attention now" names Gate first, with its state badge
    attention = [m.value for m in app.markdown if "STRESSED" in m.value or "BLIND" in m.value]
    assert attention and name["gate"] in attention[0] and "STRESSED" in attention[0]
    shown = " ".join(texts(app))
    assert "Backstop is blind on" in shown and "HTX" in shown


def test_divergence_z_score_matches_independent_computation(app: AppTest, fx: Fixture) -> None:
    app.switch_page("views/divergence.py")
    app.run()
    app.switch_page("views/divergence.py").run()
    no_exception(app)
    table = frame_with(app, "robust z")
    day = table[table["window"] == "24 h"].set_index("venue")
    now = fx.now
    fresh = [v for v in fx.funds_usd if v != "htx"]  # HTX is stale: left out of the comparison
    changes = {v: (fx.fund_at(v, now) / fx.fund_at(v, now - timedelta(hours=24)) - 1) * 100 for v in fresh}
    # leave-one-out robust z (metrics.divergence), computed here from the raw points
    peers = [c for v, c in changes.items() if v != "gate"]
    med = statistics.median(peers)
    mad = statistics.median([abs(c - med) for c in peers])
    z_gate = (changes["gate"] - med) / max(1.4826 * mad, 0.5, abs(med))
    assert len(day) == len(fresh)
    gate = next(n for n in day.index if n.startswith("Gate"))
    assert day.loc[gate, "robust z"] == f"{z_gate:+.1f}".replace("-", "−")
    assert bool(day.loc[gate, "flagged"]) and not day.drop(index=gate)["flagged"].any()
    warnings = [w.value for w in app.warning]
    assert any("−18.0 % in 24 h while the other venues" in w.replace("\\", "") for w in warnings)
    captions = " ".join(c.value for c in app.caption)
    assert "Left out (stale data): HTX" in captions


def test_coverage_per_pool_uses_pool_members(app: AppTest, fx: Fixture) -> None:
    app.switch_page("views/coverage.py")
    app.run()
    app.switch_page("views/coverage.py").run()
    no_exception(app)
    pools = frame_with(app, "contracts with OI").set_index(["venue", "pool"])
    bybit = next(n for n, _ in pools.index if n.startswith("Bybit"))
    members = fx.members[("bybit", "USDT")]
    fund = fx.funds_usd["bybit"][("USDT", "USDT")][-1][1]
    expected = fund / fx.oi_at("bybit", fx.now, members) * 100
    assert pools.loc[(bybit, "USDT"), "coverage"] == fmt_pct(expected, 2)
    iso = fx.funds_usd["bybit"][("1000PEPEUSDT", "USDT")][-1][1] / fx.oi_at("bybit", fx.now, ["1000PEPEUSDT"]) * 100
    assert pools.loc[(bybit, "1000PEPEUSDT"), "coverage"] == fmt_pct(iso, 2)
    assert not ({"None", "nan", "NaN"} & {str(v) for v in pools.to_numpy().ravel()})
    # the venue chart: one continuous line per venue with coverage, clean log ticks, the alert floor
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert all(t.get("connectgaps") for t in spec["data"]) and len(spec["data"]) == len(fx.funds_usd)
    assert spec["layout"]["yaxis"]["type"] == "log"
    assert all(str(t).endswith(" %") for t in spec["layout"]["yaxis"]["ticktext"])
    assert any("alert floor" in a["text"] for a in spec["layout"]["annotations"])


def test_bad_url_params_fall_back_with_a_notice(app: AppTest) -> None:
    app.query_params["range"] = "<script>"
    app.query_params["venues"] = "okx,nope"
    app.run()
    no_exception(app)
    notices = " ".join(i.value for i in app.info)
    assert "Unknown time range" in notices and "Unknown venue" in notices
    assert app.selectbox(key="ctl_range").value == "7d"
    assert app.multiselect(key="ctl_venues").value == ["okx"]
    assert app.query_params.get("range") in ("7d", ["7d"])
    # the filter applies: only OKX in the ranked table
    assert frame_with(app, "coverage")["venue"].tolist() == ["OKX"]  # display name
    app.multiselect(key="ctl_venues").set_value(["gate", "okx"]).run()
    no_exception(app)
    assert app.query_params.get("venues") in ("gate,okx", ["gate,okx"])


@pytest.mark.parametrize("payload", ["![a](http://evil.example/pixel.png)",
                                     "[Log in again](https://evil.example/)"])
def test_url_parameters_are_never_rendered_as_markdown(payload: str, app: AppTest) -> None:
    app.query_params["range"] = payload
    app.query_params["venues"] = f"okx,{payload}"
    app.run()
    no_exception(app)
    markdown_like = [str(e.value) for kind in ("markdown", "info", "warning", "error", "caption", "success")
                     for e in app.get(kind)]
    assert not any("evil.example" in text for text in markdown_like)
    plain = [str(t.value) for t in app.text]
    assert f"not understood: {payload}" in plain  # shown, verbatim, as plain text


def test_simulated_banner_on_every_page(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKSTOP_SIMULATED", "1")
    app.run()
    for page in [None, *PAGES[1:]]:
        if page:
            app.switch_page(page).run()
        no_exception(app)
        assert any("SIMULATED DATA" in w.value for w in app.warning), page


def test_health_page_shows_exchange_text_as_plain_data(app: AppTest) -> None:
    app.switch_page("views/health.py")
    app.run()
    app.switch_page("views/health.py").run()
    no_exception(app)
    table = frame_with(app, "last_error_message")
    assert FORMULA_ERROR in table["last_error_message"].tolist()  # shown verbatim in a table, not rendered
    assert not any(FORMULA_ERROR in t for t in texts(app))  # never in markdown
    row = table[(table["venue"] == "okx") & (table["dataset"] == "funds")].iloc[0]
    assert row["freshness"] == "fresh" and row["success_rate_24h"] == 1.0


def button_group(at: AppTest, key: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button_group if b.key == key)


def test_funds_page_controls(app: AppTest) -> None:
    app.switch_page("views/funds.py")
    app.run()
    app.switch_page("views/funds.py").run()
    no_exception(app)
    # the fixture's funds range from $21 M to $1.9 B (> 10×): log scale by default, and in the URL
    assert button_group(app, "funds-scale").value == "log"
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["yaxis"]["type"] == "log"
    assert app.query_params.get("funds-scale") in ("log", ["log"])
    button_group(app, "funds-scale").set_value("indexed")
    app.run()
    no_exception(app)
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    firsts = [plotly_values(trace["y"])[0] for trace in spec["data"] if trace.get("y") is not None]
    assert firsts and all(v == pytest.approx(100.0) for v in firsts)
    assert app.query_params.get("funds-scale") in ("indexed", ["indexed"])
    app.radio(key="funds-unit").set_value("native").run()
    no_exception(app)
    app.selectbox(key="funds-by").set_value("pool_asset").run()
    no_exception(app)
    assert app.query_params.get("funds-by") in ("pool_asset", ["pool_asset"])


def test_funds_controls_start_from_the_url(app: AppTest) -> None:
    app.query_params.update({"funds-scale": "linear", "funds-unit": "native", "funds-overlays": "alerts,bogus"})
    app.switch_page("views/funds.py")
    app.run()
    app.switch_page("views/funds.py").run()
    no_exception(app)
    assert button_group(app, "funds-scale").value == "linear"
    assert app.radio(key="funds-unit").value == "native"
    assert button_group(app, "funds-overlays").value == ["alerts"]


def test_funds_chart_shows_cascades_and_alert_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Detected cascades shade the fund chart; alerts are markers whose hover text is escaped, never HTML."""
    from dashboard.charts import CASCADE_FILL
    from storage.writer import Store

    fx = build_fixture(tmp_path / "marks.duckdb")
    start, end = fx.now - timedelta(hours=30), fx.now - timedelta(hours=29)
    sentence = "OKX <b>pool</b> −22.4 % in 8 h =HYPERLINK(\"x\")"

    def insert(con) -> None:  # type: ignore[no-untyped-def]
        con.execute(
            "INSERT INTO cascades (venue, start_ts, end_ts, last_minute, peak_ts, peak_usd, total_long_usd, "
            "total_short_usd, baseline_usd, threshold_usd, minutes, ongoing, incomplete, lower_bound, params, "
            "detected_at, updated_at) VALUES ('okx', ?, ?, ?, ?, 1e6, 9e6, 1e6, 1e4, 1e5, 60, false, false, "
            "true, '{}', ?, ?)", [start, end, end, start, end, end])
        con.execute(
            "INSERT INTO alerts (alert_id, dedup_key, rule, venue, scope, status, severity, max_severity, message, "
            "first_message, metrics, data_ts, fired_at, last_seen_at, evaluations) VALUES ('a1', 'k', "
            "'fund_drawdown', 'okx', 'okx:USDT', 'firing', 'critical', 'critical', ?, ?, '{}', ?, ?, ?, 1)",
            [sentence, sentence, end, end, end])

    Store(fx.path).execute_write(insert)
    monkeypatch.setenv("BACKSTOP_DB", str(fx.path))
    monkeypatch.delenv("BACKSTOP_SIMULATED", raising=False)
    app = AppTest.from_file(APP, default_timeout=60)
    app.switch_page("views/funds.py")
    app.run()
    app.switch_page("views/funds.py").run()
    no_exception(app)
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    markers = [t for t in spec["data"] if t.get("name") == "alert: critical"]
    assert len(markers) == 1 and markers[0]["yaxis"] == "y2"
    hover = markers[0]["hovertext"][0]
    assert "&lt;b&gt;pool&lt;/b&gt;" in hover and "<b>" not in hover
    bands = [s for s in spec["layout"]["shapes"] if s.get("fillcolor") == CASCADE_FILL]
    assert len(bands) == 1 and bands[0]["x0"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
    assert any("cascade · OKX" in a["text"] for a in spec["layout"]["annotations"])

    button_group(app, "funds-overlays").set_value(["events"]).run()
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert not [t for t in spec["data"] if str(t.get("name", "")).startswith("alert")]
    assert not any("cascade" in a["text"] for a in spec["layout"].get("annotations", []))
