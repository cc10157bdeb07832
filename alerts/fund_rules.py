"""Alert rules on the insurance funds themselves: a fall from a window maximum (``fund_drawdown``), a
fall far outside the pool's own history (``fund_anomaly``), a change out of line with the other venues
(``divergence``) and a thin cover of open interest (``coverage_low``).

Pure functions over the typed rows storage's rule-input queries compute in DuckDB (``metrics.alert_rows``):
nothing here touches storage, the clock or the network, so every rule is tested with hand-made rows. A
rule returns the signals that hold *now*; the engine turns them into an alert lifecycle
(``alerts.lifecycle``). One signal per venue per rule (the worst case, with the others in ``metrics``), so
one event never becomes a dozen notifications. The rules' names and parameters live in
``alerts.parameters``; the market's rules (cascades, ADL) in ``alerts.market_rules``, the monitor's own
blindness in ``alerts.monitor_rules``, backstop positions in ``alerts.inventory``.

Sentences use a real minus sign and thin units: ``OKX USDT pool −22.4 % in 8 h (max 412.1 M → 319.8 M
USDT); peers median −0.3 %``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

from alerts.parameters import (
    COVERAGE_LOW,
    DIVERGENCE,
    FUND_ANOMALY,
    FUND_DRAWDOWN,
    AnomalyParams,
    CoverageParams,
    DivergenceParams,
    DrawdownParams,
)
from metrics import divergence as D
from metrics.alert_rows import FundWindow, Signal, VenueChange, VenueCoverage
from metrics.assessment import Assessment
from metrics.formatting import (
    fmt_change_pct,
    fmt_compact,
    fmt_signed,
    fmt_window,
    iso_or_none,
    pool_name,
    venue_label,
)
from metrics.fund_changes import RESTRUCTURE, TRANSFER

NOT_A_LOSS = frozenset({TRANSFER, RESTRUCTURE})  # fund changes the loss rules never count


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def fund_drawdown(windows: Sequence[FundWindow], params: DrawdownParams,
                  peer_changes: Sequence[VenueChange] = (),
                  labels: Mapping[str, str] = {},  # noqa: B006 - read-only default
                  recent_kinds: Mapping[tuple[str, str, str], Sequence[str]] = {}) -> list[Signal]:  # noqa: B006
    """A fund fell more than ``threshold_pct`` from its maximum over any window (8 h is what Bybit and
    OKX use for their ADL triggers; 24 h and 7 d catch slower bleeds). A window needs ``min_points``
    points (a daily fund has two in 24 h, none in 8 h); a pool whose maximum is not positive (a Bybit
    pool already negative) has no relative drawdown; pools smaller than ``min_fund_usd`` are ignored.
    One signal per venue, headed by its most important falling pool (critical first, then the largest
    in USD) over the shortest window showing most of its fall; the other falling pools are counted in
    ``metrics``. Judges trading changes only: a window holding a transfer out or a restructure of the pool
    (``recent_kinds``: the kinds of its daily changes, newest first, from the assessments) is not a loss."""
    if not params.enabled:
        return []
    wanted = set(params.windows_h)
    breaches: dict[str, list[tuple[float, FundWindow]]] = {}
    for row in windows:
        if row.window_h not in wanted or row.points < params.min_points:
            continue
        kinds = recent_kinds.get((row.venue, row.pool_id, row.asset), ())
        if set(kinds[:max(1, math.ceil(row.window_h / 24))]) & NOT_A_LOSS:
            continue
        pct = row.drawdown_pct
        if pct is None or not math.isfinite(pct) or pct > -params.threshold_pct:
            continue
        size = row.size_usd
        if size is not None and size < params.min_fund_usd:
            continue
        breaches.setdefault(row.venue, []).append((pct, row))
    signals = []
    for venue, found in sorted(breaches.items()):
        by_pool: dict[tuple[str, str], list[tuple[float, FundWindow]]] = {}
        for pct, row in found:
            by_pool.setdefault((row.pool_id, row.asset), []).append((pct, row))
        # per pool, the shortest window that shows most (90 %) of its deepest fall: how fast it fell
        deepest: dict[tuple[str, str], tuple[float, FundWindow]] = {}
        for key, falls in by_pool.items():
            floor = min(pct for pct, _ in falls) * 0.9
            deepest[key] = min((item for item in falls if item[0] <= floor), key=lambda item: item[1].window_h)
        # the headline: a critical fall first, then the biggest pool (in USD), then the deepest fall
        pct, worst = min(deepest.values(), key=lambda item: (
            item[0] > -params.critical_pct, -(item[1].size_usd or 0.0), item[0]))
        pools = sorted(deepest)
        others = len(pools) - 1
        peers = [c.change_pct for c in peer_changes if c.venue != venue and c.window_h == worst.window_h]
        peer_median = statistics.median(peers) if peers else None
        message = (
            f"{venue_label(labels, venue)} {pool_name(worst.pool_id, worst.asset)} {fmt_change_pct(pct)} in "
            f"{fmt_window(worst.window_h)} (max {fmt_compact(worst.max_balance or 0)} → "
            f"{fmt_compact(worst.last_balance)} {worst.asset})"
        )
        if others:
            message += f"; {others} more pool{'s' if others > 1 else ''} down > {params.threshold_pct:g} %"
        if peer_median is not None:
            message += f"; peers median {fmt_change_pct(peer_median)}"
        severity = "critical" if pct <= -params.critical_pct else params.severity
        signals.append(Signal(
            rule=FUND_DRAWDOWN, venue=venue, scope="funds", severity=severity, message=message,
            metrics={
                "pool_id": worst.pool_id, "asset": worst.asset, "window_h": worst.window_h,
                "drawdown_pct": round(pct, 4), "max_balance": worst.max_balance, "max_ts": iso_or_none(worst.max_ts),
                "last_balance": worst.last_balance, "last_ts": iso_or_none(worst.last_ts), "points": worst.points,
                "threshold_pct": params.threshold_pct, "peers_median_pct": peer_median,
                "pools_down": [f"{p}:{a}" for p, a in pools][:20], "pools_down_count": len(pools),
            },
            data_ts=worst.last_ts,
        ))
    return signals


def fund_anomaly(assessments: Sequence[Assessment], params: AnomalyParams,
                 labels: Mapping[str, str] = {}) -> list[Signal]:  # noqa: B006
    """A pool's trading change over 24 h or 7 d is far outside its own history: robust z (against the last
    ``history_days`` of the same window's trading changes, native units; injections, transfers,
    restructures and revaluations left out) at or below −``z_threshold`` and a fall of at least
    ``threshold_pct`` %. Reads the assessments, so the alert and the assessment quote one z. One signal per
    venue, headed by its largest such pool. Never critical on its own: the drawdown rule escalates."""
    if not params.enabled:
        return []
    found: dict[str, list[tuple[Assessment, float, float, float]]] = {}
    for a in assessments:
        if a.is_venue or (a.fund_usd is not None and a.fund_usd < params.min_fund_usd):
            continue
        for window_h, z, name in ((24.0, a.anomaly_z_24h, "24h"), (168.0, a.anomaly_z_7d, "7d")):
            change = a.change_pct(name)
            if window_h not in params.windows_h or z is None or change is None or not math.isfinite(z):
                continue
            if z <= -params.z_threshold and change <= -params.threshold_pct:
                found.setdefault(a.venue, []).append((a, window_h, z, change))
    signals = []
    for venue, hits in sorted(found.items()):
        a, window_h, z, change = max(hits, key=lambda h: (h[0].fund_usd or 0.0, -h[1]))
        usual = a.usual_move_24h_pct if window_h == 24.0 else a.usual_move_7d_pct
        times = f", {abs(change) / usual:.0f}× its usual {'daily' if window_h == 24.0 else 'weekly'} move" if usual else ""
        message = (f"{venue_label(labels, venue)} {pool_name(a.pool_id, a.asset)} fund {fmt_change_pct(change)} in "
                   f"{fmt_window(window_h)}{times} (own-history robust z {fmt_signed(z)})")
        signals.append(Signal(
            rule=FUND_ANOMALY, venue=venue, scope="funds", severity=params.severity, message=message,
            metrics={"pool_id": a.pool_id, "asset": a.asset, "window_h": window_h, "change_pct": round(change, 4),
                     "robust_z": round(z, 3), "usual_move_pct": usual, "z_threshold": params.z_threshold,
                     "pools_flagged": len(hits)},
            data_ts=a.fund_ts,
        ))
    return signals


def divergence(changes: Sequence[VenueChange], params: DivergenceParams,
               labels: Mapping[str, str] = {}) -> list[Signal]:  # noqa: B006
    """A venue's fund change over a window is an outlier against the other venues: the one algorithm,
    ``metrics.divergence.divergence`` (leave-one-out robust z, floored scale; see there), on the
    like-for-like venue changes. One signal per venue (its largest |z| over the windows); critical when
    the gap from the peers' median reaches ``critical_pct``."""
    if not params.enabled:
        return []
    rule = params.rule()
    best: dict[str, tuple[float, Signal]] = {}
    for window in params.windows_h:
        rows = {c.venue: c for c in changes if c.window_h == window and c.pools > 0 and _finite(c.change_pct)}
        for result in D.divergence({v: c.change_pct for v, c in rows.items()}, int(window * 3600), rule):
            if not result.flagged or result.z is None or result.median_pct is None:
                continue
            row, z, median = rows[result.venue], result.z, result.median_pct
            peers = result.n_venues - 1
            message = (
                f"{venue_label(labels, row.venue)} insurance funds {fmt_change_pct(row.change_pct)} in {fmt_window(window)} "
                f"vs peers median {fmt_change_pct(median)} (robust z {fmt_signed(z)}, {peers} peers)"
            )
            signal = Signal(
                rule=DIVERGENCE, venue=row.venue, scope="funds",
                severity="critical" if abs(row.change_pct - median) >= params.critical_pct else params.severity,
                message=message,
                metrics={
                    "window_h": window, "change_pct": round(row.change_pct, 4), "peers_median_pct": median,
                    "peers_mad_pct": result.mad_pct, "robust_z": round(z, 3), "peers": peers, "pools": row.pools,
                    "start_usd": row.start_usd, "end_usd": row.end_usd,
                    "peer_changes": {r.venue: round(r.change_pct, 4) for r in rows.values() if r.venue != row.venue},
                },
                data_ts=row.last_ts,
            )
            if row.venue not in best or abs(z) > best[row.venue][0]:
                best[row.venue] = (abs(z), signal)
    return [best[venue][1] for venue in sorted(best)]


def coverage_low(coverages: Sequence[VenueCoverage], params: CoverageParams,
                 labels: Mapping[str, str] = {}) -> list[Signal]:  # noqa: B006
    """Fund ÷ open interest below an absolute floor (``threshold_pct`` % of OI) or below
    ``median_fraction`` of the venue's own median over ``median_days`` (needs ``min_days`` days).
    Critical below half of the level that fired."""
    if not params.enabled:
        return []
    signals = []
    for row in sorted(coverages, key=lambda r: r.venue):
        ratio = row.ratio
        if ratio is None or row.fund_usd <= 0 or not math.isfinite(ratio):
            continue
        pct = ratio * 100.0
        floor = params.threshold_pct
        median = row.median_ratio if row.median_days >= params.min_days else None
        below_floor = pct < floor
        relative = ratio / median if median and median > 0 else None
        below_median = relative is not None and relative < params.median_fraction
        if not (below_floor or below_median):
            continue
        critical = (below_floor and pct < floor / 2) or (
            below_median and relative is not None and relative < params.median_fraction / 2)
        reasons = []
        if below_floor:
            reasons.append(f"below the {floor:g} % floor")
        if below_median and median is not None and relative is not None:
            reasons.append(f"{relative * 100:.0f} % of its {row.median_days}-day median {median * 100:.2f} %")
        message = (
            f"{venue_label(labels, row.venue)} fund covers {pct:.2f} % of open interest "
            f"(fund {fmt_compact(row.fund_usd)} / OI {fmt_compact(row.oi_usd)} USD), {' and '.join(reasons)}"
        )
        signals.append(Signal(
            rule=COVERAGE_LOW, venue=row.venue, scope="coverage",
            severity="critical" if critical else params.severity, message=message,
            metrics={
                "coverage_pct": round(pct, 6), "fund_usd": row.fund_usd, "oi_usd": row.oi_usd,
                "floor_pct": floor, "median_pct": None if median is None else median * 100.0,
                "median_days": row.median_days, "relative_to_median": relative,
                "unpriced_pools": row.unpriced_pools,
            },
            data_ts=row.fund_ts,
        ))
    return signals
