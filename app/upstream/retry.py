"""How long to wait before retrying an upstream call; whether to retry is ``errors.retryable``.

Small functions, so tests patch ``sleep`` (and the delay) to zero.
"""
from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

from ..errors import retryable

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# A Retry-After beyond this is not worth holding a client's request open for.
MAX_RETRY_AFTER = 20.0


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """The retry policy for an upstream answer: 408, 409, 429 and 5xx, unless it says not to."""
    return retryable(status, hint=headers.get("x-should-retry"))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked us to wait (retry-after-ms, Retry-After seconds or date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if _looks_like_date(value) else None
        if parsed is None:
            return None
        return max(parsed.timestamp() - time.time(), 0.0)


def _looks_like_date(value: str) -> bool:
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    return True


def retry_delay(attempt: int, headers: Mapping[str, str] | None = None) -> float:
    """Delay before retry number ``attempt`` (0-based): Retry-After if sane, else backoff with jitter."""
    hinted = retry_after(headers or {})
    if hinted is not None and hinted <= MAX_RETRY_AFTER:
        return hinted
    delay = min(INITIAL_RETRY_DELAY * (2 ** attempt), MAX_RETRY_DELAY)
    # Up to 25 % less, so many clients retrying together spread out.
    return delay * (1 - 0.25 * random.random())


def sleep(seconds: float) -> None:
    """Wait between attempts (tests patch this to record instead of sleeping)."""
    time.sleep(seconds)
