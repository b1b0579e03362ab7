#!/usr/bin/env python3
"""Micro-benchmark of the limiter's cost per request: ``check_request`` + ``reserve`` + ``settle``.

One keyed caller with a request rate, a token rate and a daily quota (so every
counter a request touches is touched), limits high enough never to refuse.
Prints the best of ``--rounds`` runs of ``-n`` requests, in microseconds per
request, for each counter store available::

    .venv/bin/python bench/limiter.py            # 100,000 requests, best of 5
    .venv/bin/python bench/limiter.py -n 20000 --rounds 3
    .venv/bin/python bench/limiter.py --gevent   # monkey-patched first, as gunicorn's gevent workers are
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

if "--gevent" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.access import counters as counters_module  # noqa: E402
from app.access.keys import Caller  # noqa: E402
from app.access.limits import Limiter  # noqa: E402

CALLER = Caller(id="key:1", limit_key="key:1", name="bench")


def stores(tmp: str) -> dict:
    """Each counter store this version of chatgate has, freshly made (older versions had only the first)."""
    found = {"in-process": counters_module.MemoryCounters}
    try:
        from app.access.shared_table import SharedCounters
    except ImportError:
        return found
    found["shared table"] = lambda: SharedCounters.create(os.path.join(tmp, f"limits-{time.monotonic_ns()}"))
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
    parser.add_argument("--gevent", action="store_true", help="monkey-patch with gevent first")
    args = parser.parse_args()
    # /dev/shm, where gunicorn.conf.py puts the real table.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="chatgate-bench-", dir=shm) as tmp:
        for name, make in stores(tmp).items():
            best = min(run(make(), args.n) for _ in range(args.rounds))
            print(f"{name:>14}: {best / args.n * 1e6:6.2f} µs per request "
                  + f"(check_request + reserve + settle, best of {args.rounds} × {args.n:,}"
                  + (", gevent)" if args.gevent else ")"))


if __name__ == "__main__":
    main()
