"""Counters and leases shared by every process and instance that uses the same Redis (see ``counters.py``).

Each operation is one Lua script, so it is atomic whatever else runs. Leases
are a sorted set per key (member: the lease id, score: its expiry in Redis's
own milliseconds, so instances with skewed clocks agree); a script drops the
lapsed ones before it counts, and the set itself expires with its newest lease.

A timeout is ambiguous: the command may still be applied once Redis reads it
(a paused Redis does, after it resumes), and the caller, told the store was
down, retries it or fails open. So every command carries a deadline on
Redis's clock (the sender's timeout plus a margin, through an offset learnt
from each reply) and is ignored if it arrives later: a command that timed out
did not happen, and retrying it counts it once.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from ..errors import StoreDown, translate
from .counters import Lease

PREFIX = "cg:"
SOCKET_TIMEOUT = 0.5
# A command reaching Redis later than its sender's timeout plus this is dropped, not applied (see below).
LATE_MARGIN_MS = 250

# Every script starts here: Redis's clock, and the sender's deadline (ARGV[1], 0 for none). A command
# that arrives after its sender gave up (Redis paused, a partition healing) must not count twice once
# the sender retries, so it changes nothing and answers -1.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[1])
if deadline > 0 and now > deadline then
  return {now, -1}
end
"""

# For each key: INCRBY, then give a fresh key its window; returns now, then count and ms left pairwise.
_LUA_ADD = _PRELUDE + """
local out = {now}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCRBY', key, ARGV[2 * i])
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[2 * i + 1])
    redis.call('PEXPIRE', key, ttl)
  end
  out[2 * i] = count
  out[2 * i + 1] = ttl
end
return out
"""

# Drop lapsed leases, then take one unless ARGV[2] are held: {now, 1} taken, {now, 0} at the cap.
_LUA_ACQUIRE = _PRELUDE + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return {now, 0}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {now, 1}
"""

# Push a lease's expiry ahead, taking it again if it lapsed: it is held whatever the count.
_LUA_RENEW = _PRELUDE + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {now, 1}
"""

# Compare and set: ARGV[3] (for ARGV[4] ms; 0 deletes) if the key holds ARGV[2] (a missing key holds 0).
_LUA_SWAP = _PRELUDE + """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if held ~= tonumber(ARGV[2]) then
  return {now, 0}
end
if tonumber(ARGV[3]) == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return {now, 1}
"""

_LUA_RELEASE = _PRELUDE + """
redis.call('ZREM', KEYS[1], ARGV[2])
return {now, 1}
"""


class RedisCounters:
    """Counters and leases shared by every process that uses the same Redis."""

    def __init__(self, url: str):
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
                                            health_check_interval=30)
        self._add = self._client.register_script(_LUA_ADD)
        self._acquire = self._client.register_script(_LUA_ACQUIRE)
        self._renew = self._client.register_script(_LUA_RENEW)
        self._release = self._client.register_script(_LUA_RELEASE)
        self._swap = self._client.register_script(_LUA_SWAP)
        self._offset_ms: float | None = None  # Redis's clock minus ours, learnt from replies

    def add(self, key: str, amount: int, window: float) -> tuple[int, float]:
        """Add ``amount`` to ``key`` atomically; return the new count and seconds until reset."""
        return self.add_many([(key, amount, window)])[0]

    def add_many(self, ops: Sequence[tuple[str, int, float]]) -> list[tuple[int, float]]:
        """``add`` for several keys in one script (one round trip, atomic)."""
        args: list[int] = []
        for _key, amount, window in ops:
            args += [amount, _ms(window)]
        got = self._script(self._add, [PREFIX + key for key, _, _ in ops], args)
        return [(int(got[i]), int(got[i + 1]) / 1000.0) for i in range(1, len(got), 2)]

    def swap(self, key: str, expect: int, value: int, ttl: float) -> bool:
        """Set ``key`` to ``value`` for a fresh ``ttl`` if it holds ``expect`` (0 when missing), atomically."""
        return bool(int(self._script(self._swap, [PREFIX + key], [expect, value, _ms(ttl)])[1]))

    def acquire(self, key: str, cap: int, ttl: float) -> Lease | None:
        """A lease under ``key`` unless ``cap`` unexpired ones are held."""
        lease = Lease(key, ttl)
        taken = self._script(self._acquire, [PREFIX + key], [cap, _ms(ttl), lease.id])
        return lease if int(taken[1]) else None

    def renew(self, leases: Iterable[Lease]) -> None:
        """Renew every unreleased lease, in one pipelined round trip."""
        live = [lease for lease in leases if not lease.released]
        if not live:
            return
        pipe = self._client.pipeline(transaction=False)
        deadline = self._deadline()
        for lease in live:
            self._renew(keys=[PREFIX + lease.key], args=[deadline, _ms(lease.ttl), lease.id], client=pipe)
        sent = time.time()
        replies = self._call(pipe.execute)
        for reply in replies:
            self._check(reply, sent)

    def release(self, lease: Lease) -> None:
        """Remove the lease from its set; a second release changes nothing."""
        if lease.released:
            return
        lease.released = True
        self._script(self._release, [PREFIX + lease.key], [lease.id])

    def _deadline(self) -> int:
        """The latest Redis time at which a command sent now may still be applied (0: not known yet)."""
        if self._offset_ms is None:
            return 0
        return int(time.time() * 1000 + self._offset_ms + SOCKET_TIMEOUT * 1000 + LATE_MARGIN_MS)

    def _script(self, script, keys: list[str], args: list) -> list:
        sent = time.time()
        reply = self._call(script, keys=keys, args=[self._deadline(), *args])
        return self._check(reply, sent)

    def _check(self, reply: list, sent: float) -> list:
        """Learn the clock offset from a reply; a command Redis called late is a store failure."""
        now = time.time()
        self._offset_ms = int(reply[0]) - (sent + now) * 500
        if int(reply[1]) == -1 and len(reply) == 2:
            raise StoreDown("late")  # only if our idea of Redis's clock was off: it is learnt again
        return reply

    def ping(self) -> bool:
        """True when Redis answers (for /readyz)."""
        try:
            return bool(self._client.ping())
        except Exception as err:
            if _store_down(err) is None:
                raise
            return False

    @staticmethod
    def _call(fn, **kwargs):
        try:
            return fn(**kwargs)
        except Exception as err:
            down = _store_down(err)
            if down is None:
                raise
            raise down from None


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


def _store_down(err: Exception) -> StoreDown | None:
    """StoreDown for a Redis or socket failure; None for anything else (a bug, to propagate)."""
    ours = translate(err)
    if isinstance(ours, StoreDown):
        return ours
    return StoreDown(type(err).__name__) if isinstance(err, OSError) else None
