"""What one HTTP request did, gathered as it runs: the source of its log line, its metrics and Server-Timing.

``Observed`` wraps the WSGI app. It opens a ``RequestRecord`` for every
request and makes it ``current()`` (a context variable, so each greenlet or
thread sees its own); the layers above fill in what only they know (route,
caller's key name, model, tokens, cost, filter action, error code) and the
upstream client adds the time it spent waiting. When the response has been
sent (for a stream: when it ends or the client leaves) the record becomes two
metric updates at once and one log line shortly after: lines are formatted and
written by a background writer a batch at a time, so a request pays for a list
append, not for logging's record, formatter and write. Nothing here imports Flask.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from time import perf_counter

from .writer import BackgroundWriter

_current: ContextVar[RequestRecord | None] = ContextVar("chatgate_request", default=None)
log = logging.getLogger("app.request")
FIELDS = "chatgate_fields"  # the same attribute ops.logs formats


class RequestRecord:
    """One request's facts, filled in as it goes."""

    __slots__ = ("cache", "chat", "completion_tokens", "cost_micros", "error", "filter", "key", "method", "model",
                 "prompt_tokens", "request_id", "route", "started", "status", "stream", "traceparent", "tracestate",
                 "upstream", "upstream_s")

    def __init__(self, method: str, started: float):
        self.method = method
        self.started = started
        self.request_id: str | None = None
        self.route = "unmatched"
        self.status = 0
        self.chat = False  # a chat route: gets Server-Timing and the gateway-overhead metric
        self.upstream_s = 0.0  # seconds spent waiting on the upstream (connect, retries, reading)
        self.model: str | None = None
        self.upstream: str | None = None
        self.stream: bool | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.cost_micros: int | None = None
        self.filter: str | None = None
        self.cache: str | None = None
        self.key: str | None = None
        self.error: str | None = None
        self.traceparent: str | None = None
        self.tracestate: str | None = None

    def server_timing(self, now: float | None = None) -> str:
        """The Server-Timing value: upstream wait and chatgate's own time so far, in milliseconds."""
        elapsed = (now or perf_counter()) - self.started
        upstream = min(self.upstream_s, elapsed)
        return f"upstream;dur={upstream * 1000:.1f}, gateway;dur={(elapsed - upstream) * 1000:.1f}"


def current() -> RequestRecord | None:
    """The record of the request being served here, if any."""
    return _current.get()


class RequestLog:
    """Writes each finished request's line through the ``app.request`` logger, from a background writer."""

    FLUSH_SECONDS = 0.05

    def __init__(self, logger: logging.Logger = log):
        self.logger = logger
        self._pending: list[tuple] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._writer = BackgroundWriter("request-log", self.flush, lambda: not self._pending, self._lock,
                                        self.FLUSH_SECONDS, "request log: write failed (%s)",
                                        logging.getLogger(__name__))

    def add(self, record: RequestRecord, total: float, upstream: float) -> None:
        """Queue one request's line (when its level is logged at all)."""
        level = logging.WARNING if record.status >= 500 else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        with self._lock:
            self._pending.append((level, time.time(), record, total, upstream))
            self._writer.wake()

    def flush(self) -> int:
        """Write every queued line now; returns how many."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            logger = self.logger
            for level, when, record, total, upstream in batch:
                line = logger.makeRecord(logger.name, level, "", 0, "%s %s %s",
                                         (record.method, record.route, record.status), None,
                                         extra={FIELDS: fields(record, total, upstream)})
                line.created, line.msecs = when, (when % 1) * 1000  # when the request ended, not when written
                logger.handle(line)
            return len(batch)


class Observed:
    """WSGI middleware: a record per request, Server-Timing on chat responses, metrics and a log line at the end."""

    def __init__(self, app: Callable, metrics, lines: RequestLog):
        self.app = app
        self.metrics = metrics
        self.lines = lines

    def __call__(self, environ: dict, start_response: Callable):
        record = RequestRecord(environ.get("REQUEST_METHOD", "GET"), perf_counter())
        record.traceparent = environ.get("HTTP_TRACEPARENT")
        record.tracestate = environ.get("HTTP_TRACESTATE")
        _current.set(record)

        def start(status: str, headers: list, exc_info=None):
            record.status = int(status[:3])
            if record.chat:
                # For a stream this is what is known when its headers go: the wait for the first upstream event.
                headers.append(("Server-Timing", record.server_timing()))
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, start)
        except BaseException:
            self.finish(record)
            raise
        return _Closing(body, record, self.finish)

    def finish(self, record: RequestRecord) -> None:
        """The request is over: count it and write its line."""
        now = perf_counter()
        total = now - record.started
        upstream = min(record.upstream_s, total)
        self.metrics.http_request(record.route, record.status)
        if record.chat:
            self.metrics.gateway_overhead(total - upstream)
        self.lines.add(record, total, upstream)
        _current.set(None)


def fields(record: RequestRecord, total: float, upstream: float) -> dict:
    """The structured fields of a request's log line: never content, never a key, only its name."""
    return {"request_id": record.request_id, "method": record.method, "route": record.route,
            "status": record.status, "duration_ms": round(total * 1000, 2),
            "upstream_ms": round(upstream * 1000, 2) if record.chat else None,
            "gateway_ms": round((total - upstream) * 1000, 2) if record.chat else None,
            "model": record.model, "upstream": record.upstream, "stream": record.stream,
            "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
            "cost_usd": record.cost_micros / 1_000_000 if record.cost_micros is not None else None,
            "filter": record.filter, "cache": record.cache, "key": record.key, "error": record.error}


class _Closing:
    """The response body, passed through; closing it (the server always does) finishes the record."""

    __slots__ = ("_body", "_done", "_finish", "_record")

    def __init__(self, body: Iterable[bytes], record: RequestRecord, finish: Callable[[RequestRecord], None]):
        self._body = body
        self._record = record
        self._finish = finish
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()  # ends a stream's relay first, so its ledger row and tokens are in the record
        finally:
            self._finish(self._record)
