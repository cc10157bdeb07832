"""Alert rule on the monitor itself: a venue it can no longer see (``stale``): polls failing, data
gone old, a liquidation stream down. Pure, like ``alerts.fund_rules`` (see there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.parameters import STALE, StaleParams
from metrics.alert_rows import Freshness, Signal, StreamGap
from metrics.formatting import fmt_age, fmt_time, iso_or_none, venue_label


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
                reason = (f"{job.dataset}: no successful poll for {fmt_age((now - job.last_ok_at).total_seconds())}"
                          f" (expected every {fmt_age(job.poll_interval_s)})")
            if job.last_error_class:
                errors[job.venue] = job.last_error_class
        elif data_ages and job.newest_data_ts is not None:
            data_limit = max(params.data_multiple * max(job.cadence_s, job.poll_interval_s), params.min_stale_s)
            age = (now - job.newest_data_ts).total_seconds()
            if age > data_limit:
                since = job.newest_data_ts
                reason = (f"{job.dataset}: newest data {fmt_age(age)} old "
                          f"(venue publishes every {fmt_age(job.cadence_s)})")
        if reason is None:
            continue
        blind.setdefault(job.venue, []).append(reason)
        facts.setdefault(job.venue, {})[job.dataset] = {
            "last_ok_at": iso_or_none(job.last_ok_at), "last_run_at": iso_or_none(job.last_run_at),
            "last_status": job.last_status, "last_error_class": job.last_error_class,
            "newest_data_ts": iso_or_none(job.newest_data_ts), "poll_interval_s": job.poll_interval_s,
            "cadence_s": job.cadence_s,
        }
        if since is not None and (job.venue not in oldest or since < oldest[job.venue]):
            oldest[job.venue] = since
    for gap in gaps:
        blind.setdefault(gap.venue, []).append(
            f"liquidation stream {gap.stream} down since {fmt_time(gap.started_at)}"
            + (f" ({gap.reason})" if gap.reason else ""))
        facts.setdefault(gap.venue, {})[f"stream:{gap.stream}"] = {"started_at": iso_or_none(gap.started_at),
                                                                     "reason": gap.reason}
    signals = []
    for venue in sorted(blind):
        reasons = blind[venue]
        message = f"{venue_label(labels, venue)} monitor blind — " + "; ".join(reasons)
        if venue in errors:
            message += f"; last error {errors[venue]}"
        critical = "funds" in facts[venue]
        signals.append(Signal(
            rule=STALE, venue=venue, scope="venue", severity="critical" if critical else params.severity,
            message=message, metrics={"jobs": facts[venue], "last_error_class": errors.get(venue)},
            data_ts=oldest.get(venue),
        ))
    return signals
