#!/usr/bin/env python3
"""Micro-benchmark of the limiter's cost per request: ``check_request`` + ``reserve`` + ``settle``.

One keyed caller with a request rate, a token rate and a daily quota (so every
counter a request touches is touched), limits high enough never to refuse.
Prints the best of ``--rounds`` runs of ``-n`` requests, in microseconds per
request, for each counter store available::

    .venv/bin/python bench/limiter.py            # 100,000 requests, best of 5
    .venv/bin/python bench/limiter.py -n 20000 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.access import counters as counters_module  # noqa: E402
from app.access.keys import Caller  # noqa: E402
from app.access.limits import Limiter  # noqa: E402

CALLER = Caller(id="key:1", limit_key="key:1", name="bench")


def stores(tmp: str) -> dict:
    """Each counter store this version of chatgate has, freshly made."""
    found = {"in-process": counters_module.MemoryCounters}
    shared = getattr(counters_module, "SharedCounters", None)
    if shared is not None:
        found["shared table"] = lambda: shared.create(os.path.join(tmp, "limits.shm"))
    return found


def run(counters, n: int) -> float:
    """Seconds for ``n`` limited requests on one caller."""
    limiter = Limiter(counters, rate_limit="1000000000/minute", token_rate_limit="1000000000/minute",
                      daily_token_quota=10**12, max_streams=8)
    start = time.perf_counter()
    for _ in range(n):
        limiter.check_request(CALLER)
        held = limiter.reserve(CALLER, 500)
        limiter.settle(held, 120)
    return time.perf_counter() - start


def main() -> None:
    """Measure and print one line per store."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="requests per run")
    parser.add_argument("--rounds", type=int, default=5, help="runs; the best counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatgate-bench-") as tmp:
        for name, make in stores(tmp).items():
            best = min(run(make(), args.n) for _ in range(args.rounds))
            print(f"{name:>14}: {best / args.n * 1e6:6.2f} µs per request "
                  + f"(check_request + reserve + settle, best of {args.rounds} × {args.n:,})")


if __name__ == "__main__":
    main()
