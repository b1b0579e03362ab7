#!/usr/bin/env python3
"""How chatgate's overhead grows with what a request carries: prompt size, and conversation history.

chatgate runs as bench/run.py runs it (gunicorn, production settings, keys,
limits, the filter) behind the nginx upstream. One client on one keep-alive
connection sends the same request again and again, so each figure is one
request's own cost, not queueing:

- prompt size: ``POST /v1/chat/completions`` with one user message of 1 KB,
  16 KB and 128 KB of plain words (``MAX_PROMPT_CHARS`` and ``MAX_TOTAL_CHARS``
  are raised to let the largest through; every check still runs on it);
- history: ``POST /chat`` continuing a stored conversation of 1, 10 and 100
  turns (each sample its own conversation, built first, so every measured
  request sees exactly that history).

The direct upstream gets the same bodies (for history: the messages chatgate
would send), so *overhead* = chatgate − direct, at the median. Server CPU per
request is the CPU time of chatgate's process tree over the measured requests
divided by their number. ``make bench`` runs this after bench/run.py; the
table goes to the growth section of docs/benchmarks.md.

    python3 bench/growth.py                 # about a minute
    python3 bench/growth.py --no-docs -n 20
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench import procs  # noqa: E402
from bench import run as benchrun  # noqa: E402
from tests.mock_upstream import canned  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
DOC_START = "<!-- bench:growth:start (bench/growth.py rewrites this section) -->"
DOC_END = "<!-- bench:growth:end -->"
PROMPT_KB = (1, 16, 128)
TURNS = (1, 10, 100)


class Client:
    """One keep-alive HTTP/1.1 connection, timing each POST."""

    def __init__(self, base: str, key: str | None = None):
        parts = urlsplit(base)
        self.prefix = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = "Bearer " + key

    def post(self, path: str, body: dict) -> tuple[float, dict]:
        """Seconds from send to the whole answer, and the answer."""
        data = json.dumps(body).encode()
        started = time.perf_counter()
        self.conn.request("POST", self.prefix + path, data, self.headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        took = time.perf_counter() - started
        if resp.status != 200:
            raise RuntimeError(f"{path} answered {resp.status}: {raw[:300]!r}")
        return took, json.loads(raw)


def prompt_of(kb: int) -> str:
    """About ``kb`` KB of plain words: nothing the filter or the guard could act on."""
    words = " ".join(canned.WORDS) + " "
    return (words * (kb * 1024 // len(words) + 1))[:kb * 1024]


def measure(send, n: int, pid: int | None) -> dict:
    """Median and p90 latency of ``n`` calls of ``send``, and server CPU per call when ``pid`` is given."""
    cpu0 = procs.cpu_seconds(procs.tree(pid)) if pid else 0.0
    times = sorted(send(i) for i in range(n))
    cpu = (procs.cpu_seconds(procs.tree(pid)) - cpu0) / n if pid else None
    return {"p50_ms": 1000 * statistics.median(times), "p90_ms": 1000 * times[int(0.9 * (n - 1))],
            "cpu_ms": None if cpu is None else 1000 * cpu}


def history_messages(turns: int) -> list[dict]:
    """What chatgate sends upstream for a conversation of ``turns`` benchmark turns, plus the new prompt."""
    reply = canned.completion()["choices"][0]["message"]["content"]
    messages = []
    for _ in range(turns):
        messages += [{"role": "user", "content": benchrun.PROMPT}, {"role": "assistant", "content": reply}]
    return messages + [{"role": "user", "content": benchrun.PROMPT}]


def run(n: int) -> list[dict]:
    """Every row of the growth table."""
    managed = procs.Managed()
    work = Path(tempfile.mkdtemp(prefix="chatgate-growth-"))
    rows: list[dict] = []
    try:
        upstream = benchrun.Upstream(managed, work, 64, 20.0, 1)
        upstream.use("nginx")
        subject = benchrun.Chatgate(managed, work, upstream)
        # The largest prompt is past the default bounds (32,000 characters a message, 128,000 a request).
        subject.start({"MAX_PROMPT_CHARS": str(200 * 1024), "MAX_TOTAL_CHARS": str(256 * 1024)})
        pid = subject.proc.pid
        gate = Client(f"http://127.0.0.1:{subject.port}", subject.key)
        direct = Client(upstream.base_url)
        for kb in PROMPT_KB:
            body = {"model": benchrun.MODEL, "messages": [{"role": "user", "content": prompt_of(kb)}]}
            for _ in range(5):  # warm-up
                gate.post("/v1/chat/completions", body)
                direct.post("/chat/completions", body)
            d = measure(lambda _i: direct.post("/chat/completions", body)[0], n, None)
            g = measure(lambda _i: gate.post("/v1/chat/completions", body)[0], n, pid)
            rows.append({"case": f"prompt {kb} KB", "path": "/v1/chat/completions", "direct": d, "chatgate": g})
            benchrun.log(f"growth: prompt {kb} KB: +{g['p50_ms'] - d['p50_ms']:.2f} ms, {g['cpu_ms']:.2f} CPU ms")
        for turns in TURNS:
            ids = []
            for _ in range(n):
                _, first = gate.post("/chat", {"prompt": benchrun.PROMPT})
                for _ in range(turns - 1):
                    gate.post("/chat", {"prompt": benchrun.PROMPT, "conversation_id": first["conversation_id"]})
                ids.append(first["conversation_id"])
            body = {"model": benchrun.MODEL, "messages": history_messages(turns)}
            for _ in range(5):
                direct.post("/chat/completions", body)
            d = measure(lambda _i: direct.post("/chat/completions", body)[0], n, None)
            g = measure(lambda i: gate.post("/chat", {"prompt": benchrun.PROMPT, "conversation_id": ids[i]})[0],
                        n, pid)
            rows.append({"case": f"history {turns} turn{'s' if turns > 1 else ''}", "path": "/chat",
                         "direct": d, "chatgate": g})
            benchrun.log(f"growth: {turns} turns: +{g['p50_ms'] - d['p50_ms']:.2f} ms, {g['cpu_ms']:.2f} CPU ms")
    finally:
        managed.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def table(rows: list[dict], n: int) -> str:
    """The growth table as Markdown."""
    out = [f"**Growth** — one keep-alive connection, {n} requests per row, medians; overhead = chatgate − direct "
           "upstream (nginx) for the same body.", "",
           "| case | measured on | direct p50 | chatgate p50 | overhead p50 | overhead ÷ smallest | "
           "server CPU per request |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    base: dict[str, float] = {}
    for row in rows:
        over = row["chatgate"]["p50_ms"] - row["direct"]["p50_ms"]
        group = row["case"].split()[0]
        base.setdefault(group, max(over, 1e-6))
        out.append(f"| {row['case']} | `POST {row['path']}` | {row['direct']['p50_ms']:.2f} ms | "
                   f"{row['chatgate']['p50_ms']:.2f} ms | {over:.2f} ms | {over / base[group]:.1f}× | "
                   f"{row['chatgate']['cpu_ms']:.2f} ms |")
    return "\n".join(out)


def update_docs(path: Path, text: str) -> None:
    """Replace the growth section of docs/benchmarks.md (after the results section if it has none yet)."""
    section = f"{DOC_START}\n{text}\n{DOC_END}"
    doc = path.read_text(encoding="utf-8")
    if DOC_START in doc and DOC_END in doc:
        head, rest = doc.split(DOC_START, 1)
        doc = head + section + rest.split(DOC_END, 1)[1]
    else:
        marker = "<!-- bench:results:end -->"
        doc = doc.replace(marker, marker + "\n\n" + section, 1) if marker in doc else doc + "\n" + section + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=40, help="measured requests (and conversations) per row")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    benchrun.raise_nofile()
    benchrun.ensure_tools()
    rows = run(args.n)
    text = table(rows, args.n)
    print(text)
    if not args.no_docs:
        update_docs(DOCS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
