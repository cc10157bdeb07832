"""The market model: scenario signatures, determinism, conservation, the frozen clock, history.

Besides Binance (the one venue module that exists for sure) the tests use a small fake venue defined
in this module (``build``/``routes`` below, registered with monkeypatch): an inverse BTC contract with a
daily pool published at 08:00 UTC, a linear contract with a pool published every minute, and a pool
whose symbol has no contract (it gets a synthetic one).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from simulator import venues as sim_venues
from simulator.market import Market, demo_publish_every_s
from simulator.market_state import DAY_MS, HOUR_MS, MINUTE_MS, SimContract, SimPool, SimVenue
from simulator.routing import Route
from simulator.scenarios import DEFAULT_DEMO_SPEED, parse_scenario

FAKE = "fakex"
START = 1_760_000_040_000  # a whole minute, 09:34 UTC
REAL_MINUTE_AT_DEMO_SPEED = int(60 * DEFAULT_DEMO_SPEED * 1000)


def build(market: Market) -> SimVenue:
    """The fake venue (see module docstring)."""
    venue = SimVenue(FAKE)
    venue.contracts["BTC-USD"] = SimContract("BTC-USD", "BTC", "USD", "BTC", Decimal(100), True,
                                             Decimal("4200000"))
    venue.contracts["ETH-USDT"] = SimContract("ETH-USDT", "ETH", "USDT", "USDT", Decimal("0.01"), False,
                                              Decimal("52000000"), funding_interval_h=1,
                                              funding_rate=Decimal("0.0000125"))
    pools = [
        SimPool("inverse:BTC", "BTC", ["BTC-USD"], Decimal("1250.12345678"), cadence_s=86_400),
        SimPool("linear:ETH", "USDT", ["ETH-USDT"], Decimal("41000000.25"), cadence_s=60),
        SimPool("orphan:PEPE", "USDT", ["1000PEPE-USDT"], Decimal("250000"), cadence_s=3_600),
    ]
    for pool in pools:
        offset = 8 * 3600 if pool.cadence_s == 86_400 else 0
        pool.history = market.make_history(pool.balance, pool.cadence_s, offset_s=offset)
        venue.pools[pool.pool_id] = pool
    return venue


ROUTES: tuple[Route, ...] = ()  # the fake venue answers no path


@pytest.fixture
def fake_venue(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(sim_venues.SIM_VENUES, FAKE, __name__)
    return FAKE


def market(scenario: str = "calm", seed: int = 5, venues: list[str] | None = None, **kwargs: Any) -> Market:
    kwargs.setdefault("publish_every_s", 4 * 3600)
    return Market(seed=seed, start_ms=START, scenario=scenario, venues=venues or ["binance", FAKE], **kwargs)


def balances(m: Market) -> dict[tuple[str, str], Decimal]:
    return {(key, pid): pool.balance for key, venue in m.venues.items() for pid, pool in venue.pools.items()}


def snapshot(m: Market) -> dict[str, Any]:
    return {
        "prices": dict(m.prices),
        "balances": balances(m),
        "oi": {(k, s): c.oi_contracts for k, v in m.venues.items() for s, c in v.contracts.items()},
        "funding": {(k, s): c.funding_rate for k, v in m.venues.items() for s, c in v.contracts.items()},
        "liqs": [(k, x.seq, x.ts_ms, x.symbol, x.fund_delta, x.fill_price) for k, v in m.venues.items()
                 for x in v.liquidations],
        "history": {(k, p): len(pool.history) for k, v in m.venues.items() for p, pool in v.pools.items()},
        "flows": sum(len(v.flows) for v in m.venues.values()),
    }


def test_parse_scenario() -> None:
    assert parse_scenario("venue-drain:okx") == ("venue-drain", "okx")
    assert parse_scenario("adl") == ("adl", None)
    with pytest.raises(ValueError, match="unknown scenario"):
        parse_scenario("meltdown")
    with pytest.raises(ValueError, match="takes no venue"):
        parse_scenario("cascade:okx")


def test_frozen_clock_at_speed_zero(fake_venue: str) -> None:
    m = market()
    before = snapshot(m)
    now = m.now_ms()
    time.sleep(0.05)
    m.advance()
    assert m.now_ms() == now == START
    assert snapshot(m) == before
    assert not any(v.liquidations for v in m.venues.values())
    m.frozen_ms = START + DAY_MS  # a test moving the clock by hand does not move the market
    m.advance()
    assert m.now_ms() == START + DAY_MS and snapshot(m) == before
    m.fast_forward(HOUR_MS)  # stepping is explicit
    assert m.model_ms == START + DAY_MS + HOUR_MS and snapshot(m) != before


def test_deterministic_for_a_seed_whatever_the_call_pattern(fake_venue: str) -> None:
    coarse, fine = market("cascade"), market("cascade")
    for _ in range(6):
        coarse.fast_forward(HOUR_MS)
    for _ in range(6 * 60):
        fine.fast_forward(MINUTE_MS)
    assert snapshot(coarse) == snapshot(fine)
    other = market("cascade", seed=6)
    other.fast_forward(6 * HOUR_MS)
    assert snapshot(other)["prices"] != snapshot(coarse)["prices"]


def test_advance_is_thread_safe_and_timing_independent(fake_venue: str) -> None:
    live = market("calm", speed=20 * 3600.0)  # 20 simulated hours per real second
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            live.advance()

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    stop.set()
    for thread in threads:
        thread.join()
    reached = live.model_ms
    assert reached >= START + 2 * HOUR_MS
    replay = market("calm")
    replay.fast_forward(reached - START)
    assert replay.model_ms == reached
    assert snapshot(replay) == snapshot(live)


@pytest.mark.parametrize("scenario", ["calm", "cascade", "adl:fakex"])
def test_conservation(fake_venue: str, scenario: str) -> None:
    """Fund change = liquidation surpluses - deficits + platform revenue, over any interval."""
    m = market(scenario)
    m.fast_forward(90 * MINUTE_MS)
    t0, before = m.model_ms, balances(m)
    ledgers = {key: m.ledger(*key) for key in before}
    m.fast_forward(5 * HOUR_MS + 7 * MINUTE_MS)
    t1 = m.model_ms
    for (venue_key, pool_id), start_balance in before.items():
        venue = m.venue(venue_key)
        liq = sum((x.fund_delta for x in venue.liquidations if x.pool_id == pool_id and t0 < x.ts_ms <= t1),
                  Decimal(0))
        revenue = sum((f.amount for f in m.fund_flows(venue_key)
                       if f.pool_id == pool_id and f.flow_type == "platform_revenue" and t0 < f.ts_ms <= t1),
                      Decimal(0))
        change = venue.pools[pool_id].balance - start_balance
        assert change == liq + revenue, (venue_key, pool_id)
        ledger = m.ledger(venue_key, pool_id)
        assert ledger["liquidations"] - ledgers[(venue_key, pool_id)]["liquidations"] == liq
        assert ledger["growth"] - ledgers[(venue_key, pool_id)]["growth"] == revenue
    # the typed flows chain: each period's rows end at the balance published at that boundary
    checked = 0
    for venue in m.venues.values():
        for pool_id, pool in venue.pools.items():
            published = dict(pool.history)
            last_row: dict[int, Decimal] = {}
            for flow in m.fund_flows(venue.key):
                if flow.pool_id == pool_id:
                    last_row[flow.ts_ms] = flow.balance_after
            for ts, balance_after in last_row.items():
                assert balance_after == published[ts], (venue.key, pool_id, ts)
                checked += 1
    assert checked > 10


def test_calm_signature(fake_venue: str) -> None:
    m = market("calm")
    start_balances = balances(m)
    oi0 = {s: c.oi_contracts for s, c in m.venue("binance").contracts.items()}
    m.fast_forward(DAY_MS)
    for key, balance in balances(m).items():
        assert abs(balance / start_balances[key] - 1) < Decimal("0.02"), key
    liqs = m.venue("binance").liquidations
    assert len(liqs) > 200
    assert [x.seq for x in liqs] == sorted(x.seq for x in liqs) and len({x.seq for x in liqs}) == len(liqs)
    assert [x.ts_ms for x in liqs] == sorted(x.ts_ms for x in liqs)
    assert {x.position_side for x in liqs} == {"long", "short"}
    surplus = [x for x in liqs if x.fund_delta > 0]
    assert len(surplus) > 0.8 * len(liqs)  # calm fills are better than bankruptcy
    for liq in surplus[:50]:
        if liq.position_side == "long":
            assert liq.fill_price > liq.bankruptcy_price
        else:
            assert liq.fill_price < liq.bankruptcy_price
    for symbol, contract in m.venue("binance").contracts.items():
        assert abs(contract.oi_contracts / oi0[symbol] - 1) < Decimal("0.25"), symbol
        assert abs(contract.funding_rate) <= Decimal("0.003")
    assert abs(m.price("BTC") / Decimal(65000) - 1) < Decimal("0.12")


def test_cascade_signature(fake_venue: str) -> None:
    crash, calm = market("cascade"), market("calm")
    plan = crash.plan
    assert plan.onset_ms - START <= REAL_MINUTE_AT_DEMO_SPEED // 2  # starts within the first real half-minute
    assert plan.end_ms - START <= 2 * REAL_MINUTE_AT_DEMO_SPEED  # played out within 2 real minutes
    for m in (crash, calm):
        m.run_until(plan.onset_ms)
    onset = balances(crash)
    stats0 = {k: crash.stats(k)["liq_notional_usd"] for k in crash.venues}
    calm0 = {k: calm.stats(k)["liq_notional_usd"] for k in calm.venues}
    btc0 = crash.price("BTC")
    lows = dict(onset)
    while crash.model_ms < plan.onset_ms + 8 * HOUR_MS:
        crash.fast_forward(15 * MINUTE_MS)
        for key, balance in balances(crash).items():
            lows[key] = min(lows[key], balance)
        if crash.model_ms == plan.onset_ms + 2 * HOUR_MS:
            assert crash.price("BTC") < btc0 * Decimal("0.92")
            btc_funding = crash.venue("binance").contracts["BTCUSDT"].funding_rate
            assert btc_funding < Decimal("0.0001")  # leans short after the flush
    calm.run_until(crash.model_ms)
    for key, low in lows.items():
        assert low < onset[key] * Decimal("0.99"), key  # every fund dips
    for key in crash.venues:
        crashed = crash.stats(key)["liq_notional_usd"] - stats0[key]
        quiet = calm.stats(key)["liq_notional_usd"] - calm0[key]
        assert crashed >= 5 * quiet, key
    assert crash.venue("binance").contracts["BTCUSDT"].oi_contracts < calm.venue("binance").contracts["BTCUSDT"].oi_contracts


def test_venue_drain_signature(fake_venue: str) -> None:
    m = market("venue-drain:fakex")
    plan = m.plan
    assert plan.venue == FAKE and 0.3 <= plan.drain_fraction <= 0.6
    assert plan.end_ms - START <= 2 * REAL_MINUTE_AT_DEMO_SPEED
    start = balances(m)
    m.run_until(plan.end_ms)
    for (venue_key, pool_id), balance in balances(m).items():
        ratio = balance / start[(venue_key, pool_id)]
        if venue_key == FAKE:
            assert Decimal("0.4") <= ratio <= Decimal("0.7"), pool_id  # drained 30-60 %
        else:
            assert abs(ratio - 1) <= Decimal("0.05"), pool_id  # others within +-5 %
    # the daily pool (08:00 UTC) published at least two points while it drained (demo cadence 4 h)
    daily = m.venue(FAKE).pools["inverse:BTC"]
    during = [(ts, v) for ts, v in daily.history if plan.onset_ms < ts <= plan.end_ms]
    assert len(during) >= 2 and during[-1][1] < during[0][1]
    assert all(ts % (4 * HOUR_MS) == 0 for ts, _ in during)


def test_seeded_victim_is_deterministic(fake_venue: str) -> None:
    assert market("venue-drain", seed=11).plan.venue == market("venue-drain", seed=11).plan.venue
    assert {market("venue-drain", seed=s).plan.venue for s in range(8)} == {"binance", FAKE}


def test_adl_signature(fake_venue: str) -> None:
    m = market("adl:binance")
    plan = m.plan
    m.run_until(plan.onset_ms + 4 * HOUR_MS)
    binance = m.venue("binance")
    assert all(pool.balance < Decimal("0.001") * Decimal(pool.history[0][1]) for pool in binance.pools.values())
    assert m.stats("binance")["adl_usd"] > 0 and m.adl_active("binance")
    assert any(x.adl_amount > 0 and x.fund_delta <= 0 for x in binance.liquidations)
    assert binance.contracts["BTCUSDT"].extra["adl_risk"] == "high"
    assert all(pool.balance > 0 for pool in m.venue(FAKE).pools.values())
    assert not m.adl_active(FAKE)
    m.run_until(plan.end_ms + 3 * HOUR_MS)
    assert not m.adl_active("binance")
    # OKX-style ADL events: a start while the fund is empty, an end once it has passed
    events = [(f.pool_id, f.extra["adlType"]) for f in binance.flows if f.flow_type == "adl"]
    for pool_id in binance.pools:
        assert events.count((pool_id, "bal_adl_start")) == 1 and events.count((pool_id, "adl_end")) == 1
    start = next(f for f in binance.flows if f.extra.get("adlType") == "bal_adl_start")
    assert start.balance_after == 0 and start.extra["maxBal"] > 0 and start.extra["maxBalTs"] < start.ts_ms


def test_contracts_without_a_published_pool_use_a_hidden_fund(fake_venue: str) -> None:
    """Deribit-style: liquidations still happen, deficits become ``bankruptcy`` events in venue.flows."""
    original = build

    def unpooled(m: Market) -> SimVenue:
        venue = original(m)
        venue.pools.clear()
        return venue

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(__import__(__name__, fromlist=["build"]), "build", unpooled)
        m = market("cascade")
    m.run_until(m.plan.onset_ms + 12 * HOUR_MS)
    venue = m.venue(FAKE)
    assert not venue.pools and venue.liquidations
    assert {x.pool_id for x in venue.liquidations} == {"BTC", "USDT"}  # one hidden fund per settle asset
    events = [f for f in venue.flows if f.flow_type == "bankruptcy"]
    assert events and all(f.amount > 0 and f.pool_id in ("BTC", "USDT") for f in events)
    assert m.ledger(FAKE, "~BTC")["liquidations"] < 0


def test_history_from_the_model(fake_venue: str) -> None:
    m = market()
    fake = m.venue(FAKE)
    daily = fake.pools["inverse:BTC"].history
    assert daily[-1] == ((START - 8 * HOUR_MS) // DAY_MS * DAY_MS + 8 * HOUR_MS, Decimal("1250.12345678"))
    assert len(daily) == 90 and all(b - a == DAY_MS for (a, _), (b, _) in zip(daily, daily[1:], strict=False))
    minute = fake.pools["linear:ETH"].history
    assert minute[-1] == (START, Decimal("41000000.25"))
    assert 3_000 < len(minute) < 3_600  # minute for 2 days, hourly to 14 days, daily before
    assert minute[-2881][0] == START - 2 * DAY_MS + MINUTE_MS or minute[-2880][0] == START - 2 * DAY_MS + MINUTE_MS
    assert minute[0][0] <= START - 89 * DAY_MS
    assert all(str(v) == f"{v:.2f}" for _, v in minute[-50:])  # the venue's own precision
    # stress dips of the past hit every pool at the same time (common factor)
    usdt = [v for _, v in m.venue("binance").pools["BTCUSDT:USDT"].history]
    assert max(usdt) / min(usdt) > Decimal("1.02")
    candles = m.candles("BTC", START - 30 * DAY_MS, 500)
    assert len(candles) == 31 and candles[-1][4] == 65000.0


def test_construction_is_fast_with_many_pools(fake_venue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    original = build

    def many_pools(m: Market) -> SimVenue:
        venue = original(m)
        for i in range(300):  # like Bybit's isolated pools, published every minute
            pool = SimPool(f"iso{i}", "USDT", [f"X{i}USDT"], Decimal("12345.678"), cadence_s=60)
            pool.history = m.make_history(pool.balance, 60)
            venue.pools[pool.pool_id] = pool
        return venue

    monkeypatch.setattr(__import__(__name__, fromlist=["build"]), "build", many_pools)
    from backstop.simulate import simulator_venues

    every_venue = list(dict.fromkeys([*simulator_venues(), FAKE]))
    # CPU time of this process: other workers share the machine, wall time says little about our cost
    started = time.process_time()
    m = market(venues=every_venue)
    elapsed = time.process_time() - started
    assert len(m.venue(FAKE).pools) == 303 and len(m.venues) == len(every_venue)
    assert elapsed < 10.0, elapsed  # a guard against quadratic blow-ups (typically 0.3-2 s CPU), not a benchmark
    started = time.process_time()
    m.fast_forward(60 * MINUTE_MS)
    assert time.process_time() - started < 5.0  # an hour of every venue: 5 real s of a 720x demo


def test_demo_publish_cadence() -> None:
    assert demo_publish_every_s(720) == 4 * 3600
    assert demo_publish_every_s(1) is None
    assert 24 * 3600 % demo_publish_every_s(3000) == 0  # type: ignore[operator]


def test_demo_clock_catches_up_with_the_wall_clock_and_never_passes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast demo market starts in the past, runs at its speed until it reaches the present, then at 1x:
    no venue timestamp is ever in the future (data ages, staleness and chart ranges stay true)."""
    from backstop.simulate import make_market
    from simulator.market import CATCH_UP_S, catch_up_start_ms

    wall_ms = 1_800_000_000_000
    start = catch_up_start_ms(720, now_ms=wall_ms)
    assert wall_ms - start == pytest.approx(719 * CATCH_UP_S * 1000, abs=60_000)  # ~24 h back at 720x
    assert catch_up_start_ms(1.0, now_ms=wall_ms) == wall_ms // 60_000 * 60_000  # real time: starts now

    market = make_market("venue-drain", 720, 7, ["okx"])
    began_wall_ms = time.time() * 1000
    assert began_wall_ms - market.now_ms() > 20 * 3600 * 1000  # a day back
    plan = market.plan
    assert market.start_ms < plan.onset_ms < plan.end_ms < began_wall_ms  # the event lies before the present
    real_start = market._real_start
    monkeypatch.setattr(time, "monotonic", lambda: real_start + 60)  # one real minute later: 12 sim hours
    assert market.now_ms() - market.start_ms == pytest.approx(720 * 60 * 1000, rel=1e-6)
    monkeypatch.setattr(time, "monotonic", lambda: real_start + 3600)  # long after catching up
    assert market.now_ms() <= time.time() * 1000
