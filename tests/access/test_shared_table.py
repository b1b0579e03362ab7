"""The shared-memory table: one set of counters for every worker of an instance, exact and bounded."""
from __future__ import annotations

import fcntl
import multiprocessing
import os
import stat
import struct
import sys
import threading

import pytest
from support import FakeClock

from app.access.shared_table import SLOTS_PER_BUCKET, SharedCounters, create_table, make_table, table_size
from app.errors import StoreDown


def _hammer(where: str, rounds: int) -> None:
    counters = SharedCounters.attach(where)
    for _ in range(rounds):
        counters.add_many([("req:a", 1, 600), ("tok:a", 7, 600)])


def test_processes_sharing_the_table_count_exactly(tmp_path):
    where = str(tmp_path / "limits")
    create_table(where, 4096)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_hammer, args=(where, 2000)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    counters = SharedCounters.attach(where)
    assert counters.add("req:a", 0, 1)[0] == 8000 and counters.add("tok:a", 0, 1)[0] == 56000


def test_two_attachments_are_two_workers_on_one_table(tmp_path):
    clock = FakeClock()
    one = SharedCounters.create(str(tmp_path / "t"), 4096, clock)
    two = SharedCounters.attach(str(tmp_path / "t"), clock)
    one.add("k", 2, 60)
    assert two.add("k", 3, 60)[0] == 5
    lease = one.acquire("streams:x", 1, 6)
    assert two.acquire("streams:x", 1, 6) is None
    two.release(lease)  # a lease is data: any worker may let it go
    assert one.acquire("streams:x", 1, 6) is not None


def test_an_inherited_descriptor_is_attached_through_a_description_of_its_own():
    where = make_table(2048)
    fd = int(where[3:])
    try:
        assert os.fstat(fd).st_nlink == 0  # no name left behind, whatever happens to the master
        one, two = SharedCounters.attach(where), SharedCounters.attach(where)
        assert one.slots == 2048 and one.add("k", 1, 60)[0] == 1 and two.add("k", 1, 60)[0] == 2
        # flock excludes open file descriptions: each attachment must have its own.
        fcntl.flock(one._fd, fcntl.LOCK_EX)
        with pytest.raises(BlockingIOError):
            fcntl.flock(two._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(one._fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def test_a_worker_that_dies_holding_the_lock_does_not_keep_it(tmp_path):
    where = str(tmp_path / "t")
    create_table(where, 1024)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        counters = SharedCounters.attach(where)
        counters._locked().__enter__()
        os._exit(0)
    os.waitpid(pid, 0)
    counters = SharedCounters.attach(where)
    fcntl.flock(counters._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if the dead child still held it
    fcntl.flock(counters._fd, fcntl.LOCK_UN)
    assert counters.add("k", 1, 1)[0] == 1


def test_a_full_bucket_is_a_store_failure_never_a_reset(tmp_path):
    clock = FakeClock()
    table = SharedCounters.create(str(tmp_path / "t"), SLOTS_PER_BUCKET, clock)  # one bucket
    for n in range(SLOTS_PER_BUCKET):
        table.add(f"k{n}", n + 1, 10)
    with pytest.raises(StoreDown):
        table.add("one too many", 1, 10)
    assert [table.add(f"k{n}", 0, 10)[0] for n in range(SLOTS_PER_BUCKET)] == list(range(1, SLOTS_PER_BUCKET + 1))
    clock.advance(10)
    assert table.add("one too many", 1, 10)[0] == 1  # expired slots are free again, with no sweep


def test_an_unrenewed_lease_counts_for_at_least_one_and_at_most_two_ttls(tmp_path):
    clock = FakeClock(start=600.0)  # at the start of a 6-second generation
    table = SharedCounters.create(str(tmp_path / "t"), 1024, clock)
    table.acquire("s", 1, 6)
    clock.advance(5.9)
    assert table.acquire("s", 1, 6) is None
    clock.advance(6.0)  # 11.9 s: the previous generation still counts it
    assert table.acquire("s", 1, 6) is None
    clock.advance(0.2)  # 12.1 s: two generations without a renewal
    assert table.acquire("s", 1, 6) is not None


def test_a_renewal_moves_a_lease_to_the_current_generation_and_release_finds_it(tmp_path):
    clock = FakeClock(start=600.0)
    table = SharedCounters.create(str(tmp_path / "t"), 1024, clock)
    first = table.acquire("s", 2, 6)
    clock.advance(7)  # next generation: `first` is in the previous one
    second = table.acquire("s", 2, 6)
    assert table.acquire("s", 2, 6) is None
    table.renew([first])
    table.renew([first])  # twice in one generation counts once
    assert (first.mark, second.mark) == (101, 101)
    clock.advance(6)  # a generation later, both renewed or not: neither lapsed yet
    assert table.acquire("s", 2, 6) is None
    table.release(first)
    table.release(second)
    assert table.acquire("s", 2, 6) is not None and table.acquire("s", 2, 6) is not None
    assert table.acquire("s", 2, 6) is None


def test_release_never_goes_below_zero(tmp_path):
    clock = FakeClock(start=600.0)
    table = SharedCounters.create(str(tmp_path / "t"), 1024, clock)
    stale = table.acquire("s", 1, 6)
    clock.advance(13)  # lapsed
    fresh = table.acquire("s", 1, 6)
    table.release(stale)  # from a generation that is gone: changes nothing
    assert table.acquire("s", 1, 6) is None
    table.release(fresh)
    table.release(fresh)
    assert table.acquire("s", 1, 6) is not None and table.acquire("s", 1, 6) is None


def test_sizes_and_a_file_that_is_not_a_table(tmp_path):
    assert table_size(1) == table_size(SLOTS_PER_BUCKET) == 64 + SLOTS_PER_BUCKET * 32
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\0" * 4096)
    with pytest.raises(ValueError):
        SharedCounters.attach(str(bogus))
    create_table(str(tmp_path / "t"), 2048)
    create_table(str(tmp_path / "t"), 99999)  # an existing table is left as it is
    assert SharedCounters.attach(str(tmp_path / "t")).slots == 2048


# --- pinned: where the table lives, what it refuses, threads, generations --------------------------


def _target(where: str) -> str:
    return os.readlink(f"/proc/self/fd/{where[3:]}")


def test_the_table_lives_in_shared_memory_under_our_name(tmp_path):
    default, chosen = make_table(1024), make_table(1024, str(tmp_path))
    try:
        assert _target(default).startswith("/dev/shm/chatgate-limits-") and _target(default).endswith("(deleted)")
        assert _target(chosen).startswith(f"{tmp_path}/chatgate-limits-")
    finally:
        os.close(int(default[3:]))
        os.close(int(chosen[3:]))
    create_table(str(tmp_path / "named"), 1024)
    assert stat.S_IMODE(os.stat(tmp_path / "named").st_mode) == 0o600


@pytest.mark.parametrize("header", [
    b"CGLIMIT1" + struct.pack("<QQ", 64, 8),     # another slot layout
    b"CGLIMIT1" + struct.pack("<QQ", 0, 16),     # no buckets
    b"NOTATABL" + struct.pack("<QQ", 64, 16),    # not ours at all
])
def test_a_table_made_otherwise_is_refused(tmp_path, header):
    path = tmp_path / "t"
    path.write_bytes(header.ljust(64, b"\0") + b"\0" * table_size(1024))
    with pytest.raises(ValueError, match="^not a chatgate limits table$"):
        SharedCounters.attach(str(path))


def test_threads_of_one_worker_count_exactly(tmp_path):
    table = SharedCounters.create(str(tmp_path / "t"), 1024)
    threads = [threading.Thread(target=lambda: [table.add("k", 1, 600) for _ in range(3000)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert table.add("k", 0, 600)[0] == 12000


def test_under_gevent_greenlets_need_no_thread_lock(tmp_path, monkeypatch):
    from app.access import table_lock

    assert table_lock.green() is False and isinstance(SharedCounters.create(str(tmp_path / "a"), 1024)._mutex,
                                                      type(threading.Lock()))

    class Monkey:
        @staticmethod
        def is_module_patched(name: str) -> bool:
            return name == "threading"

    monkeypatch.setitem(sys.modules, "gevent.monkey", Monkey)
    table = SharedCounters.create(str(tmp_path / "b"), 1024)
    assert table_lock.green() is True and isinstance(table._mutex, table_lock.NoLock)
    assert table._mutex.acquire() is True and table._mutex.release() is None
    assert table.add("k", 2, 60)[0] == 2


def test_keys_spread_over_every_bucket(tmp_path):
    table = SharedCounters.create(str(tmp_path / "t"), 64 * SLOTS_PER_BUCKET)
    for n in range(400):  # six keys a bucket on average: none of 64 buckets should fill
        table.add(f"req:ip:192.0.2.{n}:60:1", 1, 60)
    assert all(table.add(f"req:ip:192.0.2.{n}:60:1", 0, 60)[0] == 1 for n in range(400))


def test_windows_end_exactly_and_the_seconds_left_are_exact(tmp_path):
    clock = FakeClock()
    table = SharedCounters.create(str(tmp_path / "t"), 1024, clock)
    assert table.add("k", 3, 10) == (3, 10.0)
    assert table.add_many([("k", 1, 99), ("j", 1, 2.5)]) == [(4, 10.0), (1, 2.5)]
    clock.advance(10)
    assert table.add("k", 1, 10) == (1, 10.0)  # the old window ended exactly now
    assert table.add_many([("j", 1, 7)]) == [(1, 7.0)]


def test_a_slot_reused_by_another_key_is_never_mistaken_for_the_first(tmp_path):
    clock = FakeClock()
    table = SharedCounters.create(str(tmp_path / "t"), SLOTS_PER_BUCKET, clock)  # one bucket
    table.add("first", 1, 5)
    clock.advance(5)
    for n in range(SLOTS_PER_BUCKET):  # the first key's slot is free and taken with every other one
        table.add(f"other{n}", 100, 60)
    with pytest.raises(StoreDown, match=r"^limits table bucket full \(raise LIMITS_SLOTS\)$"):
        table.add("first", 1, 5)
    assert sorted(table.add(f"other{n}", 0, 60)[0] for n in range(SLOTS_PER_BUCKET)) == [100] * SLOTS_PER_BUCKET


def test_releasing_a_lease_whose_group_is_gone_needs_no_room(tmp_path):
    clock = FakeClock(start=600.0)
    table = SharedCounters.create(str(tmp_path / "t"), SLOTS_PER_BUCKET, clock)
    lease = table.acquire("s", 1, 6)
    clock.advance(12)  # its group's slot has expired
    for n in range(SLOTS_PER_BUCKET):
        table.add(f"k{n}", 1, 60)
    table.release(lease)  # nothing to take it from, and no slot to spare: a no-op, not a failure


def test_renewing_several_leases_moves_each_once(tmp_path):
    clock = FakeClock(start=600.0)
    table = SharedCounters.create(str(tmp_path / "t"), 1024, clock)
    old, fresh = table.acquire("s", 3, 6), None
    clock.advance(6)  # `old` is in the previous generation now
    fresh = table.acquire("s", 3, 6)
    table.renew([fresh, old])  # `fresh` is current already; `old` must still move
    clock.advance(6)  # were `old` not moved, it would lapse here
    assert table.acquire("s", 3, 6) is not None and table.acquire("s", 3, 6) is None


def test_a_lapsed_lease_taken_again_takes_nothing_from_the_others(tmp_path):
    clock = FakeClock(start=600.0)
    table = SharedCounters.create(str(tmp_path / "t"), 1024, clock)
    lapsed = table.acquire("s", 2, 6)
    clock.advance(12)  # lapsed: two generations without a renewal
    kept = table.acquire("s", 2, 6)
    clock.advance(6)  # `kept` is in the previous generation
    table.renew([lapsed])  # taken again: counted in the current one, `kept` still counted in the previous
    assert table.acquire("s", 2, 6) is None
    table.release(lapsed)
    assert table.acquire("s", 2, 6) is not None and kept is not None


def test_releasing_a_lapsed_lease_takes_nothing_from_the_others(tmp_path):
    clock = FakeClock(start=600.0)
    table = SharedCounters.create(str(tmp_path / "t"), 1024, clock)
    lapsed = table.acquire("s", 2, 6)
    clock.advance(12)
    kept = table.acquire("s", 2, 6)
    clock.advance(6)
    table.release(lapsed)  # from no live generation: `kept` (previous generation) must stay counted
    assert table.acquire("s", 2, 6) is not None and table.acquire("s", 2, 6) is None and kept is not None


def test_releasing_from_the_previous_generation_takes_exactly_one(tmp_path):
    clock = FakeClock(start=600.0)
    table = SharedCounters.create(str(tmp_path / "t"), 1024, clock)
    leases = [table.acquire("s", 3, 6) for _ in range(3)]
    clock.advance(6)  # all three in the previous generation
    table.release(leases[0])
    assert table.acquire("s", 3, 6) is not None and table.acquire("s", 3, 6) is None
