"""What the dashboard (and the settings) know about each venue, as plain data.

``venue_catalog.json`` beside this module is generated from the collector registry by the composition root
(``python -m backstop.capabilities --write-readme``; ``tests/test_capabilities.py`` fails when it is stale):
display names, fund labels and each dataset's expected cadence. Reading it needs no adapter, no ccxt, no
collectors: the dashboard's process stays small. A venue found only in a database still gets a name, a
colour and default cadences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from records.batch import Capability
from records.venues import VenueFacts
from records.vocabulary import DEFAULT_CADENCE_S as VOCABULARY_CADENCE_S
from records.vocabulary import default_cadence_s

CATALOG_FILE = "venue_catalog.json"

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
    registered: bool = False  # True when the venue is in the collector registry (the generated catalog)
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


def catalog_data() -> dict[str, dict[str, Any]]:
    """The generated catalog: venue key -> display_name, fund_label, cadence_s (dataset -> seconds),
    backfill_datasets."""
    data: dict[str, dict[str, Any]] = json.loads(resources.files("records").joinpath(CATALOG_FILE).read_text("utf-8"))
    return data


def venue_keys() -> list[str]:
    """The collector registry's venues, in its order."""
    return list(catalog_data())


@cache
def registered_venues() -> dict[str, VenueInfo]:
    """Every venue of the collector registry, from the generated catalog."""
    found: dict[str, VenueInfo] = {}
    for key, item in catalog_data().items():
        cadences = dict(DEFAULT_CADENCE_S)
        cadences.update({dataset: float(seconds) for dataset, seconds in item["cadence_s"].items()})
        found[key] = VenueInfo(key, str(item["display_name"]), colour_for(key), str(item["fund_label"]), cadences,
                               True, tuple(str(dataset) for dataset in item.get("backfill_datasets", ())))
    return found


def venue_info(key: str) -> VenueInfo:
    return registered_venues().get(key) or _fallback(key)


def catalog(keys: list[str] | None = None) -> dict[str, VenueInfo]:
    """Info for the registry's venues plus any extra ``keys`` (e.g. venues found in the database)."""
    out = dict(registered_venues())
    for key in keys or []:
        out.setdefault(key, _fallback(key))
    return out


def catalog_facts(keys: list[str] | None = None) -> dict[str, VenueFacts]:
    """The adapters' declarations (``VenueAdapter.facts()``) as the generated catalog holds them, for a
    process that must not import the adapters (the dashboard): the same venues, cadences and capabilities
    the collector and the alert engine use (``tests/test_layering.py`` checks they are equal)."""
    data = catalog_data()
    facts: dict[str, VenueFacts] = {}
    for key in keys if keys is not None else list(data):
        item = data.get(key)
        if item is None:
            continue
        capabilities = tuple(Capability(**cap) for cap in item.get("capabilities", ()))
        facts[key] = VenueFacts(key, str(item["display_name"]), str(item["fund_label"]), capabilities,
                                frozenset(item.get("fetches", ())), frozenset(item.get("backfill_datasets", ())))
    return facts
