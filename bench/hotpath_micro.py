#!/usr/bin/env python3
"""Micro-benchmark: the cost of one full /v1/chat/completions request inside chatgate, through Flask's test client.

The production configuration (client keys, limits, the filter, the usage
ledger, metrics and JSON logs written to a real file descriptor) behind an
upstream that answers instantly from memory, so only chatgate's own work is
timed: no sockets, no other process. ``--root`` points at another checkout,
which is how a change is compared with the code before it:

    mkdir /tmp/chatgate-before && git archive <commit> | tar -x -C /tmp/chatgate-before
    .venv/bin/python bench/hotpath_micro.py --compare /tmp/chatgate-before

runs both in turns (A, B, A, B, ...) so a busy machine slows both alike, and
prints CPU microseconds per request (median and best round) and the ratio.
CPU time rather than wall time, so other work on a shared machine counts
for as little as possible.

``--stream K`` times whole streamed requests instead (``stream: true``, 64
content chunks in the mock upstream's format, then the finish, usage and
``[DONE]`` events), with K events arriving in each read of the upstream
body: 1 is an idle gateway, larger K what a loaded one finds waiting in a
socket. The figure is CPU microseconds per stream.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = "http://bench-upstream.invalid/v1"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello to the benchmark."}]}
COMPLETION = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, benchmark! How are you?"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}}


def stream_reads(chunks: int, per_read: int) -> list[bytes]:
    """The SSE body of one streamed completion, as the upstream reads that deliver it."""
    sys.path.insert(0, str(ROOT))
    from tests.mock_upstream.canned import StreamEncoder

    enc = StreamEncoder()
    events = [enc.chunk(i) for i in range(chunks)] + [enc.finish(), enc.usage(chunks), enc.done()]
    return [b"".join(events[i:i + per_read]) for i in range(0, len(events), per_read)]


class Reads:
    """A response body that hands out one prepared read per call, as a socket does."""

    def __init__(self, reads: list[bytes]):
        self._reads = iter(reads)

    def read1(self, size: int = -1) -> bytes:
        """The next read (never more than what has "arrived")."""
        return next(self._reads, b"")

    def close(self) -> None:
        """Nothing to release."""


def child(n: int, rounds: int, extra: dict | None = None, stream: int = 0) -> dict:
    """Inside one checkout: build the app, warm up, time ``rounds`` x ``n`` requests."""
    import requests
    from requests.adapters import BaseAdapter

    from app import create_app, start

    reads = stream_reads(64, stream) if stream else []

    class Canned(BaseAdapter):
        """An upstream that answers at once from memory."""

        body = json.dumps(COMPLETION).encode()

        def send(self, request, **kwargs):
            resp = requests.Response()
            resp.status_code, resp.url, resp.request = 200, request.url, request
            if stream:
                resp.headers["Content-Type"] = "text/event-stream"
                resp.raw = Reads(reads)
                return resp
            resp.headers["Content-Type"] = "application/json"
            resp.raw = io.BytesIO(self.body)  # read the way chatgate reads every upstream body: in bounded pieces
            return resp

        def close(self):
            pass

    work = tempfile.mkdtemp(prefix="chatgate-micro-")
    from cryptography.fernet import Fernet

    env = {"APP_ENV": "production", "OPENAI_API_KEY": "sk-bench-0123456789abcdef", "OPENAI_BASE_URL": UPSTREAM,
           "DATABASE_URL": f"sqlite:///{work}/db.sqlite", "DB_AUTO_MIGRATE": "true", "KEY_HASH_SECRET": "b" * 40,
           "DATA_ENCRYPTION_KEY": Fernet.generate_key().decode(), "LOG_FORMAT": "json",
           "RATE_LIMIT": "100000000/minute", "TOKEN_RATE_LIMIT": "1000000000/minute",
           "DAILY_TOKEN_QUOTA": "1000000000000", **(extra or {})}
    app = start(create_app(env))
    found = app.extensions["chatgate"]
    # A session per upstream behind the router (found.upstream); older checkouts have the one client there.
    clients = getattr(found.upstream, "upstreams", None) or {"default": found.upstream}
    for upstream in clients.values():
        upstream._session.mount("http://bench-upstream.invalid", Canned())
    with app.app_context():
        key = found.keyring.create("bench")
    headers = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    # Log lines go to a real descriptor, as under gunicorn, but not to the terminal.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}} if stream else BODY
    for _ in range(30 if stream else 300):
        resp = client.post("/v1/chat/completions", json=body, headers=headers, buffered=True)
        assert resp.status_code == 200 and (not stream or resp.data.endswith(b"data: [DONE]\n\n")), resp.data[-300:]
    # CPU time of this process: what chatgate itself costs, whatever else the machine is doing.
    times = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            client.post("/v1/chat/completions", json=body, headers=headers, buffered=True)
        times.append((time.process_time() - started) / n * 1e6)
    # What the WSGI server would write to the client's socket: one write per piece of the body.
    writes = len(list(client.post("/v1/chat/completions", json=body, headers=headers).response)) if stream else 1
    found.ledger.flush()
    return {"median_us": statistics.median(times), "best_us": min(times), "rounds": times, "writes": writes}


def run(root: Path, n: int, rounds: int, extra: dict | None = None, stream: int = 0) -> dict:
    """One measurement in a fresh interpreter, importing the app from ``root``."""
    # This file is loaded by path: the other checkout's bench/ package may not have it.
    code = (f"import json, runpy, sys; sys.path.insert(0, {str(root)!r}); "
            + f"child = runpy.run_path({__file__!r})['child']; "
            + f"print(json.dumps(child({n}, {rounds}, {extra or {}!r}, {stream})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(root), capture_output=True, text=True, timeout=900,
                          env={k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PROMETHEUS_"))})
    if done.returncode != 0:
        raise SystemExit(f"measurement in {root} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(ROOT), help="the checkout to measure (default: this one)")
    parser.add_argument("--compare", help="another checkout to measure in turns with --root")
    parser.add_argument("-n", type=int, default=500, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--turns", type=int, default=3, help="with --compare: how many times each is run")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for --root only, e.g. LOG_LEVEL=warning (no request lines)")
    parser.add_argument("--stream", type=int, default=0, metavar="K",
                        help="time streamed requests, K upstream events arriving per read (0: not streamed)")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.set)
    subjects = [Path(args.root)] + ([Path(args.compare)] if args.compare else [])
    results: dict[Path, list[dict]] = {s: [] for s in subjects}
    for _ in range(args.turns if args.compare else 1):
        for subject in subjects:
            results[subject].append(run(subject, args.n, args.rounds, extra if subject == subjects[0] else None,
                                       args.stream))
    summary = {}
    for subject, runs in results.items():
        medians = [r["median_us"] for r in runs]
        best = min(r["best_us"] for r in runs)
        summary[str(subject)] = {"median_us": round(statistics.median(medians), 1), "best_us": round(best, 1)}
        unit = "stream" if args.stream else "request"
        writes = f", {runs[0]['writes']} body writes a stream" if args.stream else ""
        print(f"{subject}: {statistics.median(medians):7.1f} CPU us/{unit} median, {best:7.1f} best round{writes}")
    if args.compare:
        a, b = (summary[str(s)] for s in subjects)
        print(f"ratio {subjects[0].name or subjects[0]} / {subjects[1].name}: "
              + f"median {a['median_us'] / b['median_us']:.3f}, best {a['best_us'] / b['best_us']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
