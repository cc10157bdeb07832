"""Price paths of the simulated market: one path per asset shared by all venues (a random walk with
volatility regimes and jumps; alts follow BTC with a beta, partly lagged), the hourly past bars venue
modules serve as candles, and the published history of a pool replayed from the same model."""

from __future__ import annotations

import bisect
import math
from decimal import Decimal

import numpy as np

from records.vocabulary import STABLE_ASSETS
from simulator.market_state import (
    ANNUAL_VOL,
    BETA,
    CALM,
    CRISIS,
    DAY_MS,
    DEFAULT_ANNUAL_VOL,
    DEFAULT_BETA,
    FINE_HISTORY_MS,
    GROWTH_PER_DAY,
    HOUR_MS,
    HOURLY_HISTORY_MS,
    LEV_REF,
    LIQ_A,
    LIQ_B,
    LIQ_C,
    MAX_FULL_HISTORY_POINTS,
    MINUTES_PER_YEAR,
    MM_MEAN,
    PRICE_UNITS,
    REGIME_LIQ,
    REGIME_SLIP,
    REGIME_VOL,
    VOLATILE,
    MarketCore,
    _dec,
    _places,
    _price_places,
)


class PriceModel(MarketCore):
    """The price part of ``Market`` (mixed in: it reads and steps the market's price state)."""

    def price(self, asset: str) -> Decimal:
        """USD price of an asset (or of a unit such as XBt = 1e-8 BTC); unknown assets are 1."""
        found = self.prices.get(asset)
        if found is not None:
            return found
        unit = PRICE_UNITS.get(asset)
        if unit is not None:
            return self.prices.get(unit[0], Decimal(1)) * unit[1]
        return self.prices.get(asset.upper(), Decimal(1))

    def price_at(self, asset: str, ts_ms: int) -> Decimal:
        """The asset's hourly close at or before ``ts_ms`` (current price after the last bar)."""
        bars = self._bars.get(self._price_key(asset))
        if bars is None:
            return self.price(asset)
        index = bisect.bisect_right(self._bar_ts, ts_ms // HOUR_MS * HOUR_MS) - 1
        if index < 0 or index >= len(bars):
            return self.price(asset)
        scale = self.price(asset) / self.price(self._price_key(asset))
        close = bars[index][3]
        return _dec(close, _price_places(close)) * scale

    # -- helpers for venue modules ------------------------------------------------------------------
    def make_history(self, balance: Decimal, cadence_s: int, drift: float | None = None,
                     vol: float | None = None, offset_s: int = 0) -> list[tuple[int, Decimal]]:
        """A deterministic published series ending at ``balance`` at the latest cadence boundary
        (boundaries at multiples of ``cadence_s`` from the epoch, shifted by ``offset_s``, e.g. 8 h).

        It follows the market model's past: the common liquidation/stress factor (with a couple of
        stress dips) times a per-pool sensitivity, plus the pool's own noise; ``drift`` (per day) and
        ``vol`` (daily) adjust the pool's own trend and noise. Long series at short cadences are
        coarser in the past: the native cadence for the last 2 days, hourly for 14 days, daily before.
        """
        step_ms = max(1, int(cadence_s)) * 1000
        offset = int(offset_s) * 1000
        end = ((self.start_ms - offset) // step_ms) * step_ms + offset
        n_total = max(1, (self.history_days * DAY_MS) // step_ms)
        first = end - (n_total - 1) * step_ms
        if n_total <= MAX_FULL_HISTORY_POINTS:
            ts = np.arange(first, end + 1, step_ms, dtype=np.int64)
        else:  # thin the past: whole hours beyond FINE_HISTORY_MS, whole days beyond HOURLY_HISTORY_MS
            def aligned(lo: int, hi: int, unit: int) -> np.ndarray:
                """Grid points in [lo, hi] on whole ``unit``s (from ``offset``), or every unit-th point."""
                if unit % step_ms == 0:
                    return np.arange(lo + (offset - lo) % unit, hi + 1, unit, dtype=np.int64)
                stride = max(1, unit // step_ms) * step_ms  # on the cadence grid, counted from the end
                return np.arange(end - ((end - lo) // stride) * stride, hi + 1, stride, dtype=np.int64)

            fine_lo = end - (max(1, FINE_HISTORY_MS // step_ms) - 1) * step_ms  # on the cadence grid
            hourly_lo = end - HOURLY_HISTORY_MS + 1
            ts = np.concatenate([aligned(first, min(hourly_lo - 1, fine_lo - 1), DAY_MS),
                                 aligned(max(first, hourly_lo), fine_lo - 1, HOUR_MS),
                                 np.arange(max(first, fine_lo), end + 1, step_ms, dtype=np.int64)])
            ts = np.unique(ts)
        calls = self._history_calls[self._building] = self._history_calls.get(self._building, 0) + 1
        rng = np.random.default_rng([self.seed, 7_919, calls] + [ord(c) for c in self._building[:24]])
        beta = float(rng.lognormal(0.0, 0.3))
        daily_vol = 0.003 if vol is None else float(vol)
        trend = 0.0 if drift is None else float(drift)
        common = np.interp(ts.astype(np.float64), self._factor_ts, self._factor)
        common_end = float(np.interp(float(end), self._factor_ts, self._factor))
        days = (ts - end).astype(np.float64) / DAY_MS
        gaps = np.diff(days, prepend=days[0])
        idio = np.cumsum(rng.standard_normal(len(ts)) * np.sqrt(np.maximum(gaps, 0.0)) * daily_vol)
        log_rel = beta * (common - common_end) + (idio - idio[-1]) + trend * days
        values = float(balance) * np.exp(log_rel)
        places = _places(balance)
        out = [(int(t), Decimal(f"{v:.{places}f}")) for t, v in zip(ts.tolist(), values.tolist(), strict=True)]
        out[-1] = (int(end), balance)
        return out

    def candles(self, asset: str, since_ms: int | None, limit: int,
                interval_ms: int = DAY_MS) -> list[tuple[int, float, float, float, float, float]]:
        """OHLCV of ``asset`` from the model's price path (hourly bars, aggregated to ``interval_ms``),
        from ``since_ms`` (or the last ``limit`` intervals) up to now."""
        key = self._price_key(asset)
        scale = float(self.price(asset) / self.price(key)) if key != asset else 1.0
        bars = self._bars.get(key)
        if bars is None:
            flat = float(self.price(asset))
            bars = [[flat, flat, flat, flat, 0.0] for _ in self._bar_ts]
        now = self.now_ms()
        interval_ms = max(HOUR_MS, interval_ms)
        end = (now // interval_ms) * interval_ms
        start = since_ms if since_ms is not None else end - (limit - 1) * interval_ms
        start = (start // interval_ms) * interval_ms
        rows: list[tuple[int, float, float, float, float, float]] = []
        index = bisect.bisect_left(self._bar_ts, start)
        while index < len(self._bar_ts) and len(rows) < limit:
            bucket = self._bar_ts[index] // interval_ms * interval_ms
            if bucket > end:
                break
            o, h, lo, c, v = bars[index]
            index += 1
            while index < len(self._bar_ts) and self._bar_ts[index] // interval_ms * interval_ms == bucket:
                bar = bars[index]
                h, lo, c, v = max(h, bar[1]), min(lo, bar[2]), bar[3], v + bar[4]
                index += 1
            rows.append((bucket, o * scale, h * scale, lo * scale, c * scale, v))
        return rows

    # -- the past (hourly, vectorised) -------------------------------------------------------------
    def _init_past(self) -> None:
        """Hourly price path of every known asset over the history window, with regimes and two
        stress episodes, ending at today's prices; plus the common fund factor those prices imply."""
        hours = max(2, self.history_days * 24 + 24)
        rng = np.random.default_rng([self.seed, 101])
        regimes = np.zeros(hours, dtype=np.int64)
        state = CALM
        flips = rng.random(hours)
        for k in range(hours):
            if state == CALM and flips[k] < 1 / 48:
                state = VOLATILE
            elif state == VOLATILE and flips[k] < 1 / 10:
                state = CALM
            regimes[k] = state
        drift = np.zeros(hours)
        for lo, hi in ((0.15, 0.35), (0.6, 0.85)):
            begin = int(hours * rng.uniform(lo, hi))
            drop = rng.uniform(0.08, 0.16)
            drift[begin:begin + 3] -= drop / 3
            drift[begin + 3:begin + 15] += drop * 0.2 / 12
            regimes[begin:begin + 10] = CRISIS
            regimes[begin + 10:begin + 46] = np.maximum(regimes[begin + 10:begin + 46], VOLATILE)
        drift -= drift.sum() / hours  # markets recovered from those episodes over the window
        vol_mult = np.asarray(REGIME_VOL)[regimes]
        sigma_h = ANNUAL_VOL["BTC"] / math.sqrt(MINUTES_PER_YEAR) * math.sqrt(60)
        jumps = (rng.random(hours) < 1 / 60) * rng.normal(0, 0.015, hours)
        noise = rng.standard_normal(hours) * sigma_h * vol_mult + jumps
        noise -= 0.8 * noise.mean()  # mostly a bridge: prices 90 days ago were not wildly elsewhere
        self._past_btc = noise + drift
        self._past_regimes = regimes
        self._past_vol_mult = vol_mult
        hour_now = self.start_ms // HOUR_MS * HOUR_MS
        self._bar_ts: list[int] = [hour_now - (hours - 1 - k) * HOUR_MS for k in range(hours)]
        self._bars: dict[str, list[list[float]]] = {}
        for asset in self.prices:
            if asset not in STABLE_ASSETS:
                self._bars[asset] = self._past_bars(asset, float(self.prices[asset]))
        # the common fund factor (log), per hour end: growth + net liquidation surplus/deficit
        r_m = np.abs(self._past_btc) / math.sqrt(60)
        liq_mult = np.asarray(REGIME_LIQ)[regimes]
        frac_h = 60 * (LIQ_A + LIQ_B * r_m + LIQ_C * r_m ** 2) * liq_mult
        net = MM_MEAN - (0.8 * np.asarray(REGIME_SLIP)[regimes] + 0.5 * r_m)
        increments = LEV_REF * frac_h * net + GROWTH_PER_DAY / 24
        self._factor = np.cumsum(increments)
        self._factor_ts = np.asarray([t + HOUR_MS for t in self._bar_ts], dtype=np.float64)
        self._factor_ts[-1] = float(self.start_ms)

    def _past_bars(self, asset: str, p_end: float) -> list[list[float]]:
        hours = len(self._past_btc)
        rng = np.random.default_rng([self.seed, 211] + [ord(c) for c in asset[:16]])
        beta = BETA.get(asset, DEFAULT_BETA)
        sigma = ANNUAL_VOL.get(asset, DEFAULT_ANNUAL_VOL) / math.sqrt(MINUTES_PER_YEAR) * math.sqrt(60)
        if asset == "BTC":
            returns = self._past_btc
        else:
            lagged = np.concatenate([[0.0], self._past_btc[:-1]])
            idio = math.sqrt(max(sigma ** 2 - (beta * sigma / 1.6) ** 2, (0.4 * sigma) ** 2))
            returns = beta * (0.75 * self._past_btc + 0.25 * lagged) + \
                rng.standard_normal(hours) * idio * self._past_vol_mult
        log_close = np.cumsum(returns)
        closes = p_end * np.exp(log_close - log_close[-1])
        opens = np.concatenate([[closes[0] / math.exp(returns[0])], closes[:-1]])
        wick = np.abs(rng.standard_normal((2, hours))) * sigma * 0.6 * self._past_vol_mult
        highs = np.maximum(opens, closes) * np.exp(wick[0])
        lows = np.minimum(opens, closes) * np.exp(-wick[1])
        volume = 1000.0 * (1 + 60 * np.abs(returns))
        bars: list[list[float]] = np.stack([opens, highs, lows, closes, volume], axis=1).tolist()
        bars[-1] = [bars[-1][0], max(bars[-1][1], p_end), min(bars[-1][2], p_end), p_end, bars[-1][4]]
        return bars

    def _price_key(self, asset: str) -> str:
        if asset in self.prices:
            return asset
        unit = PRICE_UNITS.get(asset)
        if unit is not None:
            return unit[0]
        return asset.upper()

    def _step_prices(self, t: int) -> None:
        rng = self._price_rng
        forced = self._scenario_regime(t)
        if forced is not None:
            self._regime = forced
        else:
            u = rng.random()
            if self._regime == CALM and u < 1 / 2880:
                self._regime = VOLATILE
            elif self._regime == VOLATILE and u < 1 / 480:
                self._regime = CALM
            elif self._regime == CRISIS and u < 1 / 240:
                self._regime = VOLATILE
        mult = REGIME_VOL[self._regime]
        calm_event = self._plan.name == "venue-drain" and forced is not None
        jump_p = 0.0 if calm_event else (1 / 2880) * (2.0 if self._regime else 1.0)
        btc_jump = rng.gauss(-0.002, 0.012) if rng.random() < jump_p else 0.0
        if btc_jump and self._regime == CALM and rng.random() < 0.5 and forced is None:
            self._regime = VOLATILE
        sigma_btc = ANNUAL_VOL["BTC"] / math.sqrt(MINUTES_PER_YEAR)
        btc_r = 0.0
        hour = (t - 1) // HOUR_MS * HOUR_MS
        new_bar = hour > self._bar_ts[-1]
        if new_bar:
            self._bar_ts.append(hour)
        for asset in self._moving:
            z = rng.gauss(0.0, 1.0)
            sigma = ANNUAL_VOL.get(asset, DEFAULT_ANNUAL_VOL) / math.sqrt(MINUTES_PER_YEAR)
            pull = -1.0e-5 * (self._log_px[asset] - self._anchor[asset])
            if asset == "BTC":
                r = sigma_btc * mult * z + btc_jump + self._scenario_drift(t) + pull
                btc_r = r
            else:
                beta = BETA.get(asset, DEFAULT_BETA)
                lead = beta * (0.6 * btc_r + 0.4 * self._prev_btc_r)  # BTC is stepped first
                idio = math.sqrt(max(sigma ** 2 - (beta * sigma_btc) ** 2, (0.4 * sigma) ** 2))
                r = lead + idio * mult * z + pull
            old = math.exp(self._log_px[asset])
            self._log_px[asset] += r
            price = math.exp(self._log_px[asset])
            self._last_r[asset] = r
            self._ema_r[asset] += (r - self._ema_r[asset]) / 480
            self.prices[asset] = _dec(price, self._px_places[asset])
            bars = self._bars[asset]
            volume = 20.0 * (1 + 60 * abs(r) * mult)
            if new_bar or len(bars) < len(self._bar_ts):
                bars.append([old, max(old, price), min(old, price), price, volume])
            else:
                bar = bars[-1]
                bar[1], bar[2], bar[3], bar[4] = max(bar[1], price), min(bar[2], price), price, bar[4] + volume
        self._prev_btc_r = btc_r
