"""The liquidation engine of the simulated market: per step and contract, liquidations sized by the
price move and the regime, their fills against the bankruptcy price paying into or drawing from the
covering pool (margin -> fund -> ADL), open interest and funding moving with them, and each pool's
published points, flows and ADL signals."""

from __future__ import annotations

import bisect
import math
import random
from decimal import Decimal

from simulator.leverage import DayBook
from simulator.market_state import (
    ANNUAL_VOL,
    DAY_MS,
    DEFAULT_ANNUAL_VOL,
    FLOW_MAX,
    GROWTH_PER_DAY,
    HOUR_MS,
    LAMBDA0,
    LIQ_MAX,
    LIQ_WINDOW_MS,
    MAX_EVENTS_PER_STEP,
    MINUTES_PER_YEAR,
    MM_RANGE,
    OI_FLOOR,
    REGIME_SLIP,
    STEP_MS,
    MarketCore,
    SimFlow,
    SimLiquidation,
    _ContractModel,
    _dec,
    _poisson,
    _PoolModel,
    _price_places,
    _thin,
    _VenueModel,
)
from simulator.scenarios import (
    ADL_MS,
    DRAIN_MS,
)


class LiquidationEngine(MarketCore):
    """The liquidation part of ``Market`` (mixed in: it steps the market's venue and pool models)."""

    def _step_venue(self, vm: _VenueModel, t: int) -> None:
        rng = vm.rng
        plan = self._plan
        regime = self._regime
        for cm in vm.contracts:
            self._step_contract(cm, rng, t)
        for pm in vm.pools:
            exposure = pm.exposure0 * self._oi_factor(pm)
            if not pm.books:
                pm.books = [DayBook() for _ in pm.contracts]
            previous = 0.0
            for cm, book, cum in zip(pm.contracts, pm.books, pm.cum_weights, strict=True):
                weight, previous = cum - previous, cum
                price = float(self.price(cm.contract.base))
                long_usd, short_usd = book.step(vm.leverage, t, price, exposure * weight)
                for side, usd in (("long", long_usd), ("short", short_usd)):
                    if usd > 0:
                        self._liquidate_split(vm, pm, cm, t, usd, exposure, regime, side)
            if pm.victim and plan.name in ("venue-drain", "adl"):
                self._scheduled_losses(vm, pm, t)
        if vm.pending:
            vm.pending.sort(key=lambda liq: liq.ts_ms)
            for liq in vm.pending:
                vm.seq += 1
                liq.seq = vm.seq
                liq.liq_id = str(vm.seq)
            vm.venue.liquidations.extend(vm.pending)
            vm.pending = []
        for pm in vm.pools:
            if t >= pm.next_pub_ms:
                self._publish(pm, t)
            if pm.adl_open and t >= pm.adl_until_ms:
                pm.adl_open = False
                pool = pm.pool
                vm.venue.flows.append(SimFlow(pool.pool_id, pool.asset, t, "adl", Decimal(0), pool.balance,
                                              extra={"adlType": "adl_end"}))
        if t % (10 * STEP_MS) == 0:
            self._trim(vm, t)
        self._adl_levels(vm, t)

    def _oi_factor(self, pm: _PoolModel) -> float:
        total = 0.0
        for cm in pm.contracts:
            total += float(cm.contract.oi_contracts) / cm.oi0
        return max(OI_FLOOR, min(2.0, total / len(pm.contracts)))

    def _step_contract(self, cm: _ContractModel, rng: random.Random, t: int) -> None:
        contract = cm.contract
        r = self._last_r.get(self._price_key(contract.base), 0.0)
        ema = self._ema_r.get(self._price_key(contract.base), 0.0)
        # positioning: longs pile in on rallies, are flushed on drops; slowly mean-reverting
        cm.imbalance += -cm.imbalance / 1440 + 8.0 * r + rng.gauss(0.0, 0.004)
        cm.imbalance = max(-1.0, min(1.0, cm.imbalance))
        oi = float(contract.oi_contracts)
        pull = -0.0005 * math.log(max(oi, 1e-12) / cm.oi0)
        oi *= math.exp(pull + 0.0006 * rng.gauss(0.0, 1.0) + 0.3 * r)
        oi = max(oi, OI_FLOOR * cm.oi0 * 0.5)
        contract.oi_contracts = _dec(oi, cm.oi_places)
        scale = contract.funding_interval_h / 8
        rate_8h = cm.fr0 / scale if scale else cm.fr0
        rate_8h += 0.0003 * cm.imbalance + 0.01 * ema * 480  # ema * 480 ~ the last 8 h return
        rate_8h = max(-0.003, min(0.003, rate_8h))
        rate = rate_8h * scale
        # never so close to zero that Decimal would print it in exponent form (venues echo str())
        contract.funding_rate = _dec(math.copysign(max(abs(rate), 1e-6), rate), 8)
        if cm.basis_owned:
            basis = 2.0 * rate_8h + rng.gauss(0.0, 0.0001)
            plan = self._plan
            if plan.venue == cm.venue_key and plan.name in ("venue-drain", "adl"):
                length = DRAIN_MS if plan.name == "venue-drain" else ADL_MS
                rel = (t - plan.onset_ms) / length
                if 0 <= rel <= 1:
                    basis -= 0.02 * math.sin(math.pi * rel)  # the victim venue's marks dislocate
            contract.extra["basis"] = _dec(max(-0.03, min(0.004, basis)), 6)

    def _liquidate_split(self, vm: _VenueModel, pm: _PoolModel, cm: _ContractModel, t: int, notional: float,
                         exposure: float, regime: int, side: str) -> None:
        """``notional`` USD of ``side`` positions on one contract, as a few liquidations of random sizes."""
        rng = pm.rng
        count = min(MAX_EVENTS_PER_STEP, 1 + _poisson(rng, LAMBDA0))
        weights = [rng.lognormvariate(0.0, 0.8) for _ in range(count)]
        total = sum(weights)
        for weight in weights:
            self._liquidate(vm, pm, t, notional * weight / total, exposure, regime, None, cm, side)

    def _liquidate(self, vm: _VenueModel, pm: _PoolModel, t: int, notional: float, exposure: float,
                   regime: int, scheduled: float | None, chosen: _ContractModel | None = None,
                   side: str | None = None) -> float:
        """One liquidation of ``notional`` USD on one of the pool's contracts. ``scheduled`` (pool asset
        units): a deficit the scenario requires, filled far beyond bankruptcy. Returns the deficit
        requested (pool asset units) for scheduled ones."""
        rng = pm.rng
        if chosen is None:
            index = bisect.bisect_left(pm.cum_weights, rng.random()) if len(pm.contracts) > 1 else 0
            chosen = pm.contracts[min(index, len(pm.contracts) - 1)]
        cm = chosen
        contract = cm.contract
        key = self._price_key(contract.base)
        r = self._last_r.get(key, 0.0)
        sigma = ANNUAL_VOL.get(key, DEFAULT_ANNUAL_VOL) / math.sqrt(MINUTES_PER_YEAR)
        basis = float(contract.extra.get("basis", 0)) if not cm.synthetic else 0.0
        mark = float(self.price(contract.base)) * (1 + basis)
        if mark <= 0:
            return 0.0
        pool_px = float(self.price(pm.pool.asset)) or 1.0
        # linear PnL is in the quote currency, inverse PnL in the base coin (whatever unit settles it)
        value_px = float(self.price(contract.base)) if contract.inverse else float(self.price(contract.quote)) or 1.0
        mm = rng.uniform(*MM_RANGE)
        if scheduled is not None:
            long = rng.random() < 0.8
            excess = rng.uniform(0.04, 0.12)
            slip = mm + excess
            notional = scheduled * pool_px / excess
        else:
            p_long = 0.5 - max(-0.42, min(0.42, r / (4 * sigma)))
            long = side == "long" if side is not None else rng.random() < p_long
            slip = abs(rng.gauss(0.0, REGIME_SLIP[regime])) + 0.5 * abs(r) + 0.5 * notional / max(exposure, 1.0)
        cs = float(contract.contract_size) or 1.0
        quantum = 10.0 ** -cm.oi_places
        if contract.inverse:
            qty = max(quantum, round(notional / cs / quantum) * quantum)
        else:
            qty = max(quantum, round(notional / (mark * cs) / quantum) * quantum)
        places = _price_places(mark)
        if long:
            bankrupt, fill = mark * (1 - mm), mark * (1 - slip)
        else:
            bankrupt, fill = mark * (1 + mm), mark * (1 + slip)
        bankrupt = round(bankrupt, places)
        fill = max(round(fill, places), 10.0 ** -places)
        if contract.inverse:
            pnl = qty * cs * ((1 / bankrupt - 1 / fill) if long else (1 / fill - 1 / bankrupt))
            notional_usd = qty * cs
        else:
            pnl = qty * cs * ((fill - bankrupt) if long else (bankrupt - fill))
            notional_usd = qty * cs * mark * value_px
        delta = pnl * value_px / pool_px
        fund_delta = _dec(delta, pm.places)
        pool = pm.pool
        adl = Decimal(0)
        after = pool.balance + fund_delta
        if after <= 0:
            adl = -after
            fund_delta = -pool.balance
            after = Decimal(0)  # plain 0, not 0E-8
        pool.balance = after
        pm.liq_total += fund_delta
        if fund_delta >= 0:
            pm.period_surplus += fund_delta
        else:
            pm.period_deficit += fund_delta
        ts = t - STEP_MS + rng.randint(1, STEP_MS)
        if adl:
            pm.period_adl += adl
            pm.adl_total += adl
            vm.adl_until_ms = max(vm.adl_until_ms, t + 2 * HOUR_MS)
            pm.adl_until_ms = t + 2 * HOUR_MS
            if not pm.adl_open and not pm.hidden:
                pm.adl_open = True
                peak_ts, peak = max(pool.history, key=lambda point: point[1]) if pool.history else (ts, pool.balance)
                vm.venue.flows.append(SimFlow(pool.pool_id, pool.asset, ts, "adl", Decimal(0), pool.balance,
                                              extra={"adlType": "bal_adl_start", "maxBal": peak, "maxBalTs": peak_ts}))
        floor = OI_FLOOR * cm.oi0
        left = float(contract.oi_contracts) - qty
        if left >= floor:
            contract.oi_contracts = _dec(left, cm.oi_places)
        elif float(contract.oi_contracts) > floor:
            contract.oi_contracts = _dec(floor, cm.oi_places)
        cm.imbalance += (-1 if long else 1) * min(0.05, notional_usd / max(exposure, 1.0) * 5)
        stats = vm.stats
        stats["liq_count"] += 1
        stats["liq_notional_usd"] += notional_usd
        value = float(fund_delta) * pool_px
        if value >= 0:
            stats["surplus_usd"] += value
        else:
            stats["deficit_usd"] -= value
        stats["adl_usd"] += float(adl) * pool_px
        vm.pending.append(SimLiquidation(
            liq_id="", symbol=contract.symbol, ts_ms=ts,
            position_side="long" if long else "short", qty_contracts=_dec(qty, cm.oi_places),
            bankruptcy_price=_dec(bankrupt, places), fill_price=_dec(fill, places), fund_delta=fund_delta,
            pool_id=pool.pool_id, mark_price=_dec(mark, places), notional_usd=_dec(notional_usd, 2),
            adl_amount=adl, base=contract.base, settle=contract.settle, inverse=contract.inverse,
            contract_size=contract.contract_size,
        ))
        return -delta if scheduled is not None else 0.0

    def _publish(self, pm: _PoolModel, t: int) -> None:
        """Cross one or more publication boundaries: credit growth and write the period's flows when a
        flow period ends, then publish the balance at the latest boundary."""
        boundary = pm.next_pub_ms + ((t - pm.next_pub_ms) // pm.pub_step_ms) * pm.pub_step_ms
        pm.next_pub_ms = boundary + pm.pub_step_ms
        pool = pm.pool
        if boundary // pm.flow_step_ms != pm.last_flow_ms // pm.flow_step_ms:
            growth_f = pm.b0 * GROWTH_PER_DAY * (boundary - pm.last_flow_ms) / DAY_MS + pm.growth_carry
            growth = _dec(growth_f, pm.places)
            if growth < 0:
                growth = Decimal(0)
            pm.growth_carry = growth_f - float(growth)
            start_balance = pool.balance - pm.period_surplus - pm.period_deficit
            pool.balance += growth
            pm.growth_total += growth
            flows = self._fund_flows[pm.venue.key]
            running = start_balance
            for flow_type, amount in (("liquidation_balance_deposit", pm.period_surplus),
                                      ("bankruptcy_loss", pm.period_deficit),
                                      ("platform_revenue", growth)):
                if amount:
                    running += amount
                    flows.append(SimFlow(pm.ledger_key, pool.asset, boundary, flow_type, amount, running))
            if pm.hidden and pm.period_deficit:
                funded = -pm.period_deficit
                quantum = Decimal(1).scaleb(-pm.places)
                pm.venue.flows.append(SimFlow(
                    pool.pool_id, pool.asset, boundary, "bankruptcy", funded, Decimal(0),
                    extra={"socialized": pm.period_adl, "session_profit_loss": pm.period_surplus,
                           "session_tax": (funded * Decimal("0.0015")).quantize(quantum),
                           "session_tax_rate": Decimal("0.0015")}))
            pm.period_surplus = pm.period_deficit = pm.period_adl = Decimal(0)
            pm.last_flow_ms = boundary
        if pm.hidden:
            return
        pool.history.append((boundary, pool.balance))

    def _trim(self, vm: _VenueModel, t: int) -> None:
        venue = vm.venue
        liqs = venue.liquidations
        if liqs and (len(liqs) > LIQ_MAX or liqs[0].ts_ms < t - LIQ_WINDOW_MS):
            cutoff = t - LIQ_WINDOW_MS
            drop = max(len(liqs) - LIQ_MAX, bisect.bisect_left([x.ts_ms for x in liqs[:2000]], cutoff))
            if drop > 0:
                del liqs[:drop]
        flows = self._fund_flows[venue.key]
        if len(flows) > FLOW_MAX * 1.2:
            del flows[: len(flows) - FLOW_MAX]
        for pm in vm.pools:
            history = pm.pool.history
            if pm.pub_step_ms < HOUR_MS and len(history) > pm.base_history_len + 3 * 1440:
                pm.pool.history = _thin(history, keep_last=1440)
                pm.base_history_len = len(pm.pool.history) - 1440

    def _adl_levels(self, vm: _VenueModel, t: int) -> None:
        """ADL risk of each contract from its backing pools' drawdown (only where the venue module did
        not set a fixed level): high while ADL runs or a pool is nearly empty, medium below 70 %."""
        if t % (5 * STEP_MS):
            return
        adl_on = t < vm.adl_until_ms
        levels: dict[int, int] = {}
        for pm in vm.pools:
            ratio = float(pm.pool.balance) / pm.b0 if pm.b0 > 0 else 1.0
            rank = 2 if adl_on or ratio < 0.1 else 1 if ratio < 0.7 else 0
            for cm in pm.contracts:
                levels[id(cm)] = max(levels.get(id(cm), 0), rank)
        for cm in vm.contracts:
            if cm.adl_owned and not cm.synthetic:
                cm.contract.extra["adl_risk"] = ("low", "medium", "high")[levels.get(id(cm), 0)]
