"""The one JSON error shape: every APIError, Werkzeug HTTP error and surprise goes through here."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import (
    APIError,
    AuthenticationFailed,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    UnsupportedMediaType,
)
from ..ops.record import current

log = logging.getLogger(__name__)

_HTTP_STATUS: dict[int, type[APIError]] = {400: InvalidRequest, 401: AuthenticationFailed, 404: NotFound,
                                           405: MethodNotAllowed, 408: RequestTimeout, 413: PayloadTooLarge,
                                           415: UnsupportedMediaType,
                                           429: RateLimited}


def error_response(err: APIError):
    """Build the Flask response for an APIError."""
    record = current()
    if record is not None:
        record.error = err.code
    resp = jsonify(err.to_dict())
    resp.status_code = err.status
    for name, value in err.headers.items():
        resp.headers[name] = value
    # OpenAI's SDKs obey this header; the same policy decides our own upstream retries.
    resp.headers.setdefault("x-should-retry", "true" if err.retryable else "false")
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
    valid = getattr(exc, "valid_methods", None)
    if exc.code == 405 and valid:
        headers["Allow"] = ", ".join(sorted(valid))
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
