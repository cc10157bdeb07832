"""OKX v5 payload parsers: each documented response (its sample in the docstring) -> Backstop records.
Pure functions over the decoded JSON; the adapter that calls the venue, walks the cursors and explains
the decisions (pools, rows, why ``total`` is not stored, OI units, funding stamps) is ``collectors.okx``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from collectors.base import AdlSignal, Batch, FundBalance, FundFlow, FundingRate, OpenInterest, Price
from collectors.errors import PayloadError
from collectors.parsing import (
    dec,
    norm_asset,
    num,
    opt_dec,
    opt_num,
    raw_text,
    require,
    require_list,
    to_json,
    ts_ms,
)

PRICE_QUOTES = ("USDT", "USD", "USDC")  # preference order for a base asset's USD price


@dataclass(frozen=True, slots=True)
class Instrument:
    """The parts of ``/public/instruments`` Backstop needs."""

    inst_id: str
    inst_type: str
    family: str
    base: str
    settle: str
    ct_val: Decimal | None
    inverse: bool


def okx_data(payload: Any, where: str) -> list[Any]:
    """The ``data`` list of OKX's envelope ``{"code": "0", "msg": "", "data": [...]}``."""
    code = require(payload, "code", where)
    if str(code) != "0":  # ccxt raises first; this guards direct callers
        raise PayloadError(f"{where}: venue error code {code}: {payload.get('msg', '')}")
    return require_list(require(payload, "data", where), f"{where}.data")


def family_of(inst_id: str) -> str:
    """BTC-USDT-SWAP -> BTC-USDT; BTC-USD-250926 -> BTC-USD; a family stays itself."""
    parts = inst_id.split("-")
    return "-".join(parts[:2]) if len(parts) >= 2 else inst_id


def inst_type_of(inst_id: str) -> str | None:
    """SWAP / FUTURES from an instrument id's shape; None for a bare family (BTC-USDT)."""
    parts = inst_id.split("-")
    if len(parts) < 3:
        return None
    return "SWAP" if parts[-1] == "SWAP" else "FUTURES"


def parse_instruments(payload: Any) -> dict[str, Instrument]:
    """GET /api/v5/public/instruments?instType=SWAP (or FUTURES)::

        {"code": "0", "msg": "", "data": [{"instId": "BTC-USD-SWAP", "instType": "SWAP",
          "instFamily": "BTC-USD", "uly": "BTC-USD", "ctType": "inverse", "ctVal": "100", "ctValCcy": "USD",
          "settleCcy": "BTC", "state": "live", ...}]}"""
    instruments: dict[str, Instrument] = {}
    for row in okx_data(payload, "instruments"):
        inst_id = str(require(row, "instId", "instruments"))
        family = str(row.get("instFamily") or row.get("uly") or family_of(inst_id))
        ct_val = opt_dec(row.get("ctVal"), f"{inst_id}.ctVal")
        instruments[inst_id] = Instrument(
            inst_id=inst_id, inst_type=str(require(row, "instType", inst_id)), family=family,
            base=norm_asset(family.split("-")[0]), settle=norm_asset(str(row.get("settleCcy") or "")),
            ct_val=ct_val, inverse=row.get("ctType") == "inverse",
        )
    return instruments


def insurance_entries(payload: Any) -> list[dict[str, Any]]:
    """GET /api/v5/public/insurance-fund: one ``data`` entry per instType x instFamily."""
    entries = okx_data(payload, "insurance-fund")
    for index, entry in enumerate(entries):
        where = f"insurance-fund.data[{index}]"
        require(entry, "instType", where)
        require_list(require(entry, "details", where), f"{where}.details")
    return entries


def pool_id_of(entry: dict[str, Any]) -> str:
    family = entry.get("instFamily") or entry.get("uly") or entry.get("ccy") or ""
    return f"{entry['instType']}:{family}"


def parse_fund_details(venue: str, pool_id: str, details: list[Any]) -> Batch:
    """``details[]`` of one pool, e.g.::

        {"adlType": "", "amt": "", "balance": "1343.1308", "ccy": "ETH", "maxBal": "", "maxBalTs": "",
         "ts": "1704883083000", "type": "regular_update"}

    regular_update -> fund balance; deposit/loss/revenue -> typed flow; adl -> flow + ADL signal."""
    batch = Batch()
    for row in details:
        where = f"{pool_id}.details"
        kind = str(require(row, "type", where))
        asset = norm_asset(str(require(row, "ccy", where)))
        ts = ts_ms(require(row, "ts", where), f"{where}.ts")
        raw_balance = row.get("balance")
        if kind == "regular_update":
            batch.funds.append(FundBalance(
                venue=venue, pool_id=pool_id, asset=asset, ts=ts, balance=dec(raw_balance, f"{where}.balance"),
                balance_raw=raw_text(raw_balance), unit_raw=str(row["ccy"]), source="history",
            ))
            continue
        extras = {k: row[k] for k in ("adlType", "maxBal", "maxBalTs") if row.get(k) not in (None, "")}
        batch.fund_flows.append(FundFlow(
            venue=venue, pool_id=pool_id, asset=asset, ts=ts, flow_type=kind,
            amount=opt_dec(row.get("amt"), f"{where}.amt"),
            balance_after=opt_dec(raw_balance, f"{where}.balance"), detail=to_json(extras),
        ))
        if kind == "adl":
            batch.adl.append(AdlSignal(
                venue=venue, scope=pool_id, ts=ts, signal_type="okx_adl", level=row.get("adlType") or None,
                value=opt_num(raw_balance, f"{where}.balance"),
                detail=to_json({"ccy": row["ccy"], "balance": raw_balance, **extras}),
            ))
    return batch


def parse_insurance_fund(venue: str, payload: Any) -> Batch:
    """A whole insurance-fund response (every entry's details); the poller uses ``parse_fund_details``."""
    batch = Batch()
    for entry in insurance_entries(payload):
        batch.merge(parse_fund_details(venue, pool_id_of(entry), entry["details"]))
    return batch


def _oi_record(venue: str, inst_id: str, ts: datetime, raw_oi: Any, oi_ccy: Any, oi_usd_raw: Any,
               instruments: dict[str, Instrument]) -> OpenInterest:
    oi_contracts = dec(raw_oi, f"{inst_id}.oi")
    oi_base = opt_num(oi_ccy, f"{inst_id}.oiCcy")
    oi_usd = opt_num(oi_usd_raw, f"{inst_id}.oiUsd")
    known = instruments.get(inst_id)
    if known is not None:
        base, settle, inverse = known.base, known.settle, known.inverse
        contract_size = float(known.ct_val) if known.ct_val is not None else None
    else:  # not in the instrument list (just listed): the family says it, the numbers give the size
        family = family_of(inst_id)
        quote = family.split("-")[-1]
        base = norm_asset(family.split("-")[0])
        inverse = quote == "USD"
        settle = base if inverse else norm_asset(quote)
        per = oi_usd if inverse else oi_base
        contract_size = per / float(oi_contracts) if per is not None and oi_contracts else None
    return OpenInterest(
        venue=venue, symbol=inst_id, ts=ts, base_asset=base, settle_asset=settle, oi_raw=raw_text(raw_oi),
        oi_unit="contracts", contract_size=contract_size, inverse=inverse, oi_base=oi_base, oi_usd=oi_usd,
    )


def parse_open_interest(venue: str, payload: Any, instruments: dict[str, Instrument]) -> list[OpenInterest]:
    """GET /api/v5/public/open-interest?instType=SWAP::

        {"code": "0", "msg": "", "data": [{"instType": "SWAP", "instId": "BTC-USDT-SWAP", "oi": "5000",
          "oiCcy": "555.55", "oiUsd": "50000", "ts": "1597026383085"}]}

    ``oi`` contracts (raw), ``oiCcy`` base coin, ``oiUsd`` USD notional."""
    rows = []
    for row in okx_data(payload, "open-interest"):
        inst_id = str(require(row, "instId", "open-interest"))
        rows.append(_oi_record(
            venue, inst_id, ts_ms(require(row, "ts", inst_id), f"{inst_id}.ts"), require(row, "oi", inst_id),
            row.get("oiCcy"), row.get("oiUsd"), instruments,
        ))
    return rows


def parse_open_interest_history(venue: str, inst_id: str, payload: Any,
                                instruments: dict[str, Instrument]) -> list[OpenInterest]:
    """GET /api/v5/rubik/stat/contracts/open-interest-history?instId=BTC-USDT-SWAP&period=1Dutc
    (newest first; rows carry no instId)::

        {"code": "0", "msg": "", "data": [["1701417600000", "731377.57500501", "111", "8888888"]]}

    Each row is ``[ts, oi (contracts), oiCcy (base coin), oiUsd]``, ts = the bar's start."""
    rows = []
    for index, row in enumerate(okx_data(payload, "open-interest-history")):
        where = f"{inst_id}.open-interest-history[{index}]"
        if not isinstance(row, list) or len(row) < 4:
            raise PayloadError(f"{where}: expected [ts, oi, oiCcy, oiUsd], got {row!r}")
        rows.append(_oi_record(venue, inst_id, ts_ms(row[0], f"{where}.ts"), row[1], row[2], row[3], instruments))
    return rows


def parse_mark_prices(venue: str, payload: Any) -> tuple[list[Price], dict[str, float]]:
    """GET /api/v5/public/mark-price?instType=SWAP::

        {"code": "0", "msg": "", "data": [{"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "200",
          "ts": "1597026383085"}]}

    (one USD price per base asset, best quote first; every instrument's mark by instId)."""
    marks: dict[str, float] = {}
    best: dict[str, tuple[int, Price]] = {}
    for row in okx_data(payload, "mark-price"):
        inst_id = str(require(row, "instId", "mark-price"))
        mark = num(require(row, "markPx", inst_id), f"{inst_id}.markPx")
        marks[inst_id] = mark
        parts = inst_id.split("-")
        if len(parts) < 2 or parts[1] not in PRICE_QUOTES:
            continue
        rank = PRICE_QUOTES.index(parts[1])
        base = norm_asset(parts[0])
        if base not in best or rank < best[base][0]:
            ts = ts_ms(require(row, "ts", inst_id), f"{inst_id}.ts")
            best[base] = (rank, Price(venue, base, ts, mark, "mark"))
    return [price for _, price in best.values()], marks


def parse_funding_rate(venue: str, payload: Any, marks: dict[str, float] | None = None) -> list[FundingRate]:
    """GET /api/v5/public/funding-rate?instId=BTC-USDT-SWAP::

        {"code": "0", "msg": "", "data": [{"instId": "BTC-USDT-SWAP", "fundingRate": "0.0000182221218054",
          "fundingTime": "1743609600000", "nextFundingTime": "1743638400000", "ts": "1743588686291", ...}]}

    ``fundingRate`` settles at ``fundingTime``; the interval is ``nextFundingTime - fundingTime``."""
    rows = []
    for row in okx_data(payload, "funding-rate"):
        inst_id = str(require(row, "instId", "funding-rate"))
        raw_rate = require(row, "fundingRate", inst_id)
        funding_time = row.get("fundingTime")
        next_time = row.get("nextFundingTime")
        interval_h = None
        if funding_time and next_time:
            interval_h = (int(next_time) - int(funding_time)) / 3_600_000 or None
        rows.append(FundingRate(
            venue=venue, symbol=inst_id, ts=ts_ms(require(row, "ts", inst_id), f"{inst_id}.ts"),
            funding_rate=num(raw_rate, f"{inst_id}.fundingRate"), funding_rate_raw=raw_text(raw_rate),
            next_funding_ts=ts_ms(funding_time, f"{inst_id}.fundingTime") if funding_time else None,
            interval_h=interval_h, mark_price=(marks or {}).get(inst_id),
        ))
    return rows


def parse_funding_history(venue: str, payload: Any) -> list[FundingRate]:
    """GET /api/v5/public/funding-rate-history?instId=BTC-USD-SWAP (newest first)::

        {"code": "0", "msg": "", "data": [{"instId": "BTC-USD-SWAP", "fundingRate": "0.0000746604960499",
          "realizedRate": "0.0000746572360545", "fundingTime": "1703059200000", "method": "next_period"}]}

    One row per settlement at ``fundingTime`` with the rate actually settled (``realizedRate``)."""
    rows = []
    for row in okx_data(payload, "funding-rate-history"):
        inst_id = str(require(row, "instId", "funding-rate-history"))
        raw_rate = row.get("realizedRate") or require(row, "fundingRate", inst_id)
        rows.append(FundingRate(
            venue=venue, symbol=inst_id, ts=ts_ms(require(row, "fundingTime", inst_id), f"{inst_id}.fundingTime"),
            funding_rate=num(raw_rate, f"{inst_id}.realizedRate"), funding_rate_raw=raw_text(raw_rate),
        ))
    return rows

