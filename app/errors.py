"""The one error hierarchy and the one JSON error shape.

Every failure a client can see is an ``APIError`` subclass carrying an HTTP
status, an OpenAI-style ``type`` and a stable ``code``::

    APIError (500 api_error)
    ├── InvalidRequest          400 invalid_request_error
    │   └── PromptRejected      400 (prompt hit the block list / moderation)
    ├── AuthenticationFailed    401 authentication_error
    ├── NotFound                404
    ├── MethodNotAllowed        405
    ├── PayloadTooLarge         413
    ├── UnsupportedMediaType    415
    ├── RateLimited             429 rate_limit_error (+ Retry-After)
    ├── UpstreamError           502 upstream_error
    │   ├── UpstreamAuthError   502 (the upstream refused *our* key)
    │   └── UpstreamBadResponse 502 (unparseable or malformed body)
    ├── ServiceUnavailable      503
    └── UpstreamTimeout         504

``register_error_handlers`` turns these, Werkzeug's HTTP exceptions and any
unexpected exception into ``{"error": {message, type, param, code}}``.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class APIError(Exception):
    """Base of every error a client may receive."""

    status = 500
    type = "api_error"
    code = "internal_error"
    message = "internal error"

    def __init__(self, message=None, *, param=None, code=None, headers=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})

    def to_dict(self) -> dict:
        """The OpenAI-shaped error body."""
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r})"


class InvalidRequest(APIError):
    """The request body or parameters are wrong."""

    status, type, code, message = 400, "invalid_request_error", "invalid_value", "invalid request"


class PromptRejected(InvalidRequest):
    """The prompt was refused by the content policy."""

    code, message = "prompt_blocked", "the prompt was refused by the content policy"


class AuthenticationFailed(APIError):
    """Missing, malformed, unknown or revoked client key."""

    status, type, code, message = 401, "authentication_error", "invalid_api_key", "invalid or missing API key"


class NotFound(APIError):
    """Unknown route, or a resource the caller may not see."""

    status, type, code, message = 404, "invalid_request_error", "not_found", "not found"


class MethodNotAllowed(APIError):
    """The route exists but not for this method."""

    status, type, code, message = 405, "invalid_request_error", "method_not_allowed", "method not allowed"


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


class UpstreamTimeout(APIError):
    """The upstream did not answer in time."""

    status, type, code, message = 504, "timeout", "upstream_timeout", "the upstream model service timed out"


_HTTP_STATUS = {400: InvalidRequest, 401: AuthenticationFailed, 404: NotFound,
                405: MethodNotAllowed, 413: PayloadTooLarge, 415: UnsupportedMediaType,
                429: RateLimited}


# Statuses a client may usefully retry; for the rest, OpenAI's SDKs are told not to.
_RETRYABLE = frozenset({408, 409, 429, 502, 504})
_NOT_RETRYABLE_CODES = frozenset({"upstream_misconfigured", "upstream_not_configured"})


def error_response(err: APIError):
    """Build the Flask response for an APIError."""
    resp = jsonify(err.to_dict())
    resp.status_code = err.status
    for name, value in err.headers.items():
        resp.headers[name] = value
    if err.status not in _RETRYABLE or err.code in _NOT_RETRYABLE_CODES:
        resp.headers.setdefault("x-should-retry", "false")
    return resp


def from_http_exception(exc: HTTPException) -> APIError:
    """Translate a Werkzeug HTTP exception into our hierarchy."""
    cls = _HTTP_STATUS.get(exc.code or 500)
    if cls is None:
        err = APIError(exc.description or "error")
        err.status = exc.code or 500
        err.code = (exc.name or "error").lower().replace(" ", "_")
        return err
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    # Werkzeug's own descriptions are written for HTML pages; ours are shorter.
    return cls(headers=headers)


def register_error_handlers(app: Flask) -> None:
    """Route every error through the one JSON shape."""

    @app.errorhandler(APIError)
    def _api_error(err: APIError):
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return error_response(from_http_exception(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Log the type only: an exception's text may hold request data or secrets.
        log.error("unhandled %s", type(exc).__name__, exc_info=app.debug)
        return error_response(APIError())
