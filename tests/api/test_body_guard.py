"""The body guard in-process: the deadline on a real socket, the drain, the watchdog (servers: tests/e2e)."""
from __future__ import annotations

import io
import socket
import threading
import time

import pytest
from support import wait_for

from app.api import body_guard
from app.api.body_guard import BodyGuard, GuardedInput, Watchdog
from app.errors import RequestTimeout


@pytest.fixture
def pair():
    """A connected socket pair: the server's end (read through a buffered file, as servers do) and the client's."""
    server, client = socket.socketpair()
    yield server, server.makefile("rb"), client
    for sock in (server, client):
        sock.close()


def test_a_body_that_arrives_in_time_is_read_whole(pair):
    server, stream, client = pair
    client.sendall(b"0123456789")
    body = GuardedInput(stream, 10, time.monotonic() + 5, server, Watchdog())
    assert body.read(4) == b"0123" and not body.complete
    assert body.read() == b"456789" and body.complete
    assert body.read() == b"" and not body.expired


def test_a_body_that_stops_arriving_times_out_when_the_watchdog_cuts_it(pair):
    server, stream, client = pair
    client.sendall(b"01234")
    body = GuardedInput(stream, 10, time.monotonic() + 0.3, server, Watchdog())
    with pytest.raises(RequestTimeout) as err:
        body.read()
    assert err.value.status == 408 and err.value.code == "request_timeout" and body.expired
    with pytest.raises(RequestTimeout):
        GuardedInput(io.BytesIO(b"x"), 1, time.monotonic() - 1, None, None).read()


def test_a_chunked_body_ends_at_its_first_empty_read():
    body = GuardedInput(io.BytesIO(b"abc"), None, time.monotonic() + 5, None, None)
    assert body.readline() == b"abc" and not body.complete
    assert body.read() == b"" and body.complete


def test_finishing_drains_what_the_app_left_and_keeps_the_connection(pair):
    server, stream, client = pair
    client.sendall(b"x" * 100_000)
    body = GuardedInput(stream, 100_000, time.monotonic() + 5, server, Watchdog())
    body.finish()
    assert body.complete
    client.sendall(b"next request")
    assert server.recv(100) == b"next request"  # still open


def test_more_than_the_drain_limit_is_cut_off(pair, monkeypatch):
    monkeypatch.setattr(body_guard, "DRAIN_LIMIT", 1000)
    server, stream, client = pair
    client.sendall(b"x" * 70_000)
    GuardedInput(stream, 1_000_000, time.monotonic() + 5, server, Watchdog()).finish()
    assert wait_for(lambda: client.recv(10) == b"", 5)  # the server's side shut the connection


def test_the_watchdog_cuts_in_deadline_order_and_never_a_disarmed_socket():
    cut: list[str] = []
    watchdog = Watchdog()
    real = body_guard.shut_reading
    body_guard.shut_reading = cut.append
    try:
        late = watchdog.arm(time.monotonic() + 0.4, "late")
        watchdog.arm(time.monotonic() + 0.2, "early")
        spared = watchdog.arm(time.monotonic() + 0.1, "spared")
        Watchdog.disarm(spared)
        assert wait_for(lambda: cut == ["early", "late"], 5)
        assert late[3] is True
    finally:
        body_guard.shut_reading = real


def test_shutting_the_read_side_wakes_a_blocked_read(pair):
    server, stream, client = pair
    threading.Timer(0.2, body_guard.shut_reading, (server,)).start()
    assert stream.read(10) == b""
    body_guard.shut_reading(object())  # not a socket: nothing to do, nothing raised


def test_the_middleware_wraps_only_requests_with_a_body():
    seen = []

    def app(environ, start_response):
        seen.append(environ["wsgi.input"])
        start_response("200 OK", [])
        return [b"ok"]

    guard = BodyGuard(app, 5)
    assert guard({"wsgi.input": io.BytesIO(b"")}, lambda *a: None) == [b"ok"]
    assert not isinstance(seen[-1], GuardedInput)
    result = guard({"wsgi.input": io.BytesIO(b"abc"), "CONTENT_LENGTH": "3"}, lambda *a: None)
    assert isinstance(seen[-1], GuardedInput) and list(result) == [b"ok"]
    result.close()  # the app read nothing: closing drains it
    assert seen[-1].complete
    chunked = guard({"wsgi.input": io.BytesIO(b"abc"), "HTTP_TRANSFER_ENCODING": "chunked"}, lambda *a: None)
    assert isinstance(seen[-1], GuardedInput) and seen[-1]._left is None
    chunked.close()


def test_an_app_that_fails_still_has_its_body_finished():
    def app(environ, start_response):
        raise RuntimeError("a bug")

    environ = {"wsgi.input": io.BytesIO(b"abc"), "CONTENT_LENGTH": "3"}
    with pytest.raises(RuntimeError):
        BodyGuard(app, 5)(environ, lambda *a: None)
    assert environ["wsgi.input"].complete


def test_a_chunked_body_cut_at_its_deadline_times_out(pair):
    server, stream, client = pair
    client.sendall(b"abc")
    body = GuardedInput(stream, None, time.monotonic() + 0.3, server, Watchdog())
    assert body.read(3) == b"abc"
    with pytest.raises(RequestTimeout):
        body.read(10)
