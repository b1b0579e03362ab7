"""Upkeep the limits need between requests: renewing open leases, and settling what an outage left unsettled.

A lease (an open stream's slot) lapses unless renewed, so the keeper renews
every lease this process holds every third of its ttl; a stream that stops
(its worker killed, say) stops being renewed and frees its slot within
seconds. A settlement the store could not take (Redis away) is kept and
retried each round until it goes through or its window is over, so tokens
reserved before an outage are not held for the rest of the window.

The thread starts when there is something to keep and ends when there is
nothing (never at import, and in each worker after gunicorn forks). Tests
call ``run_once`` instead.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import StoreDown
from .counters import Counters, Lease

log = logging.getLogger(__name__)

# Settlements kept while the store is away; beyond this the oldest are dropped (and logged).
MAX_PENDING = 10_000


class Keeper:
    """Renews a process's open leases and retries its failed settlements, in one background thread."""

    def __init__(self, counters: Counters, interval: float, *, background: bool = True,
                 clock: Callable[[], float] | None = None):
        self.counters = counters
        self.interval = interval
        self.background = background
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._leases: set[Lease] = set()
        self._pending: list[tuple[str, int, float]] = []  # (key, amount, until) on the monotonic clock
        self._thread: threading.Thread | None = None

    def hold(self, lease: Lease) -> None:
        """Renew ``lease`` until ``drop``."""
        with self._lock:
            self._leases.add(lease)
            self._wake()

    def drop(self, lease: Lease) -> None:
        """Stop renewing ``lease``."""
        with self._lock:
            self._leases.discard(lease)

    def settle_later(self, key: str, amount: int, until: float) -> None:
        """Add ``amount`` to ``key`` once the store answers, if before ``until``."""
        with self._lock:
            self._pending.append((key, amount, until))
            dropped = len(self._pending) - MAX_PENDING
            if dropped > 0:
                del self._pending[:dropped]
                log.error("limits: dropped %d settlements kept during a store outage", dropped)
            self._wake()

    @property
    def pending(self) -> int:
        """Settlements still waiting for the store."""
        return len(self._pending)

    def run_once(self) -> None:
        """One round: renew every held lease, then retry pending settlements while the store answers."""
        with self._lock:
            leases = list(self._leases)
            pending, self._pending = self._pending, []
        try:
            if leases:
                self.counters.renew(leases)
        except StoreDown as err:
            log.warning("limits: cannot renew %d open stream slots (%s); they are renewed when it is back",
                        len(leases), err)
        now = self._clock()
        kept = [op for op in pending if op[2] > now]
        for index, (key, amount, until) in enumerate(kept):
            try:
                self.counters.add(key, amount, until - now)
            except StoreDown:
                with self._lock:
                    self._pending[:0] = kept[index:]
                return
        if kept:
            log.info("limits: settled %d reservations kept during a store outage", len(kept))

    def _wake(self) -> None:
        # Called with the lock held.
        if self.background and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="limits-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.run_once()
            except Exception as err:  # pragma: no cover - a bug must not kill renewals for good
                log.error("limits keeper failed (%s)", type(err).__name__)
            with self._lock:
                if not self._leases and not self._pending:
                    self._thread = None
                    return
