"""A venue adapter's declarations as plain data, for the layers that must not import collectors (alerts,
the dashboard): names, fund label, what it publishes and how often. ``VenueAdapter.facts()`` makes one;
the composition root hands them down."""

from __future__ import annotations

from dataclasses import dataclass

from records.batch import Capability


@dataclass(frozen=True)
class VenueFacts:
    key: str
    display_name: str
    fund_label: str
    capabilities: tuple[Capability, ...]
    fetches: frozenset[str]  # datasets the adapter implements a fetch hook for
    backfills: frozenset[str]  # datasets it can walk the history of

    def capability(self, dataset: str) -> Capability | None:
        return next((cap for cap in self.capabilities if cap.dataset == dataset), None)

    def implements(self, dataset: str) -> bool:
        return dataset in self.fetches
