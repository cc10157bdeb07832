"""Shared vocabulary: the constants that collectors, storage, metrics and alerts must agree on.

A leaf module (imports nothing of the project), so every layer may import it. One definition each:
which assets count as USD-pegged, how often a dataset is expected to change when a venue does not say,
and which table (and venue-timestamp column) holds each dataset.
"""

from __future__ import annotations

from typing import Final

# Assets valued at 1 USD when no price is stated (the fund writer, the liquidation parsers, the simulator).
STABLE_ASSETS: Final[frozenset[str]] = frozenset(
    {"USDT", "USDC", "USD", "BUSD", "FDUSD", "DAI", "USDE", "BNFCR", "TUSD", "USDD"})

# When a venue's adapter does not say: how often each dataset is expected to change (seconds).
DEFAULT_CADENCE_S: Final[dict[str, float]] = {
    "funds": 86_400.0, "open_interest": 300.0, "funding": 600.0, "prices": 300.0, "adl": 1_800.0,
    "liquidations": 300.0,
}
# A dataset not listed above (or a venue we know nothing about) is assumed to change hourly; funds daily.
FALLBACK_CADENCE_S: Final[float] = 3_600.0


def default_cadence_s(dataset: str) -> float:
    """The expected interval between new values of ``dataset`` when the venue states none."""
    return DEFAULT_CADENCE_S.get(dataset, FALLBACK_CADENCE_S)


# dataset (collector job name) -> (table, venue-timestamp column): where a dataset's rows land.
DATASET_TABLES: Final[dict[str, tuple[str, str]]] = {
    "funds": ("fund_balances", "ts"),
    "open_interest": ("open_interest", "ts"),
    "funding": ("funding_rates", "ts"),
    "prices": ("prices", "ts"),
    "adl": ("adl_signals", "ts"),
    "liquidations": ("liquidations", "ts"),
}
