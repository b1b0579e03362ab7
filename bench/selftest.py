#!/usr/bin/env python3
"""Check the harness itself: the mock's faults and how the stream client classifies them.

Takes a few seconds, needs nothing outside the standard library:
``python3 bench/selftest.py``. Prints one line per check and exits non-zero
on any failure.
"""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import streams  # noqa: E402
from bench.upstream import canned  # noqa: E402
from bench.upstream.mock import run_in_thread  # noqa: E402

STREAM_BODY = json.dumps({"model": "gpt-4o-mini", "messages": [], "stream": True,
                          "stream_options": {"include_usage": True}}).encode()


def stream_errors(url: str, n: int = 4, timeout: float = 5.0, chunks: int = 6) -> dict:
    """Run ``n`` streams against ``url``; the client's summary."""
    return streams.run(url, STREAM_BODY, [], n, 0.0, timeout, canned.stream_text(chunks))


def post(url: str, body: dict) -> tuple[int, dict, bytes]:
    """A plain POST; (status, headers, body) whatever the status."""
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def main() -> int:
    """Run every check; 0 when all pass."""
    failures = 0

    def check(name: str, ok: bool, detail) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    with run_in_thread(chunks=6, interval_ms=5) as mock:
        base = mock.base_url
        at = lambda opts: base.replace("/v1", f"/{opts}/v1") + "/chat/completions"  # noqa: E731

        status, _, body = post(base + "/chat/completions", {"model": "m"})
        check("non-streamed completion", status == 200 and json.loads(body)["choices"][0]["message"]["content"]
              == canned.REPLY, status)

        s = stream_errors(base + "/chat/completions")
        check("clean streams", s["ok"] == 4 and not s["content_mismatch"] and s["content_events_per_stream"]["min"] == 6,
              {k: s[k] for k in ("ok", "error_kinds", "content_mismatch")})
        gap = s["chunk_gap_ms"]["p50"]
        check("chunk interval", gap is not None and 3 <= gap <= 15, f"p50 gap {gap} ms for 5 ms")

        expected = {"cut": "broken", "reset": "broken", "malformed": "malformed_event", "error_event": "error_event",
                    "500": "status_500", "429": "status_429"}
        for fault, kind in expected.items():
            s = stream_errors(at(f"fault={fault},after=2"))
            kinds = s["error_kinds"]
            ok = s["errors"] == 4 and (kind in kinds or (fault == "reset" and "reset" in kinds))
            check(f"fault {fault}", ok, kinds)

        s = stream_errors(at("fault=stall,after=2,stall_s=3"), timeout=0.5)
        check("fault stall", s["error_kinds"] == {"timeout": 4}, s["error_kinds"])

        status, headers, _ = post(at("fault=429,retry_after=7"), {})
        check("429 carries Retry-After", status == 429 and headers.get("Retry-After") == "7", (status, headers.get(
            "Retry-After")))

        statuses = [post(at("fault=503,times=2"), {})[0] for _ in range(3)]
        check("times=2 then healthy", statuses == [503, 503, 200], statuses)

        status, _, body = post(base.replace("/v1", "/fault=malformed/v1") + "/chat/completions", {})
        try:
            json.loads(body)
            parsed = True
        except ValueError:
            parsed = False
        check("non-streamed malformed body", status == 200 and not parsed, status)

        stats = json.loads(urllib.request.urlopen(base.replace("/v1", "/_mock/stats"), timeout=5).read())
        check("stats", stats["streams"] > 0 and stats["streams_open"] == 0, stats)
    print(f"{failures} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
