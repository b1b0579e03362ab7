"""Reading upstream bodies within bounds: a whole body, and a stream of chat chunks.

Nothing an upstream sends is held without a bound: a non-streamed body is
refused past ``MAX_BODY_BYTES``, a stream event (or an unterminated line)
past ``MAX_EVENT_CHARS``, a whole stream past ``MAX_BODY_BYTES``, and a stream
that runs longer than ``MAX_STREAM_DURATION`` is ended. Bytes are read in
pieces of at most ``READ_SIZE``, even from one huge HTTP chunk.

A stream is read a batch at a time: ``batches()`` yields the events that
one read of the body completed, so a loaded gateway handles together what
arrived together (iterating yields them one by one).

A stream is primed before its reply starts: ``prime`` reads up to the first
content event (at most ``MAX_HELD`` events, within the call's deadline) and
holds what it read, so a stream that fails before saying anything can still
be abandoned for another upstream without the client seeing a byte of it.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from time import perf_counter

import requests
import urllib3.exceptions

from ..errors import APIError, StreamFailed, UpstreamBadResponse, UpstreamError, UpstreamTimeout, translate
from ..ops.record import RequestRecord
from .chunked import available_pieces
from .sse_codec import SSETooLarge, iter_sse_batches

READ_SIZE = 65536
MAX_BODY_BYTES = 16 * 1024 * 1024
# Vectors are bulky: 1,000 inputs of 1,536 floats are about 34 MB of JSON. The gateway refuses a request
# whose reply could be larger than this before it is sent (core.bounds.check_embedding_reply).
MAX_EMBEDDINGS_BYTES = 64 * 1024 * 1024
MAX_EVENT_CHARS = 1024 * 1024
# Events held while priming: an upstream that sends only empty ones has started, for our purposes.
MAX_HELD = 64


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
    """An open upstream stream: iterate for chunk dicts (or ``batches()`` for lists); ``close()`` stops generation.

    ``on_failure`` (when set) hears every failure the stream raises, once: the
    router counts it against the upstream that failed.
    """

    def __init__(self, resp: requests.Response, read_timeout: float, max_seconds: float,
                 clock=time.monotonic, record: RequestRecord | None = None):
        self._resp = resp
        self._record = record  # the request this stream serves: its waits for bytes are upstream time
        self._read_timeout = read_timeout
        self._clock = clock
        self.deadline = clock() + max_seconds
        self._first_by: float | None = None  # while priming: the call's deadline for the first content
        self._sock_timeout: float | None = None  # unknown: the call's deadline may have cut the first one
        self._held: list[dict] = []
        self._batches = self._read()
        self.on_failure: Callable[[APIError], None] | None = None

    def prime(self, deadline: float | None = None, until_content: bool = True) -> None:
        """Read up to the first content event, or the first event (held for the iteration); StreamFailed before."""
        self._first_by = deadline
        try:
            # The rest of a read that brought the first content is held too: it has arrived already.
            for batch in self._batches:
                self._held.extend(batch)
                if not until_content or any(map(has_content, batch)) or len(self._held) >= MAX_HELD:
                    return
        finally:
            self._first_by = None

    def __iter__(self) -> Iterator[dict]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[dict]]:
        """The chunks each read of the body completed, a list per read (what priming held comes first)."""
        held, self._held = self._held, []
        if held:
            yield held
        yield from self._batches

    def _read(self) -> Iterator[list[dict]]:
        try:
            yield from self._parsed()
        except StreamFailed as failed:
            if self.on_failure is not None:
                self.on_failure(failed.error)
            raise

    def _parsed(self) -> Iterator[list[dict]]:
        try:
            for events in iter_sse_batches(self._bytes(), MAX_EVENT_CHARS):
                batch: list[dict] = []
                for event in events:
                    failure: APIError | None = None
                    if event.data == "[DONE]":
                        if batch:
                            yield batch
                        return
                    try:
                        chunk = json.loads(event.data)
                    except ValueError:
                        chunk = None
                    if not isinstance(chunk, dict):
                        failure = UpstreamBadResponse("the upstream sent a malformed stream event")
                    elif "error" in chunk:
                        failure = UpstreamError("the upstream model service failed mid-stream")
                    if failure is not None:
                        # What came before the failure in the same read still reaches the client first.
                        if batch:
                            yield batch
                        raise StreamFailed(failure)
                    batch.append(chunk)
                if batch:
                    yield batch
        except SSETooLarge:
            raise StreamFailed(UpstreamBadResponse("the upstream sent a stream event over 1 MB",
                                                   code="upstream_event_too_large")) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            if self._clock() >= self.deadline:
                raise StreamFailed(self._overrun()) from None
            if self._first_by is not None and self._clock() >= self._first_by:
                raise StreamFailed(_late()) from None
            if isinstance(translate(err), UpstreamTimeout):
                raise StreamFailed(UpstreamTimeout("the upstream model service stalled mid-stream")) from None
            raise StreamFailed(UpstreamError("the upstream connection broke mid-stream",
                                             code="upstream_stream_broken")) from None
        raise StreamFailed(UpstreamError("the upstream stream ended before it finished",
                                         code="upstream_stream_truncated"))

    def _bytes(self) -> Iterator[bytes]:
        """The body in bounded pieces, as they arrive, until the stream's deadline or size bound."""
        total = 0
        self._wait_at_most()
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
            now = self._clock()
            if now >= self.deadline:
                raise StreamFailed(self._overrun())
            if self._first_by is not None and now >= self._first_by:
                raise StreamFailed(_late())
            yield piece
            self._wait_at_most()

    def _wait_at_most(self) -> None:
        # Near a deadline (the stream's, or the call's while priming), a stalled upstream must not hold the
        # stream for a whole read timeout more; once past priming, the read timeout applies again.
        limit = self.deadline if self._first_by is None else min(self.deadline, self._first_by)
        seconds = min(self._read_timeout, max(limit - self._clock(), 0.001))
        if seconds == self._sock_timeout:
            return
        self._sock_timeout = seconds
        sock = getattr(getattr(self._resp.raw, "connection", None), "sock", None)
        if sock is not None:
            try:
                sock.settimeout(seconds)
            except OSError:
                pass

    def _overrun(self) -> UpstreamTimeout:
        self.close()
        return UpstreamTimeout("the stream ran longer than MAX_STREAM_DURATION and was ended",
                               code="stream_too_long")

    def close(self) -> None:
        """Release the connection; the upstream stops generating (and billing)."""
        self._resp.close()


def _late() -> UpstreamTimeout:
    return UpstreamTimeout("the upstream model service did not start its reply within the call's deadline")


def has_content(chunk: dict) -> bool:
    """True for a chunk that says something: text, a refusal, a tool call, a finish or usage (not just a role)."""
    if chunk.get("usage"):
        return True
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(delta.get(k) for k in ("content", "refusal", "tool_calls",
                                                                   "function_call")):
            return True
    return False


def _pieces(resp: requests.Response) -> Iterator[bytes]:
    """What has arrived, in pieces of at most READ_SIZE (never waiting to fill one)."""
    raw = resp.raw
    if getattr(raw, "chunked", False):
        pieces = available_pieces(resp, READ_SIZE)
        if pieces is not None:
            yield from pieces
            return
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
