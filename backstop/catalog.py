"""The venue catalog's generator and the venues' declarations for the layers below the composition root.

``records.venue_catalog`` (plain data, read by the dashboard and the settings) is generated here from the
collector registry; ``venue_facts`` hands alerts and assessments the adapters' declarations.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from records.venue_catalog import (  # importable from here as before
    CATALOG_FILE,
    DEFAULT_CADENCE_S,
    VENUE_COLOURS,
    VenueInfo,
    catalog,
    catalog_data,
    colour_for,
    registered_venues,
    venue_info,
)
from records.venues import VenueFacts

__all__ = [
    "CATALOG_PATH", "DEFAULT_CADENCE_S", "VENUE_COLOURS", "VenueInfo", "catalog", "colour_for", "generated_catalog",
    "registered_venues", "venue_facts", "venue_info", "write_catalog",
]

CATALOG_PATH = Path(__file__).resolve().parents[1] / "records" / CATALOG_FILE


def generated_catalog() -> dict[str, dict[str, Any]]:
    """The catalog as the collector registry declares it now: per venue what ``VenueAdapter.facts()`` says
    (``records.venue_catalog.catalog_facts`` rebuilds the same ``VenueFacts`` from it)."""
    from collectors.registry import all_adapter_classes

    catalog: dict[str, dict[str, Any]] = {}
    for key, klass in all_adapter_classes().items():
        facts = klass.facts()
        catalog[key] = {
            "display_name": facts.display_name, "fund_label": facts.fund_label,
            "cadence_s": {cap.dataset: float(cap.cadence_s) for cap in facts.capabilities},
            "backfill_datasets": [cap.dataset for cap in facts.capabilities if cap.dataset in facts.backfills],
            "fetches": sorted(facts.fetches),
            "capabilities": [asdict(cap) for cap in facts.capabilities],
        }
    return catalog


def catalog_text() -> str:
    return json.dumps(generated_catalog(), indent=2) + "\n"


def write_catalog(path: Path = CATALOG_PATH) -> bool:
    """Rewrite ``records/venue_catalog.json``; True when it changed."""
    text = catalog_text()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    registered_venues.cache_clear()
    return True


def catalog_is_current() -> bool:
    return catalog_data() == generated_catalog()


def venue_facts(keys: list[str]) -> dict[str, VenueFacts]:
    """The adapters' declarations of ``keys`` as plain data (what alerts and assessments read)."""
    from collectors.registry import adapter_class

    return {key: adapter_class(key).facts() for key in keys}
