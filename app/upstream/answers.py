"""What an upstream's answers mean: its statuses as our errors, and the bodies we can use.

An error made from a status carries that status and the upstream's own retry
hint (``upstream_status``, ``upstream_retry_after``) for routing and the
circuit breaker. The upstream's body is never relayed, nor logged.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from ..errors import (
    APIError,
    InvalidRequest,
    RateLimited,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    translate,
)
from . import retry

log = logging.getLogger("app.upstream.client")


def outcome(status: int) -> str:
    """The chatgate_upstream_requests_total outcome of an HTTP answer."""
    if status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "client_error"


def transport_error(err: Exception, name: str = "default") -> APIError:
    ours = translate(err)
    if not isinstance(ours, APIError):  # pragma: no cover - every RequestException has an entry
        ours = UpstreamError("the upstream model service could not be reached", code="upstream_unreachable")
    log.warning("upstream %s (%s), upstream %s", "timed out" if isinstance(ours, UpstreamTimeout) else "unreachable",
                type(err).__name__, name)
    return ours


_SAFE_ID = re.compile(r"[^A-Za-z0-9._:-]")


def upstream_request_id(headers: Mapping[str, str]) -> str:
    """The upstream's x-request-id, cut to a safe, short token for our logs."""
    return _SAFE_ID.sub("", headers.get("x-request-id") or "")[:64] or "-"


def status_error(status: int, headers, name: str = "default") -> APIError:
    """Our error for an upstream status; the upstream's body is never relayed (nor logged)."""
    log.warning("upstream answered %s (upstream request id %s), upstream %s", status, upstream_request_id(headers),
                name)
    err = _status_error(status, headers)
    err.upstream_status = status
    err.upstream_retry_after = retry.retry_after(headers)
    return err


def _status_error(status: int, headers) -> APIError:
    if status in (401, 403):
        return UpstreamAuthError()
    if status == 429:
        wait = retry.retry_after(headers)
        seconds = max(1, round(wait)) if wait is not None else 1
        return RateLimited("the upstream model service is rate limiting; retry later",
                           code="upstream_rate_limited", headers={"Retry-After": str(seconds)})
    if status in (400, 422):
        # Our own validation passed, so this is about the model's own limits (context length, a
        # parameter the model does not take): the client's to fix, but the text stays upstream.
        return InvalidRequest(f"the upstream model service rejected the request (status {status})",
                              code="upstream_rejected")
    if status in (408, 504):
        return UpstreamTimeout()
    if 300 <= status < 400:
        return UpstreamError(f"the upstream model service answered with a redirect (status {status}); "
                             + "redirects are not followed", code="upstream_redirect")
    return UpstreamError(f"the upstream model service failed (status {status})")


def check_completion(body) -> dict:
    """Refuse a completion body we could not turn into replies."""
    try:
        choices = body["choices"]
        if not isinstance(choices, list) or not choices:
            raise TypeError
        for choice in choices:
            message = choice["message"]
            content = message.get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError
            if content is None and not message.get("tool_calls"):
                raise TypeError
    except (KeyError, IndexError, TypeError, AttributeError):
        raise UpstreamBadResponse() from None
    return body


def check_embeddings(body, count: int) -> dict:
    """Refuse an embeddings body that does not hold one vector (floats or base64) per input."""
    try:
        data = body["data"]
        if not isinstance(data, list) or len(data) != count:
            raise TypeError
        for item in data:
            vector = item["embedding"]
            if not isinstance(item.get("index"), int) or not (
                    isinstance(vector, str) or (isinstance(vector, list)
                                                and all(isinstance(x, (int, float)) for x in vector))):
                raise TypeError
    except (KeyError, TypeError):
        raise UpstreamBadResponse() from None
    return body
