"""Request, token and stream limits per client, in-process or shared through Redis.

Counters are fixed windows (``60/minute`` counts from the top of each minute),
updated atomically: a lock in-process, one Lua script in Redis, so any number
of workers and instances share one budget. A token reservation is the
estimated prompt plus the most the reply may use; it is settled against the
real usage afterwards. When Redis cannot be reached, ``LIMITS_FAIL`` decides:
``closed`` refuses with 503 (the bill is safe), ``open`` serves unlimited.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from .settings import parse_rate

from .errors import RateLimited, ServiceUnavailable

log = logging.getLogger(__name__)

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

        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                            health_check_interval=30)
        self._add = self._client.register_script(_LUA_ADD)

    def add(self, key: str, amount: int, window: float) -> tuple[int, float]:
        """Add ``amount`` to ``key`` atomically; return the new count and seconds until reset."""
        try:
            count, ttl_ms = self._add(keys=["cg:" + key], args=[amount, max(int(window * 1000), 1)])
        except self._errors as err:
            raise StoreDown(type(err).__name__) from None
        return int(count), int(ttl_ms) / 1000.0

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self._client.ping())
        except self._errors:
            return False


class StoreDown(Exception):
    """The shared counter store could not be reached."""


@dataclass
class Reservation:
    """Tokens held for one call, to be settled when its real usage is known."""

    keys: list[tuple[str, float]]
    amount: int


class Limiter:
    """Checks and counts requests, tokens and open streams for each caller."""

    def __init__(self, counters, *, rate_limit: str | None, token_rate_limit: str | None,
                 daily_token_quota: int | None, max_streams: int, fail: str = "closed"):
        self.counters = counters
        self.rate_limit = rate_limit
        self.token_rate_limit = token_rate_limit
        self.daily_token_quota = daily_token_quota
        self.max_streams = max_streams
        self.fail = fail

    def _add(self, key: str, amount: int, window: float) -> tuple[int, float] | None:
        try:
            return self.counters.add(key, amount, window)
        except StoreDown as err:
            if self.fail == "open":
                log.warning("limits store unavailable (%s); failing open", err)
                return None
            log.error("limits store unavailable (%s); failing closed", err)
            raise ServiceUnavailable("rate limiting is unavailable; try again shortly",
                                     code="limits_unavailable") from None

    def check_request(self, caller) -> dict:
        """Count one request; RateLimited when over the caller's request rate. Returns RateLimit headers."""
        rate = caller.rate_limit or self.rate_limit
        if not rate:
            return {}
        limit, window = parse_rate(rate)
        got = self._add(f"req:{caller.limit_key}:{window}:{_slot(window)}", 1, _left(window))
        if got is None:
            return {}
        count, reset = got
        headers = _headers(limit, limit - count, reset)
        if count > limit:
            raise RateLimited("too many requests; slow down", code="rate_limit_exceeded",
                              headers={**headers, "Retry-After": str(max(1, math.ceil(reset)))})
        return headers

    def reserve(self, caller, tokens: int) -> Reservation:
        """Hold ``tokens`` against the token rate and the daily quota, or RateLimited."""
        held: list[tuple[str, float]] = []
        checks = []
        rate = caller.token_rate_limit or self.token_rate_limit
        if rate:
            limit, window = parse_rate(rate)
            checks.append((f"tok:{caller.limit_key}:{window}:{_slot(window)}", limit, _left(window), "token rate"))
        quota = caller.daily_token_quota or self.daily_token_quota
        if quota and caller.limit_key.startswith("key:"):
            checks.append((f"day:{caller.limit_key}:{_slot(86400)}", quota, _left(86400), "daily token quota"))
        for key, limit, window, what in checks:
            got = self._add(key, tokens, window)
            if got is None:
                continue
            count, reset = got
            held.append((key, window))
            if count > limit:
                for k, w in held:
                    self._add(k, -tokens, w)
                raise RateLimited(f"{what} exceeded: this request needs about {tokens} tokens",
                                  code="token_limit_exceeded" if what == "token rate" else "quota_exceeded",
                                  headers={**_headers(limit, limit - count + tokens, reset),
                                           "Retry-After": str(max(1, math.ceil(reset)))})
        return Reservation(held, tokens)

    def settle(self, reservation: Reservation, used: int) -> None:
        """Replace the reserved estimate by what the call really used."""
        delta = used - reservation.amount
        if not delta:
            return
        for key, window in reservation.keys:
            try:
                self.counters.add(key, delta, window)
            except StoreDown:
                pass  # settling is best effort; the window expires anyway

    def open_stream(self, caller) -> str | None:
        """Count an open stream for ``caller``; RateLimited past MAX_STREAMS_PER_CLIENT."""
        if not self.max_streams:
            return None
        key = f"streams:{caller.limit_key}"
        # The window only bounds a counter leaked by a crashed worker; closes decrement it.
        got = self._add(key, 1, 3600)
        if got is None:
            return None
        if got[0] > self.max_streams:
            self._add(key, -1, 3600)
            raise RateLimited(f"too many open streams (at most {self.max_streams}); close one first",
                              code="too_many_streams", headers={"Retry-After": "1"})
        return key

    def close_stream(self, key: str | None) -> None:
        """The stream counted under ``key`` has ended."""
        if key:
            try:
                self.counters.add(key, -1, 3600)
            except StoreDown:
                pass


def _slot(window: float) -> int:
    """Which fixed window (of ``window`` seconds since the epoch; days are UTC days) we are in."""
    return int(time.time() // window)


def _left(window: float) -> float:
    """Seconds until the current fixed window ends."""
    return window - (time.time() % window)


def _headers(limit: int, remaining: int, reset: float) -> dict:
    return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, remaining)),
            "RateLimit-Reset": str(max(0, math.ceil(reset)))}


def init_app(app, config) -> None:
    """Pick the counter store, and count every request to a protected route."""
    from flask import g, request

    from .auth import PROTECTED, current_caller

    counters = RedisCounters(config.REDIS_URL) if config.REDIS_URL else MemoryCounters()
    limiter = app.extensions["limiter"] = Limiter(
        counters, rate_limit=config.RATE_LIMIT, token_rate_limit=config.TOKEN_RATE_LIMIT,
        daily_token_quota=config.DAILY_TOKEN_QUOTA, max_streams=config.MAX_STREAMS_PER_CLIENT,
        fail=config.LIMITS_FAIL)

    def count_request() -> None:
        if request.method != "OPTIONS":
            g.ratelimit_headers = limiter.check_request(current_caller())

    def add_headers(response):
        for name, value in (g.get("ratelimit_headers") or {}).items():
            response.headers.setdefault(name, value)
        return response

    for name in PROTECTED:
        app.before_request_funcs.setdefault(name, []).append(count_request)
    app.after_request(add_headers)
