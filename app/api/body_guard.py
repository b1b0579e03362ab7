"""Request bodies in bounded time and size, under gunicorn's gevent worker and threaded servers alike.

* ``BODY_TIMEOUT``: a body must arrive within that many seconds of the request
  starting, or the read raises ``RequestTimeout`` (408 in the one error shape)
  and the connection is closed, so a client trickling bytes holds nothing.
* A ``Content-Length`` over ``MAX_CONTENT_LENGTH`` is refused before anything
  else runs (no key lookup, no limit counted).
* Every client reads its 413 (or 401, 405 …): a body the app did not read is
  drained, up to ``DRAIN_LIMIT`` bytes and within the deadline, after the
  response is written and before the server closes or reuses the connection.
  Closing with unread bytes makes the kernel answer with a reset, which is
  all a client that writes its whole body before reading (urllib) would see.

How the deadline is kept depends on the server. Under gevent (``make run``)
each read runs under a ``gevent.Timeout``. Threaded servers (``python
wsgi.py``, gunicorn's gthread) cannot interrupt a blocked read, so one
watchdog thread shuts the socket's read side at the deadline: the read
returns early, and the server's own drain cannot hang on it either.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import socket
import sys
import threading
import time

from flask import Flask, request

from ..errors import PayloadTooLarge, RequestTimeout

log = logging.getLogger(__name__)

# The most of an unwanted body we read (and discard) so that the client sees our answer.
DRAIN_LIMIT = 16 * 1024 * 1024
_DRAIN_READ = 65536


def gevent_patched() -> bool:
    """True when gevent has monkey-patched sockets (gunicorn's gevent worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))


class _Expired(Exception):
    """Raised into a read by gevent when the body deadline passes."""


class Watchdog:
    """One daemon thread that shuts the read side of sockets whose body deadline passed (threaded servers)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[list] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, sock) -> list:
        """Cut ``sock``'s reading at ``deadline`` (monotonic) unless ``disarm`` comes first."""
        entry = [deadline, next(self._seq), sock, True]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                # Started on first use, in the serving process, never at import.
                self._thread = threading.Thread(target=self._run, name="body-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()
        return entry

    @staticmethod
    def disarm(entry: list) -> None:
        """The body is complete (or abandoned): nothing to cut."""
        entry[3] = False

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and not self._heap[0][3]:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                entry = heapq.heappop(self._heap)
            if entry[3]:
                shut_reading(entry[2])


def shut_reading(sock) -> None:
    """Shut the read side of ``sock``: a blocked read returns at once; writing (our answer) still works."""
    try:
        # socket.socket's own method, so a TLS socket is cut underneath without unwrapping its TLS state.
        socket.socket.shutdown(sock, socket.SHUT_RD)
    except (OSError, TypeError, ValueError):
        pass


class GuardedInput:
    """``wsgi.input`` that keeps the body deadline and knows when the body is complete."""

    def __init__(self, stream, length: int | None, deadline: float, sock, watchdog: Watchdog | None,
                 green_timeout=None):
        self._stream = stream
        self._left = length  # None: chunked, complete when a read returns nothing
        self.deadline = deadline
        self._sock = sock
        self._watch = watchdog.arm(deadline, sock) if watchdog is not None and sock is not None else None
        self._green_timeout = green_timeout  # gevent.Timeout under gevent, else None
        self.complete = length == 0
        self.expired = False

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of the body (all of it for -1); RequestTimeout once the deadline passes."""
        return self._guarded(self._stream.read, size)

    def readline(self, size: int = -1) -> bytes:
        """One line of the body, under the same deadline."""
        return self._guarded(self._stream.readline, size)

    def _guarded(self, read, size: int) -> bytes:
        if self.complete:
            return b""
        if self._left is not None and (size is None or size < 0 or size > self._left):
            size = self._left
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout()
        try:
            if self._green_timeout is not None:
                with self._green_timeout(remaining, _Expired):
                    data = read(size)
            else:
                data = read(size)
        except _Expired:
            raise self._timeout() from None
        except Exception:
            # A cut socket surfaces as a disconnect (OSError, or the server's own error type).
            if time.monotonic() >= self.deadline:
                raise self._timeout() from None
            raise
        if self._left is not None:
            self._left -= len(data)
        short = bool(self._left) and len(data) < size if self._left is not None else not data
        if short and time.monotonic() >= self.deadline:
            raise self._timeout()  # cut short by the watchdog: what came is not the whole body
        if (not data and size != 0) or self._left == 0:
            self._done()
        return data

    def _timeout(self) -> RequestTimeout:
        self.expired = True
        self._done()
        return RequestTimeout()

    def _done(self) -> None:
        self.complete = True
        if self._watch is not None:
            Watchdog.disarm(self._watch)

    def finish(self) -> None:
        """After the response: drain what the app left unread (bounded), else make sure the connection closes."""
        drained = 0
        try:
            while not self.complete and drained < DRAIN_LIMIT:
                drained += len(self.read(_DRAIN_READ))
        except Exception:
            pass  # a timeout or a client that left: either way the connection is cut below
        if not self.complete or self.expired:
            # Unread bytes would make the server wait for them (keep-alive) or the kernel send a reset.
            self._cut()
        self._done()

    def _cut(self) -> None:
        if self._sock is None:
            return
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Finishing:
    """The response iterable, plus draining the request body once the server has written it all."""

    def __init__(self, result, body: GuardedInput):
        self._result = result
        self._body = body

    def __iter__(self):
        return iter(self._result)

    def close(self) -> None:
        """The server has written the response: close it, then finish the body."""
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._body.finish()


class BodyGuard:
    """WSGI middleware: the body deadline on ``wsgi.input``, and the drain after the response."""

    def __init__(self, app, timeout: float):
        self.app = app
        self.timeout = timeout
        self._watchdog: Watchdog | None = None
        self._green_timeout = None
        if gevent_patched():
            import gevent

            self._green_timeout = gevent.Timeout
        else:
            self._watchdog = Watchdog()

    def __call__(self, environ, start_response):
        length = _content_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked and not length:
            return self.app(environ, start_response)
        sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
        body = GuardedInput(environ["wsgi.input"], None if chunked else length,
                            time.monotonic() + self.timeout, sock, self._watchdog, self._green_timeout)
        environ["wsgi.input"] = body
        try:
            result = self.app(environ, start_response)
        except BaseException:
            body.finish()
            raise
        if body.complete and not body.expired:
            return result  # the usual case: nothing to drain, nothing to wrap
        return _Finishing(result, body)


def _content_length(environ) -> int | None:
    raw = environ.get("CONTENT_LENGTH") or ""
    return int(raw) if raw.isdigit() else None


def refuse_oversized() -> None:
    """Refuse a declared body over MAX_CONTENT_LENGTH before anything else looks at the request."""
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge()


def init_app(app: Flask) -> None:
    """Guard every request body of ``app`` (BODY_TIMEOUT), and refuse oversized ones first."""
    app.before_request(refuse_oversized)
    app.wsgi_app = BodyGuard(app.wsgi_app, app.config["BODY_TIMEOUT"])  # type: ignore[method-assign]
