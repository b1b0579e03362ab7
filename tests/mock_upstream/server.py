"""A mock OpenAI chat-completions upstream on pure asyncio (stdlib only).

It answers ``POST .../chat/completions``: non-streamed with the canned
completion, streamed (``"stream": true``) with N content chunks at a fixed
interval, a finish chunk, a usage chunk when ``stream_options.include_usage``
asks for one, and ``data: [DONE]``. It is a hand-written HTTP/1.1 protocol
rather than a framework so that one process can drive a thousand streams
without becoming the bottleneck of the thing it is measuring.

Behaviour is chosen per request, later sources winning:

1. the server's defaults (constructor or CLI flags);
2. ``key=value`` path segments before the API path, so a base URL can carry
   them: ``http://127.0.0.1:9000/fault=cut/chunks=8/v1``;
3. query parameters: ``?chunks=8&interval_ms=5``;
4. headers: ``X-Mock-Chunks``, ``X-Mock-Interval-Ms``, ``X-Mock-Fault``,
   ``X-Mock-After``, ``X-Mock-Retry-After``, ``X-Mock-Stall-S``,
   ``X-Mock-Delay-Ms``, ``X-Mock-Times``.

Faults (``fault=``): ``cut`` (close mid-stream, no ``[DONE]``), ``reset``
(TCP reset mid-stream), ``stall`` (stop sending, keep the socket open for
``stall_s``), ``malformed`` (one event whose data is not JSON),
``error_event`` (an in-band ``{"error": ...}`` event, then end without
``[DONE]``), or an HTTP status such as ``500``, ``503`` or ``429`` (with
``Retry-After: retry_after``). ``after=N`` is the chunk index where a
mid-stream fault strikes (default: half way). ``times=N`` applies the fault
to the first N requests carrying that same fault spec, then answers normally,
which is what a retry test needs. ``delay_ms`` holds the response back.

``GET /_mock/stats`` returns counters (and how many completions asked for each
model, and what the last API request carried: its path, query and credential
headers, so a test can see how it was authenticated); ``POST /_mock/reset``
clears them. A numeric fault also answers ``GET /models``.

Use from Python (for example in tests)::

    with run_in_thread(chunks=4, interval_ms=1) as mock:
        requests.post(mock.base_url + "/chat/completions", json={...})

or from a shell: ``python -m tests.mock_upstream.server --port 9000``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import sys
import threading
from dataclasses import dataclass, fields, replace
from urllib.parse import parse_qsl, unquote

try:  # a package import when used as tests.mock_upstream; a plain one when run by path
    from . import canned
except ImportError:  # pragma: no cover
    import canned  # type: ignore[no-redef]

NAMED_FAULTS = ("cut", "reset", "stall", "malformed", "error_event")
_MAX_HEADER = 64 * 1024
_MAX_BODY = 8 * 1024 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 413: "Payload Too Large",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(frozen=True)
class Options:
    """How one request is answered."""

    chunks: int = 16
    interval_ms: float = 20.0
    fault: str = ""
    after: int = -1  # -1: half of ``chunks``
    retry_after: float = 1.0
    stall_s: float = 300.0
    delay_ms: float = 0.0
    times: int = 0  # 0: every request with this fault spec

    def strike_at(self) -> int:
        """The chunk index at which a mid-stream fault happens."""
        return self.after if self.after >= 0 else self.chunks // 2

    def status_fault(self) -> int:
        """The HTTP status a numeric fault asks for, else 0."""
        return int(self.fault) if self.fault.isdigit() else 0


_CASTS = {f.name: (int if f.type in ("int", int) else float if f.type in ("float", float) else str)
          for f in fields(Options)}
_HEADER_OPTS = {"x-mock-" + name.replace("_", "-"): name for name in _CASTS}


def merge_options(base: Options, pairs) -> Options:
    """``base`` with the recognised ``(name, value)`` pairs applied; unknown or bad ones are ignored."""
    changes = {}
    for name, raw in pairs:
        name = name.strip().lower().replace("-", "_")
        cast = _CASTS.get(name)
        if cast is None:
            continue
        try:
            value = cast(raw.strip())
        except ValueError:
            continue
        if name == "fault":
            value = value.lower()
            if value and value not in NAMED_FAULTS and not (value.isdigit() and 100 <= int(value) <= 599):
                continue
        changes[name] = value
    return replace(base, **changes) if changes else base


def split_path(target: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a request target into the API path and the option pairs found in it."""
    path, _, query = target.partition("?")
    pairs: list[tuple[str, str]] = []
    rest = []
    for segment in path.split("/"):
        if "=" in segment and not rest:
            for item in unquote(segment).split(","):
                name, _, value = item.partition("=")
                pairs.append((name, value))
        elif segment:
            rest.append(segment)
    pairs.extend(parse_qsl(query))
    return "/" + "/".join(rest), pairs


class Stats:
    """Counters shared by every connection of one server."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Zero every counter and forget how often each fault has fired."""
        self.requests = 0
        self.completions = 0
        self.streams = 0
        self.streams_open = 0
        self.streams_peak = 0
        self.streams_finished = 0
        self.chunks_sent = 0  # content chunks written to clients (the disconnect test reads this)
        self.faults = 0
        self.fault_counts: dict[str, int] = {}
        self.models: dict[str, int] = {}  # chat completions asked for, by model (a picker test reads it)
        self.last: dict[str, str | None] = {}  # the last API request's path, query and credential headers

    def as_dict(self) -> dict:
        """The counters as JSON-ready data."""
        return {"requests": self.requests, "completions": self.completions, "streams": self.streams,
                "streams_open": self.streams_open, "streams_peak": self.streams_peak,
                "streams_finished": self.streams_finished, "chunks_sent": self.chunks_sent, "faults": self.faults,
                "models": dict(self.models), "last": dict(self.last)}


class _Request:
    __slots__ = ("method", "target", "version", "headers", "body")

    def __init__(self, method, target, version, headers, body):
        self.method, self.target, self.version, self.headers, self.body = method, target, version, headers, body

    def keep_alive(self) -> bool:
        """True when the connection stays open after the response."""
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"


class MockProtocol(asyncio.Protocol):
    """One client connection: parses HTTP/1.1 requests and answers them in order."""

    def __init__(self, server: "MockUpstream"):
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False  # a response is in flight; later pipelined requests wait
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.stream_open = False

    # --- connection events

    def connection_made(self, transport):
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc):
        self.closed = True
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._stream_closed(finished=False)

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self._process()

    # --- request parsing

    def _process(self) -> None:
        while not self.busy and not self.closed:
            req = self._parse_one()
            if req is None:
                return
            self.busy = True
            self._dispatch(req)

    def _parse_one(self) -> _Request | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > _MAX_HEADER:
                self._simple(None, 431, b'{"error":{"message":"headers too large"}}', close=True)
            return None
        try:
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        except ValueError:
            self._simple(None, 400, b'{"error":{"message":"bad request line"}}', close=True)
            return None
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, consumed = _dechunk(self.buf, start)
            if body is None:
                return None
        else:
            try:
                length = int(headers.get("content-length", "0") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > _MAX_BODY:
                self._simple(None, 413, b'{"error":{"message":"bad content length"}}', close=True)
                return None
            if len(self.buf) - start < length:
                return None
            body, consumed = bytes(self.buf[start:start + length]), start + length
        del self.buf[:consumed]
        return _Request(method.upper(), target, version, headers, body)

    # --- routing

    def _dispatch(self, req: _Request) -> None:
        server = self.server
        server.stats.requests += 1
        path, pairs = split_path(req.target)
        header_pairs = [(_HEADER_OPTS[k], v) for k, v in req.headers.items() if k in _HEADER_OPTS]
        opts = merge_options(merge_options(server.defaults, pairs), header_pairs)
        if path == "/_mock/stats":
            self._simple(req, 200, json.dumps(server.stats.as_dict()).encode())
            return
        if path == "/_mock/reset":
            server.stats.reset()
            self._simple(req, 200, b'{"ok":true}')
            return
        server.stats.last = {"path": path, "query": req.target.partition("?")[2],
                             "authorization": req.headers.get("authorization"), "api-key": req.headers.get("api-key")}
        if path.endswith("/models") and req.method == "GET":
            if opts.status_fault():
                self._simple(req, opts.status_fault(), canned.error_body(opts.status_fault()))
                return
            body = {"object": "list", "data": [{"id": canned.MODEL, "object": "model", "created": canned.CREATED,
                                                "owned_by": "bench"}]}
            self._simple(req, 200, json.dumps(body).encode())
            return
        if path.endswith("/moderations") and req.method == "POST":
            body = {"id": "modr-bench", "model": "omni-moderation-latest",
                    "results": [{"flagged": False, "categories": {}, "category_scores": {}}]}
            self._simple(req, 200, json.dumps(body).encode())
            return
        if not path.endswith("/chat/completions"):
            self._simple(req, 404, canned.error_body(404))
            return
        if req.method != "POST":
            self._simple(req, 405, canned.error_body(405))
            return
        try:
            payload = json.loads(req.body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            self._simple(req, 400, canned.error_body(400))
            return
        if opts.fault and opts.times:
            key = f"{opts.fault}|{opts.after}|{opts.times}"
            fired = server.stats.fault_counts.get(key, 0)
            if fired >= opts.times:
                opts = replace(opts, fault="")
            else:
                server.stats.fault_counts[key] = fired + 1
        if opts.fault:
            server.stats.faults += 1
        model = str(payload.get("model") or canned.MODEL)
        server.stats.models[model] = server.stats.models.get(model, 0) + 1
        if opts.delay_ms > 0:
            self.timer = self.loop.call_later(opts.delay_ms / 1000, self._answer, req, payload, opts, model)
        else:
            self._answer(req, payload, opts, model)

    def _answer(self, req: _Request, payload: dict, opts: Options, model: str) -> None:
        self.timer = None
        if self.closed:
            return
        status = opts.status_fault()
        if status:
            extra = b""
            if status == 429:
                extra = b"Retry-After: %s\r\n" % _num(opts.retry_after).encode()
            self._simple(req, status, canned.error_body(status), extra)
            return
        if payload.get("stream") is True:
            self._start_stream(req, payload, opts, model)
            return
        self.server.stats.completions += 1
        if opts.fault == "stall":
            self.timer = self.loop.call_later(opts.stall_s, self._close)
            return
        body = self.server.completion(model)
        if opts.fault == "malformed":
            body = body[: len(body) // 2]
        if opts.fault in ("cut", "reset"):
            head = _head(200, "application/json", len(body), True)
            self.transport.write(head + body[: len(body) // 2])
            self._close(reset=opts.fault == "reset")
            return
        self._simple(req, 200, body)

    # --- streams

    def _start_stream(self, req: _Request, payload: dict, opts: Options, model: str) -> None:
        stats = self.server.stats
        stats.streams += 1
        stats.streams_open += 1
        stats.streams_peak = max(stats.streams_peak, stats.streams_open)
        self.stream_open = True
        so = payload.get("stream_options")
        self.usage = isinstance(so, dict) and so.get("include_usage") is True
        self.enc = self.server.encoder(model)
        self.opts = opts
        self.keep = req.keep_alive()
        self.t0 = self.loop.time()
        self.interval = max(opts.interval_ms, 0.0) / 1000
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                             + b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                             + (b"" if self.keep else b"Connection: close\r\n") + b"\r\n")
        self._send_chunk(0)

    def _send_chunk(self, index: int) -> None:
        self.timer = None
        if self.closed:
            return
        opts = self.opts
        if opts.fault and index == min(opts.strike_at(), opts.chunks):
            if self._strike(index):
                return
        if index >= opts.chunks:
            tail = self.enc.finish()
            if self.usage:
                tail += self.enc.usage(opts.chunks)
            tail += self.enc.done()
            self._write_chunk(tail)
            self._end_stream(finished=True)
            return
        data = self.enc.chunk(index)
        self.server.stats.chunks_sent += 1
        # The finish, usage and [DONE] events ride with the last content chunk, as OpenAI's do.
        if index + 1 >= opts.chunks and not (opts.fault and opts.strike_at() >= opts.chunks):
            data += self.enc.finish() + (self.enc.usage(opts.chunks) if self.usage else b"") + self.enc.done()
            self._write_chunk(data)
            self._end_stream(finished=True)
            return
        self._write_chunk(data)
        # Scheduled from the stream's start, so a late tick never pushes the later ones back.
        self.timer = self.loop.call_at(self.t0 + (index + 1) * self.interval, self._send_chunk, index + 1)

    def _strike(self, index: int) -> bool:
        """Apply a mid-stream fault at ``index``; True when the stream is over."""
        fault = self.opts.fault
        if fault in ("cut", "reset"):
            self._stream_closed(finished=False)
            self._close(reset=fault == "reset")
            return True
        if fault == "stall":
            self.timer = self.loop.call_later(self.opts.stall_s, self._close)
            return True
        if fault == "error_event":
            self._write_chunk(self.enc.error_event())
            self._end_stream(finished=False)
            return True
        if fault == "malformed":
            self._write_chunk(self.enc.malformed())
        return False

    def _write_chunk(self, data: bytes) -> None:
        self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_stream(self, finished: bool) -> None:
        self.transport.write(b"0\r\n\r\n")
        self._stream_closed(finished)
        self._response_done(self.keep)

    def _stream_closed(self, finished: bool) -> None:
        if self.stream_open:
            self.stream_open = False
            self.server.stats.streams_open -= 1
            if finished:
                self.server.stats.streams_finished += 1

    # --- plain responses

    def _simple(self, req: _Request | None, status: int, body: bytes, extra: bytes = b"",
                close: bool = False) -> None:
        keep = req is not None and req.keep_alive() and not close
        self.transport.write(_head(status, "application/json", len(body), keep, extra) + body)
        self._response_done(keep)

    def _response_done(self, keep: bool) -> None:
        if not keep:
            self._close()
            return
        self.busy = False
        if self.buf:
            self.loop.call_soon(self._process)

    def _close(self, reset: bool = False) -> None:
        self.timer = None
        if self.closed or self.transport is None:
            return
        if reset:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()
        self.closed = True


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _head(status: int, ctype: str, length: int, keep: bool, extra: bytes = b"") -> bytes:
    reason = _REASONS.get(status, "Status")
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n"
            % (status, reason.encode(), ctype.encode(), length,
               b"" if keep else b"Connection: close\r\n", extra))


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes | None, int]:
    """Decode a chunked body starting at ``pos``; (None, 0) while it is incomplete."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None, 0
        try:
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        except ValueError:
            size = 0
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)
            if end < 0:
                return None, 0
            return bytes(out), end + 4
        if len(buf) < pos + size + 2:
            return None, 0
        out += buf[pos:pos + size]
        pos += size + 2


class MockUpstream:
    """The mock server: ``await start()``, then use ``base_url``; ``await stop()`` when done."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None, **defaults):
        self.host = host
        self.port = port
        self.sock = sock  # an already-listening socket, shared by forked workers
        self.defaults = merge_options(Options(), [(k, str(v)) for k, v in defaults.items()])
        self.stats = Stats()
        self.connections: set[MockProtocol] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._completions: dict[str, bytes] = {}
        self._encoders: dict[str, canned.StreamEncoder] = {}

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in /v1."""
        return f"http://{self.host}:{self.port}/v1"

    def completion(self, model: str) -> bytes:
        """The canned completion for ``model``, encoded once."""
        body = self._completions.get(model)
        if body is None:
            body = self._completions[model] = canned.completion_bytes(model)
        return body

    def encoder(self, model: str) -> canned.StreamEncoder:
        """The stream encoder for ``model``, built once."""
        enc = self._encoders.get(model)
        if enc is None:
            enc = self._encoders[model] = canned.StreamEncoder(model)
        return enc

    async def start(self) -> int:
        """Listen and return the bound port."""
        self.loop = asyncio.get_running_loop()
        if self.sock is not None:
            self._server = await self.loop.create_server(lambda: MockProtocol(self), sock=self.sock, backlog=4096)
        else:
            self._server = await self.loop.create_server(lambda: MockProtocol(self), self.host, self.port,
                                                         backlog=4096, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                conn._close()
            await self._server.wait_closed()
            self._server = None


class ThreadedMock:
    """A MockUpstream running on its own event loop in a daemon thread."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mock-upstream", daemon=True)
        self.server: MockUpstream | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.server = MockUpstream(**self._kwargs)
        self._loop.run_until_complete(self.server.start())
        self._ready.set()
        self._loop.run_forever()

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in /v1."""
        return self.server.base_url

    @property
    def stats(self) -> Stats:
        """The live counters."""
        return self.server.stats

    def start(self) -> "ThreadedMock":
        """Start the thread (once) and wait until the port is bound."""
        if not self._thread.is_alive() and not self._ready.is_set():
            self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("mock upstream did not start")
        return self

    def stop(self) -> None:
        """Stop the server and the loop, and join the thread."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> "ThreadedMock":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run_in_thread(**kwargs) -> ThreadedMock:
    """A started mock on a background thread; use as a context manager or call ``stop()``."""
    return ThreadedMock(**kwargs).start()


async def _serve(args, sock: socket.socket | None) -> None:
    server = MockUpstream(args.host, args.port, sock=sock, chunks=args.chunks, interval_ms=args.interval_ms,
                          fault=args.fault)
    port = await server.start()
    if sock is None:
        print(f"mock upstream listening on http://{args.host}:{port}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def _serve_forked(args) -> None:
    """Bind once, then fork ``args.workers`` processes that all accept on that socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(4096)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(_serve(args, sock))
            finally:
                os._exit(0)
        children.append(pid)
    print(f"mock upstream listening on http://{args.host}:{port}/v1 ({args.workers} processes)", flush=True)

    def forward(signum, _frame):
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


def main(argv=None) -> None:
    """Command line: serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per stream")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="time between chunks")
    parser.add_argument("--fault", default="", help="a fault applied to every request")
    parser.add_argument("--workers", type=int, default=1, help="processes accepting on one socket "
                        + "(each keeps its own /_mock/stats)")
    parser.add_argument("--uvloop", action="store_true", help="use uvloop when it is installed")
    args = parser.parse_args(argv)
    if args.uvloop:
        try:
            import uvloop  # type: ignore[import-not-found]
            uvloop.install()
        except ImportError:
            print("uvloop not installed; using asyncio's loop", file=sys.stderr)
    if args.workers > 1:
        _serve_forked(args)
    else:
        asyncio.run(_serve(args, None))


if __name__ == "__main__":
    main()
