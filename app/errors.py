"""Every error chatgate raises, the one table that translates library exceptions, and the retry policy.

The whole tree (status, OpenAI-style ``type``, stable ``code``)::

    Exception
    ├── ConfigError (ValueError)      settings missing or malformed: start-up stops, one line per problem
    ├── StoreDown                     the shared counter store (Redis) did not answer; limits decide
    ├── StreamFailed                  an upstream stream broke after it began; carries the APIError
    └── APIError                      500 api_error / internal_error: everything a client may see
        ├── InvalidRequest            400 invalid_request_error (invalid_value, unknown_field, …)
        │   ├── PromptRejected        400 prompt_blocked, prompt_flagged
        │   └── IdempotencyKeyReused  422 idempotency_key_reused (the same key with another body)
        ├── AuthenticationFailed      401 authentication_error (invalid_api_key, missing_api_key, key_expired,
        │                                 key_revoked, invalid_admin_token)
        ├── NotFound                  404 not_found, conversation_not_found, model_not_found
        ├── Conflict                  409 duplicate, key_revoked (an admin change the key's state does not allow)
        ├── MethodNotAllowed          405
        ├── RequestTimeout            408 request_timeout (the body did not arrive within BODY_TIMEOUT)
        ├── PayloadTooLarge           413 request_too_large
        ├── UnsupportedMediaType      415
        ├── RateLimited               429 rate_limit_error (+ Retry-After): quota_exceeded, budget_exceeded, …
        ├── UpstreamError             502 upstream_error, upstream_unreachable, upstream_redirect, upstream_stream_*
        │   ├── UpstreamAuthError     502 upstream_misconfigured (the upstream refused our key)
        │   └── UpstreamBadResponse   502 bad_upstream_response, upstream_reply_too_large, upstream_event_too_large
        ├── ServiceUnavailable        503 service_unavailable, upstream_not_configured, limits_unavailable
        │   ├── UpstreamUnavailable   503 upstream_unavailable (+ Retry-After): every target of a route open or failed
        │   └── StorageUnavailable    503 database_unavailable, schema_outdated
        │       ├── Undecryptable     503 undecryptable (no configured key opens stored text)
        │       └── KeyMissing        503 encryption_key_missing
        └── UpstreamTimeout           504 upstream_timeout, stream_too_long (past MAX_STREAM_DURATION)

An error made from an upstream's HTTP answer carries that answer's status
(``upstream_status``) and its own retry hint in seconds (``upstream_retry_after``),
for routing and the circuit breaker; neither is ever sent to a client.

``translate`` maps exceptions from requests, urllib3, SQLAlchemy and redis onto
this tree through one table, most specific class first. ``retryable`` is the
one retry policy: it decides whether chatgate retries an upstream call and
whether a client may retry chatgate (the ``x-should-retry`` header), so the two
can never disagree. Turning an APIError into the JSON shape is the HTTP
layer's job (``app.api.errors``); nothing here imports Flask.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import requests
import urllib3.exceptions
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """Settings are missing or malformed: one line per problem, each naming its variable."""

    def __init__(self, *problems: str):
        super().__init__(*problems)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)


class StoreDown(Exception):
    """The shared counter store could not be reached (its exception's type name is the message)."""


class APIError(Exception):
    """Base of every error a client may receive."""

    status = 500
    type = "api_error"
    code = "internal_error"
    message = "internal error"
    # Set on errors made from an upstream's HTTP answer (routing reads them); never sent to a client.
    upstream_status: int | None = None
    upstream_retry_after: float | None = None

    def __init__(self, message: str | None = None, *, param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})

    def to_dict(self) -> dict:
        """The OpenAI-shaped error body."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    @property
    def retryable(self) -> bool:
        """Whether the client may usefully send the same request again."""
        return retryable(self.status, code=self.code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r})"


class InvalidRequest(APIError):
    """The request body or parameters are wrong."""

    status, type, code, message = 400, "invalid_request_error", "invalid_value", "invalid request"


class PromptRejected(InvalidRequest):
    """The prompt was refused by the content policy."""

    code, message = "prompt_blocked", "the prompt was refused by the content policy"


class IdempotencyKeyReused(InvalidRequest):
    """An Idempotency-Key sent again with a different body: the client's mistake, and no retry fixes it."""

    status, code = 422, "idempotency_key_reused"
    message = "this Idempotency-Key was used for a different request body; use a new key for a new request"


class AuthenticationFailed(APIError):
    """Missing, malformed, unknown or revoked client key."""

    status, type, code, message = 401, "authentication_error", "invalid_api_key", "invalid or missing API key"


class NotFound(APIError):
    """Unknown route, or a resource the caller may not see."""

    status, type, code, message = 404, "invalid_request_error", "not_found", "not found"


class Conflict(APIError):
    """The change conflicts with the resource's state: a name in use, or a revoked key."""

    status, type, code = 409, "invalid_request_error", "conflict"
    message = "the change conflicts with the current state"


class MethodNotAllowed(APIError):
    """The route exists but not for this method."""

    status, type, code, message = 405, "invalid_request_error", "method_not_allowed", "method not allowed"


class RequestTimeout(APIError):
    """The request body did not arrive within BODY_TIMEOUT."""

    status, type, code = 408, "invalid_request_error", "request_timeout"
    message = "the request body did not arrive in time"


class PayloadTooLarge(APIError):
    """The request body is over MAX_CONTENT_LENGTH."""

    status, type, code, message = 413, "invalid_request_error", "request_too_large", "request body too large"


class UnsupportedMediaType(APIError):
    """The body is not declared as JSON."""

    status, type, code = 415, "invalid_request_error", "unsupported_media_type"
    message = "Content-Type must be application/json"


class RateLimited(APIError):
    """A rate or token limit was hit, here or upstream."""

    status, type, code, message = 429, "rate_limit_error", "rate_limit_exceeded", "rate limit exceeded"


class UpstreamError(APIError):
    """The upstream failed; its body is never relayed."""

    status, type, code, message = 502, "upstream_error", "upstream_error", "the upstream model service failed"


class UpstreamAuthError(UpstreamError):
    """The upstream refused the gateway's own key: an operator problem."""

    code = "upstream_misconfigured"
    message = "the gateway is misconfigured: the upstream refused its credentials"


class UpstreamBadResponse(UpstreamError):
    """The upstream answered with something that is not a usable completion."""

    code, message = "bad_upstream_response", "the upstream model service sent an invalid reply"


class ServiceUnavailable(APIError):
    """No upstream is configured, or the gateway cannot serve right now."""

    status, type, code, message = 503, "service_unavailable", "service_unavailable", "service unavailable"


class UpstreamUnavailable(ServiceUnavailable):
    """Every target of the model's route is cooling down (circuit open) or has just failed."""

    code = "upstream_unavailable"
    message = "every upstream serving this model is unavailable; retry later"


class StorageUnavailable(ServiceUnavailable):
    """The database cannot be used right now."""

    code, message = "database_unavailable", "the database is unavailable"


class Undecryptable(StorageUnavailable):
    """Stored text that no configured key opens: a key was dropped too early or the row is damaged."""

    code = "undecryptable"
    message = "stored conversation text cannot be decrypted with the configured DATA_ENCRYPTION_KEY"


class KeyMissing(StorageUnavailable):
    """No key is configured (production without DATA_ENCRYPTION_KEY)."""

    code = "encryption_key_missing"
    message = "DATA_ENCRYPTION_KEY is not set, so conversation text cannot be stored or read"


class UpstreamTimeout(APIError):
    """The upstream did not answer in time."""

    status, type, code, message = 504, "timeout", "upstream_timeout", "the upstream model service timed out"


class StreamFailed(Exception):
    """The upstream stream broke after it began; carries the APIError to report."""

    def __init__(self, error: APIError):
        super().__init__(error.code)
        self.error = error


# --- the retry policy

RETRY_STATUSES = frozenset({408, 409, 429})
# Codes that no retry can fix: an operator must act first (or, for internal_error, may have to).
NEVER_RETRY_CODES = frozenset({"internal_error", "upstream_misconfigured", "upstream_not_configured",
                               "upstream_redirect", "schema_outdated", "undecryptable", "encryption_key_missing",
                               "duplicate", "key_revoked"})


def retryable(status: int, *, code: str | None = None, hint: str | None = None) -> bool:
    """One answer to "retry the upstream?" and "may a client retry us?": 408, 409, 429 and 5xx.

    ``hint`` is an ``x-should-retry`` header ("true"/"false"), which wins; a
    code in NEVER_RETRY_CODES is never worth retrying, whatever its status.
    """
    hint = (hint or "").lower()
    if hint in ("true", "false"):
        return hint == "true"
    if code in NEVER_RETRY_CODES:
        return False
    return status in RETRY_STATUSES or status >= 500


# --- library exceptions onto ours


def _upstream_unreachable(_err: BaseException) -> Exception:
    return UpstreamError("the upstream model service could not be reached", code="upstream_unreachable")


def _connection_error(err: BaseException) -> Exception:
    # requests wraps a read timeout met while reading the status line in a ConnectionError.
    return UpstreamTimeout() if caused_by(err, urllib3.exceptions.ReadTimeoutError) else _upstream_unreachable(err)


def _database_down(_err: BaseException) -> Exception:
    return StorageUnavailable()


def _store_down(err: BaseException) -> Exception:
    return StoreDown(type(err).__name__)


# Looked up along the exception's MRO, so the most specific entry wins.
TRANSLATIONS: dict[type, Callable[[BaseException], Exception]] = {
    # ConnectTimeout is a ConnectionError first in its MRO, so it needs its own entry.
    requests.ConnectTimeout: lambda _err: UpstreamTimeout(),
    requests.Timeout: lambda _err: UpstreamTimeout(),
    requests.ConnectionError: _connection_error,
    requests.RequestException: _upstream_unreachable,
    urllib3.exceptions.ReadTimeoutError: lambda _err: UpstreamTimeout(),
    urllib3.exceptions.HTTPError: _upstream_unreachable,
    OperationalError: _database_down,
    InterfaceError: _database_down,
    PoolTimeout: _database_down,
    RedisError: _store_down,
}


def translate(err: BaseException) -> Exception | None:
    """Our exception for a library's one (None when the table has no entry for it)."""
    for cls in type(err).__mro__:
        make = TRANSLATIONS.get(cls)
        if make is not None:
            return make(err)
    return None


def caused_by(err: BaseException, kind: type) -> bool:
    """True when ``err`` is, wraps or was caused by a ``kind`` (within a few links)."""
    cur: BaseException | None = err
    for _ in range(8):
        if cur is None:
            return False
        if isinstance(cur, kind) or any(isinstance(a, kind) for a in getattr(cur, "args", ())):
            return True
        cur = cur.__cause__ or cur.__context__
    return False
