"""Liquidations page: long/short liquidated USD per venue (stacked bars), detected cascades shaded, feed
gaps marked, and every sampled feed's number labelled as a lower bound ("≥ $12.3 M").

``render(db_path, since, until, venues)`` draws the page; the dashboard app owns navigation and passes the
database path and the sidebar's range and venues (``page_body``).
Exchange text (symbols, notes) is shown only through Streamlit's escaped widgets, never as HTML.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard.charts import CASCADE_FILL
from dashboard.model import as_float, is_missing
from dashboard.page import PageState
from dashboard.text import fmt_text
from metrics.formatting import DASH, fmt_pct, fmt_usd
from records.venue_catalog import venue_info
from storage import liquidation_reads as liq

BUCKETS_TEXT = {"5m": "5-minute", "1m": "1-minute", "15m": "15-minute", "1h": "hourly", "4h": "4-hour",
                "1d": "daily"}
LONG_COLOR = "#d62728"  # longs wiped out
SHORT_COLOR = "#2ca02c"
GAP_FILL = "rgba(128, 128, 128, 0.25)"
CACHE_TTL_S = 30


def usd_label(value: float, lower_bound: bool) -> str:
    """$12.3 M, with "≥ " in front when the number comes from a sampled feed."""
    magnitude = abs(value)
    if magnitude >= 1e9:
        text = f"${value / 1e9:,.1f} B"
    elif magnitude >= 1e6:
        text = f"${value / 1e6:,.1f} M"
    elif magnitude >= 1e3:
        text = f"${value / 1e3:,.1f} k"
    else:
        text = f"${value:,.0f}"
    return f"≥ {text}" if lower_bound else text


def venue_totals(volumes: pd.DataFrame) -> pd.DataFrame:
    """Per venue over the range: long, short, total USD, lower_bound, incomplete (any gap)."""
    if volumes.empty:
        return pd.DataFrame(columns=["venue", "long_usd", "short_usd", "total_usd", "lower_bound", "incomplete"])
    return (volumes.groupby("venue", as_index=False)
            .agg(long_usd=("long_usd", "sum"), short_usd=("short_usd", "sum"), total_usd=("total_usd", "sum"),
                 lower_bound=("lower_bound", "any"), incomplete=("incomplete", "any"))
            .sort_values("total_usd", ascending=False))


def figure(volumes: pd.DataFrame, cascades: pd.DataFrame, gaps: pd.DataFrame, since: datetime,
           until: datetime) -> go.Figure:
    """One row per venue: stacked long/short bars (hatched where a feed gap makes the bucket incomplete),
    cascades shaded (market cascades on every row), gaps in grey, the range total as a label."""
    totals = venue_totals(volumes)
    venues = totals["venue"].tolist() or ["(none)"]
    fig = make_subplots(rows=len(venues), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[
                            f"{venue_info(v).display_name}: {usd_label(as_float(t.total_usd), bool(t.lower_bound))}"
                            + (" (incomplete)" if t.incomplete else "")
                            for v, t in zip(venues, totals.itertuples(), strict=False)
                        ] or ["no liquidations in range"])
    for row, venue in enumerate(venues, start=1):
        part = volumes[volumes["venue"] == venue]
        hatch = ["/" if flag else "" for flag in part["incomplete"]]
        for column, name, color in (("long_usd", "longs liquidated", LONG_COLOR),
                                    ("short_usd", "shorts liquidated", SHORT_COLOR)):
            fig.add_trace(go.Bar(x=part["bucket"], y=part[column], name=name, marker_color=color,
                                 marker_pattern_shape=hatch, legendgroup=name, showlegend=row == 1,
                                 hovertemplate="%{x}<br>%{y:$,.0f}<extra>" + name + "</extra>"), row=row, col=1)
        for cascade in cascades.itertuples():
            if cascade.venue not in (venue, "market"):
                continue
            end = until if is_missing(cascade.end_ts) else cascade.end_ts
            fig.add_vrect(x0=cascade.start_ts, x1=end, fillcolor=CASCADE_FILL, line_width=0, row=row, col=1)
        for gap in gaps[gaps["venue"] == venue].itertuples() if not gaps.empty else []:
            end = until if is_missing(gap.end_ts) else gap.end_ts
            fig.add_vrect(x0=max(gap.start_ts, since), x1=end, fillcolor=GAP_FILL, line_width=0, row=row, col=1)
    fig.update_layout(barmode="stack", height=max(320, 220 * len(venues)), margin={"t": 40, "b": 20},
                      legend={"orientation": "h"})
    fig.update_yaxes(tickprefix="$")
    return fig


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _load(db: str, bucket: str, since: datetime, until: datetime, venues: tuple[str, ...]
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    chosen = list(venues) or None
    volumes = liq.liquidation_volumes(db, bucket, since, until, chosen)
    cascades = liq.cascade_rows(db, since, until, None if chosen is None else [*chosen, "market"])
    gaps = liq.liquidation_gaps(db, since, until)
    feeds = liq.liquidation_feeds(db)
    if chosen:
        gaps = gaps[gaps["venue"].isin(chosen)]
        feeds = feeds[feeds["venue"].isin(chosen)]
    return volumes, cascades, gaps, feeds


def default_db() -> Path:
    return Path(os.environ.get("BACKSTOP_DB", "data/backstop.duckdb"))


def auto_bucket(span: timedelta) -> str:
    """A bucket giving a readable number of bars for the range (sidebar range → bucket)."""
    for limit, bucket in ((timedelta(hours=6), "5m"), (timedelta(days=1), "15m"), (timedelta(days=7), "1h"),
                          (timedelta(days=30), "4h")):
        if span <= limit:
            return bucket
    return "1d"


def _name(venue: object) -> str:
    return "market-wide" if venue == "market" else venue_info(str(venue)).display_name




def render(db_path: Path | str | None = None, since: datetime | None = None, until: datetime | None = None,
           venues: tuple[str, ...] = (), title: bool = True) -> None:
    """The page over [since, until] (default: the last 24 h) for ``venues`` (default: all). The dashboard
    passes the sidebar's range and venues."""
    if title:
        st.header("Liquidations")
    st.caption("Liquidated positions per venue, from each venue's public liquidation feed. Most feeds are "
               "sampled by the venue, so their sums are lower bounds (shown as ≥). Hatched bars overlap a "
               "gap in a feed (a disconnect, or Backstop's collector not running); orange bands are detected cascades. The sidebar sets the range and venues.")
    db = str(db_path or default_db())
    until = until or datetime.now(UTC)
    since = since or until - timedelta(hours=24)
    choices = {"auto": f"auto ({auto_bucket(until - since)})", **liq.BUCKETS}
    bucket = st.selectbox("Bucket", list(choices), format_func=choices.__getitem__, key="liq_bucket")
    bucket = auto_bucket(until - since) if bucket == "auto" else bucket
    try:
        liq.liquidation_feeds(db)
    except FileNotFoundError as exc:
        st.info(str(exc))
        return
    volumes, cascades, gaps, feeds = _load(db, bucket, since, until, tuple(venues))
    st.caption(f"{since:%Y-%m-%d %H:%M} → {until:%Y-%m-%d %H:%M} UTC · "
               + (", ".join(_name(v) for v in venues) if venues else "all venues") + f" · {BUCKETS_TEXT[bucket]} bars")
    if volumes.empty and cascades.empty:
        st.info("No liquidations recorded in this range.")
    totals = venue_totals(volumes)
    if not totals.empty:
        lower = bool(totals["lower_bound"].any())
        cols = st.columns(3)
        cols[0].metric("Longs liquidated", usd_label(float(totals["long_usd"].sum()), lower))
        cols[1].metric("Shorts liquidated", usd_label(float(totals["short_usd"].sum()), lower))
        cols[2].metric("Cascades", f"{len(cascades)}")
    st.plotly_chart(figure(volumes, cascades, gaps, since, until), width="stretch", key="liq-chart")

    st.subheader("Cascades")
    if cascades.empty:
        st.write("No cascade detected in this range.")
    else:
        shown = pd.DataFrame({
            "venue": [_name(v) for v in cascades["venue"]],
            "from": [f"{t:%Y-%m-%d %H:%M}" for t in cascades["start_ts"]],
            "until": ["ongoing" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M}" for t in cascades["end_ts"]],
            "minutes": cascades["minutes"].astype("Int64"),
            "total": [usd_label(lo + sh, bool(lb)) for lo, sh, lb in
                      zip(cascades["total_long_usd"], cascades["total_short_usd"], cascades["lower_bound"],
                          strict=True)],
            "longs": [usd_label(v, bool(lb)) for v, lb in zip(cascades["total_long_usd"], cascades["lower_bound"],
                                                               strict=True)],
            "shorts": [usd_label(v, bool(lb)) for v, lb in zip(cascades["total_short_usd"],
                                                                cascades["lower_bound"], strict=True)],
            "peak minute": [usd_label(v, bool(lb)) for v, lb in zip(cascades["peak_usd"], cascades["lower_bound"],
                                                                     strict=True)],
            "asset": [fmt_text(v) for v in cascades["dominant_asset"]],
            "price move": [fmt_pct(v, signed=True) for v in cascades["price_move_pct"]],
            "fund change": [DASH if pd.isna(v) else fmt_usd(v) for v in cascades["fund_change_usd"]],
            "incomplete": cascades["incomplete"].astype(bool),
        })
        st.dataframe(shown, hide_index=True, width="stretch")

    reported = liq.venue_reported_totals(db, since, until)
    if venues:
        reported = reported[reported["venue"].isin(venues)]
    if not reported.empty:
        st.subheader("Venue-reported totals")
        st.caption("What venues publish as their own liquidation totals (Gate: long/short USD per completed "
                   "5-minute bucket of contract_stats), beside the sampled feeds above.")
        st.dataframe(reported.assign(venue=[_name(v) for v in reported["venue"]]), hide_index=True,
                     width="stretch", column_config={
                         "long_usd": st.column_config.NumberColumn("longs (USD)", format="dollar"),
                         "short_usd": st.column_config.NumberColumn("shorts (USD)", format="dollar"),
                         "total_usd": st.column_config.NumberColumn("total (USD)", format="dollar"),
                         "newest_bucket": st.column_config.DatetimeColumn("newest bucket (UTC)",
                                                                          format="YYYY-MM-DD HH:mm")})

    st.subheader("Feeds and coverage")
    if not feeds.empty:
        st.dataframe(pd.DataFrame({
            "venue": [_name(v) for v in feeds["venue"]], "feed": feeds["feed"], "coverage": feeds["coverage"],
            "lower bound": feeds["lower_bound"].astype(bool), "note": [fmt_text(v) for v in feeds["note"]],
            "last message": [fmt_text(None if pd.isna(t) else f"{t:%Y-%m-%d %H:%M:%S}") for t in feeds["last_seen"]],
        }), hide_index=True, width="stretch")
    if not gaps.empty:
        st.caption(f"{len(gaps)} feed gap(s) in range; volumes over them are incomplete.")
        st.dataframe(gaps.assign(venue=[_name(v) for v in gaps["venue"]]), hide_index=True, width="stretch")


def page_body(state: PageState) -> None:
    """The dashboard's Liquidations page: the sidebar's range and venues."""
    render(state.ctx.db, state.range_start, state.now, state.venues if state.venues != state.known else (),
           title=False)
