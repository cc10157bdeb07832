"""The one small interface every venue module implements.

A venue adapter turns a venue's public API into the typed records of ``records.batch`` (re-exported
here). It never touches storage: the runner hands the records to ``storage`` in one short write
transaction, together with the run row.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import ClassVar, TypeVar

from collectors.retry import RetryPolicy, retry_call
from records.batch import (  # the shared records, importable from here as before
    ADL,
    DATASETS,
    FUNDING,
    FUNDS,
    LIQUIDATION_TOTALS,
    LIQUIDATIONS,
    OPEN_INTEREST,
    PRICES,
    TS_FETCH,
    TS_HTTP_DATE,
    TS_VENUE,
    AdlSignal,
    Batch,
    Capability,
    FundBalance,
    FundFlow,
    FundingRate,
    LiquidationTotal,
    OpenInterest,
    PoolMember,
    Price,
)
from records.config import VenueConfig
from records.venues import VenueFacts

__all__ = [
    "FUNDS", "OPEN_INTEREST", "FUNDING", "PRICES", "ADL", "LIQUIDATIONS", "DATASETS", "FundBalance",
    "PoolMember", "FundFlow", "OpenInterest", "FundingRate", "Price", "AdlSignal", "LiquidationTotal",
    "LIQUIDATION_TOTALS", "Batch", "Capability", "VenueAdapter", "ProgressFn", "FETCH_HOOKS", "BACKFILL_HOOKS",
    "TS_FETCH", "TS_HTTP_DATE", "TS_VENUE",
]


ProgressFn = Callable[[int], None]
T = TypeVar("T")
FETCH_HOOKS = frozenset({f"fetch_{d}" for d in (FUNDS, OPEN_INTEREST, FUNDING, PRICES, ADL)})
BACKFILL_HOOKS = frozenset({f"backfill_{d}" for d in (FUNDS, OPEN_INTEREST, FUNDING, PRICES)})


class VenueAdapter(abc.ABC):
    """One venue. Subclasses set the class attributes and override the hooks below for the datasets
    they publish (``fetch_<dataset>``; ``backfill_<dataset>`` where the venue publishes a history)."""

    key: ClassVar[str]
    display_name: ClassVar[str]
    default_base_url: ClassVar[str]
    fund_label: ClassVar[str] = "Insurance fund"  # e.g. "HLP vault (backstop proxy)", "no published fund"
    capabilities: ClassVar[tuple[Capability, ...]] = ()

    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.retry_policy = RetryPolicy()  # the collector sets the configured one

    async def page(self, call: Callable[..., Awaitable[T]]) -> T:
        """One request of a history walk (``backfill_<dataset>``), retried in place on a transient error.

        The walk's cursor lives in its generator, so retrying here re-asks for the same page and the walk
        carries on from it; an error that escapes the generator ends the walk, and the collector records
        the backfill as failed. Every request a ``backfill_*`` generator makes goes through this."""
        return await retry_call(call, self.retry_policy)

    @property
    def base_url(self) -> str:
        return self.config.base_url_str() or self.default_base_url

    @classmethod
    def datasets(cls) -> tuple[str, ...]:
        return tuple(cap.dataset for cap in cls.capabilities)

    @classmethod
    def capability(cls, dataset: str) -> Capability | None:
        return next((cap for cap in cls.capabilities if cap.dataset == dataset), None)

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Work at start that needs the running loop. None today: a venue makes its clients (one ccxt
        client per venue for the process lifetime) in ``__init__``; they connect on first use."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients."""

    # -- the hooks a venue implements: one per dataset it publishes (matching ``capabilities``) ----------
    async def fetch_funds(self, since: datetime | None) -> Batch:
        """Insurance-fund balances (and pool members, fund flows) as published now."""
        raise NotImplementedError(f"{self.key} does not publish funds")

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        raise NotImplementedError(f"{self.key} does not publish open_interest")

    async def fetch_funding(self, since: datetime | None) -> Batch:
        raise NotImplementedError(f"{self.key} does not publish funding")

    async def fetch_prices(self, since: datetime | None) -> Batch:
        raise NotImplementedError(f"{self.key} does not publish prices")

    async def fetch_adl(self, since: datetime | None) -> Batch:
        raise NotImplementedError(f"{self.key} does not publish adl")

    # history hooks (async generators, one batch per page): only the venues that publish a history
    def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        raise NotImplementedError(f"{self.key} publishes no funds history")

    def backfill_open_interest(self, since: datetime) -> AsyncIterator[Batch]:
        raise NotImplementedError(f"{self.key} publishes no open_interest history")

    def backfill_funding(self, since: datetime) -> AsyncIterator[Batch]:
        raise NotImplementedError(f"{self.key} publishes no funding history")

    def backfill_prices(self, since: datetime) -> AsyncIterator[Batch]:
        raise NotImplementedError(f"{self.key} publishes no prices history")

    def _fetch_hooks(self) -> dict[str, Callable[[datetime | None], Awaitable[Batch]]]:
        return {FUNDS: self.fetch_funds, OPEN_INTEREST: self.fetch_open_interest, FUNDING: self.fetch_funding,
                PRICES: self.fetch_prices, ADL: self.fetch_adl}

    def _backfill_hooks(self) -> dict[str, Callable[[datetime], AsyncIterator[Batch]]]:
        return {FUNDS: self.backfill_funds, OPEN_INTEREST: self.backfill_open_interest,
                FUNDING: self.backfill_funding, PRICES: self.backfill_prices}

    async def fetch(self, dataset: str, since: datetime | None) -> Batch:
        """Current data for ``dataset``; ``since`` = newest stored venue timestamp (history venues poll
        incrementally from it)."""
        hook = self._fetch_hooks().get(dataset)
        if hook is None:
            raise NotImplementedError(f"{self.key} does not publish {dataset}")
        return await hook(since)

    async def backfill(self, dataset: str, since: datetime) -> AsyncIterator[Batch]:
        """Walk a history endpoint back to ``since`` (or the start of what the venue publishes), yielding
        one batch per page so progress is visible and each page is written as it arrives. Each request
        goes through ``page()``: a transient error is retried at its cursor; one that escapes is final."""
        if not self.has_backfill(dataset):
            return
        async for batch in self._backfill_hooks()[dataset](since):
            yield batch

    @classmethod
    def facts(cls) -> VenueFacts:
        """This venue's declarations as plain data (for alerts and the dashboard)."""
        datasets = tuple(cap.dataset for cap in cls.capabilities)
        return VenueFacts(cls.key, cls.display_name, cls.fund_label, cls.capabilities,
                          frozenset(d for d in DATASETS if cls.implements(d)),
                          frozenset(d for d in datasets if cls.has_backfill(d)))

    @classmethod
    def implements(cls, dataset: str) -> bool:
        """Whether this venue implements the fetch hook of ``dataset`` (overrides the base's)."""
        name = f"fetch_{dataset}"
        return name in FETCH_HOOKS and getattr(cls, name) is not getattr(VenueAdapter, name)

    @classmethod
    def has_backfill(cls, dataset: str) -> bool:
        """Whether this venue implements the history hook of ``dataset`` (overrides the base's)."""
        name = f"backfill_{dataset}"
        return name in BACKFILL_HOOKS and getattr(cls, name) is not getattr(VenueAdapter, name)
