"""The circuit breaker on a fake clock: closed, open on a failure rate or a 429, one probe, closed or open again."""
from __future__ import annotations

import logging

import pytest
from support import FakeClock

from app.access.counters import MemoryCounters
from app.access.shared_table import SharedCounters
from app.config.routing import BreakerSpec
from app.errors import StoreDown
from app.upstream.breaker import Breaker

SPEC = BreakerSpec(failure_rate=0.5, min_requests=4, window=60, cooldown=30)


@pytest.fixture(params=["memory", "table"])
def clock_and_store(request, tmp_path):
    """A fake clock driving both the breaker and its store (the in-process one, and the shared table)."""
    clock = FakeClock(1_000_000.0)
    if request.param == "memory":
        return clock, MemoryCounters(clock)
    return clock, SharedCounters.create(str(tmp_path / "table"), 4096, clock)


@pytest.fixture
def breaker(clock_and_store):
    clock, store = clock_and_store
    return Breaker(store, {"a": SPEC, "b": SPEC}, clock=clock)


@pytest.fixture
def clock(clock_and_store):
    return clock_and_store[0]


def state(breaker, name="a"):
    return breaker.states([name])[name]


def call(breaker, ok: bool, name="a", retry_after=None):
    """One call through the breaker, as the router makes it; False when the breaker refused it."""
    allowed = breaker.admit(state(breaker, name), hold=10)
    if allowed is None:
        return False
    if ok:
        breaker.succeeded(allowed)
    else:
        breaker.failed(allowed, retry_after)
    return True


def test_a_new_breaker_is_closed(breaker):
    assert state(breaker).kind == "closed" and state(breaker).retry_after == 0


def test_it_opens_on_the_failure_rate_only_past_the_minimum_of_calls(breaker):
    for _ in range(3):
        call(breaker, ok=False)
    assert state(breaker).kind == "closed"  # 3 of 3 failed, but 4 calls are the minimum
    call(breaker, ok=False)
    assert state(breaker).kind == "open"
    assert 29 < state(breaker).retry_after <= 30
    assert state(breaker, "b").kind == "closed"  # every upstream has its own


def test_successes_keep_the_rate_below_the_threshold(breaker):
    for _ in range(10):
        call(breaker, ok=True)
    for _ in range(9):
        call(breaker, ok=False)
    assert state(breaker).kind == "closed"  # 9 of 19
    call(breaker, ok=False)
    assert state(breaker).kind == "open"  # 10 of 20: the rate is reached


def test_the_window_slides(breaker, clock):
    clock.now = 60 * 20000 + 50  # 50 s into a window
    for _ in range(3):
        call(breaker, ok=False)
    clock.advance(65)  # 55 s into the next one: the previous window overlaps by 5/60
    for _ in range(3):
        call(breaker, ok=False)
    assert state(breaker).kind == "closed"  # 3 + 3 x 5/60 = 3.25 calls, under the minimum of 4
    call(breaker, ok=False)
    assert state(breaker).kind == "open"  # 4.25


def test_failures_two_windows_old_count_for_nothing(breaker, clock):
    for _ in range(3):
        call(breaker, ok=False)
    clock.advance(60 * 2)
    for _ in range(3):
        call(breaker, ok=False)
    assert state(breaker).kind == "closed"


def test_open_refuses_at_once_then_lets_exactly_one_probe_through(breaker, clock):
    for _ in range(4):
        call(breaker, ok=False)
    assert call(breaker, ok=True) is False  # open: refused, nothing reached the upstream
    clock.advance(30.5)
    seen = state(breaker)
    assert seen.kind == "half_open" and seen.retry_after == 0
    probe = breaker.admit(seen, hold=10)
    assert probe is not None and probe.probe
    assert breaker.admit(seen, hold=10) is None  # a second caller who read the same state loses
    assert breaker.admit(state(breaker), hold=10) is None  # and so does anyone while the probe is out
    assert state(breaker).kind == "half_open" and state(breaker).retry_after == 1
    breaker.succeeded(probe)
    assert state(breaker).kind == "closed"
    for _ in range(3):
        call(breaker, ok=False)
    assert state(breaker).kind == "closed"  # a fresh count: the failures before the trip are forgotten


def test_a_failed_probe_opens_the_circuit_again(breaker, clock):
    for _ in range(4):
        call(breaker, ok=False)
    clock.advance(31)
    probe = breaker.admit(state(breaker), hold=10)
    breaker.failed(probe)
    assert state(breaker).kind == "open" and 29 < state(breaker).retry_after <= 30
    clock.advance(31)
    assert call(breaker, ok=True) and state(breaker).kind == "closed"


def test_a_probe_that_never_reports_is_taken_again_after_its_hold(breaker, clock):
    for _ in range(4):
        call(breaker, ok=False)
    clock.advance(31)
    lost = breaker.admit(state(breaker), hold=10)
    assert lost is not None
    clock.advance(5)
    assert breaker.admit(state(breaker), hold=10) is None
    clock.advance(6)
    again = breaker.admit(state(breaker), hold=10)
    assert again is not None and again.probe
    breaker.succeeded(lost)  # the first probe's late answer changes nothing: its turn is over
    assert state(breaker).kind == "half_open"
    breaker.succeeded(again)
    assert state(breaker).kind == "closed"


def test_a_429_with_retry_after_opens_at_once_for_at_least_that_long(breaker, clock):
    call(breaker, ok=False, retry_after=90)
    assert state(breaker).kind == "open" and 89 < state(breaker).retry_after <= 90
    call(breaker, ok=False, name="b", retry_after=2)
    assert 29 < state(breaker, "b").retry_after <= 30  # never shorter than the cool-down


def test_a_stale_caller_cannot_close_or_open_anything(breaker, clock):
    old = breaker.admit(state(breaker), hold=10)  # admitted while closed
    for _ in range(4):
        call(breaker, ok=False)
    clock.advance(31)
    probe = breaker.admit(state(breaker), hold=10)
    breaker.succeeded(probe)
    assert state(breaker).kind == "closed"
    breaker.failed(old, retry_after=60)  # it counts in its own closed period, which is over
    assert state(breaker).kind == "closed"


def test_unguarded_upstreams_are_always_closed_and_touch_no_store(clock):
    class Refusing:
        def __getattr__(self, _name):
            raise AssertionError("the store was used")

    breaker = Breaker(Refusing(), {"a": BreakerSpec(enabled=False)}, clock=clock)
    for _ in range(10):
        assert call(breaker, ok=False)
    assert state(breaker).kind == "closed" and not breaker.guarded("a") and not breaker.guarded("unknown")
    assert not Breaker(None, {"a": SPEC}).guarded("a")


def test_a_store_that_does_not_answer_reads_closed_and_says_so_once(clock, caplog):
    class Down:
        def add(self, *_args):
            raise StoreDown("ConnectionError")

        add_many = swap = add

    breaker = Breaker(Down(), {"a": SPEC}, clock=clock)
    with caplog.at_level(logging.ERROR, logger="app.upstream.breaker"):
        for _ in range(5):
            assert call(breaker, ok=False)
    seen = state(breaker)
    assert seen.kind == "closed" and seen.known is False
    assert len([r for r in caplog.records if "did not answer" in r.getMessage()]) == 1


def test_states_are_read_in_one_step(clock):
    class Counting(MemoryCounters):
        calls = 0

        def add_many(self, ops):
            Counting.calls += 1
            return super().add_many(ops)

    breaker = Breaker(Counting(clock), {"a": SPEC, "b": SPEC, "c": SPEC}, clock=clock)
    assert set(breaker.states(["a", "b", "c"])) == {"a", "b", "c"}
    assert Counting.calls == 1
