"""The counters interface, the same on every store: in-process, the shared table, Redis."""
from __future__ import annotations

import time

import pytest
from support import FakeClock

from app.access.counters import EXPIRE_BATCH, Lease, MemoryCounters
from app.access.redis_counters import RedisCounters
from app.access.shared_table import SharedCounters
from app.errors import StoreDown


class Store:
    """A store under test, and how to let time pass for it."""

    def __init__(self, counters, clock: FakeClock | None, lapse_factor: float):
        self.counters = counters
        self._clock = clock
        # How many ttls an unrenewed lease may keep counting (the table keeps two generations).
        self.lapse_factor = lapse_factor

    def advance(self, seconds: float) -> None:
        if self._clock is not None:
            self._clock.advance(seconds)
        else:
            time.sleep(seconds)


@pytest.fixture(params=["memory", "table", "redis"])
def store(request, tmp_path):
    """Each store, with a fake clock where it has one (Redis keeps its own time)."""
    if request.param == "redis":
        return Store(RedisCounters(request.getfixturevalue("redis_url")), None, 1)
    clock = FakeClock()
    if request.param == "memory":
        return Store(MemoryCounters(clock), clock, 1)
    return Store(SharedCounters.create(str(tmp_path / "limits"), 4096, clock), clock, 2)


def test_add_counts_within_a_window_then_starts_again(store):
    c = store.counters
    assert c.add("k", 3, 0.5)[0] == 3
    count, left = c.add("k", -1, 0.5)
    assert count == 2 and 0 < left <= 0.5
    assert c.add("other", 1, 0.5)[0] == 1
    store.advance(0.6)
    assert c.add("k", 1, 30)[0] == 1  # a new window
    assert 29 < c.add("k", 0, 99)[1] <= 30  # the window is the one it started with


def test_add_many_is_add_for_each(store):
    c = store.counters
    c.add("a", 5, 60)
    got = store.counters.add_many([("a", 1, 60), ("b", 2, 60), ("a", 10, 60)])
    assert [count for count, _ in got] == [6, 2, 16]
    assert all(0 < left <= 60 for _, left in got)


def test_leases_are_capped_and_released_once(store):
    c = store.counters
    first, second = c.acquire("s", 2, 30), c.acquire("s", 2, 30)
    assert isinstance(first, Lease) and isinstance(second, Lease) and first.id != second.id
    assert c.acquire("s", 2, 30) is None
    c.release(first)
    c.release(first)  # twice is once: it must not make room for two
    third = c.acquire("s", 2, 30)
    assert third is not None and c.acquire("s", 2, 30) is None
    assert c.acquire("other", 2, 30) is not None  # every key has its own cap


def test_an_unrenewed_lease_lapses_and_a_renewed_one_does_not(store):
    c = store.counters
    kept, lost = c.acquire("s", 2, 0.4), c.acquire("s", 2, 0.4)
    for _ in range(int(4 * store.lapse_factor)):
        store.advance(0.15)
        c.renew([kept])
    assert c.acquire("s", 2, 0.4) is not None  # `lost` lapsed; `kept` still counts
    assert c.acquire("s", 2, 0.4) is None
    c.release(lost)  # releasing a lapsed lease takes nothing from the others
    assert c.acquire("s", 2, 0.4) is None


def test_a_lapsed_lease_is_taken_again_when_renewed_even_past_the_cap(store):
    c = store.counters
    held = c.acquire("s", 1, 0.3)
    store.advance(0.3 * store.lapse_factor + 0.1)
    newcomer = c.acquire("s", 1, 0.3)
    assert newcomer is not None
    c.renew([held])  # it is still open (an outage stopped its renewals): it counts again
    c.release(newcomer)
    assert c.acquire("s", 1, 0.3) is None
    c.release(held)
    assert c.acquire("s", 1, 0.3) is not None


def test_renewing_a_released_lease_does_nothing(store):
    c = store.counters
    lease = c.acquire("s", 1, 30)
    c.release(lease)
    c.renew([lease])
    assert c.acquire("s", 1, 30) is not None


def test_swap_sets_only_from_the_value_expected_and_add_reads_it(store):
    c = store.counters
    assert c.swap("cell", 1, 5, 30) is False  # a missing counter holds 0
    assert c.add("cell", 0, 30)[0] == 0
    assert c.swap("cell", 0, 5, 30) is True
    assert c.swap("cell", 0, 6, 30) is False  # the one who saw 0 first wins; the other loses
    count, left = c.add("cell", 0, 99)
    assert count == 5 and 29 < left <= 30  # a read keeps the swapped ttl
    assert c.swap("cell", 5, 9, 60) is True
    assert 59 < c.add("cell", 0, 1)[1] <= 60  # each swap sets a fresh ttl
    assert c.swap("cell", 9, 0, 60) is True  # 0 removes it
    assert c.add("cell", 0, 30)[0] == 0


def test_a_swapped_value_expires_with_its_ttl(store):
    c = store.counters
    assert c.swap("cell", 0, 7, 0.3)
    assert c.add("cell", 0, 1)[0] == 7
    store.advance(0.4)
    assert c.add("cell", 0, 1)[0] == 0
    assert c.swap("cell", 0, 8, 30)  # expired is 0 again


def test_swap_and_add_share_one_counter(store):
    c = store.counters
    c.add("cell", 3, 30)
    assert c.swap("cell", 3, 4, 30)
    assert c.add("cell", 1, 30)[0] == 5


def test_the_memory_store_expires_a_bounded_number_of_entries_per_call():
    clock = FakeClock()
    c = MemoryCounters(clock)
    c.add_many([(f"key:{n}", 1, 10) for n in range(100_000)])
    live = c.add("live", 1, 10_000)[0]
    clock.advance(11)
    assert len(c) == 100_001 and live == 1
    c.add("new", 1, 10)
    assert len(c) == 100_002 - EXPIRE_BATCH  # a few old keys went, not a sweep of all of them
    for n in range(100_000 // EXPIRE_BATCH + 10):
        c.add(f"fresh:{n}", 1, 1000)
    assert c.add("live", 0, 1)[0] == 1  # nothing live was dropped
    assert len(c) == 2 + 100_000 // EXPIRE_BATCH + 10  # every expired key is gone, a few at a time


def test_the_memory_store_drops_emptied_lease_groups():
    clock = FakeClock()
    c = MemoryCounters(clock)
    leases = [c.acquire(f"streams:{n}", 1, 5) for n in range(50)]
    assert len(c) == 50
    clock.advance(6)
    for n in range(50):
        c.add(f"k{n}", 1, 1000)
    assert len(c) == 50 and all(lease is not None for lease in leases)


def test_redis_keys_expire_with_their_window(redis_url):
    import redis

    c = RedisCounters(redis_url)
    c.add("req:a", 1, 42)
    lease = c.acquire("streams:a", 5, 7)
    raw = redis.Redis.from_url(redis_url)
    assert 41_000 < raw.pttl("cg:req:a") <= 42_000
    assert 6_000 < raw.pttl("cg:streams:a") <= 7_000
    c.renew([lease])
    assert 6_000 < raw.pttl("cg:streams:a") <= 7_000
    assert raw.zscore("cg:streams:a", lease.id) is not None
    c.release(lease)
    assert raw.zscore("cg:streams:a", lease.id) is None


def test_an_unreachable_redis_is_store_down():
    c = RedisCounters("redis://127.0.0.1:1/0")
    for call in (lambda: c.add("k", 1, 1), lambda: c.add_many([("k", 1, 1)]), lambda: c.acquire("s", 1, 1),
                 lambda: c.renew([Lease("s", 1)]), lambda: c.release(Lease("s", 1))):
        with pytest.raises(StoreDown):
            call()
    assert c.ping() is False


def test_a_command_that_timed_out_is_not_applied_when_redis_wakes_up(private_redis):
    c = RedisCounters(private_redis.url)
    assert c.add("tok", 100, 60)[0] == 100  # also teaches the client Redis's clock
    held = c.acquire("s", 5, 30)
    private_redis.pause()  # Redis reads nothing now; what we send waits in its socket
    try:
        for call in (lambda: c.add("tok", -60, 60), lambda: c.acquire("s", 5, 30), lambda: c.release(held)):
            with pytest.raises(StoreDown):
                call()
        time.sleep(0.3)  # past the commands' deadline
    finally:
        private_redis.resume()
    raw = private_redis.client()
    assert c.add("tok", 0, 60)[0] == 100  # the timed-out -60 never happened: retrying it counts it once
    assert raw.zcard("cg:s") == 1 and raw.zscore("cg:s", held.id) is not None


# --- pinned: exact boundaries, stale expiry entries, the Redis client's settings -------------------


def test_windows_and_leases_end_exactly_at_their_expiry():
    clock = FakeClock()
    c = MemoryCounters(clock)
    c.add("k", 5, 10)
    short, long = c.acquire("s", 2, 5), c.acquire("s", 2, 100)
    clock.advance(5)
    assert c.acquire("s", 2, 5) is not None  # `short` lapses at its expiry, not after
    assert c.acquire("s", 2, 5) is None and short is not None and long is not None
    clock.advance(5)
    assert c.add("k", 1, 10) == (1, 10.0)  # and a window ends at its expiry


def test_a_stale_expiry_entry_never_drops_a_live_counter():
    clock = FakeClock()
    c = MemoryCounters(clock)
    c.add_many([(f"old:{n}", 1, 10) for n in range(20)])
    c.add("x", 1, 10)  # its expiry entry queues behind the twenty
    clock.advance(10)
    c.add("x", 7, 100)  # x starts a new window before its old entry is reached
    for n in range(10):
        c.add(f"filler:{n}", 1, 100)  # enough calls to reach and drop x's stale entry
    assert c.add("x", 0, 100)[0] == 7


def test_a_released_group_still_counts_towards_the_expiry_batch():
    clock = FakeClock()
    c = MemoryCounters(clock)
    lease = c.acquire("s", 1, 5)
    c.add("tick", 1, 1000)  # the group is looked at (alive: its entry comes back for its expiry)
    c.release(lease)  # then the group goes; that entry stays
    c.add_many([(f"k{n}", 1, 10) for n in range(20)])
    clock.advance(10)
    before = len(c)
    c.add("new", 1, 10)
    assert before - len(c) == EXPIRE_BATCH - 1 - 1  # one entry was the stale group's, one key was added


def test_lease_groups_are_dropped_once_their_last_lease_lapses_exactly():
    clock = FakeClock()
    c = MemoryCounters(clock)
    c.acquire("a", 1, 5)
    c.acquire("b", 1, 5)
    clock.advance(5)
    for n in range(3):
        c.add(f"k{n}", 1, 100)
    assert len(c) == 3


def test_the_redis_client_times_out_quickly_and_checks_its_connections(redis_url):
    kwargs = RedisCounters(redis_url)._client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"], kwargs["health_check_interval"]) == (
        0.5, 0.5, 30)


def test_redis_reports_seconds_left_to_the_millisecond(redis_url):
    assert RedisCounters(redis_url).add("k", 1, 42) == (1, 42.0)  # PTTL read in the script that set it


def test_a_command_is_dropped_once_past_its_deadline(monkeypatch):
    from app.access import redis_counters

    c = RedisCounters("redis://127.0.0.1:1/0")
    assert c._deadline() == 0  # nothing learnt yet: no deadline
    c._offset_ms = 1500.0
    monkeypatch.setattr(redis_counters.time, "time", lambda: 1000.0006)
    assert c._deadline() == 1_000_000 + 1500 + 500 + 250  # milliseconds, rounded down


def test_a_reply_saying_late_is_a_store_failure_and_the_clock_is_learnt_again(redis_url):
    c = RedisCounters(redis_url)
    c.add("k", 1, 60)
    c._offset_ms = -10_000_000.0  # as if our idea of Redis's clock were hours behind: every deadline has passed
    with pytest.raises(StoreDown) as err:
        c.add("k", 1, 60)
    assert str(err.value) == "late"
    assert c.add("k", 1, 60)[0] == 2  # learnt again from the late reply: the late command did nothing
    assert c.ping() is True


def test_only_socket_and_redis_failures_are_store_failures():
    from app.access.redis_counters import _ms, _store_down

    assert _store_down(ValueError("a bug")) is None
    down = _store_down(ConnectionResetError())
    assert isinstance(down, StoreDown) and str(down) == "ConnectionResetError"
    assert (_ms(0.0001), _ms(0.0042), _ms(2)) == (1, 4, 2000)
