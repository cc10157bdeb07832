"""How a venue's declarations (``build(market)``: contracts and pools) become the live model: which
contracts each pool absorbs the losses of, how much open interest it backs (its exposure, shared with the
other pools covering the same contract), the hidden fund per settle asset behind contracts no published
pool covers, a synthetic contract for a pool that lists none, and when each pool publishes next."""

from __future__ import annotations

import random
from decimal import Decimal

from simulator.leverage import venue_distribution
from simulator.market_state import (
    DAY_MS,
    HOUR_MS,
    LEV_MAX,
    LEV_MIN,
    LEV_REF,
    MarketCore,
    SimContract,
    SimPool,
    SimVenue,
    _cent_places,
    _ContractModel,
    _dec,
    _places,
    _PoolModel,
    _VenueModel,
)


class VenueModelBuilder(MarketCore):
    """The model-building part of ``Market`` (mixed in: ``Market._init_model`` calls ``_venue_model``
    once per venue after every venue module has declared its contracts and pools)."""

    def _venue_model(self, key: str, venue: SimVenue) -> _VenueModel:
        rng = random.Random(f"{self.seed}:venue:{key}")
        contracts: dict[str, _ContractModel] = {}
        for contract in venue.contracts.values():
            contracts[contract.symbol] = self._contract_model(key, contract, synthetic=False)
        covered: dict[str, list[SimPool]] = {}
        pool_contracts: dict[str, list[_ContractModel]] = {}
        for pool in venue.pools.values():
            chosen = self._match_contracts(venue, pool, contracts)
            if not chosen:
                chosen = [self._synthetic_contract(key, pool)]
            pool_contracts[pool.pool_id] = chosen
            for cm in chosen:
                covered.setdefault(cm.contract.symbol, []).append(pool)
        pools = []
        for pool in venue.pools.values():
            pools.append(self._pool_model(venue, pool, pool_contracts[pool.pool_id], covered, rng))
        # contracts no published pool covers still liquidate, into a hidden fund per settle asset
        hidden: dict[str, list[_ContractModel]] = {}
        for symbol, cm in contracts.items():
            if symbol not in covered:
                hidden.setdefault(cm.contract.settle, []).append(cm)
        for asset, members in hidden.items():
            oi_usd = sum(float(cm.contract.oi_usd(self.price(cm.contract.base))) for cm in members)
            balance = _dec(oi_usd / LEV_REF / (float(self.price(asset)) or 1.0), 8)
            pool = SimPool(asset, asset, [cm.contract.symbol for cm in members], balance, extra={"hidden": True})
            for cm in members:
                covered[cm.contract.symbol] = [pool]
            pools.append(self._pool_model(venue, pool, members, covered, rng, hidden=True))
        model = _VenueModel(venue, rng, pools, list(contracts.values()), venue_distribution(key))
        for pm in pools:
            self._pool_models[(key, pm.ledger_key)] = pm
            for cm in pm.contracts:
                if cm.synthetic:
                    model.contracts.append(cm)
        return model

    def _contract_model(self, venue_key: str, contract: SimContract, synthetic: bool) -> _ContractModel:
        return _ContractModel(
            venue_key=venue_key, contract=contract, synthetic=synthetic,
            oi0=max(float(contract.oi_contracts), 1e-9), oi_places=_places(contract.oi_contracts, hi=6),
            fr0=float(contract.funding_rate), basis_owned="basis" not in contract.extra,
            adl_owned="adl_risk" not in contract.extra,
        )

    @staticmethod
    def _match_contracts(venue: SimVenue, pool: SimPool,
                         contracts: dict[str, _ContractModel]) -> list[_ContractModel]:
        """The contracts whose losses this pool absorbs: its listed symbols, else symbols sharing a
        prefix (BTC-USDT ~ BTC-USDT-SWAP), else (no symbols) every contract settled in its asset."""
        chosen = [contracts[s] for s in pool.symbols if s in contracts]
        if chosen:
            return chosen
        if pool.symbols:
            return [cm for sym, cm in contracts.items()
                    if any(sym.startswith(s) or s.startswith(sym) for s in pool.symbols if s)]
        same = [cm for cm in contracts.values() if cm.contract.settle == pool.asset]
        return same or list(contracts.values())

    def _synthetic_contract(self, venue_key: str, pool: SimPool) -> _ContractModel:
        symbol = pool.symbols[0] if pool.symbols else f"{pool.asset}-PERP"
        base = "BTC"
        for quote in ("-USDT-SWAP", "-USD-SWAP", "_USDT", "_USD", "-USDT", "-USD", "USDT", "USDC", "USD",
                      "/USDT", "-PERP"):
            if symbol.upper().endswith(quote) and len(symbol) > len(quote):
                candidate = symbol[: -len(quote)].upper().replace("-", "").replace("_", "")
                if self._price_key(candidate) in self.prices:
                    base = self._price_key(candidate)
                break
        price = float(self.price(base))
        usd = float(pool.balance * self.price(pool.asset))
        oi = max(usd * LEV_REF / price, 1.0)
        contract = SimContract(symbol, base, "USD", pool.asset, Decimal(1), False,
                               _dec(oi, 3), extra={"synthetic": True})
        return self._contract_model(venue_key, contract, synthetic=True)

    def _pool_model(self, venue: SimVenue, pool: SimPool, contracts: list[_ContractModel],
                    covered: dict[str, list[SimPool]], rng: random.Random, hidden: bool = False) -> _PoolModel:
        usd0 = float(pool.balance * self.price(pool.asset))
        exposure = 0.0
        weights = []
        for cm in contracts:
            contract = cm.contract
            oi_usd = float(contract.oi_usd(self.price(contract.base)))
            backers = sum(float(p.balance * self.price(p.asset)) for p in covered[contract.symbol])
            share = usd0 / backers if backers > 0 else 1.0 / len(covered[contract.symbol])
            exposure += oi_usd * share
            weights.append(max(oi_usd, 1e-9))
        exposure = min(max(exposure, LEV_MIN * usd0), LEV_MAX * usd0)
        total = sum(weights)
        cum, acc = [], 0.0
        for w in weights:
            acc += w / total
            cum.append(acc)
        cum[-1] = 1.0
        main = contracts[max(range(len(contracts)), key=lambda i: weights[i])].contract.base
        if hidden:  # settles daily at 08:00 UTC (Deribit's session), never published
            last_ts = (self.start_ms - 8 * HOUR_MS) // DAY_MS * DAY_MS + 8 * HOUR_MS
        else:
            last_ts = pool.history[-1][0] if pool.history else self.start_ms
        cadence_ms = max(1, int(pool.cadence_s)) * 1000
        pub_step = cadence_ms if not self.publish_every_s else min(cadence_ms, int(self.publish_every_s) * 1000)
        next_pub = last_ts + pub_step
        if next_pub <= self.start_ms:
            next_pub += ((self.start_ms - next_pub) // pub_step + 1) * pub_step
        return _PoolModel(
            venue=venue, pool=pool, places=max(_places(pool.balance), _cent_places(float(self.price(pool.asset)))),
            b0=float(pool.balance), usd0=usd0,
            contracts=contracts, cum_weights=cum, main_asset=main, exposure0=exposure,
            pub_step_ms=pub_step, next_pub_ms=next_pub, flow_step_ms=max(pub_step, HOUR_MS),
            last_flow_ms=self.start_ms, base_history_len=len(pool.history),
            rng=random.Random(f"{self.seed}:pool:{venue.key}:{'~' if hidden else ''}{pool.pool_id}"),
            hidden=hidden, ledger_key=f"~{pool.pool_id}" if hidden else pool.pool_id,
        )
