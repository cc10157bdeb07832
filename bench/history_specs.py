"""The synthetic market behind ``bench/make_history.py``: ten venues shaped like the real ones (pool layout,
cadence, rough size), their contracts, and the price paths everything is valued with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa

US = 1_000_000  # microseconds per second (Arrow timestamps are in us)
TS = pa.timestamp("us", tz="UTC")
DEC = pa.decimal128(38, 12)

ASSETS: dict[str, float] = {"BTC": 65_000.0, "ETH": 3_200.0, "SOL": 150.0, "BNB": 580.0, "XRP": 0.55,
                            "DOGE": 0.12}
STABLES = ("USDT", "USDC", "USD")


@dataclass
class PoolSpec:
    pool_id: str
    asset: str
    balance: float  # native units at the start
    cadence_s: int
    kind: str = "insurance"
    members: list[str] = field(default_factory=list)  # filled from the venue's contracts


@dataclass
class VenueSpec:
    key: str
    settle: str  # settle asset of linear contracts
    pools: list[PoolSpec]
    oi_unit: str = "base"  # base | contracts | usd
    inverse_share: float = 0.0  # share of contracts that are inverse (USD per contract)


def venue_specs() -> list[VenueSpec]:
    """Ten venues shaped like the real ones: pool layout, cadence and rough size (USD, late 2026)."""
    return [
        VenueSpec("binance", "USDT", [
            PoolSpec("BTCUSDT", "USDT", 790e6, 86_400), PoolSpec("BTCUSDT", "USDC", 300e6, 86_400),
            PoolSpec("BTCUSDT", "BTC", 61.7, 86_400), PoolSpec("SOLUSDT", "USDT", 45e6, 86_400),
            PoolSpec("XRPUSDT", "USDT", 22e6, 86_400)]),
        VenueSpec("bybit", "USDT", [
            PoolSpec("USDT-shared", "USDT", 310e6, 86_400), PoolSpec("USDC-shared", "USDC", 21e6, 86_400),
            PoolSpec("BTC-inverse", "BTC", 820.0, 86_400), PoolSpec("1000PEPEUSDT", "USDT", 3.1e6, 60),
            PoolSpec("WIFUSDT", "USDT", 1.4e6, 60), PoolSpec("JTOUSDT", "USDT", 0.9e6, 60),
            PoolSpec("ORDIUSDT", "USDT", 1.1e6, 60)], inverse_share=0.1),
        VenueSpec("okx", "USDT", [
            PoolSpec("SWAP:BTC-USDT", "USDT", 410e6, 3_600), PoolSpec("SWAP:ETH-USDT", "USDT", 180e6, 3_600),
            PoolSpec("SWAP:BTC-USD", "BTC", 1_150.0, 3_600), PoolSpec("SWAP:SOL-USDT", "USDT", 35e6, 3_600)],
            oi_unit="contracts"),
        VenueSpec("bitmex", "USDT", [
            PoolSpec("XBt", "BTC", 29_000.0, 86_400), PoolSpec("USDt", "USDT", 6.5e6, 86_400)],
            oi_unit="contracts", inverse_share=0.3),
        VenueSpec("gate", "USDT", [
            PoolSpec("usdt", "USDT", 84e6, 86_400), PoolSpec("btc", "BTC", 520.0, 86_400)],
            oi_unit="contracts"),
        VenueSpec("htx", "USDT", [
            PoolSpec("BTC-USDT", "USDT", 21e6, 86_400), PoolSpec("ETH-USDT", "USDT", 9e6, 86_400),
            PoolSpec("SOL-USDT", "USDT", 2.5e6, 86_400)], oi_unit="contracts"),
        VenueSpec("hyperliquid", "USDC", [
            PoolSpec("HLP", "USDC", 390e6, 3_600, kind="hlp_vault")]),
        VenueSpec("krakenfutures", "USD", [PoolSpec("liquidity-pool", "USD", 150e6, 3_600)], inverse_share=0.5),
        VenueSpec("mexc", "USDT", [
            PoolSpec("BTC_USDT", "USDT", 48e6, 14_400), PoolSpec("ETH_USDT", "USDT", 22e6, 14_400),
            PoolSpec("SOL_USDT", "USDT", 6e6, 14_400)], oi_unit="contracts"),
        VenueSpec("dydx", "USDC", [PoolSpec("insurance_fund", "USDC", 19e6, 300, kind="module_account")]),
    ]


@dataclass
class Contract:
    venue: str
    symbol: str
    base: str
    settle: str
    inverse: bool
    contract_size: float
    oi_unit: str
    oi_usd0: float  # typical USD notional


def make_contracts(spec: VenueSpec, n: int, rng: np.random.Generator) -> list[Contract]:
    bases = list(ASSETS) + [f"ALT{i:03d}" for i in range(n)]
    out: list[Contract] = []
    for i in range(n):
        base = bases[i]
        inverse = i > 0 and rng.random() < spec.inverse_share
        size = 100.0 if inverse else (0.01 if spec.oi_unit == "contracts" else 1.0)
        scale = {0: 6e9, 1: 3e9, 2: 8e8, 3: 4e8, 4: 3e8, 5: 2e8}.get(i, float(rng.lognormal(np.log(2e7), 1.0)))
        venue_scale = {"binance": 1.0, "bybit": 0.7, "okx": 0.5, "bitmex": 0.08, "gate": 0.3, "htx": 0.15,
                       "hyperliquid": 0.4, "krakenfutures": 0.05, "mexc": 0.25, "dydx": 0.03}.get(spec.key, 0.1)
        settle = "USD" if inverse else spec.settle
        suffix = "USD" if inverse else spec.settle
        out.append(Contract(spec.key, f"{base}{suffix}", base, settle if not inverse else base, inverse, size,
                            "usd" if inverse else spec.oi_unit, scale * venue_scale))
    return out


def price_paths(start: datetime, steps: int, step_s: int, extra: list[str], rng: np.random.Generator,
                ) -> dict[str, np.ndarray]:
    """Geometric random walks (about 3 %/day for BTC, more for alts), ending near today's level."""
    paths: dict[str, np.ndarray] = {}
    per_step = np.sqrt(step_s / 86_400)
    for asset in [*ASSETS, *extra]:
        p0 = ASSETS.get(asset, float(rng.lognormal(0, 2)))
        vol = 0.03 if asset == "BTC" else 0.045 if asset in ASSETS else 0.07
        shocks = rng.normal(0, vol * per_step, steps)
        walk = np.cumsum(shocks)
        paths[asset] = p0 * np.exp(walk - walk[-1])  # last value = p0
    for stable in STABLES:
        paths[stable] = np.ones(steps)
    return paths
