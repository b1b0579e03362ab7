"""The keeper: renews a process's open leases and retries the settlements an outage left unwritten."""
from __future__ import annotations

import logging
import threading

import pytest
from support import FakeClock, wait_for

from app.access import keeper as keeper_module
from app.access.counters import Lease, MemoryCounters
from app.access.keeper import Keeper
from app.errors import StoreDown


class Recording:
    """A store that records what the keeper asks of it, and can be away."""

    def __init__(self):
        self.inner = MemoryCounters()
        self.down = False
        self.renewed: list[list[str]] = []
        self.added: list[tuple[str, int, float]] = []
        self.during_add = None

    def renew(self, leases):
        if self.down:
            raise StoreDown("ConnectionError")
        self.renewed.append(sorted(lease.id for lease in leases))

    def add(self, key, amount, window):
        if self.during_add is not None:
            self.during_add()
        if self.down:
            raise StoreDown("ConnectionError")
        self.added.append((key, amount, window))
        return self.inner.add(key, amount, window)


def test_a_keeper_renews_every_held_lease_and_nothing_it_dropped():
    store = Recording()
    keeper = Keeper(store, 2.0, background=False)
    a, b = Lease("s", 6, id="a"), Lease("s", 6, id="b")
    keeper.hold(a)
    keeper.hold(b)
    keeper.run_once()
    keeper.drop(a)
    keeper.run_once()
    keeper.drop(b)
    keeper.run_once()
    assert store.renewed == [["a", "b"], ["b"]]  # nothing held: no call at all


def test_the_background_thread_renews_until_nothing_is_left_then_ends():
    store = Recording()
    keeper = Keeper(store, 0.01)
    assert keeper.background is True and keeper.interval == 0.01
    lease = Lease("s", 6, id="x")
    keeper.hold(lease)
    assert keeper._thread is not None and keeper._thread.daemon and keeper._thread.name == "limits-keeper"
    assert wait_for(lambda: len(store.renewed) >= 2, 10)
    keeper.drop(lease)
    assert wait_for(lambda: keeper._thread is None, 10)
    keeper.settle_later("k", -5, float("inf"))  # a settlement wakes it again, and it ends once written
    assert wait_for(lambda: keeper._thread is None and keeper.pending == 0, 10)
    assert store.added == [("k", -5, float("inf"))]


def test_only_one_thread_runs_whatever_is_added():
    keeper = Keeper(Recording(), 0.05)
    leases = [Lease("s", 6), Lease("s", 6)]
    keeper.hold(leases[0])
    first = keeper._thread
    keeper.hold(leases[1])
    keeper.settle_later("k", 1, float("inf"))
    assert keeper._thread is first
    for lease in leases:
        keeper.drop(lease)
    assert wait_for(lambda: keeper._thread is None, 10)


def test_without_a_background_thread_nothing_starts():
    keeper = Keeper(Recording(), 0.01, background=False)
    keeper.hold(Lease("s", 6))
    keeper.settle_later("k", 1, float("inf"))
    assert keeper._thread is None


def test_pending_settlements_are_retried_in_order_until_written_or_too_late(caplog):
    clock = FakeClock()
    store = Recording()
    keeper = Keeper(store, 2.0, background=False, clock=clock)
    keeper.settle_later("late", -1, clock.now + 5)
    keeper.settle_later("a", -2, clock.now + 30)
    keeper.settle_later("b", -3, clock.now + 30)
    store.down = True
    with caplog.at_level(logging.INFO, logger="app.access.keeper"):
        keeper.run_once()
        assert keeper.pending == 3
        clock.advance(5)  # "late"'s window ends exactly now: it is dropped, not written into the next one
        store.down = False
        keeper.run_once()
    assert keeper.pending == 0
    assert store.added == [("a", -2, 25.0), ("b", -3, 25.0)]
    assert [r.getMessage() for r in caplog.records] == ["limits: settled 2 reservations kept during a store outage"]


def test_a_round_that_fails_half_way_keeps_the_rest_and_what_arrived_meanwhile():
    store = Recording()
    keeper = Keeper(store, 2.0, background=False)
    for key in ("a", "b", "c"):
        keeper.settle_later(key, -1, float("inf"))
    calls = []

    def meanwhile():
        calls.append(1)
        if len(calls) == 1:
            keeper.settle_later("new", -1, float("inf"))
        elif len(calls) == 2:
            store.down = True

    store.during_add = meanwhile
    keeper.run_once()  # "a" written; the store goes away at "b"
    store.during_add, store.down = None, False
    assert keeper.pending == 3
    keeper.run_once()
    assert [key for key, _, _ in store.added] == ["a", "b", "c", "new"]


def test_too_many_pending_settlements_drop_the_oldest(monkeypatch, caplog):
    monkeypatch.setattr(keeper_module, "MAX_PENDING", 3)
    store = Recording()
    keeper = Keeper(store, 2.0, background=False)
    with caplog.at_level(logging.ERROR, logger="app.access.keeper"):
        for n in range(3):
            keeper.settle_later(f"k{n}", -1, float("inf"))
        assert caplog.text == ""
        keeper.settle_later("k3", -1, float("inf"))
        keeper.settle_later("k4", -1, float("inf"))
    assert keeper.pending == 3
    assert caplog.records[-1].getMessage() == "limits: dropped 1 settlements kept during a store outage"
    keeper.run_once()
    assert [key for key, _, _ in store.added] == ["k2", "k3", "k4"]


def test_renewals_that_fail_are_logged_and_tried_again(caplog):
    store = Recording()
    keeper = Keeper(store, 2.0, background=False)
    keeper.hold(Lease("s", 6, id="x"))
    store.down = True
    with caplog.at_level(logging.WARNING, logger="app.access.keeper"):
        keeper.run_once()
    assert [r.getMessage() for r in caplog.records] == [
        "limits: cannot renew 1 open stream slots (ConnectionError); they are renewed when it is back"]
    store.down = False
    keeper.run_once()
    assert store.renewed == [["x"]]


def test_a_keeper_whose_round_fails_keeps_running(monkeypatch, caplog):
    keeper = Keeper(Recording(), 0.01)
    rounds = []

    def broken():
        rounds.append(1)
        raise RuntimeError("a bug")

    monkeypatch.setattr(keeper, "run_once", broken)
    lease = Lease("s", 6)
    with caplog.at_level(logging.ERROR, logger="app.access.keeper"):
        keeper.hold(lease)
        assert wait_for(lambda: len(rounds) >= 3, 10)
    assert {r.getMessage() for r in caplog.records} == {"limits keeper failed (RuntimeError)"}
    keeper.drop(lease)
    assert wait_for(lambda: keeper._thread is None, 10)


@pytest.mark.parametrize("held, pending", [(True, False), (False, True)])
def test_the_thread_stays_while_either_leases_or_settlements_remain(held, pending):
    store = Recording()
    store.down = pending  # a settlement that cannot be written stays pending
    keeper = Keeper(store, 0.01)
    if held:
        keeper.hold(Lease("s", 6))
    if pending:
        keeper.settle_later("k", -1, float("inf"))
    assert wait_for(lambda: len(store.renewed) >= 3 or keeper.pending and store.down, 10)
    thread = keeper._thread
    threading.Event().wait(0.1)
    assert keeper._thread is thread and thread is not None and thread.is_alive()
    store.down = False  # let it finish, so no thread outlives the test
    for lease in list(keeper._leases):
        keeper.drop(lease)
    assert wait_for(lambda: keeper._thread is None, 10)
