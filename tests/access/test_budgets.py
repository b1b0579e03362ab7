"""Per-key dollar budgets: exact at the boundary, day and month, reserved then settled, concurrent, across instances."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import redis

from app.access.budgets import Budgets, over_budget, periods
from app.access.counters import MemoryCounters
from app.access.redis_counters import RedisCounters
from app.access.keys import Caller
from app.errors import RateLimited, ServiceUnavailable, StoreDown

SHARED = "redis://127.0.0.1:6379/6"
# 2026-03-31 23:00:00 UTC: an hour before both the day and the month end.
NOW = datetime(2026, 3, 31, 23, 0, tzinfo=UTC).timestamp()


def caller(day=None, month=None, key="key:1") -> Caller:
    return Caller(id=key, limit_key=key, name="k", budget_day_micros=day, budget_month_micros=month)


def budgets(counters=None, **kw) -> Budgets:
    return Budgets(counters or MemoryCounters(), clock=kw.pop("clock", lambda: NOW), **kw)


def test_the_one_check_refuses_at_the_budget():
    assert over_budget(100, 100) and over_budget(101, 100) and not over_budget(99, 100)


def test_exact_at_the_boundary_this_calls_worst_case_included():
    b = budgets()
    who = caller(day=100)
    b.reserve(who, 60)            # 60 held
    b.reserve(who, 39)            # 99 held: still under
    with pytest.raises(RateLimited) as err:
        b.reserve(who, 1)         # 100 would reach the budget
    assert err.value.code == "budget_exceeded"
    assert b.counters.add("budget:key:1:2026-03-31", 0, 60)[0] == 99  # the refused reservation was undone


def test_a_key_without_budgets_is_not_counted():
    b = budgets()
    assert b.reserve(caller(), 10**12) is None
    b.settle(None, 5)


def test_reserved_then_settled_to_the_real_cost():
    b = budgets()
    who = caller(day=1000, month=5000)
    hold = b.reserve(who, 800)
    with pytest.raises(RateLimited):
        b.reserve(who, 300)       # 800 reserved + 300 >= 1000
    b.settle(hold, 50)            # the call cost far less than its worst case
    assert b.counters.add("budget:key:1:2026-03-31", 0, 60)[0] == 50
    assert b.counters.add("budget:key:1:2026-03", 0, 60)[0] == 50
    b.reserve(who, 900)           # 50 + 900 < 1000


def test_the_day_and_the_month_are_each_enforced_and_named_with_their_reset():
    b = budgets()
    with pytest.raises(RateLimited) as day:
        b.reserve(caller(day=10, month=10**9), 10)
    assert "daily budget of $0.00001" in day.value.message
    assert "resets at 2026-04-01T00:00:00Z" in day.value.message
    assert day.value.headers["Retry-After"] == "3600"
    month_only = caller(month=2_000_000, key="key:2")
    b.reserve(month_only, 1_999_999)
    with pytest.raises(RateLimited) as month:
        b.reserve(month_only, 1)
    assert "monthly budget of $2.00" in month.value.message and "resets at 2026-04-01T00:00:00Z" in month.value.message


def test_the_month_resets_on_the_first_and_december_rolls_over():
    day, month = periods(datetime(2026, 12, 15, 8, 30, tzinfo=UTC).timestamp())
    assert (day.tag, day.resets_at) == ("2026-12-15", datetime(2026, 12, 16, tzinfo=UTC))
    assert (month.tag, month.first_day, month.resets_at) == ("2026-12", "2026-12-01", datetime(2027, 1, 1, tzinfo=UTC))
    b = budgets(clock=lambda: datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC).timestamp())
    with pytest.raises(RateLimited) as err:
        b.reserve(caller(month=5), 5)
    assert err.value.headers["Retry-After"] == "30" and "2027-01-01T00:00:00Z" in err.value.message


def test_a_new_day_starts_a_new_daily_budget():
    clock = {"now": NOW}
    b = budgets(clock=lambda: clock["now"])
    who = caller(day=100)
    b.reserve(who, 99)
    with pytest.raises(RateLimited):
        b.reserve(who, 1)
    clock["now"] = NOW + 3600  # midnight
    b.reserve(who, 99)


def test_concurrent_calls_are_cut_exactly_where_the_budget_ends():
    b = budgets()
    who = caller(day=100)
    results = []
    start = threading.Barrier(10)

    def call():
        start.wait()
        try:
            b.reserve(who, 30)
            results.append("ok")
        except RateLimited:
            results.append("refused")

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 3 and results.count("refused") == 7  # 90 held; 120 would pass 100


def test_a_restarted_process_remembers_what_the_ledger_says_was_spent():
    spent = {"key:1": 70}
    first_days = []

    def spent_since(client_id, first_day):
        first_days.append(first_day)
        return spent[client_id]

    b = budgets(spent_since=spent_since)
    with pytest.raises(RateLimited):
        b.reserve(caller(day=100), 30)
    assert first_days == ["2026-03-31"]
    b.reserve(caller(day=100), 29)
    assert first_days == ["2026-03-31"]  # seeded once per period


def test_month_seeding_sums_from_the_first_of_the_month():
    days = []
    b = budgets(spent_since=lambda _c, first: days.append(first) or 0)
    b.reserve(caller(month=100), 1)
    assert days == ["2026-03-01"]


class DownCounters:
    def add(self, *_a):
        raise StoreDown("ConnectionError")


@pytest.mark.parametrize("fail", ["closed", "open"])
def test_a_store_outage_follows_limits_fail(fail):
    b = budgets(DownCounters(), fail=fail)
    if fail == "closed":
        with pytest.raises(ServiceUnavailable):
            b.reserve(caller(day=10), 1)
    else:
        assert b.reserve(caller(day=10), 1).keys == []


# --- two instances sharing Redis


@pytest.fixture
def shared_redis():
    client = redis.Redis.from_url(SHARED)
    client.flushdb()
    yield SHARED
    client.flushdb()


def test_two_instances_sharing_redis_hold_one_budget(shared_redis):
    one, two = budgets(RedisCounters(shared_redis)), budgets(RedisCounters(shared_redis))
    who = caller(day=10_000, month=10**9)
    holds, refused = [], 0
    lock = threading.Lock()

    def call(instance):
        nonlocal refused
        try:
            hold = instance.reserve(who, 700)
            with lock:
                holds.append((instance, hold))
        except RateLimited:
            with lock:
                refused += 1

    threads = [threading.Thread(target=call, args=(one if i % 2 else two,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(holds) == 14 and refused == 16  # 14 x 700 = 9,800; a 15th would reach 10,000
    for instance, hold in holds:
        instance.settle(hold, 100)
    assert one.counters.add("budget:key:1:2026-03-31", 0, 60)[0] == 1400
    two.reserve(who, 8599)
    with pytest.raises(RateLimited):
        one.reserve(who, 1)
