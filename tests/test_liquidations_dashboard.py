"""Liquidations page: lower-bound labels, per-venue totals, and the page rendered headless (AppTest) on a
small database with a cascade and a gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from streamlit.testing.v1 import AppTest

from collectors.liquidations.base import LiquidationGap, LiquidationRecord
from collectors.liquidations.binance import USDM
from collectors.liquidations.bybit import FEEDS as BYBIT
from dashboard.views.liquidations import figure, usd_label, venue_totals
from storage import liquidation_reads, liquidation_writes
from storage.db import write_connection


def test_usd_labels() -> None:
    assert usd_label(12_345_678, True) == "≥ $12.3 M"
    assert usd_label(12_345_678, False) == "$12.3 M"
    assert usd_label(2_500_000_000, False) == "$2.5 B"
    assert usd_label(950, True) == "≥ $950"


def test_venue_totals_carry_the_flags() -> None:
    volumes = pd.DataFrame({
        "bucket": [1, 2, 1], "venue": ["binance", "binance", "bybit"], "long_usd": [1.0, 2.0, 5.0],
        "short_usd": [1.0, 0.0, 0.0], "total_usd": [2.0, 2.0, 5.0], "lower_bound": [True, True, False],
        "incomplete": [False, True, False]})
    totals = venue_totals(volumes).set_index("venue")
    assert totals.loc["binance", "total_usd"] == 4 and totals.loc["binance", "incomplete"]
    assert totals.loc["binance", "lower_bound"] and not totals.loc["bybit", "lower_bound"]
    assert list(totals.index) == ["bybit", "binance"]  # largest first


def rec(feed, n: int, ts: datetime, usd: float, side: str) -> LiquidationRecord:
    return LiquidationRecord(feed.venue, feed.feed, feed.source, f"k{n}", ts, "BTCUSDT", "BTC", "USDT", side,
                             60_000.0, "bankruptcy", usd / 60_000, None, None, False, usd, "base_x_price",
                             feed.coverage, feed.lower_bound, "{}", ts)


def page(db: str) -> None:
    from dashboard.views.liquidations import render

    render(db)


def test_page_renders_bars_labels_cascades_and_gaps(tmp_path) -> None:
    db = tmp_path / "dash.duckdb"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = [rec(USDM, i, now - timedelta(minutes=90 - i), 12_300_000 / 60, "long") for i in range(60)]
    rows += [rec(BYBIT["linear"], 100 + i, now - timedelta(minutes=60 - i), 50_000.0, "short") for i in range(30)]
    with write_connection(db) as con:
        liquidation_writes.write_batch(con, rows, [("open", LiquidationGap("binance", USDM.feed, now - timedelta(minutes=20),
                                                            now - timedelta(minutes=18), "ConnectionError"))],
                        [USDM, BYBIT["linear"]])
    from collectors.base import LIQUIDATION_TOTALS, Batch, LiquidationTotal
    from storage.writer import Store

    gate = [LiquidationTotal("gate", "BTC_USDT", now - timedelta(minutes=m), 300, 1_000.0, 250.0, 0.02, 0.005,
                             "200", "50") for m in (10, 15, 20)]
    Store(db).write(Batch(extra={LIQUIDATION_TOTALS: gate}))
    app = AppTest.from_function(page, args=(str(db),), default_timeout=30).run()
    assert not app.exception, app.exception
    reported = next(df.value for df in app.dataframe if "buckets" in df.value.columns)
    assert reported.to_dict("records")[0] | {"newest_bucket": None} == {
        "venue": "Gate futures", "long_usd": 3_000.0, "short_usd": 750.0, "total_usd": 3_750.0, "contracts": 1,
        "buckets": 3, "newest_bucket": None}
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Longs liquidated"] == "≥ $12.3 M"  # Binance is sampled: a lower bound
    assert metrics["Shorts liquidated"] == "≥ $1.5 M"
    assert len(app.dataframe) >= 3  # venue-reported totals + feeds + gaps tables
    volumes = liquidation_reads.liquidation_volumes(db, "15m", now - timedelta(hours=3), now + timedelta(minutes=1))
    cascades = pd.DataFrame([{"venue": "market", "start_ts": now - timedelta(minutes=30), "end_ts": pd.NaT}])
    fig = figure(volumes, cascades, liquidation_reads.liquidation_gaps(db), now - timedelta(hours=3), now)
    assert {t.name for t in fig.data} == {"longs liquidated", "shorts liquidated"}
    assert any("≥ $12.3 M" in a.text for a in fig.layout.annotations)
    assert len(fig.layout.shapes) == 3  # the market cascade on both rows + Binance's gap
