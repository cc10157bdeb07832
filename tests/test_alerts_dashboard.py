"""The Alerts page (Streamlit AppTest): firing and history tables, filters, CSV export, and exchange text
shown as text, never as markdown/HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.context import AppContext
from dashboard.page import STATE_KEY, PageState, venue_catalog
from dashboard.params import Controls
from metrics.alert_rows import Signal
from storage import alert_store as A
from storage.writer import Store

PAGE = Path(__file__).resolve().parents[1] / "dashboard" / "views" / "alerts.py"
NOW = datetime.now(UTC).replace(microsecond=0)
HOSTILE = "<script>alert(1)</script>**bold** =HYPERLINK(\"x\")"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "page.duckdb"
    store = Store(path)
    firing = Signal("fund_drawdown", "okx", "funds", "critical", f"OKX USDT pool {HOSTILE} −22.4 % in 8 h",
                    {"drawdown_pct": -22.4}, NOW - timedelta(hours=1))
    old = Signal("stale", "bybit", "venue", "warning", "Bybit v5 monitor blind — funds", {}, NOW - timedelta(hours=5))
    store.execute_write(lambda con: A.apply_changes(con, NOW - timedelta(hours=5), [A.AlertOpen("old", old, True)], [], []))
    store.execute_write(lambda con: A.apply_changes(con, NOW - timedelta(hours=4), [], [], [A.AlertResolve("old", "cleared")]))
    store.execute_write(lambda con: A.apply_changes(con, NOW - timedelta(hours=1), [A.AlertOpen("new", firing, False)], [], []))
    return path


def page(db: Path) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=30)
    ctx = AppContext(db=str(db), simulated=False, refresh_s=60, cache_ttl_s=5, intervals={})
    known = ("bybit", "okx")
    state = PageState(ctx, Controls("7d"), known, known, venue_catalog(list(known)), NOW,
                      NOW - timedelta(days=7), True)
    at.session_state["backstop_ctx"] = ctx
    at.session_state[STATE_KEY] = state
    return at


def test_alerts_page_tables_filters_and_text_safety(db: Path) -> None:
    at = page(db).run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["1", "1", "0"]  # firing, critical, warning
    firing, history = at.table[0].value, at.dataframe[0].value
    assert firing["rule"].tolist() == ["fund\\_drawdown"] and firing["venue"].tolist() == ["OKX"]
    # the whole sentence, escaped for the Markdown the wrapped table renders (no tag, no bold, no link)
    assert firing["what happened"].iloc[0].startswith("OKX USDT pool \\<script\\>alert\\(1\\)")
    assert not bool(history[history["rule"] == "fund_drawdown"]["notified"].iloc[0])  # kept quiet by the cooldown
    assert sorted(history["rule"]) == ["fund_drawdown", "stale"]
    # exchange text only inside dataframes / st.text, never as markdown
    assert all(HOSTILE not in str(md.value) for md in at.markdown)
    assert any(HOSTILE in t.value for t in at.text)
    # filter by rule
    at.multiselect(key="alerts_rules").set_value(["stale"]).run()
    assert at.dataframe[0].value["rule"].tolist() == ["stale"]
    # filter by venue
    at.multiselect(key="alerts_rules").set_value([]).run()
    at.multiselect(key="alerts_venues").set_value(["okx"]).run()
    assert at.dataframe[0].value["venue"].tolist() == ["okx"]
    assert not at.exception


def test_alerts_page_without_alerts_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    at = page(path).run()
    assert not at.exception
    assert any("No alert is firing" in s.value for s in at.success)
