"""Fixed-window counters for limits: in one process, or shared by every process through Redis."""
from __future__ import annotations

import threading
import time

from ..errors import StoreDown, translate

# INCRBY, then give a fresh key its window; returns the count and the milliseconds left.
_LUA_ADD = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
"""


class MemoryCounters:
    """Window counters for one process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, list] = {}

    def add(self, key: str, amount: int, window: float) -> tuple[int, float]:
        """Add ``amount`` to ``key``; return the new count and seconds until the window resets."""
        now = time.monotonic()
        with self._lock:
            entry = self._counts.get(key)
            if entry is None or entry[0] <= now:
                if len(self._counts) > 100_000:
                    self._sweep(now)
                entry = self._counts[key] = [now + window, 0]
            entry[1] += amount
            return entry[1], entry[0] - now

    def _sweep(self, now: float) -> None:
        for key in [k for k, (end, _) in self._counts.items() if end <= now]:
            del self._counts[key]


class RedisCounters:
    """Window counters shared by every process that uses the same Redis."""

    def __init__(self, url: str):
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                            health_check_interval=30)
        self._add = self._client.register_script(_LUA_ADD)

    def add(self, key: str, amount: int, window: float) -> tuple[int, float]:
        """Add ``amount`` to ``key`` atomically; return the new count and seconds until reset."""
        try:
            count, ttl_ms = self._add(keys=["cg:" + key], args=[amount, max(int(window * 1000), 1)])
        except Exception as err:
            down = _store_down(err)
            if down is None:
                raise
            raise down from None
        return int(count), int(ttl_ms) / 1000.0

    def ping(self) -> bool:
        """True when Redis answers (for /readyz)."""
        try:
            return bool(self._client.ping())
        except Exception as err:
            if _store_down(err) is None:
                raise
            return False


def _store_down(err: Exception) -> StoreDown | None:
    """StoreDown for a Redis or socket failure; None for anything else (a bug, to propagate)."""
    ours = translate(err)
    if isinstance(ours, StoreDown):
        return ours
    return StoreDown(type(err).__name__) if isinstance(err, OSError) else None
