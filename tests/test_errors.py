"""The error tree, the one translation table and the one retry policy."""
from __future__ import annotations

import inspect

import pytest
import redis
import requests
import urllib3.exceptions
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import errors
from app.errors import (APIError, KeyMissing, StorageUnavailable, StoreDown, Undecryptable, UpstreamError,
                        UpstreamTimeout, caused_by, retryable, translate)


def test_the_docstring_draws_every_exception_of_the_module():
    classes = [name for name, obj in vars(errors).items()
               if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__]
    assert len(classes) >= 20
    assert [name for name in classes if f"── {name}" not in errors.__doc__] == []


@pytest.mark.parametrize("status, code, hint, expected", [
    (408, None, None, True), (409, None, None, True), (429, None, None, True), (500, None, None, True),
    (502, None, None, True), (503, None, None, True), (504, None, None, True),
    (400, None, None, False), (401, None, None, False), (404, None, None, False), (413, None, None, False),
    (500, None, "false", False), (400, None, "true", True), (503, None, "TRUE", True),
    (503, "limits_unavailable", None, True), (503, "database_unavailable", None, True),
    (503, "upstream_not_configured", None, False), (503, "schema_outdated", None, False),
    (503, "undecryptable", None, False), (503, "encryption_key_missing", None, False),
    (502, "upstream_misconfigured", None, False), (500, "internal_error", None, False),
    (429, "rate_limit_exceeded", None, True),
])
def test_one_retry_policy(status, code, hint, expected):
    assert retryable(status, code=code, hint=hint) is expected


def test_every_error_that_asks_for_a_retry_is_retryable():
    # The message and x-should-retry must agree: "try again" only where a retry can help.
    for cls in (StorageUnavailable, KeyMissing, Undecryptable):
        err = cls()
        assert err.retryable is ("try again" in err.message or err.code == "database_unavailable")
    limits = errors.ServiceUnavailable("rate limiting is unavailable; try again shortly", code="limits_unavailable")
    assert limits.retryable


def test_the_client_sees_the_same_answer_in_x_should_retry(make_app):
    app = make_app(RATE_LIMIT="5/minute")

    @app.get("/boom/<code>")
    def boom(code):
        raise errors.ServiceUnavailable("down", code=code)

    client = app.test_client()
    assert client.get("/boom/limits_unavailable").headers["x-should-retry"] == "true"
    assert client.get("/boom/upstream_not_configured").headers["x-should-retry"] == "false"
    assert client.get("/no/such/route").headers["x-should-retry"] == "false"


@pytest.mark.parametrize("exc, expected", [
    (requests.ConnectTimeout(), UpstreamTimeout),
    (requests.ReadTimeout(), UpstreamTimeout),
    (requests.ConnectionError(), UpstreamError),
    (requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out")), UpstreamTimeout),
    (requests.TooManyRedirects(), UpstreamError),
    (urllib3.exceptions.ProtocolError("broken"), UpstreamError),
    (urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"), UpstreamTimeout),
    (OperationalError("SELECT 1", {}, Exception("down")), StorageUnavailable),
    (InterfaceError("SELECT 1", {}, Exception("down")), StorageUnavailable),
    (PoolTimeout(), StorageUnavailable),
    (redis.ConnectionError(), StoreDown),
    (redis.TimeoutError(), StoreDown),
])
def test_one_table_translates_library_exceptions(exc, expected):
    ours = translate(exc)
    assert type(ours) is expected
    if isinstance(ours, UpstreamError):
        assert ours.code == "upstream_unreachable"
    if isinstance(ours, StoreDown):
        assert str(ours) == type(exc).__name__  # the type only: a message may quote data


def test_exceptions_the_table_does_not_know_are_not_translated():
    assert translate(ValueError("x")) is None
    assert translate(KeyError("x")) is None


def test_caused_by_follows_causes_and_arguments():
    inner = urllib3.exceptions.ReadTimeoutError(None, "/", "slow")
    try:
        try:
            raise inner
        except urllib3.exceptions.ReadTimeoutError as err:
            raise requests.ConnectionError("wrapped") from err
    except requests.ConnectionError as outer:
        assert caused_by(outer, urllib3.exceptions.ReadTimeoutError)
    assert caused_by(requests.ConnectionError(inner), urllib3.exceptions.ReadTimeoutError)
    assert not caused_by(requests.ConnectionError("plain"), urllib3.exceptions.ReadTimeoutError)


def test_an_api_error_never_shows_more_than_its_code_in_a_repr():
    err = APIError("secret text sk-abc", code="x")
    assert repr(err) == "APIError(status=500, code='x')"
