"""Hold many streamed chat completions open at once and time every chunk.

An asyncio client on raw sockets (no HTTP library, so the client costs as
little CPU as possible on the machine it shares with the server). It opens
``--streams`` streaming requests spread evenly over ``--ramp-s`` seconds,
timestamps the first response byte, the first content chunk and every later
content chunk of each, and prints one JSON summary.

A stream counts as an error when the status is not 200, the connection fails
or breaks, an ``error`` event or a malformed event arrives, the run's
deadline passes first, or it ends without both a final event (one carrying
``finish_reason``) and ``data: [DONE]``. It understands OpenAI chunks
(``choices[0].delta.content``) and chatgate's ``/chat`` events
(``{"delta": "..."}``). TTFB is the time from sending the request to the
first content-bearing event, so a proxy cannot look fast by flushing headers
or a comment early; time to the first raw byte is reported beside it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import time
from urllib.parse import urlsplit

now = time.perf_counter


def percentiles(values, points=(50, 90, 99, 100)) -> dict:
    """Nearest-rank percentiles of ``values`` in the same unit, keyed p50, p90, ..."""
    ordered = sorted(values)
    out = {}
    for p in points:
        key = "max" if p == 100 else f"p{p:g}"
        if not ordered:
            out[key] = None
            continue
        rank = max(1, -(-len(ordered) * p // 100))
        out[key] = ordered[int(rank) - 1]
    return out


class Result:
    """What one stream saw."""

    __slots__ = ("sent", "first_byte", "headers", "status", "content_times", "text", "final", "done",
                 "usage", "error", "ended", "reads", "lost", "complete")

    def __init__(self):
        self.sent = self.first_byte = self.headers = self.ended = self.lost = None
        self.reads: list[tuple[float, bytes]] = []
        self.complete = False
        self.status = 0
        self.content_times: list[float] = []
        self.text: list[str] = []
        self.final = self.done = self.usage = False
        self.error: str | None = None

    def fail(self, kind: str) -> None:
        """Record the first thing that went wrong."""
        if self.error is None:
            self.error = kind


class StreamProtocol(asyncio.Protocol):
    """One streamed request on its own connection.

    While the stream runs it only timestamps and keeps each read; all parsing
    happens in ``parse()`` after the run, so the client's CPU use (which
    competes with the server for the same cores) stays near the bare cost
    of the socket reads.
    """

    def __init__(self, request: bytes, result: Result, finished: asyncio.Future):
        self.request = request
        self.r = result
        self.finished = finished
        self.transport = None
        self.reads: list[tuple[float, bytes]] = []
        self.head = b""
        self.in_body = False
        self.chunked = False
        self.remaining = -1  # Content-Length left, -1 when unknown
        self.tail = b""  # last bytes seen, to spot the chunked terminator split across reads
        self.complete = False

    def connection_made(self, transport):
        self.transport = transport
        self.r.sent = now()
        transport.write(self.request)

    def connection_lost(self, exc):
        self.r.lost = "reset" if exc else "closed"
        self._finish()

    def _finish(self) -> None:
        r = self.r
        if r.ended is None:
            r.ended = now()
        r.reads = self.reads
        r.complete = self.complete
        if not self.finished.done():
            self.finished.set_result(None)

    def data_received(self, data):
        self.reads.append((now(), data))
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.head[:end].lower()
            self.chunked = b"transfer-encoding: chunked" in head
            pos = head.find(b"content-length:")
            if pos >= 0 and not self.chunked:
                self.remaining = int(head[pos + 15:].split(b"\r\n", 1)[0])
            data = self.head[end + 4:]
            self.head = b""
            self.in_body = True
            if not head.startswith((b"http/1.1 200", b"http/1.0 200")):
                self._done()
                return
        if self.chunked:
            # The terminating zero-size chunk; parse() decodes the body properly afterwards.
            self.tail = (self.tail + data)[-7:]
            if self.tail.endswith(b"\r\n0\r\n\r\n") or self.tail == b"0\r\n\r\n":
                self._done()
        elif self.remaining >= 0:
            self.remaining -= len(data)
            if self.remaining <= 0:
                self._done()

    def _done(self) -> None:
        self.complete = True
        self.transport.close()
        self._finish()


class _Body:
    """Incremental chunked-transfer decoder used after the run."""

    def __init__(self, chunked: bool, length: int):
        self.chunked = chunked
        self.left = length  # bytes of body still expected when not chunked (-1: until close)
        self.buf = b""
        self.chunk_left = 0
        self.ended = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes carried by ``data``, framing removed."""
        if self.ended:
            return b""
        if not self.chunked:
            if self.left >= 0:
                data = data[: self.left]
                self.left -= len(data)
                self.ended = self.left == 0
            return data
        buf = self.buf + data
        pos = 0
        out = []
        while True:
            if self.chunk_left > 0:
                take = min(self.chunk_left, len(buf) - pos)
                out.append(buf[pos:pos + take])
                pos += take
                self.chunk_left -= take
                if self.chunk_left > 0:
                    break
                self.chunk_left = -2  # the CRLF after the chunk data
            if self.chunk_left == -2:
                if len(buf) - pos < 2:
                    break
                pos += 2
                self.chunk_left = 0
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            try:
                size = int(buf[pos:eol].split(b";")[0] or b"0", 16)
            except ValueError:
                size = 0
            pos = eol + 2
            if size == 0:
                self.ended = True
                break
            self.chunk_left = size
        self.buf = buf[pos:]
        return b"".join(out)


def parse(r: Result) -> None:
    """Replay a stream's timestamped reads through HTTP and SSE parsing, filling ``r``."""
    head = b""
    body = None
    sse = b""
    for t, data in r.reads:
        if r.first_byte is None:
            r.first_byte = t
        if body is None:
            head += data
            end = head.find(b"\r\n\r\n")
            if end < 0:
                continue
            r.headers = t
            lines = head[:end].decode("latin-1").split("\r\n")
            try:
                r.status = int(lines[0].split(" ", 2)[1])
            except (IndexError, ValueError):
                r.status = -1
            chunked, length = False, -1
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
                elif name == "content-length":
                    length = int(value.strip() or 0)
            body = _Body(chunked, length)
            data = head[end + 4:]
            if r.status != 200:
                r.fail(f"status_{r.status}")
                return
        sse += body.feed(data)
        if b"\r" in sse:
            sse = sse.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        while True:
            end = sse.find(b"\n\n")
            if end < 0:
                break
            _event(r, sse[:end], t)
            sse = sse[end + 2:]
    if body is None:
        r.fail("reset" if r.lost == "reset" else "closed_before_headers")
        return
    if not body.ended and (body.chunked or body.left > 0):
        r.fail("broken")  # the connection ended inside the body
    elif not (r.done and r.final):
        r.fail("incomplete")


def _event(r: Result, block: bytes, t: float) -> None:
    datas = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
    if not datas:
        return  # a comment or keep-alive event
    data = b"\n".join(datas)
    if data == b"[DONE]":
        r.done = True
        return
    try:
        obj = json.loads(data)
    except ValueError:
        r.fail("malformed_event")
        return
    if not isinstance(obj, dict):
        r.fail("malformed_event")
        return
    if obj.get("error") is not None:
        r.fail("error_event")
        return
    content = None
    choices = obj.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if piece:
                content = piece if content is None else content + piece
            if choice.get("finish_reason"):
                r.final = True
    else:
        piece = obj.get("delta")
        if isinstance(piece, str) and piece:
            content = piece
        if obj.get("finish_reason"):
            r.final = True
    if obj.get("usage"):
        r.usage = True
    if content is not None:
        r.content_times.append(t)
        r.text.append(content)


def build_request(url: str, body: bytes, headers: list[str]) -> tuple[str, int, bytes]:
    """The host, port and raw HTTP/1.1 request bytes for one stream."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
             "Accept: text/event-stream", f"Content-Length: {len(body)}", "Connection: close"]
    lines.extend(headers)
    return parts.hostname, parts.port or 80, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_part(host: str, port: int, request: bytes, indices: list[int], total: int, start: float,
                   ramp_s: float, timeout_s: float, expect_text: str | None) -> list[dict]:
    """Run the streams numbered ``indices`` (of ``total``) and return one record per stream."""
    loop = asyncio.get_running_loop()
    deadline = start + timeout_s
    results = {i: Result() for i in indices}
    opened: dict[int, float] = {}

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + ramp_s * i / total - now()))
        r = results[i]
        opened[i] = now()
        finished = loop.create_future()
        transport = None
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: StreamProtocol(request, r, finished), host, port),
                timeout=max(0.1, deadline - now()))
            await asyncio.wait_for(finished, timeout=max(0.1, deadline - now()))
        except asyncio.TimeoutError:
            r.fail("timeout")
        except OSError as err:
            r.fail("connect_" + type(err).__name__)
        finally:
            if transport is not None:
                transport.abort()
            if r.ended is None:
                r.ended = now()

    await asyncio.gather(*(one(i) for i in indices))
    records = []
    for i, r in results.items():
        prior, r.error = r.error, None
        parse(r)
        if prior == "timeout":
            # What the server said before the deadline wins; otherwise the stream simply ran out of time.
            if not (r.error or "").startswith(("status_", "error_event", "malformed_event")):
                r.error = "timeout"
        elif prior:
            r.error = prior
        records.append(_record(r, opened.get(i, r.ended), expect_text))
    return records


def _record(r: Result, opened: float, expect_text: str | None) -> dict:
    ms = lambda t: None if t is None or r.sent is None else (t - r.sent) * 1000  # noqa: E731
    times = r.content_times
    return {
        "error": r.error,
        "opened": opened,
        "ended": r.ended,
        "first_byte_ms": ms(r.first_byte),
        "headers_ms": ms(r.headers),
        "ttfb_ms": ms(times[0]) if times else None,
        "duration_ms": ms(r.ended) if not r.error else None,
        "gaps_ms": [(b - a) * 1000 for a, b in zip(times, times[1:])],
        "events": len(times),
        "mismatch": bool(expect_text is not None and not r.error and "".join(r.text) != expect_text),
    }


def _run_in_child(conn, args) -> None:
    try:
        conn.send(asyncio.run(run_part(*args)))
    except BaseException as err:  # the parent must hear about a crash, not wait forever
        conn.send(err)
    finally:
        conn.close()


def run(url: str, body: bytes, headers: list[str], streams: int, ramp_s: float, timeout_s: float,
        expect_text: str | None = None, procs: int = 1) -> dict:
    """Run the streams (over ``procs`` client processes) and return the summary."""
    host, port, request = build_request(url, body, headers)
    start = now() + 0.2  # CLOCK_MONOTONIC is shared, so child processes can start on the same schedule
    parts = [list(range(k, streams, procs)) for k in range(procs)]
    if procs == 1:
        records = asyncio.run(run_part(host, port, request, parts[0], streams, start, ramp_s, timeout_s,
                                       expect_text))
    else:
        ctx = multiprocessing.get_context("fork")
        children = []
        for part in parts:
            parent_end, child_end = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_run_in_child, args=(child_end, (host, port, request, part, streams, start,
                                                                       ramp_s, timeout_s, expect_text)))
            proc.start()
            child_end.close()
            children.append((proc, parent_end))
        records = []
        for proc, conn in children:
            got = conn.recv() if conn.poll(timeout_s + 60) else RuntimeError("stream client process hung")
            proc.join(5)
            if isinstance(got, BaseException):
                raise got
            records.extend(got)
    return summarize(records, now() - start)


def peak_concurrency(intervals) -> int:
    """The most intervals open at one instant."""
    edges = sorted([(a, 1) for a, b in intervals] + [(b, -1) for a, b in intervals], key=lambda e: (e[0], e[1]))
    cur = peak = 0
    for _, step in edges:
        cur += step
        peak = max(peak, cur)
    return peak


def summarize(records: list[dict], wall: float) -> dict:
    """Turn per-stream records into counts and millisecond percentiles."""
    errors: dict[str, int] = {}
    for rec in records:
        if rec["error"]:
            errors[rec["error"]] = errors.get(rec["error"], 0) + 1
    pick = lambda key: [rec[key] for rec in records if rec[key] is not None]  # noqa: E731
    rnd = lambda d: {k: (round(v, 3) if v is not None else None) for k, v in d.items()}  # noqa: E731
    counts = [rec["events"] for rec in records]
    return {
        "streams": len(records),
        "ok": len(records) - sum(errors.values()),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "content_mismatch": sum(rec["mismatch"] for rec in records),
        "peak_open_streams": peak_concurrency([(rec["opened"], rec["ended"]) for rec in records
                                               if rec["opened"] is not None and rec["ended"] is not None]),
        "wall_s": round(wall, 3),
        "ttfb_ms": rnd(percentiles(pick("ttfb_ms"))),
        "first_byte_ms": rnd(percentiles(pick("first_byte_ms"))),
        "headers_ms": rnd(percentiles(pick("headers_ms"))),
        "duration_ms": rnd(percentiles(pick("duration_ms"))),
        "chunk_gap_ms": rnd(percentiles([g for rec in records for g in rec["gaps_ms"]])),
        "content_events_per_stream": {"min": min(counts, default=0), "max": max(counts, default=0),
                                      "mean": round(sum(counts) / len(counts), 2) if counts else 0},
    }


def raise_nofile(wanted: int) -> int:
    """Lift the soft open-file limit towards ``wanted`` (capped by the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def main(argv=None) -> None:
    """Command line: run once and print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="full URL, e.g. http://127.0.0.1:8000/v1/chat/completions")
    parser.add_argument("--body", required=True, help="JSON request body (it should ask for a stream)")
    parser.add_argument("--header", action="append", default=[], help="extra 'Name: value' header, repeatable")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--ramp-s", type=float, default=1.0, help="spread stream starts over this many seconds")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="deadline for the whole run")
    parser.add_argument("--expect-text", help="the reply every stream should reassemble to")
    parser.add_argument("--procs", type=int, default=1, help="client processes sharing the streams")
    parser.add_argument("--uvloop", action="store_true", help="use uvloop when it is installed")
    parser.add_argument("--out", help="also write the JSON summary to this file")
    args = parser.parse_args(argv)
    raise_nofile(args.streams * 2 + 256)
    if args.uvloop:
        try:
            import uvloop  # type: ignore[import-not-found]
            uvloop.install()
        except ImportError:
            print("uvloop not installed; using asyncio's loop", file=sys.stderr)
    summary = run(args.url, args.body.encode(), args.header, args.streams, args.ramp_s, args.timeout_s,
                  args.expect_text, max(1, args.procs))
    text = json.dumps(summary)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
