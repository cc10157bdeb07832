"""dYdX v4: the insurance fund is an on-chain module account (``insurance_fund``); each isolated market
has its own fund (``insurance_fund:<perpetualId>``). Balances come from the Cosmos bank REST of a node,
OI / funding / oracle prices from the indexer's ``/v4/perpetualMarkets``.

Plain HTTP (``JsonHttpClient``): ccxt's dydx class has no implicit method for the bank endpoint and its
``nodeRest`` host differs from the indexer host. A configured ``base_url`` serves both path families
(the simulator mounts both under ``/dydx/``); without one the two public defaults are used.

No history API exists (archive-node height queries only): Backstop's history is what it records. The
node's answer carries no timestamp, so a balance is stamped with the fetch time (whole seconds).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from collectors.base import (
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    PRICES,
    TS_FETCH,
    Batch,
    Capability,
    FundBalance,
    FundingRate,
    OpenInterest,
    PoolMember,
    Price,
    VenueAdapter,
)
from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.parsing import dec, num, opt_num, raw_text, require, require_list, ts_iso
from records.config import VenueConfig

DEFAULT_NODE_REST = "https://dydx-rest.publicnode.com"
DEFAULT_INDEXER = "https://indexer.dydx.trade"
USDC_DENOM = "ibc/8E27BA2D5493AF5636760E354E46004562C46AB7EC0CC4C1CA14E9E20E2545B5"
USDC_SCALE = Decimal("1e-6")  # amounts are micro-USDC
MAIN_FUND = "insurance_fund"
BECH32_PREFIX = "dydx"

# -- bech32 (BIP-173) encoding, enough to name a module account --------------------------------------
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def to_5bit(data: bytes) -> list[int]:
    """Regroup 8-bit bytes into 5-bit words, zero-padding the last one."""
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def bech32_encode(hrp: str, words: list[int]) -> str:
    """BIP-173 string of 5-bit ``words`` (Cosmos addresses: ``to_5bit(address bytes)``)."""
    polymod = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def module_address(name: str, prefix: str = BECH32_PREFIX) -> str:
    """Cosmos SDK module account address: bech32(prefix, sha256(name)[:20])."""
    return bech32_encode(prefix, to_5bit(hashlib.sha256(name.encode()).digest()[:20]))


def isolated_fund_name(perpetual_id: int | str) -> str:
    """v4-chain ``GetInsuranceFundName``: isolated markets hold their own fund."""
    return f"{MAIN_FUND}:{perpetual_id}"


# -- parsers ----------------------------------------------------------------------------------------
def parse_bank_balances(payload: Any, denom: str = USDC_DENOM) -> tuple[str | None, str | None]:
    """GET /cosmos/bank/v1beta1/balances/{address} (standard Cosmos shape, no dYdX example exists)::

        {"balances": [{"denom": "ibc/8E27...45B5", "amount": "2351447118203"}, ...],
         "pagination": {"next_key": null, "total": "2"}}

    also the ``/by_denom`` shape ``{"balance": {"denom": ..., "amount": ...}}``.
    Returns (amount text of ``denom`` on this page or None, next page key or None). Cosmos omits zero
    balances, so an absent denom means zero."""
    if isinstance(payload, dict) and "balance" in payload and "balances" not in payload:
        row = payload["balance"] or {}
        amount = row.get("amount") if row.get("denom", denom) == denom else None
        return (raw_text(amount) if amount is not None else None), None
    rows = require_list(require(payload, "balances", "bank balances"), "bank balances.balances")
    amount = None
    for row in rows:
        if require(row, "denom", "bank balances") == denom:
            amount = raw_text(require(row, "amount", f"bank balances[{denom}]"))
    pagination = payload.get("pagination") or {}
    next_key = pagination.get("next_key") if isinstance(pagination, dict) else None
    return amount, (next_key or None)


def fund_balance(venue: str, pool_id: str, amount_raw: str | None, ts: datetime) -> FundBalance:
    """Micro-USDC text -> USDC; a missing amount is a zero balance."""
    raw = amount_raw if amount_raw is not None else "0"
    micro = dec(raw, f"{pool_id}.amount")
    if micro != micro.to_integral_value():
        raise PayloadError(f"{pool_id}.amount: expected integer micro-USDC, got {raw!r}")
    return FundBalance(venue=venue, pool_id=pool_id, asset="USDC", ts=ts, balance=micro * USDC_SCALE,
                       balance_raw=raw, unit_raw=USDC_DENOM, kind="module_account", ts_source=TS_FETCH)


def base_of(ticker: str) -> str:
    """BTC-USD -> BTC."""
    return ticker.rsplit("-", 1)[0]


def next_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def market_rows(payload: Any) -> list[dict[str, Any]]:
    """GET /v4/perpetualMarkets -> ``{"markets": {"BTC-USD": {...}, ...}}`` as a list."""
    markets = require(payload, "markets", "perpetualMarkets")
    if not isinstance(markets, dict):
        raise PayloadError(f"perpetualMarkets.markets: expected an object, got {type(markets).__name__}")
    return list(markets.values())


def parse_perpetual_markets(venue: str, payload: Any, ts: datetime, symbols: list[str] | None = None) -> Batch:
    """GET /v4/perpetualMarkets::

        {"markets": {"BTC-USD": {"clobPairId": "0", "ticker": "BTC-USD", "status": "ACTIVE",
            "oraclePrice": "118976.5376", "nextFundingRate": "0", "openInterest": "52.0691",
            "marketType": "CROSS", "baseOpenInterest": "50.3776", "defaultFundingRate1H": "0", ...}}}

    ``openInterest`` in base coin; ``nextFundingRate`` = the predicted rate of the coming hourly payment;
    the oracle price is dYdX's mark. No timestamp in the payload: ``ts`` is the fetch time."""
    batch = Batch()
    priced: set[str] = set()
    for row in market_rows(payload):
        ticker = str(require(row, "ticker", "perpetualMarkets"))
        if symbols and ticker not in symbols:
            continue
        base = base_of(ticker)
        oracle = opt_num(row.get("oraclePrice"), f"{ticker}.oraclePrice")
        oi_raw = require(row, "openInterest", ticker)
        oi_base = num(oi_raw, f"{ticker}.openInterest")
        batch.open_interest.append(OpenInterest(
            venue=venue, symbol=ticker, ts=ts, base_asset=base, settle_asset="USDC", oi_raw=raw_text(oi_raw),
            oi_unit="base", contract_size=1.0, inverse=False, oi_base=oi_base,
            oi_usd=oi_base * oracle if oracle is not None else None, ts_source=TS_FETCH,
        ))
        rate_raw = row.get("nextFundingRate")
        if rate_raw not in (None, ""):
            batch.funding.append(FundingRate(
                venue=venue, symbol=ticker, ts=ts, funding_rate=num(rate_raw, f"{ticker}.nextFundingRate"),
                funding_rate_raw=raw_text(rate_raw), next_funding_ts=next_hour(ts), interval_h=1.0,
                mark_price=oracle, ts_source=TS_FETCH,
            ))
        if oracle is not None and base not in priced:
            priced.add(base)
            batch.prices.append(Price(venue, base, ts, oracle, "index"))
    return batch


def parse_historical_funding(venue: str, payload: Any, since: datetime | None = None) -> tuple[list[FundingRate], datetime | None]:
    """GET indexer /v4/historicalFunding/{ticker}?limit=&effectiveBeforeOrAt= (newest first)::

        {"historicalFunding": [{"ticker": "BTC-USD", "rate": "0.0000081", "price": "65012.5",
                                "effectiveAt": "2026-08-13T11:00:00.000Z", "effectiveAtHeight": "51234567"}]}

    Settled hourly rates (``price`` = the oracle price at settlement) at/after ``since``, and the oldest
    ``effectiveAt`` of the page (the next page's cursor), None for an empty page."""
    rows = require_list(require(payload, "historicalFunding", "historicalFunding"), "historicalFunding")
    rates: list[FundingRate] = []
    oldest: datetime | None = None
    for index, row in enumerate(rows):
        where = f"historicalFunding[{index}]"
        ts = ts_iso(require(row, "effectiveAt", where), f"{where}.effectiveAt")
        oldest = ts if oldest is None or ts < oldest else oldest
        if since is not None and ts < since:
            continue
        rate = require(row, "rate", where)
        rates.append(FundingRate(
            venue=venue, symbol=str(require(row, "ticker", where)), ts=ts, funding_rate=num(rate, f"{where}.rate"),
            funding_rate_raw=raw_text(rate), interval_h=1.0, mark_price=opt_num(row.get("price"), f"{where}.price"),
        ))
    return rates, oldest


def fund_plan(payload: Any, symbols: list[str] | None = None,
              max_isolated: int | None = None) -> list[tuple[str, list[str]]]:
    """(fund name, covered tickers): the shared fund covers every CROSS market, each ISOLATED market its
    own ``insurance_fund:<perpetualId>`` (perpetual id = ``clobPairId``: equal for every market so far,
    UNCONFIRMED as a rule). Isolated funds are ordered by perpetual id and capped at ``max_isolated``."""
    cross: list[str] = []
    isolated: list[tuple[int, str]] = []
    for row in market_rows(payload):
        ticker = str(require(row, "ticker", "perpetualMarkets"))
        kind = str(row.get("marketType", "CROSS")).upper()
        if kind == "ISOLATED":
            if not symbols or ticker in symbols:
                pid = require(row, "clobPairId", ticker)
                try:
                    isolated.append((int(pid), ticker))
                except (TypeError, ValueError):
                    raise PayloadError(f"{ticker}.clobPairId: expected an integer id, got {pid!r}") from None
        else:
            cross.append(ticker)
    isolated.sort()
    if max_isolated is not None:
        isolated = isolated[:max_isolated]
    return [(MAIN_FUND, sorted(cross))] + [(isolated_fund_name(pid), [ticker]) for pid, ticker in isolated]


class DydxAdapter(VenueAdapter):
    key = "dydx"
    display_name = "dYdX v4"
    default_base_url = DEFAULT_INDEXER
    fund_label = "Insurance fund (on-chain module account)"
    bank_page_limit = 100
    capabilities = (
        Capability(FUNDS, "node REST /cosmos/bank/v1beta1/balances/{insurance_fund[:id] address}", 60,
                   "none (recorded by Backstop)", "USDC (micro-USDC amount, 6 decimals)",
                   "on-chain module accounts, one per isolated market too (capped at max_symbols); "
                   "ts = fetch time (the node response has no timestamp)"),
        Capability(OPEN_INTEREST, "indexer /v4/perpetualMarkets", 60, "none", "base coin"),
        Capability(FUNDING, "indexer /v4/perpetualMarkets + /v4/historicalFunding/{ticker}", 3_600,
                   "full (historicalFunding, 100 per page)", "hourly rate",
                   "poll = nextFundingRate (predicted, ts = fetch); backfill = settled hourly rates"),
        Capability(PRICES, "indexer /v4/perpetualMarkets", 60, "none", "USD (oraclePrice)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        base = self.config.base_url_str()
        self.node = JsonHttpClient(base or DEFAULT_NODE_REST, self.config.timeout_s)
        self.indexer = JsonHttpClient(base or DEFAULT_INDEXER, self.config.timeout_s, min_interval_s=0.1)

    async def close(self) -> None:
        await self.node.close()
        await self.indexer.close()

    async def _markets(self) -> Any:
        return await self.indexer.get("/v4/perpetualMarkets")

    async def _usdc_amount(self, address: str) -> str | None:
        """The USDC amount of one account, following the bank pagination."""
        params: dict[str, str] = {"pagination.limit": str(self.bank_page_limit)}
        found: str | None = None
        for _ in range(1000):
            payload = await self.node.get(f"/cosmos/bank/v1beta1/balances/{address}", params)
            amount, next_key = parse_bank_balances(payload)
            found = amount if amount is not None else found
            if next_key is None or found is not None:
                return found
            params["pagination.key"] = next_key
        raise PayloadError(f"bank balances of {address}: pagination did not end")

    async def fetch_funds(self, since: datetime | None) -> Batch:
        plan = fund_plan(await self._markets(), self.config.symbols or None, self.config.max_symbols)
        ts = datetime.now(UTC).replace(microsecond=0)
        batch = Batch()
        for name, tickers in plan:
            amount = await self._usdc_amount(module_address(name))
            batch.funds.append(fund_balance(self.key, name, amount, ts))
            batch.pool_members.extend(PoolMember(self.key, name, ticker, "USDC") for ticker in tickers)
        return batch

    async def _market_batch(self) -> Batch:
        return parse_perpetual_markets(self.key, await self._markets(), datetime.now(UTC), self.config.symbols or None)

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        markets = await self._market_batch()
        return Batch(open_interest=markets.open_interest, prices=markets.prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return Batch(funding=(await self._market_batch()).funding)

    funding_page_size = 100

    async def backfill_funding(self, since: datetime) -> AsyncIterator[Batch]:
        """Per market (``symbols``, else every market, capped at ``max_symbols``), page back through the
        settled hourly rates with ``effectiveBeforeOrAt`` until ``since`` or the start of the history; one
        batch per market."""
        tickers = [str(require(row, "ticker", "perpetualMarkets")) for row in market_rows(await self.page(self._markets))]
        if self.config.symbols:
            tickers = [t for t in tickers if t in self.config.symbols]
        for ticker in sorted(tickers)[: self.config.max_symbols]:
            before: datetime | None = None
            found: list[FundingRate] = []  # one write per market: a write per 100-row page costs more than the read
            while True:
                params = {"limit": str(self.funding_page_size)}
                if before is not None:
                    params["effectiveBeforeOrAt"] = before.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                payload = await self.page(partial(self.indexer.get, f"/v4/historicalFunding/{ticker}", params))
                rates, oldest = parse_historical_funding(self.key, payload, since)
                found += rates
                page_len = len(require_list(payload["historicalFunding"], "historicalFunding"))
                if oldest is None or oldest < since or page_len < self.funding_page_size:
                    break
                before = oldest - timedelta(milliseconds=1)
            if found:
                yield Batch(funding=found)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        return Batch(prices=(await self._market_batch()).prices)
