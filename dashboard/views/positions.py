"""Funds page section: the backstop's own positions ("inventory"). What each insurance fund or liquidator
vault holds at its newest snapshot (Hyperliquid's HLP Liquidator, Orderly's insurance fund), against the
holder's equity: a backstop that has just taken over a huge position is in danger before its balance moves.

Reads through ``storage.positions.current_inventory`` (the same definition the ``inventory_large`` alert
uses). Exchange text (contract ids, holder names) is shown only through ``st.dataframe``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page import PageState
from dashboard.text import download
from storage.positions import current_inventory

COLUMNS = {
    "venue": "venue", "holder": "holder", "contract": "contract", "side": "side", "size": "size (base)",
    "entry_price": "entry", "mark_price": "mark", "notional_usd": "notional USD", "equity_usd": "holder equity USD",
    "share_pct": "% of equity", "unrealised_pnl": "unrealised PnL", "ts": "as of",
}


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def inventory(db: str, venues: tuple[str, ...]) -> pd.DataFrame:
    return current_inventory(db, list(venues))


def table(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Display rows: venue display names, a side column, flat holders as one row saying so."""
    shown = frame.copy()
    shown["venue"] = [names.get(str(v), str(v)) for v in shown["venue"]]
    shown["side"] = ["flat" if pd.isna(s) else ("long" if s > 0 else "short") for s in shown["size"]]
    shown["contract"] = shown["contract"].fillna("—")
    return shown[list(COLUMNS)].rename(columns=COLUMNS)


def section(state: PageState) -> None:
    """Nothing is drawn when none of the selected venues publishes its backstop's positions."""
    frame = inventory(state.ctx.db, state.venues)
    if frame.empty:
        return
    st.subheader("Backstop positions")
    st.caption("Positions the venues' backstops hold themselves (taken over from liquidated accounts), at each "
               "holder's newest snapshot, against the holder's own equity at that snapshot. A large position is "
               "an earlier warning than the balance: the fund only loses once it closes the position.")
    shown = table(frame, {v: state.name(v) for v in frame["venue"].astype(str).unique()})
    st.dataframe(shown, hide_index=True, column_config={
        "% of equity": st.column_config.NumberColumn(format="%.1f %%"),
        "notional USD": st.column_config.NumberColumn(format="%.0f"),
        "holder equity USD": st.column_config.NumberColumn(format="%.0f"),
        "unrealised PnL": st.column_config.NumberColumn(format="%.0f"),
        "as of": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
    })
    download(shown, "backstop-positions", "funds-positions")
