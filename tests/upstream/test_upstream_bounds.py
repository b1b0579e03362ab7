"""Upstream misbehaviour is bounded: no redirects, bounded bodies, events and streams, a longest stream."""
from __future__ import annotations

import json
import socket
import threading
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
import responses
from conftest import UPSTREAM, UPSTREAM_KEY
from support import completion

from app.errors import StreamFailed
from app.upstream.sse_codec import iter_sse

URL = UPSTREAM + "/chat/completions"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


class RawUpstream:
    """A one-connection-at-a-time HTTP server answering every request with ``answer()``'s bytes, lazily."""

    def __init__(self, answer: Callable[[], Iterator[bytes]]):
        self._answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"
        self.sent = 0
        self.closed_early = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(65536)
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) if b"Content-Length" in head \
                    else 0
                body = head.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += conn.recv(65536)
                try:
                    for piece in self._answer():
                        conn.sendall(piece)
                        self.sent += len(piece)
                except OSError:
                    self.closed_early.set()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def upstream():
    """Start a RawUpstream with the given answer; stopped after the test."""
    made = []

    def start(answer):
        made.append(RawUpstream(answer))
        return made[-1]

    yield start
    for server in made:
        server.close()


def chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


FIRST = b'data: {"choices": [{"index": 0, "delta": {"content": "Hello "}}]}\n\n'


def sse_head() -> bytes:
    """Response head plus one ordinary first event (chunked), so the stream has begun."""
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(FIRST), FIRST))


def client_for(make_app, base_url: str, **env):
    return make_app(OPENAI_API_KEY=UPSTREAM_KEY, OPENAI_BASE_URL=base_url, UPSTREAM_MAX_RETRIES=0, **env).test_client()


def stream_events(client) -> list:
    """Every event of a streamed /v1 call that began normally."""
    resp = client.post("/v1/chat/completions", json={**CHAT, "stream": True}, buffered=False)
    assert resp.status_code == 200
    out = [e.data if e.data == "[DONE]" else json.loads(e.data) for e in iter_sse(resp.response)]
    resp.close()
    return out


@responses.activate
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_502_and_the_prompt_goes_nowhere_else(remote, status):
    responses.post(URL, status=status, headers={"Location": "https://elsewhere.test/v1/chat/completions"})
    stolen = responses.post("https://elsewhere.test/v1/chat/completions", json=completion("from elsewhere"))
    resp = remote.post("/chat", json={"prompt": "my secret plans"})
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "upstream_redirect"
    assert stolen.call_count == 0 and len(responses.calls) == 1
    assert resp.headers["x-should-retry"] == "false"


def test_a_whole_reply_over_16_mb_is_a_502(make_app, upstream):
    filler = b"x" * (16 * 1024 * 1024 + 10)

    def undeclared():  # no Content-Length, so only reading tells
        yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        yield b'{"choices": [{"message": {"role": "assistant", "content": "'
        for i in range(0, len(filler), 1 << 20):
            yield filler[i:i + (1 << 20)]
        yield b'"}}]}'

    server = upstream(undeclared)
    resp = client_for(make_app, server.base_url).post("/chat", json={"prompt": "hi"})
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "upstream_reply_too_large"


def test_a_declared_length_over_the_bound_is_refused_without_reading(make_app, upstream):
    def declared():
        yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (1 << 30)
        yield b"{"

    server = upstream(declared)
    resp = client_for(make_app, server.base_url).post("/chat", json={"prompt": "hi"})
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "upstream_reply_too_large"


def test_an_unterminated_100_mb_sse_line_ends_the_stream_with_an_error_in_bounded_memory(make_app, upstream):
    def giant_line():
        yield sse_head()
        yield from chunked(iter([b'data: {"choices": [{"index": 0, "delta": {"content": "'] +
                                [b"y" * 65536] * 1600))  # 100 MB, never a newline

    server = upstream(giant_line)
    client = client_for(make_app, server.base_url)
    tracemalloc.start()
    try:
        got = stream_events(client)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got[-1]["error"]["code"] == "upstream_event_too_large"
    assert peak < 16 * 1024 * 1024  # the old parser held the whole line, three times over
    assert server.sent < 50 * 1024 * 1024  # and the upstream was let go long before its 100 MB


def test_one_huge_http_chunk_is_read_in_bounded_pieces(make_app, upstream):
    def huge_chunk():
        yield sse_head()
        line = b'data: {"choices": [{"index": 0, "delta": {"content": "' + b"z" * (3 << 20) + b'"}}]}\n\n'
        yield b"%x\r\n" % len(line) + line + b"\r\n0\r\n\r\n"

    got = stream_events(client_for(make_app, upstream(huge_chunk).base_url))
    assert got[-1]["error"]["code"] == "upstream_event_too_large"


def test_a_stream_over_16_mb_in_total_ends_with_an_error(make_app, upstream):
    def endless_small_events():
        yield sse_head()
        event = b'data: {"choices": [{"index": 0, "delta": {"content": "' + b"w" * 60000 + b'"}}]}\n\n'
        yield from chunked(iter([event] * 400))  # 24 MB of ordinary events

    got = stream_events(client_for(make_app, upstream(endless_small_events).base_url))
    assert got[-1]["error"]["code"] == "upstream_reply_too_large"


class _SlowResponse:
    """A streamed response whose events arrive four (fake) seconds apart."""

    def __init__(self, events: int, clock: list[float]):
        self.headers = {"Content-Type": "text/event-stream"}
        self.raw = self
        self.chunked = True
        self.closed = False
        self._events, self._clock = events, clock

    def iter_content(self, chunk_size=None):
        for n in range(self._events):
            self._clock[0] += 4.0
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "%d "}}]}\n\n' % n

    def close(self) -> None:
        self.closed = True


def test_a_stream_past_its_longest_duration_ends_with_an_error_and_closes_the_upstream():
    from app.upstream.stream import ChatStream

    now = [0.0]
    resp = _SlowResponse(5, now)
    stream = ChatStream(resp, read_timeout=60, max_seconds=10, clock=lambda: now[0])
    got = []
    with pytest.raises(StreamFailed) as failed:
        for chunk in stream:
            got.append(chunk["choices"][0]["delta"]["content"])
    assert got == ["0 ", "1 "]  # at 4 s and 8 s; the event at 12 s is past the 10 s bound
    assert failed.value.error.code == "stream_too_long" and failed.value.error.status == 504
    assert resp.closed
