"""Counters and leases for limits: the interface every store offers, and the in-process store.

The interface (``Counters``), shared by ``MemoryCounters`` (one process),
``SharedCounters`` (every worker of one instance, ``shared_table.py``) and
``RedisCounters`` (every instance, ``redis_counters.py``), so limits, a
circuit breaker or spending budgets can count on any of them:

``add(key, amount, window) -> (count, seconds_left)``
    Add ``amount`` (may be negative) to the counter ``key`` and return its new
    value and the seconds until it resets. A counter that does not exist, or
    whose window has passed, starts at 0 with a window of ``window`` seconds.
``add_many([(key, amount, window), …]) -> [(count, seconds_left), …]``
    The same for several counters in one step (one lock, one round trip).
``acquire(key, cap, ttl) -> Lease | None``
    Take a lease under ``key`` when fewer than ``cap`` are held (None at the
    cap). A lease counts until it is released, or until it has gone ``ttl``
    seconds without a renewal (the shared table may count it up to ``ttl``
    longer: it keeps two generations). Nothing here goes negative.
``renew(leases)``
    Keep each lease alive for another ``ttl``. A lease that lapsed meanwhile
    (say, across a store outage) is taken again, whatever the cap: it is held.
``release(lease)``
    Give a lease back. Releasing twice is releasing once.
``swap(key, expect, value, ttl) -> bool``
    Compare and set a counter: when ``key`` holds ``expect`` now (a missing
    or expired counter holds 0), it holds ``value`` for a fresh ``ttl``
    seconds (0 removes it) and the answer is True; otherwise nothing changes.
    ``add(key, 0, …)`` reads it. The circuit breaker keeps each upstream's
    state in one such counter, so exactly one caller wins each transition.

Every method raises ``StoreDown`` when the store cannot answer (Redis away,
the shared table's bucket full); what that means is the caller's decision
(``LIMITS_FAIL`` for limits). Expiry is amortised and bounded: no operation
sweeps the whole store.
"""
from __future__ import annotations

import heapq
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Expired entries dropped per operation, at most: enough to outpace creation, never a sweep.
EXPIRE_BATCH = 8


@dataclass(eq=False)
class Lease:
    """One held slot under ``key`` (an open stream, say); stores keep their bookkeeping on it."""

    key: str
    ttl: float
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    mark: int = 0  # the shared table's generation of the last renewal
    released: bool = False


class Counters(Protocol):
    """What limits (and anything else that counts) need of a store; see the module docstring."""

    def add(self, key: str, amount: int, window: float) -> tuple[int, float]:
        """Add to a windowed counter; its new value and seconds left."""

    def add_many(self, ops: Sequence[tuple[str, int, float]]) -> list[tuple[int, float]]:
        """``add`` for several counters in one step."""

    def acquire(self, key: str, cap: int, ttl: float) -> Lease | None:
        """A lease under ``key`` unless ``cap`` are held."""

    def renew(self, leases: Iterable[Lease]) -> None:
        """Keep leases alive for another ttl (re-taking lapsed ones)."""

    def release(self, lease: Lease) -> None:
        """Give a lease back (once)."""

    def swap(self, key: str, expect: int, value: int, ttl: float) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds if it holds ``expect`` now."""


class MemoryCounters:
    """Counters and leases for one process: the development server and the tests."""

    def __init__(self, clock: Callable[[], float] | None = None):
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._counts: dict[str, list] = {}  # key -> [expiry, value]
        self._leases: dict[str, dict[str, float]] = {}  # key -> {lease id: expiry}
        self._expiries: list[tuple[float, int, str]] = []  # (when, 0 counter | 1 lease group, key)

    def __len__(self) -> int:
        return len(self._counts) + len(self._leases)

    def add(self, key: str, amount: int, window: float) -> tuple[int, float]:
        """Add ``amount`` to ``key``; return the new count and seconds until the window resets."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            return self._add(key, amount, window, now)

    def add_many(self, ops: Sequence[tuple[str, int, float]]) -> list[tuple[int, float]]:
        """``add`` for each (key, amount, window), under one lock."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            return [self._add(key, amount, window, now) for key, amount, window in ops]

    def _add(self, key: str, amount: int, window: float, now: float) -> tuple[int, float]:
        entry = self._counts.get(key)
        if entry is None or entry[0] <= now:
            entry = self._counts[key] = [now + window, 0]
            heapq.heappush(self._expiries, (entry[0], 0, key))
        entry[1] += amount
        return entry[1], entry[0] - now

    def swap(self, key: str, expect: int, value: int, ttl: float) -> bool:
        """Set ``key`` to ``value`` for a fresh ``ttl`` if it holds ``expect`` (0 when missing or expired)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._counts.get(key)
            held = entry[1] if entry is not None and entry[0] > now else 0
            if held != expect:
                return False
            if value == 0:
                self._counts.pop(key, None)
            else:
                entry = self._counts[key] = [now + ttl, value]
                heapq.heappush(self._expiries, (entry[0], 0, key))
            return True

    def acquire(self, key: str, cap: int, ttl: float) -> Lease | None:
        """A lease under ``key``, or None when ``cap`` live leases are held."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            group = self._group(key, now)
            if len(group) >= cap:
                return None
            lease = Lease(key, ttl)
            group[lease.id] = now + ttl
            return lease

    def renew(self, leases: Iterable[Lease]) -> None:
        """Push each unreleased lease's expiry ``ttl`` ahead (re-taking it if it lapsed)."""
        now = self._clock()
        with self._lock:
            for lease in leases:
                if not lease.released:
                    self._group(lease.key, now)[lease.id] = now + lease.ttl

    def release(self, lease: Lease) -> None:
        """Drop the lease; a second release changes nothing."""
        if lease.released:
            return
        lease.released = True
        with self._lock:
            group = self._leases.get(lease.key)
            if group is not None:
                group.pop(lease.id, None)
                if not group:
                    del self._leases[lease.key]

    def _group(self, key: str, now: float) -> dict[str, float]:
        """The live leases under ``key`` (lapsed ones dropped; a group is at most its cap plus re-takes)."""
        group = self._leases.get(key)
        if group is None:
            group = self._leases[key] = {}
            heapq.heappush(self._expiries, (now, 1, key))  # looked at again once it may have emptied
            return group
        for lease_id in [i for i, until in group.items() if until <= now]:
            del group[lease_id]
        return group

    def _expire(self, now: float) -> None:
        """Drop at most EXPIRE_BATCH counters or lease groups whose time has passed."""
        heap = self._expiries
        for _ in range(EXPIRE_BATCH):
            if not heap or heap[0][0] > now:
                return
            _when, kind, key = heapq.heappop(heap)
            if kind == 0:
                entry = self._counts.get(key)
                if entry is not None and entry[0] <= now:
                    del self._counts[key]
                continue
            group = self._leases.get(key)
            if group is None:
                continue
            latest = max(group.values(), default=now)
            if latest <= now:
                del self._leases[key]
            else:
                heapq.heappush(heap, (latest, 1, key))
