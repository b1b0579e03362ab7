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
import time
from dataclasses import dataclass

from ..config import parse_rate
from ..errors import RateLimited, ServiceUnavailable, StoreDown

log = logging.getLogger(__name__)


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

    def check(self) -> str:
        """For /readyz: "in-process", or whether the shared store answers ("ok", "unavailable")."""
        ping = getattr(self.counters, "ping", None)
        if ping is None:
            return "in-process"
        return "ok" if ping() else "unavailable"

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
        checks: list[tuple[str, int, float, str]] = []
        rate = caller.token_rate_limit or self.token_rate_limit
        if rate:
            limit, window = parse_rate(rate)
            checks.append((f"tok:{caller.limit_key}:{window}:{_slot(window)}", limit, _left(window), "token rate"))
        quota = caller.daily_token_quota or self.daily_token_quota
        if quota:
            checks.append((f"day:{caller.limit_key}:{_slot(86400)}", quota, _left(86400), "daily token quota"))
        for key, limit, span, what in checks:
            got = self._add(key, tokens, span)
            if got is None:
                continue
            count, reset = got
            held.append((key, span))
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
