"""Alert rules: small pure functions over query results (typed rows in, ``Signal`` list out).

The rows are computed in DuckDB by storage's rule-input queries (``storage.rule_inputs`` lists them);
nothing here touches storage, the clock or the network, so every rule is tested with hand-made rows. A
rule returns the signals that hold *now*; the engine (``alerts.engine``) turns them into an alert
lifecycle (firing -> resolved), cooldowns and deliveries. One signal per venue per rule (the worst
case, with the others in ``metrics``), so one event never becomes a dozen notifications.

Sentences use a real minus sign and thin units: ``OKX USDT pool −22.4 % in 8 h (max 412.1 M → 319.8 M
USDT); peers median −0.3 %``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.parameters import (
    ADL_NEAR,
    CASCADE,
    COVERAGE_LOW,
    DIVERGENCE,
    FUND_ANOMALY,
    FUND_DRAWDOWN,
    PARAM_TYPES,
    RULES,
    SEVERITIES,
    STALE,
    AdlParams,
    AnomalyParams,
    CascadeParams,
    CoverageParams,
    DivergenceParams,
    DrawdownParams,
    RuleParams,
    StaleParams,
    build_params,
    severity_rank,
)
from metrics import divergence as D
from metrics.alert_rows import (  # the rules' inputs and parameters stay importable from here
    AdlReading,
    CascadeEvent,
    Freshness,
    FundWindow,
    Signal,
    StreamGap,
    VenueChange,
    VenueCoverage,
)
from metrics.assessment import Assessment
from metrics.formatting import (
    fmt_age,
    fmt_change_pct,
    fmt_compact,
    fmt_number,
    fmt_signed,
    fmt_time,
    fmt_window,
    pool_name,
    venue_label,
)
from metrics.fund_changes import RESTRUCTURE, TRANSFER

NOT_A_LOSS = frozenset({TRANSFER, RESTRUCTURE})  # fund changes the loss rules never count

__all__ = [
    "NOT_A_LOSS", "ADL_NEAR", "AdlParams", "AdlReading", "AnomalyParams", "CASCADE", "COVERAGE_LOW", "CascadeEvent",
    "CascadeParams", "CoverageParams", "DIVERGENCE", "DivergenceParams", "DrawdownParams", "FUND_ANOMALY",
    "FUND_DRAWDOWN", "Freshness", "FundWindow", "OKX_ADL_END", "PARAM_TYPES", "RULES", "RuleParams",
    "SEVERITIES", "STALE", "Signal", "StaleParams", "StreamGap", "VenueChange", "VenueCoverage", "adl_near",
    "build_params", "cascade", "coverage_low", "divergence", "fmt_amount", "fmt_duration", "fmt_pct",
    "fund_anomaly", "fund_drawdown", "label", "severity_rank", "stale",
]


# -- formatting: one module (metrics.formatting); the names the rules and the engine have always used --
fmt_pct = fmt_change_pct
fmt_amount = fmt_compact
fmt_duration = fmt_age
label = venue_label


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


# -- rules ----------------------------------------------------------------------------------------
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
            f"{label(labels, venue)} {pool_name(worst.pool_id, worst.asset)} {fmt_pct(pct)} in "
            f"{fmt_window(worst.window_h)} (max {fmt_amount(worst.max_balance or 0)} → "
            f"{fmt_amount(worst.last_balance)} {worst.asset})"
        )
        if others:
            message += f"; {others} more pool{'s' if others > 1 else ''} down > {params.threshold_pct:g} %"
        if peer_median is not None:
            message += f"; peers median {fmt_pct(peer_median)}"
        severity = "critical" if pct <= -params.critical_pct else params.severity
        signals.append(Signal(
            rule=FUND_DRAWDOWN, venue=venue, scope="funds", severity=severity, message=message,
            metrics={
                "pool_id": worst.pool_id, "asset": worst.asset, "window_h": worst.window_h,
                "drawdown_pct": round(pct, 4), "max_balance": worst.max_balance, "max_ts": _iso(worst.max_ts),
                "last_balance": worst.last_balance, "last_ts": _iso(worst.last_ts), "points": worst.points,
                "threshold_pct": params.threshold_pct, "peers_median_pct": peer_median,
                "pools_down": [f"{p}:{a}" for p, a in pools][:20], "pools_down_count": len(pools),
            },
            data_ts=worst.last_ts,
        ))
    return signals


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
            f"{label(labels, row.venue)} fund covers {pct:.2f} % of open interest "
            f"(fund {fmt_amount(row.fund_usd)} / OI {fmt_amount(row.oi_usd)} USD), {' and '.join(reasons)}"
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
                f"{label(labels, row.venue)} insurance funds {fmt_pct(row.change_pct)} in {fmt_window(window)} "
                f"vs peers median {fmt_pct(median)} (robust z {fmt_signed(z)}, {peers} peers)"
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


def cascade(events: Sequence[CascadeEvent], params: CascadeParams, as_of: datetime,
            labels: Mapping[str, str] = {}) -> list[Signal]:  # noqa: B006
    """A liquidation cascade started (within ``lookback_h``) and is running or ended less than
    ``hold_h`` ago. One signal per cascade; critical above ``critical_notional_usd``."""
    if not params.enabled:
        return []
    signals = []
    for event in sorted(events, key=lambda e: (e.venue, e.started_at)):
        age_h = (as_of - event.started_at).total_seconds() / 3600
        if age_h > params.lookback_h or age_h < -1:
            continue
        if event.ended_at is not None and (as_of - event.ended_at).total_seconds() / 3600 > params.hold_h:
            continue
        notional = event.notional_usd
        if notional is not None and notional < params.min_notional_usd:
            continue
        name = "Market-wide" if event.venue == "market" else label(labels, event.venue)
        span_end = event.ended_at or as_of
        duration = (fmt_duration(event.minutes * 60) if event.minutes
                    else fmt_duration(max((span_end - event.started_at).total_seconds(), 0)))
        amount = f"{'≥ ' if event.lower_bound else ''}{fmt_amount(notional)} USD" if notional is not None else "liquidations"
        parts = [f"{name} liquidation cascade since {fmt_time(event.started_at)}: {amount} liquidated in {duration}"]
        if event.side:
            parts[0] += f", mostly {event.side}s"
        if event.ended_at is None:
            parts[0] += ", ongoing"
        if event.dominant_asset and event.price_move_pct is not None:
            parts.append(f"{event.dominant_asset} {fmt_pct(event.price_move_pct)}")
        if event.fund_change_usd is not None:
            parts.append(f"fund {fmt_signed(event.fund_change_usd / 1e6)} M USD")
        if event.incomplete:
            parts.append("a feed gap overlaps it")
        critical = notional is not None and notional >= params.critical_notional_usd
        signals.append(Signal(
            rule=CASCADE, venue=event.venue, scope=f"cascade:{event.cascade_id}",
            severity="critical" if critical else params.severity, message="; ".join(parts),
            metrics={
                "cascade_id": event.cascade_id, "started_at": _iso(event.started_at),
                "ended_at": _iso(event.ended_at), "notional_usd": notional, "side": event.side,
                "minutes": event.minutes, "dominant_asset": event.dominant_asset,
                "price_move_pct": event.price_move_pct, "fund_change_usd": event.fund_change_usd,
                "incomplete": event.incomplete, "lower_bound": event.lower_bound,
            },
            data_ts=event.started_at,
        ))
    return signals


OKX_ADL_END = "adl_end"


def adl_near(readings: Sequence[AdlReading], params: AdlParams, as_of: datetime,
             labels: Mapping[str, str] = {}) -> list[Signal]:  # noqa: B006
    """A venue's own ADL indicator says ADL is near or running:

    * Bybit ``bybit_adl_alert``: ``distance`` = pnlRatio − insurancePnlRatio <= ``max_distance``
      (<= 0 or level not ``normal``: the trigger condition holds -> critical);
    * Binance ``binance_adl_risk``: level ``high``;
    * OKX ``okx_adl``: the latest event of a pool is an ``*_adl_start`` (not ``adl_end``) -> critical;
    * HTX ``htx_clawback``: ``estimated_clawback`` > 0 (HTX expects to claw back profits) -> critical;
    * Gate ``gate_adl_risk``: level ``warning`` (near), ``adl_risk`` -> critical.

    One signal per venue x signal type, naming the affected symbols/pools."""
    if not params.enabled:
        return []
    grouped: dict[tuple[str, str], list[tuple[int, AdlReading]]] = {}
    for row in readings:
        age_h = (as_of - row.ts).total_seconds() / 3600
        level = (row.level or "").lower()
        if row.signal_type == "bybit_adl_alert":
            if age_h > params.lookback_h:
                continue
            triggered = level not in ("", "normal") or (row.distance is not None and row.distance <= 0)
            near = row.distance is not None and row.distance <= params.max_distance
            if triggered or near:
                grouped.setdefault((row.venue, row.signal_type), []).append((2 if triggered else 1, row))
        elif row.signal_type == "binance_adl_risk":
            if age_h <= params.lookback_h and level == "high":
                grouped.setdefault((row.venue, row.signal_type), []).append((1, row))
        elif row.signal_type == "okx_adl":
            if age_h <= params.okx_lookback_h and level and level != OKX_ADL_END:
                grouped.setdefault((row.venue, row.signal_type), []).append((2, row))
        elif row.signal_type == "htx_clawback":
            if age_h <= params.lookback_h and row.value is not None and row.value > 0:
                grouped.setdefault((row.venue, row.signal_type), []).append((2, row))
        elif row.signal_type == "gate_adl_risk":
            if age_h <= params.lookback_h and level in ("warning", "adl_risk"):
                grouped.setdefault((row.venue, row.signal_type), []).append((2 if level == "adl_risk" else 1, row))
    signals = []
    for (venue, kind), found in sorted(grouped.items()):
        found.sort(key=lambda item: (-item[0], item[1].distance if item[1].distance is not None else 0,
                                     -(item[1].value or 0.0) if kind == "htx_clawback" else 0.0, item[1].scope))
        rank, worst = found[0]
        scopes = [r.scope for _, r in found]
        listed = ", ".join(scopes[:6]) + (f" and {len(scopes) - 6} more" if len(scopes) > 6 else "")
        name = label(labels, venue)
        if kind == "bybit_adl_alert":
            if worst.value is not None and worst.threshold is not None:
                detail = (f"{worst.scope} pool drawdown ratio {fmt_number(worst.value)} vs ADL trigger "
                          f"{fmt_number(worst.threshold)} (headroom {fmt_signed(worst.distance or 0.0, 3)})")
            else:
                detail = f"{worst.scope} headroom {fmt_signed(worst.distance or 0.0, 3)}"
            state = "ADL trigger condition met" if rank == 2 else "near its ADL trigger"
            message = f"{name} {state}: {detail}" + (f"; also {listed}" if len(scopes) > 1 else "")
        elif kind == "binance_adl_risk":
            message = f"{name} ADL risk high: {listed}"
        elif kind == "htx_clawback":
            message = (f"{name} expects a clawback of {fmt_number((worst.value or 0.0) * 100)} % of profits "
                       f"on {listed} (estimated_clawback)")
        elif kind == "gate_adl_risk":
            message = f"{name} ADL state {worst.level} on {listed}"
        else:
            message = f"{name} ADL started ({worst.level}) on {listed} at {fmt_time(worst.ts)}"
        signals.append(Signal(
            rule=ADL_NEAR, venue=venue, scope=kind,
            severity="critical" if rank == 2 else params.severity, message=message,
            metrics={
                "signal_type": kind, "scopes": scopes[:50], "count": len(scopes), "level": worst.level,
                "value": worst.value, "threshold": worst.threshold, "distance": worst.distance,
                "ts": _iso(worst.ts), "max_distance": params.max_distance,
            },
            data_ts=worst.ts,
        ))
    return signals


def stale(jobs: Sequence[Freshness], gaps: Sequence[StreamGap], params: StaleParams, now: datetime,
          labels: Mapping[str, str] = {}, data_ages: bool = True) -> list[Signal]:  # noqa: B006
    """The monitor is blind on a venue: a job without a successful poll for ``multiple`` x its poll
    interval, a dataset whose newest timestamp is older than ``data_multiple`` x the venue's cadence
    (both against the wall clock ``now``: some venues' rows are stamped with the fetch time), or a
    liquidation stream with an open gap. One signal per venue; critical when the venue's funds cannot be
    seen. ``data_ages=False`` skips the data-age check where venue time is not wall time (a simulated
    market at 720x: one real poll interval spans an hour of its time), leaving polls and streams."""
    if not params.enabled:
        return []
    blind: dict[str, list[str]] = {}
    facts: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    oldest: dict[str, datetime] = {}
    for job in jobs:
        if job.last_run_at is None:
            continue  # never ran yet: nothing to be late for
        limit = max(params.multiple * job.poll_interval_s, params.min_stale_s)
        reference = job.last_ok_at or job.first_run_at
        reason = None
        since = None
        if reference is not None and (now - reference).total_seconds() > limit:
            since = job.last_ok_at
            if job.last_ok_at is None:
                reason = f"{job.dataset}: no successful poll since the first attempt {fmt_time(job.first_run_at)}"
            else:
                reason = (f"{job.dataset}: no successful poll for {fmt_duration((now - job.last_ok_at).total_seconds())}"
                          f" (expected every {fmt_duration(job.poll_interval_s)})")
            if job.last_error_class:
                errors[job.venue] = job.last_error_class
        elif data_ages and job.newest_data_ts is not None:
            data_limit = max(params.data_multiple * max(job.cadence_s, job.poll_interval_s), params.min_stale_s)
            age = (now - job.newest_data_ts).total_seconds()
            if age > data_limit:
                since = job.newest_data_ts
                reason = (f"{job.dataset}: newest data {fmt_duration(age)} old "
                          f"(venue publishes every {fmt_duration(job.cadence_s)})")
        if reason is None:
            continue
        blind.setdefault(job.venue, []).append(reason)
        facts.setdefault(job.venue, {})[job.dataset] = {
            "last_ok_at": _iso(job.last_ok_at), "last_run_at": _iso(job.last_run_at),
            "last_status": job.last_status, "last_error_class": job.last_error_class,
            "newest_data_ts": _iso(job.newest_data_ts), "poll_interval_s": job.poll_interval_s,
            "cadence_s": job.cadence_s,
        }
        if since is not None and (job.venue not in oldest or since < oldest[job.venue]):
            oldest[job.venue] = since
    for gap in gaps:
        blind.setdefault(gap.venue, []).append(
            f"liquidation stream {gap.stream} down since {fmt_time(gap.started_at)}"
            + (f" ({gap.reason})" if gap.reason else ""))
        facts.setdefault(gap.venue, {})[f"stream:{gap.stream}"] = {"started_at": _iso(gap.started_at),
                                                                     "reason": gap.reason}
    signals = []
    for venue in sorted(blind):
        reasons = blind[venue]
        message = f"{label(labels, venue)} monitor blind — " + "; ".join(reasons)
        if venue in errors:
            message += f"; last error {errors[venue]}"
        critical = "funds" in facts[venue]
        signals.append(Signal(
            rule=STALE, venue=venue, scope="venue", severity="critical" if critical else params.severity,
            message=message, metrics={"jobs": facts[venue], "last_error_class": errors.get(venue)},
            data_ts=oldest.get(venue),
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
        message = (f"{label(labels, venue)} {pool_name(a.pool_id, a.asset)} fund {fmt_pct(change)} in "
                   f"{fmt_window(window_h)}{times} (own-history robust z {fmt_signed(z)})")
        signals.append(Signal(
            rule=FUND_ANOMALY, venue=venue, scope="funds", severity=params.severity, message=message,
            metrics={"pool_id": a.pool_id, "asset": a.asset, "window_h": window_h, "change_pct": round(change, 4),
                     "robust_z": round(z, 3), "usual_move_pct": usual, "z_threshold": params.z_threshold,
                     "pools_flagged": len(hits)},
            data_ts=a.fund_ts,
        ))
    return signals
