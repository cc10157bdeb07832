"""What the dashboard needs to know about each venue, from the collector registry, without importing it there.

The dashboard may not import ``collectors`` (import-linter contract), yet it needs venue display names,
fund labels and each dataset's expected cadence (``Capability.cadence_s``). This module reads them from
the registry once per process and hands out plain data. A venue whose adapter cannot be imported (not
written yet, or a venue that only exists in a database) still gets a name, a colour and default cadences.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache

from records.vocabulary import DEFAULT_CADENCE_S as VOCABULARY_CADENCE_S
from records.vocabulary import default_cadence_s

log = logging.getLogger(__name__)

# One colour per venue, everywhere (brand-ish where possible, but chosen to stay apart on one chart).
VENUE_COLOURS: dict[str, str] = {
    "binance": "#F0B90B",  # gold
    "binancecoinm": "#B8860B",  # dark gold (Binance's other book)
    "bybit": "#1F2937",  # near-black
    "okx": "#9CA3AF",  # light grey
    "bitmex": "#E0362C",  # red
    "gate": "#2354E6",  # blue
    "htx": "#00A3FF",  # sky
    "hyperliquid": "#2FB8A6",  # teal
    "krakenfutures": "#7B61FF",  # violet
    "mexc": "#1E8449",  # green
    "dydx": "#C026D3",  # magenta
    "orderly": "#6B21A8",  # deep purple
    "paradex": "#0EA5E9",  # cyan
    "cryptocom": "#002D74",  # navy
    "deribit": "#8C564B",  # brown
    "bitget": "#FF7F0E",  # orange
    "kucoinfutures": "#9ACD32",  # yellow-green
    "bitfinex": "#16B157",  # Bitfinex green (lighter than MEXC's dark green)
}
_FALLBACK_COLOURS = ("#8C564B", "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF", "#393B79", "#AD494A", "#637939")

# Names for venues whose adapter may not exist in this checkout (or only in an old database).
_KNOWN_NAMES: dict[str, str] = {
    "binance": "Binance", "bybit": "Bybit", "okx": "OKX", "bitmex": "BitMEX", "gate": "Gate",
    "htx": "HTX", "hyperliquid": "Hyperliquid", "krakenfutures": "Kraken Futures", "mexc": "MEXC",
    "dydx": "dYdX", "deribit": "Deribit", "bitget": "Bitget", "kucoinfutures": "KuCoin Futures",
    "binancecoinm": "Binance COIN-M", "bitfinex": "Bitfinex",
    "cryptocom": "Crypto.com Exchange", "orderly": "Orderly Network", "paradex": "Paradex",
}

# When an adapter does not say: how often each dataset is expected to change (seconds).
DEFAULT_CADENCE_S: dict[str, float] = dict(VOCABULARY_CADENCE_S)


@dataclass(frozen=True)
class VenueInfo:
    key: str
    display_name: str
    colour: str
    fund_label: str = "Insurance fund"
    cadence_s: dict[str, float] = field(default_factory=dict)  # dataset -> expected data age
    registered: bool = False  # True when the collector registry has an importable adapter
    backfill_datasets: tuple[str, ...] = ()  # datasets `backstop backfill` walks for this venue

    def cadence(self, dataset: str) -> float:
        return self.cadence_s.get(dataset, default_cadence_s(dataset))


def colour_for(key: str, index: int = 0) -> str:
    if key in VENUE_COLOURS:
        return VENUE_COLOURS[key]
    return _FALLBACK_COLOURS[(sum(map(ord, key)) + index) % len(_FALLBACK_COLOURS)]


def _fallback(key: str) -> VenueInfo:
    return VenueInfo(key, _KNOWN_NAMES.get(key, key.replace("_", " ").title()), colour_for(key),
                     cadence_s=dict(DEFAULT_CADENCE_S))


@cache
def registered_venues() -> dict[str, VenueInfo]:
    """Every venue of the collector registry (import failures logged, the venue kept with defaults)."""
    try:
        from collectors.registry import adapter_class, venue_keys
    except Exception as exc:  # noqa: BLE001 - the dashboard must come up even if collectors are broken
        log.warning("collector registry unavailable: %s", exc)
        return {}
    found: dict[str, VenueInfo] = {}
    for key in venue_keys():
        try:
            klass = adapter_class(key)
        except Exception as exc:  # noqa: BLE001 - a venue module still being written
            log.info("venue %s: adapter not importable (%s); using defaults", key, exc)
            found[key] = _fallback(key)
            continue
        cadences = dict(DEFAULT_CADENCE_S)
        cadences.update({cap.dataset: float(cap.cadence_s) for cap in klass.capabilities})
        backfill = tuple(cap.dataset for cap in klass.capabilities if klass.has_backfill(cap.dataset))
        found[key] = VenueInfo(key, klass.display_name, colour_for(key), klass.fund_label, cadences, True,
                               backfill)
    return found


def venue_info(key: str) -> VenueInfo:
    return registered_venues().get(key) or _fallback(key)


def catalog(keys: list[str] | None = None) -> dict[str, VenueInfo]:
    """Info for the registry's venues plus any extra ``keys`` (e.g. venues found in the database)."""
    out = dict(registered_venues())
    for key in keys or []:
        out.setdefault(key, _fallback(key))
    return out
