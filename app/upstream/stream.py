"""Reading upstream bodies within bounds: a whole body, and a stream of chat chunks.

Nothing an upstream sends is held without a bound: a non-streamed body is
refused past ``MAX_BODY_BYTES``, a stream event (or an unterminated line)
past ``MAX_EVENT_CHARS``, a whole stream past ``MAX_BODY_BYTES``, and a stream
that runs longer than ``MAX_STREAM_DURATION`` is ended. Bytes are read in
pieces of at most ``READ_SIZE``, even from one huge HTTP chunk.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from time import perf_counter

import requests
import urllib3.exceptions

from ..errors import StreamFailed, UpstreamBadResponse, UpstreamError, UpstreamTimeout, translate
from ..ops.record import RequestRecord
from .sse_codec import SSETooLarge, iter_sse

READ_SIZE = 65536
MAX_BODY_BYTES = 16 * 1024 * 1024
# Vectors are bulky: 1,000 inputs of 1,536 floats are about 34 MB of JSON. The gateway refuses a request
# whose reply could be larger than this before it is sent (core.bounds.check_embedding_reply).
MAX_EMBEDDINGS_BYTES = 64 * 1024 * 1024
MAX_EVENT_CHARS = 1024 * 1024


def read_bounded(resp: requests.Response, limit: int) -> bytes:
    """The whole (decoded) body of ``resp``, or UpstreamBadResponse past ``limit`` bytes."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts, size = [], 0
    for part in resp.iter_content(chunk_size=READ_SIZE):
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)
    return b"".join(parts)


def _too_large(limit: int) -> UpstreamBadResponse:
    return UpstreamBadResponse(f"the upstream model service sent a reply over {limit // (1024 * 1024)} MB",
                               code="upstream_reply_too_large")


class ChatStream:
    """An open upstream stream: iterate for chunk dicts; ``close()`` stops generation."""

    def __init__(self, resp: requests.Response, read_timeout: float, max_seconds: float,
                 clock=time.monotonic, record: RequestRecord | None = None):
        self._resp = resp
        self._record = record  # the request this stream serves: its waits for bytes are upstream time
        self._read_timeout = read_timeout
        self._clock = clock
        self.deadline = clock() + max_seconds

    def __iter__(self) -> Iterator[dict]:
        try:
            for event in iter_sse(self._bytes(), MAX_EVENT_CHARS):
                if event.data == "[DONE]":
                    return
                try:
                    chunk = json.loads(event.data)
                except ValueError:
                    raise StreamFailed(UpstreamBadResponse("the upstream sent a malformed stream event")) from None
                if not isinstance(chunk, dict):
                    raise StreamFailed(UpstreamBadResponse("the upstream sent a malformed stream event"))
                if "error" in chunk:
                    raise StreamFailed(UpstreamError("the upstream model service failed mid-stream"))
                yield chunk
        except SSETooLarge:
            raise StreamFailed(UpstreamBadResponse("the upstream sent a stream event over 1 MB",
                                                   code="upstream_event_too_large")) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            if self._clock() >= self.deadline:
                raise StreamFailed(self._overrun()) from None
            if isinstance(translate(err), UpstreamTimeout):
                raise StreamFailed(UpstreamTimeout("the upstream model service stalled mid-stream")) from None
            raise StreamFailed(UpstreamError("the upstream connection broke mid-stream",
                                             code="upstream_stream_broken")) from None
        raise StreamFailed(UpstreamError("the upstream stream ended before it finished",
                                         code="upstream_stream_truncated"))

    def _bytes(self) -> Iterator[bytes]:
        """The body in bounded pieces, as they arrive, until the stream's deadline or size bound."""
        total = 0
        self._wait_at_most(self.deadline - self._clock())
        pieces = _pieces(self._resp)
        record = self._record
        while True:
            started = perf_counter()
            piece = next(pieces, None)
            if record is not None:
                record.upstream_s += perf_counter() - started
            if piece is None:
                return
            total += len(piece)
            if total > MAX_BODY_BYTES:
                raise StreamFailed(_too_large(MAX_BODY_BYTES))
            if self._clock() >= self.deadline:
                raise StreamFailed(self._overrun())
            yield piece
            self._wait_at_most(self.deadline - self._clock())

    def _wait_at_most(self, seconds: float) -> None:
        # Near the deadline, a stalled upstream must not hold the stream for a whole read timeout more.
        if seconds >= self._read_timeout:
            return
        sock = getattr(getattr(self._resp.raw, "connection", None), "sock", None)
        if sock is not None:
            try:
                sock.settimeout(max(seconds, 0.001))
            except OSError:
                pass

    def _overrun(self) -> UpstreamTimeout:
        self.close()
        return UpstreamTimeout("the stream ran longer than MAX_STREAM_DURATION and was ended",
                               code="stream_too_long")

    def close(self) -> None:
        """Release the connection; the upstream stops generating (and billing)."""
        self._resp.close()


def _pieces(resp: requests.Response) -> Iterator[bytes]:
    """What has arrived, in pieces of at most READ_SIZE (never waiting to fill one)."""
    raw = resp.raw
    if getattr(raw, "chunked", False):
        # urllib3 reads at most READ_SIZE of an HTTP chunk at a time and never waits across chunks.
        yield from resp.iter_content(chunk_size=READ_SIZE)
        return
    if not hasattr(raw, "read1"):
        yield from resp.iter_content(chunk_size=None)  # the in-process offline model: one piece per chunk
        return
    while True:
        data = raw.read1(READ_SIZE)
        if not data:
            return
        yield data
