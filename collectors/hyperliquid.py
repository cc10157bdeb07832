"""Hyperliquid: no insurance fund. The HLP vault (and its child "HLP Liquidator") absorbs liquidations, so
Backstop tracks their account value as the backstop proxy; OI, funding and oracle prices per perp.

Everything is ``POST /info`` with a ``type`` (ccxt implicit ``publicPostInfo``). The vault's history
comes from ``vaultDetails`` (``portfolio`` windows day/week/month/allTime), the live value from the
cheaper ``clearinghouseState`` (weight 2 vs 20).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.base import (
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    PRICES,
    TS_FETCH,
    TS_VENUE,
    Batch,
    Capability,
    FundBalance,
    FundingRate,
    OpenInterest,
    Price,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.inventory import BACKSTOP_POSITIONS, BackstopPosition
from collectors.parsing import dec, fallback_ts, num, opt_num, raw_text, require, require_list, ts_ms
from records.config import VenueConfig

HLP_VAULT = "0xdfc24b077bc1425ad1dea75bcb6f8158e10df303"  # official docs' vaultDetails example
HLP_LIQUIDATOR = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"  # child of HLP: UNCONFIRMED by official docs
# pool_id -> address; the liquidator is a child vault, so its value is not part of the HLP account value
VAULTS: dict[str, str] = {"HLP": HLP_VAULT, "HLP Liquidator": HLP_LIQUIDATOR}
# portfolio windows holding the whole account; perpDay/perpWeek/... are the perp-only view
HISTORY_WINDOWS = ("day", "week", "month", "allTime")
# vaults whose open positions are backstop inventory (taken over from liquidated accounts); HLP's own
# positions are market making, not inventory
INVENTORY_HOLDERS = ("HLP Liquidator",)
ASSET = "USDC"
KIND = "hlp_vault"


def parse_clearinghouse_state(venue: str, pool_id: str, payload: Any,
                              fallback: tuple[datetime, str] | None = None) -> FundBalance:
    """POST /info {"type": "clearinghouseState", "user": X}::

        {"marginSummary": {"accountValue": "13109.482328", "totalMarginUsed": "4.967826", ...},
         "crossMarginSummary": {...}, "withdrawable": "13104.514502", "time": 1708622398623, ...}

    ``marginSummary.accountValue`` (USDC, cross + isolated; up to 10 decimals, stored exactly) at the venue's
    ``time``. Hyperliquid sometimes omits ``time``: the row then takes ``fallback`` (the response's Date
    header or the fetch time, ``parsing.fallback_ts``) and says so in ``ts_source``. A missing
    ``accountValue`` is still an error."""
    summary = require(payload, "marginSummary", "clearinghouseState")
    raw = require(summary, "accountValue", "clearinghouseState.marginSummary")
    if payload.get("time") is not None or fallback is None:
        ts, ts_source = ts_ms(require(payload, "time", "clearinghouseState"), "time"), TS_VENUE
    else:
        ts, ts_source = fallback
    return FundBalance(
        venue=venue, pool_id=pool_id, asset=ASSET, ts=ts,
        balance=dec(raw, "accountValue"), balance_raw=raw_text(raw), unit_raw=ASSET, kind=KIND, ts_source=ts_source,
    )


def parse_asset_positions(venue: str, holder: str, payload: Any,
                          ts: datetime | None = None) -> list[BackstopPosition]:
    """POST /info {"type": "clearinghouseState", "user": X} -> ``assetPositions``::

        {"assetPositions": [{"position": {"coin": "ETH", "szi": "0.0335", "entryPx": "2986.3",
          "positionValue": "100.02765", "unrealizedPnl": "-0.0134", ...}, "type": "oneWay"}], ...,
         "time": 1708622398623}

    ``szi`` is the signed size in coins, ``positionValue`` the USD(C) value at the mark, so the mark is
    ``positionValue / |szi|``. Flat entries (szi 0) are skipped. Timestamped like the account value parsed
    from the same payload: ``ts`` is that row's timestamp (the venue's ``time`` or its fallback)."""
    if ts is None:
        ts = ts_ms(require(payload, "time", "clearinghouseState"), "time")
    positions = []
    for index, entry in enumerate(require_list(payload.get("assetPositions", []), "assetPositions")):
        where = f"assetPositions[{index}]"
        position = require(entry, "position", where)
        coin = str(require(position, "coin", where))
        size_raw = require(position, "szi", f"{where}.szi")
        size = num(size_raw, f"{coin}.szi")
        if size == 0:
            continue
        value = opt_num(position.get("positionValue"), f"{coin}.positionValue")
        positions.append(BackstopPosition(
            venue=venue, holder=holder, contract=coin, ts=ts, size=size, size_raw=raw_text(size_raw),
            entry_price=opt_num(position.get("entryPx"), f"{coin}.entryPx"),
            mark_price=abs(value / size) if value is not None else None,
            unrealised_pnl=opt_num(position.get("unrealizedPnl"), f"{coin}.unrealizedPnl"),
            notional_usd=abs(value) if value is not None else None, settle_asset=ASSET,
        ))
    return positions


def parse_vault_history(venue: str, pool_id: str, payload: Any,
                        since: datetime | None = None) -> dict[str, list[FundBalance]]:
    """POST /info {"type": "vaultDetails", "vaultAddress": X} -> ``portfolio``::

        {"vaultAddress": "0xdfc2...", "portfolio": [
            ["day", {"accountValueHistory": [[1734397526634, "329265410.90790099"]], "pnlHistory": [...]}],
            ["week", {...}], ...]}

    One list of history rows per window (day/week/month/allTime; coarser windows reach further back),
    only points at or after ``since``."""
    portfolio = require_list(require(payload, "portfolio", "vaultDetails"), "vaultDetails.portfolio")
    windows: dict[str, list[FundBalance]] = {}
    for index, entry in enumerate(portfolio):
        if not isinstance(entry, list) or len(entry) != 2:
            raise PayloadError(f"vaultDetails.portfolio[{index}]: expected [window, data]")
        window, data = str(entry[0]), entry[1]
        if window not in HISTORY_WINDOWS:
            continue
        where = f"vaultDetails.portfolio[{window}]"
        rows = []
        for point in require_list(require(data, "accountValueHistory", where), f"{where}.accountValueHistory"):
            if not isinstance(point, list) or len(point) != 2:
                raise PayloadError(f"{where}.accountValueHistory: expected [ms, value], got {point!r}")
            ts = ts_ms(point[0], f"{where}.accountValueHistory[0]")
            if since is not None and ts < since:
                continue
            rows.append(FundBalance(
                venue=venue, pool_id=pool_id, asset=ASSET, ts=ts, balance=dec(point[1], "accountValue"),
                balance_raw=raw_text(point[1]), unit_raw=ASSET, kind=KIND, source="history",
            ))
        windows[window] = rows
    return windows


def next_hour(ts: datetime) -> datetime:
    """Hyperliquid pays funding on the hour."""
    return ts.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def parse_meta_and_asset_ctxs(venue: str, payload: Any, ts: datetime,
                              symbols: list[str] | None = None) -> Batch:
    """POST /info {"type": "metaAndAssetCtxs"} -> ``[meta, ctxs]`` zipped by position::

        [{"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 50}, ...]},
         [{"funding": "0.0000125", "openInterest": "688.11", "markPx": "14.3161", "oraclePx": "14.32", ...}]]

    ``openInterest`` is in base coin (one side), ``funding`` is the hourly rate, ``oraclePx`` the USD
    oracle price. The payload has no timestamp: ``ts`` is the fetch time (``ts_source`` = fetch)."""
    pair = require_list(payload, "metaAndAssetCtxs")
    if len(pair) != 2:
        raise PayloadError(f"metaAndAssetCtxs: expected [meta, assetCtxs], got {len(pair)} elements")
    universe = require_list(require(pair[0], "universe", "metaAndAssetCtxs[0]"), "metaAndAssetCtxs.universe")
    ctxs = require_list(pair[1], "metaAndAssetCtxs[1]")
    if len(universe) != len(ctxs):
        raise PayloadError(f"metaAndAssetCtxs: {len(universe)} assets but {len(ctxs)} contexts")
    batch = Batch()
    for asset, ctx in zip(universe, ctxs, strict=True):
        coin = str(require(asset, "name", "metaAndAssetCtxs.universe"))
        if asset.get("isDelisted") or (symbols and coin not in symbols):
            continue
        oi_raw = require(ctx, "openInterest", coin)
        oi_base = num(oi_raw, f"{coin}.openInterest")
        mark = opt_num(ctx.get("markPx"), f"{coin}.markPx")
        oracle = opt_num(ctx.get("oraclePx"), f"{coin}.oraclePx")
        batch.open_interest.append(OpenInterest(
            venue=venue, symbol=coin, ts=ts, base_asset=coin, settle_asset=ASSET, oi_raw=raw_text(oi_raw),
            oi_unit="base", contract_size=1.0, inverse=False, oi_base=oi_base,
            oi_usd=oi_base * mark if mark is not None else None, ts_source=TS_FETCH,
        ))
        rate_raw = require(ctx, "funding", coin)
        batch.funding.append(FundingRate(
            venue=venue, symbol=coin, ts=ts, funding_rate=num(rate_raw, f"{coin}.funding"),
            funding_rate_raw=raw_text(rate_raw), next_funding_ts=next_hour(ts), interval_h=1.0, mark_price=mark,
            ts_source=TS_FETCH,
        ))
        if oracle is not None:
            batch.prices.append(Price(venue, coin, ts, oracle, "index"))
    return batch


class HyperliquidAdapter(VenueAdapter):
    key = "hyperliquid"
    display_name = "Hyperliquid"
    default_base_url = "https://api.hyperliquid.xyz"
    fund_label = "HLP vault (backstop proxy)"
    capabilities = (
        Capability(FUNDS, "POST /info clearinghouseState (HLP, HLP Liquidator)", 60,
                   "vaultDetails portfolio day/week/month/allTime", "USDC (accountValue)",
                   "no insurance fund: the HLP vault absorbs liquidations; HLP Liquidator address UNCONFIRMED; "
                   "the Liquidator's open positions stored as backstop-positions"),
        Capability(OPEN_INTEREST, "POST /info metaAndAssetCtxs", 60, "none", "base coin"),
        Capability(FUNDING, "POST /info metaAndAssetCtxs", 3_600, "none", "hourly rate"),
        Capability(PRICES, "POST /info metaAndAssetCtxs", 60, "none", "USD (oraclePx)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("hyperliquid", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def _info(self, body: dict[str, Any]) -> Any:
        return await ccxt_call(self.exchange, self.exchange.publicPostInfo(body))

    async def _asset_ctxs(self) -> Batch:
        payload = await self._info({"type": "metaAndAssetCtxs"})
        return parse_meta_and_asset_ctxs(self.key, payload, datetime.now(UTC), self.config.symbols or None)

    async def fetch_funds(self, since: datetime | None) -> Batch:
        batch = Batch()
        for pool_id, address in VAULTS.items():
            payload = await self._info({"type": "clearinghouseState", "user": address})
            # taken right after the response (shared client: a concurrent call may have answered just before)
            fallback = fallback_ts(getattr(self.exchange, "last_response_headers", None), datetime.now(UTC))
            fund = parse_clearinghouse_state(self.key, pool_id, payload, fallback)
            batch.funds.append(fund)
            if pool_id in INVENTORY_HOLDERS:  # the liquidator's taken-over positions, same snapshot
                batch.extra.setdefault(BACKSTOP_POSITIONS, []).extend(
                    parse_asset_positions(self.key, pool_id, payload, fund.ts))
        return batch

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        ctxs = await self._asset_ctxs()
        return Batch(open_interest=ctxs.open_interest, prices=ctxs.prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        ctxs = await self._asset_ctxs()
        return Batch(funding=ctxs.funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        ctxs = await self._asset_ctxs()
        return Batch(prices=ctxs.prices)

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """Each vault's portfolio windows, one batch per vault x window (overlapping points dedupe on
        the natural key)."""
        for pool_id, address in VAULTS.items():
            body = {"type": "vaultDetails", "vaultAddress": address}
            payload = await self.page(lambda body=body: self._info(body))
            for rows in parse_vault_history(self.key, pool_id, payload, since).values():
                if rows:
                    yield Batch(funds=rows)
