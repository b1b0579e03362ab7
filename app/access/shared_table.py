"""Counters and leases shared by every worker of one instance, without Redis (see ``counters.py``).

A fixed-size table in one shared-memory file: the gunicorn master makes it
before it forks (``make_table``), each worker maps it (``SharedCounters.attach``).

Layout: a 64-byte header (magic, bucket count, slots per bucket), then
buckets of ``SLOTS_PER_BUCKET`` slots, each slot four 64-bit words
``(tag, expiry, a, b)``. ``tag`` is a 63-bit hash of the key (0: never used),
``expiry`` a CLOCK_MONOTONIC time in milliseconds, the same in every process
of the host. A slot whose expiry has passed is free, so expiry costs nothing
and nothing sweeps. A key lives in the bucket its hash picks; a bucket with no
free slot is a store failure (``StoreDown``, and ``LIMITS_FAIL`` decides),
never a silent reset: size the table with ``LIMITS_SLOTS``.

* A counter is one slot: ``a`` is its value.
* A lease group is one slot counting leases in two generations of ``ttl``
  each: ``a`` leases renewed in the current generation, ``b`` those renewed
  in the previous one and not since. A live lease renews at least once a
  generation (the keeper renews every third of one), so ``a + b`` counts
  every live lease once; at each new generation the previous one's
  stragglers are dropped, so a lease nobody renews stops counting within two
  generations. The generation is encoded in ``expiry`` (``(gen + 2) * ttl``).
  Each lease remembers its own generation (``Lease.mark``), so releasing it
  takes it from the right one, and never below zero.

Locking: one ``flock`` on the file, taken by each worker through its own
open file description, which the kernel releases if the worker dies (a
semaphore would stay taken); plus a thread lock, since ``flock`` does not
exclude threads of one process (not needed under gevent, whose greenlets
cannot switch inside). Critical sections are a few microseconds.
"""
from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence

from ..errors import StoreDown
from .counters import Lease
from .table_lock import TableLock, thread_lock

MAGIC = b"CGLIMIT1"
HEADER = 64
SLOTS_PER_BUCKET = 16
SLOT_WORDS = 4
_TAG_CACHE = 4096
_MASK = (1 << 63) - 1


def table_size(slots: int) -> int:
    """Bytes of a table with room for ``slots`` slots (rounded up to whole buckets)."""
    buckets = max(1, -(-slots // SLOTS_PER_BUCKET))
    return HEADER + buckets * SLOTS_PER_BUCKET * SLOT_WORDS * 8


def make_table(slots: int, directory: str | None = None) -> str:
    """Create an anonymous table for this process and its future children; returns ``fd:N`` for LIMITS_TABLE.

    The file is unlinked at once: it lives as long as some process holds it,
    so a crashed master leaves nothing behind in /dev/shm.
    """
    if directory is None:
        directory = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix="chatgate-limits-", dir=directory)
    try:
        _initialise(fd, slots)
    finally:
        os.unlink(path)
    return f"fd:{fd}"


def create_table(path: str, slots: int) -> None:
    """Create the table file at ``path`` unless it exists (instances on one host may then share it)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        _initialise(fd, slots)
    finally:
        os.close(fd)


def _initialise(fd: int, slots: int) -> None:
    size = table_size(slots)
    os.ftruncate(fd, size)  # zero-filled, and only touched pages take memory
    buckets = (size - HEADER) // (SLOTS_PER_BUCKET * SLOT_WORDS * 8)
    os.pwrite(fd, MAGIC + struct.pack("<QQ", buckets, SLOTS_PER_BUCKET), 0)


_SLOT = struct.Struct("<qqqq")
_SLOT_BYTES = SLOT_WORDS * 8
_BUCKET_BYTES = SLOTS_PER_BUCKET * _SLOT_BYTES


class SharedCounters:
    """Counters and leases in a shared-memory table; see the module docstring."""

    def __init__(self, fd: int, clock: Callable[[], float] | None = None):
        self._fd = fd
        head = os.pread(fd, HEADER, 0)
        buckets, slots = struct.unpack_from("<QQ", head, len(MAGIC))
        if head[:len(MAGIC)] != MAGIC or slots != SLOTS_PER_BUCKET or not buckets:
            raise ValueError("not a chatgate limits table")
        self._buckets = buckets
        self._map = mmap.mmap(fd, table_size(buckets * SLOTS_PER_BUCKET))
        self._clock = clock
        self._mutex = thread_lock()
        self._tags: dict[str, int] = {}
        self._where: dict[int, int] = {}  # tag -> the offset its slot was last seen at (a hint, checked on use)

    @classmethod
    def attach(cls, where: str, clock: Callable[[], float] | None = None) -> SharedCounters:
        """Map the table named by LIMITS_TABLE: ``fd:N`` (inherited from the master) or a path."""
        # A file description of our own: flock excludes descriptions, and a shared one would exclude nothing.
        path = f"/proc/self/fd/{where[3:]}" if where.startswith("fd:") else where
        return cls(os.open(path, os.O_RDWR), clock)

    @classmethod
    def create(cls, path: str, slots: int = 1 << 16, clock: Callable[[], float] | None = None) -> SharedCounters:
        """Create (unless it exists) and map the table at ``path``."""
        create_table(path, slots)
        return cls.attach(path, clock)

    @property
    def slots(self) -> int:
        """How many slots the table has."""
        return self._buckets * SLOTS_PER_BUCKET

    def _tag(self, key: str) -> int:
        tag = self._tags.get(key)
        if tag is None:
            if len(self._tags) >= _TAG_CACHE:
                self._tags.clear()
                self._where.clear()
            digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=b"chatgate").digest()
            tag = self._tags[key] = (int.from_bytes(digest, "little") & _MASK) | 1
        return tag

    def _now(self) -> int:
        """Milliseconds on CLOCK_MONOTONIC, which every process of the host shares."""
        if self._clock is None:
            return time.monotonic_ns() // 1_000_000
        return int(self._clock() * 1000)

    def _find(self, tag: int, now: int, create: bool) -> tuple[int, int, int, int]:
        """(offset, expiry, a, b) of ``tag``'s live slot; with ``create``, a fresh zeroed one if none (else -1)."""
        mm = self._map
        hint = self._where.get(tag)
        if hint is not None:
            held, expiry, a, b = _SLOT.unpack_from(mm, hint)
            if held == tag and expiry > now:  # one live slot per tag: if this is live, it is the one
                return hint, expiry, a, b
        bucket = HEADER + (tag >> 4) % self._buckets * _BUCKET_BYTES
        start = tag & (SLOTS_PER_BUCKET - 1)
        free = -1
        for step in range(SLOTS_PER_BUCKET):
            at = bucket + ((start + step) & (SLOTS_PER_BUCKET - 1)) * _SLOT_BYTES
            held, expiry, a, b = _SLOT.unpack_from(mm, at)
            if expiry > now:
                if held == tag:
                    self._where[tag] = at
                    return at, expiry, a, b
            elif free < 0:
                free = at
        if not create:
            return -1, 0, 0, 0
        if free < 0:
            raise StoreDown("limits table bucket full (raise LIMITS_SLOTS)")
        _SLOT.pack_into(mm, free, tag, 0, 0, 0)
        self._where[tag] = free
        return free, 0, 0, 0

    def _locked(self) -> TableLock:
        return TableLock(self._mutex, self._fd)

    def add(self, key: str, amount: int, window: float) -> tuple[int, float]:
        """Add ``amount`` to ``key``; the new count and seconds until its window resets."""
        tag = self._tags.get(key) or self._tag(key)
        mutex, fd = self._mutex, self._fd
        mutex.acquire()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                now = self._now()
                at, expiry, value, _ = self._find(tag, now, True)
                if expiry <= now:  # fresh: its window starts now
                    expiry = now + max(int(window * 1000), 1)
                value += amount
                _SLOT.pack_into(self._map, at, tag, expiry, value, 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            mutex.release()
        return value, (expiry - now) / 1000.0

    def add_many(self, ops: Sequence[tuple[str, int, float]]) -> list[tuple[int, float]]:
        """``add`` for each (key, amount, window), under one lock."""
        tags = [self._tags.get(key) or self._tag(key) for key, _, _ in ops]
        out = []
        mm, find, pack = self._map, self._find, _SLOT.pack_into
        mutex, fd = self._mutex, self._fd
        mutex.acquire()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                now = self._now()
                for tag, (_key, amount, window) in zip(tags, ops, strict=True):
                    at, expiry, value, _ = find(tag, now, True)
                    if expiry <= now:  # fresh: its window starts now
                        expiry = now + max(int(window * 1000), 1)
                    value += amount
                    pack(mm, at, tag, expiry, value, 0)
                    out.append((value, (expiry - now) / 1000.0))
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            mutex.release()
        return out

    def swap(self, key: str, expect: int, value: int, ttl: float) -> bool:
        """Set ``key`` to ``value`` for a fresh ``ttl`` if it holds ``expect`` (0 when missing or expired)."""
        tag = self._tags.get(key) or self._tag(key)
        with self._locked():
            now = self._now()
            at, expiry, held, _ = self._find(tag, now, True)
            if (held if expiry > now else 0) != expect:
                return False
            # A value of 0 frees the slot: an expired slot is a free one.
            expiry = now + max(int(ttl * 1000), 1) if value else 0
            _SLOT.pack_into(self._map, at, tag, expiry, value, 0)
        return True

    def acquire(self, key: str, cap: int, ttl: float) -> Lease | None:
        """A lease under ``key`` unless ``cap`` are held (lapsed ones counted for at most one more ttl)."""
        tag, span = self._tag("lease:" + key), max(int(ttl * 1000), 1)
        with self._locked():
            gen, expiry, current, previous = self._generation(tag, self._now(), span)
            if current + previous >= cap:
                return None
            self._store(tag, expiry, current + 1, previous)
        return Lease(key, ttl, mark=gen)

    def renew(self, leases: Iterable[Lease]) -> None:
        """Count each unreleased lease in the current generation (again, if it lapsed)."""
        live = [lease for lease in leases if not lease.released]
        if not live:
            return
        with self._locked():
            now = self._now()
            for lease in live:
                tag = self._tag("lease:" + lease.key)
                gen, expiry, current, previous = self._generation(tag, now, max(int(lease.ttl * 1000), 1))
                if lease.mark == gen:
                    continue
                if lease.mark == gen - 1 and previous > 0:
                    previous -= 1  # it moves from the previous generation to this one
                self._store(tag, expiry, current + 1, previous)
                lease.mark = gen

    def release(self, lease: Lease) -> None:
        """Take the lease out of its generation's count; a second release changes nothing."""
        if lease.released:
            return
        lease.released = True
        tag, span = self._tag("lease:" + lease.key), max(int(lease.ttl * 1000), 1)
        with self._locked():
            now = self._now()
            if self._find(tag, now, False)[0] < 0:
                return
            gen, expiry, current, previous = self._generation(tag, now, span)
            if lease.mark == gen and current > 0:
                self._store(tag, expiry, current - 1, previous)
            elif lease.mark == gen - 1 and previous > 0:
                self._store(tag, expiry, current, previous - 1)

    def _generation(self, tag: int, now: int, span: int) -> tuple[int, int, int, int]:
        """The lease group rolled forward to the current generation: (generation, expiry, current, previous)."""
        at, expiry, current, previous = self._find(tag, now, True)
        gen = now // span
        held = expiry // span - 2 if expiry > now else -2
        if held < gen:
            previous = current if held == gen - 1 else 0
            current = 0
            expiry = (gen + 2) * span
            _SLOT.pack_into(self._map, at, tag, expiry, current, previous)
        self._last = at
        return gen, expiry, current, previous

    def _store(self, tag: int, expiry: int, current: int, previous: int) -> None:
        # The slot _generation just found (the lock is still held, so it is still ours).
        _SLOT.pack_into(self._map, self._last, tag, expiry, current, previous)
