"""Request, token, stream and failed-authentication limits per client, on any counter store.

Counters are fixed windows (``60/minute`` counts from the top of each minute)
in a ``Counters`` store (``counters.py``): in-process, shared by one
instance's workers, or shared by every instance through Redis. A token
reservation is the estimated request plus the most the reply may use; it is
settled against the real usage afterwards. An open stream holds a lease,
renewed by the keeper while the stream runs, so a slot can neither go
negative nor outlive its stream by more than seconds. When the store cannot
be reached, ``LIMITS_FAIL`` decides: ``closed`` refuses with 503 (the bill is
safe), ``open`` serves unlimited; settlements it missed are retried once the
store is back (``keeper.py``).
"""
from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass

from ..config import parse_rate
from ..errors import RateLimited, ServiceUnavailable, StoreDown
from ..ops.metrics import NULL
from .counters import Lease
from .keeper import Keeper

log = logging.getLogger(__name__)

# An open stream's slot lapses this long after its last renewal (the keeper renews every third of it).
LEASE_SECONDS = 6.0


@dataclass
class Reservation:
    """Tokens held for one call, to be settled when its real usage is known."""

    keys: list[tuple[str, float]]  # (counter, the monotonic time its window ends)
    amount: int


@functools.lru_cache(maxsize=256)
def _rate(text: str) -> tuple[int, int]:
    # Limits are parsed on every request; the texts are few (settings and per-key overrides).
    return parse_rate(text)


class Limiter:
    """Checks and counts requests, tokens, open streams and failed authentications for each caller."""

    def __init__(self, counters, *, rate_limit: str | None, token_rate_limit: str | None,
                 daily_token_quota: int | None, max_streams: int, fail: str = "closed",
                 auth_failure_limit: str | None = None, lease_seconds: float = LEASE_SECONDS,
                 background: bool = True, metrics=NULL):
        self.counters = counters
        self.metrics = metrics
        self.rate_limit = rate_limit
        self.token_rate_limit = token_rate_limit
        self.daily_token_quota = daily_token_quota
        self.max_streams = max_streams
        self.fail = fail
        self.auth_failure_limit = auth_failure_limit
        self.lease_seconds = lease_seconds
        self.keeper = Keeper(counters, lease_seconds / 3, background=background)

    def check(self) -> str:
        """For /readyz: "in-process", or whether the shared store answers ("ok", "unavailable")."""
        ping = getattr(self.counters, "ping", None)
        if ping is None:
            return "in-process"
        return "ok" if ping() else "unavailable"

    def _down(self, err: StoreDown, what: str) -> None:
        """LIMITS_FAIL: log and return (open), or refuse with 503 (closed)."""
        if self.fail == "open":
            log.warning("limits store unavailable (%s); %s unlimited", err, what)
            return
        log.error("limits store unavailable (%s); refusing", err)
        raise ServiceUnavailable("rate limiting is unavailable; try again shortly", code="limits_unavailable")

    def check_request(self, caller) -> dict:
        """Count one request; RateLimited when over the caller's request rate. Returns RateLimit headers."""
        rate = caller.rate_limit or self.rate_limit
        if not rate:
            return {}
        limit, window = _rate(rate)
        now = time.time()
        try:
            count, reset = self.counters.add(f"req:{caller.limit_key}:{window}:{int(now // window)}", 1,
                                             window - now % window)
        except StoreDown as err:
            self._down(err, "requests")
            return {}
        headers = _headers(limit, limit - count, reset)
        if count > limit:
            self.metrics.rejected("rate")
            raise RateLimited("too many requests; slow down", code="rate_limit_exceeded",
                              headers={**headers, "Retry-After": _retry_after(reset)})
        return headers

    def reserve(self, caller, tokens: int) -> Reservation:
        """Hold ``tokens`` against the token rate and the daily quota, or RateLimited (holding nothing)."""
        rate = caller.token_rate_limit or self.token_rate_limit
        quota = caller.daily_token_quota or self.daily_token_quota
        if not rate and not quota:
            return Reservation([], tokens)
        now = time.time()
        ops: list[tuple[str, int, float]] = []
        limits: list[int] = []
        if rate:
            limit, window = _rate(rate)
            ops.append((f"tok:{caller.limit_key}:{window}:{int(now // window)}", tokens, window - now % window))
            limits.append(limit)
        if quota:
            ops.append((f"day:{caller.limit_key}:{int(now // 86400)}", tokens, 86400 - now % 86400))
            limits.append(quota)
        try:
            got = self.counters.add_many(ops)
        except StoreDown as err:
            self._down(err, "tokens")
            return Reservation([], tokens)
        mono = time.monotonic()
        for (key, _, _), limit, (count, reset) in zip(ops, limits, got, strict=True):
            if count > limit:
                self._undo([(k, -tokens, left, mono + left) for k, _, left in ops])
                code, what = (("token_limit_exceeded", "token rate") if key[0] == "t"
                              else ("quota_exceeded", "daily token quota"))
                self.metrics.rejected("token_rate" if key[0] == "t" else "daily_quota")
                raise RateLimited(f"{what} exceeded: this request needs about {tokens} tokens", code=code,
                                  headers={**_headers(limit, limit - count + tokens, reset),
                                           "Retry-After": _retry_after(reset)})
        return Reservation([(key, mono + left) for key, _, left in ops], tokens)

    def settle(self, reservation: Reservation, used: int) -> None:
        """Replace the reserved estimate by what the call really used (later, if the store is away)."""
        delta = used - reservation.amount
        if not delta or not reservation.keys:
            return
        mono = time.monotonic()
        self._undo([(key, delta, until - mono, until) for key, until in reservation.keys if until > mono])

    def _undo(self, ops: list[tuple[str, int, float, float]]) -> None:
        """Apply (key, amount, window, until) now, or hand them to the keeper when the store is away."""
        if not ops:
            return
        try:
            self.counters.add_many([op[:3] for op in ops])
        except StoreDown:
            for key, amount, _span, until in ops:
                self.keeper.settle_later(key, amount, until)

    def open_stream(self, caller) -> Lease | None:
        """Take an open-stream slot for ``caller`` (None when uncapped); RateLimited past its cap.

        The cap is the caller's own ``max_streams`` when its key sets one, else MAX_STREAMS_PER_CLIENT.
        """
        cap = getattr(caller, "max_streams", None) or self.max_streams
        if not cap:
            return None
        try:
            lease = self.counters.acquire(f"streams:{caller.limit_key}", cap, self.lease_seconds)
        except StoreDown as err:
            self._down(err, "streams")
            return None
        if lease is None:
            self.metrics.rejected("streams")
            raise RateLimited(f"too many open streams (at most {cap}); close one first",
                              code="too_many_streams", headers={"Retry-After": "1"})
        self.keeper.hold(lease)
        return lease

    def close_stream(self, lease: Lease | None) -> None:
        """The stream holding ``lease`` has ended (closing twice is closing once)."""
        if lease is None or lease.released:
            return
        self.keeper.drop(lease)
        try:
            self.counters.release(lease)
        except StoreDown:
            pass  # no longer renewed, so it lapses within seconds of the store coming back

    def check_auth_failures(self, address: str) -> None:
        """RateLimited when ``address`` has failed authentication AUTH_FAILURE_LIMIT times this window."""
        if not self.auth_failure_limit:
            return
        limit, window = _rate(self.auth_failure_limit)
        now = time.time()
        try:
            count, reset = self.counters.add(f"authfail:{address}:{window}:{int(now // window)}", 0,
                                             window - now % window)
        except StoreDown as err:
            # Not a spending limit: an outage must not lock every key out (LIMITS_FAIL governs money).
            log.warning("limits store unavailable (%s); failed authentications not throttled", err)
            return
        if count >= limit:
            self.metrics.rejected("auth_failures")
            raise RateLimited("too many failed authentication attempts from this address; try again later",
                              code="too_many_auth_failures", headers={"Retry-After": _retry_after(reset)})

    def count_auth_failure(self, address: str) -> None:
        """Count one failed authentication from ``address``."""
        if not self.auth_failure_limit:
            return
        _limit, window = _rate(self.auth_failure_limit)
        now = time.time()
        try:
            self.counters.add(f"authfail:{address}:{window}:{int(now // window)}", 1, window - now % window)
        except StoreDown:
            pass


def _retry_after(reset: float) -> str:
    return str(max(1, math.ceil(reset)))


def _headers(limit: int, remaining: int, reset: float) -> dict:
    return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, remaining)),
            "RateLimit-Reset": str(max(0, math.ceil(reset)))}
