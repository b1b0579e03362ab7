"""The response cache at the doors: the client's ``Cache-Control`` in, ``X-Cache`` and ``Age`` out."""
from __future__ import annotations

from flask import Response, request

from ..core.cache import CacheControl, Outcome


def cache_control() -> CacheControl:
    """What this request's ``Cache-Control`` lets the response cache do."""
    return CacheControl.parse(request.headers.get("Cache-Control"))


def with_cache_headers(response: Response, outcome: Outcome | None) -> Response:
    """``X-Cache`` (and ``Age`` on a hit) when the cache is on; nothing when it is off."""
    if outcome is not None:
        response.headers.update(outcome.headers())
    return response
