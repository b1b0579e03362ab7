#!/usr/bin/env python3
"""Profile chatgate's non-streamed hot path against the nginx upstream.

Two ways, both in the production configuration bench/run.py measures:

``--mode live`` (default): chatgate under gunicorn as ``make run`` starts it,
loaded by wrk at 16 connections while py-spy samples every worker. Prints
the functions with the most samples (own time and time including callees),
keeps the collapsed stacks in bench/profiles/ (flamegraph.pl and
speedscope read them) and draws them as an SVG flame graph beside them
(``--svg`` writes it elsewhere, e.g. under docs/).
This is the real server: gevent, sockets, gunicorn and all.

``--mode inproc``: N requests through Flask's test client inside one
process under pyinstrument (or ``--tool cprofile``). No network between
client and app, so the app's own code stands out; the test client's
frames are visible and should be read past.

    python3 bench/profile_hotpath.py                      # live, 10 s
    python3 bench/profile_hotpath.py --load streams       # live, during 1,000 streams
    python3 bench/profile_hotpath.py --svg docs/flame-after.svg
    python3 bench/profile_hotpath.py --mode inproc -n 3000
    python3 bench/profile_hotpath.py --mode inproc --tool cprofile

Record the top lines before and after a change in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROFILES = BENCH / "profiles"


def _bench_tools(packages: list[str]) -> Path:
    """bench/.venv with ``packages`` installed; returns its bin directory."""
    venv = BENCH / ".venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    missing = [p for p in packages if subprocess.run([str(py), "-m", "pip", "show", "-q", p],
                                                      capture_output=True).returncode != 0]
    if missing:
        print(f"installing {' '.join(missing)} into bench/.venv", file=sys.stderr)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *missing], check=True)
    return venv / "bin"


def top_from_collapsed(path: Path, limit: int) -> str:
    """The functions with the most samples, own and cumulative, from py-spy's collapsed stacks."""
    own: collections.Counter = collections.Counter()
    cum: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        # The process/thread prefix frames py-spy adds are not code.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        own[frames[-1]] += n
        for f in set(frames):
            cum[f] += n
    if not total:
        return "no samples"
    out = [f"{total} samples", "", "own time (the function itself):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(limit)]
    out += ["", "including callees (chatgate and config code only):"]
    ours = [(f, n) for f, n in cum.most_common() if re.search(r"\((?:app/|config\.py|wsgi\.py)", f)]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in ours[:limit]]
    return "\n".join(out)


def live(args) -> int:
    """py-spy over gunicorn workers while wrk (or the stream client) loads them."""
    sys.path.insert(0, str(ROOT))
    from bench import flamegraph, procs
    from bench import run as benchrun

    spy = _bench_tools(["py-spy"]) / "py-spy"
    benchrun.raise_nofile()
    benchrun.ensure_tools()
    managed = procs.Managed()
    work = Path(tempfile.mkdtemp(prefix="chatgate-profile-"))
    PROFILES.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    raw = PROFILES / f"live-{stamp}.txt"
    try:
        upstream = benchrun.Upstream(managed, work, 64, 20.0, 1)
        upstream.use("nginx")
        subject = benchrun.Chatgate(managed, work, upstream)
        subject.start()
        print(f"chatgate on {subject.url}; features {json.dumps(subject.info.get('features', {}))}", file=sys.stderr)
        if args.load == "streams":
            # Streams come from the asyncio mock; 1,000 of them last long enough to sample for ~10 s.
            upstream.use("mock")
            benchrun.stream_run(subject.url, subject.body(True), subject.key, 16, 0.2, 30, 1, None, {})
            argv = [benchrun.bench_python(), str(BENCH / "streams.py"), "--url", subject.url, "--body",
                    json.dumps(subject.body(True)), "--streams", str(args.streams), "--ramp-s", "1",
                    "--timeout-s", "60", "--procs", "2", "--uvloop"]
            if subject.key:
                argv += ["--header", f"Authorization: Bearer {subject.key}"]
            load = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        else:
            benchrun.wrk(subject.url, 16, 2, subject.body(False), subject.key)  # warm-up
            wrk_env = dict(os.environ, WRK_BODY=json.dumps(subject.body(False)), WRK_AUTH=subject.key or "")
            load = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.seconds + 2:g}s", "-s",
                                     str(BENCH / "post.lua"), subject.url], env=wrk_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        time.sleep(0.5)
        common = [str(spy), "record", "--pid", str(subject.proc.pid), "--subprocesses", "--duration",
                  f"{args.seconds:g}", "--rate", str(args.rate), "--nonblocking", "--function"]
        subprocess.run(common + ["--format", "raw", "--output", str(raw)], capture_output=True, text=True,
                       timeout=args.seconds + 60)
        out, _ = load.communicate(timeout=args.seconds + 90)
        line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), "")
        if line:
            data = json.loads(line[9:])
            print(f"under load: {data['requests'] / (data['duration_us'] / 1e6):,.0f} req/s at 16 connections "
                  + f"(slower than unprofiled: py-spy takes CPU too)")
        elif args.load == "streams" and out.strip():
            summary = json.loads(out.strip().splitlines()[-1])
            print(f"under load: {summary['ok']} of {summary['streams']} streams ok, TTFB p99 "
                  + f"{summary['ttfb_ms']['p99']} ms (py-spy takes CPU too)")
        if raw.exists():
            print(top_from_collapsed(raw, args.top))
            print(f"\ncollapsed stacks: {raw.relative_to(ROOT)}")
            svg = Path(args.svg) if args.svg else raw.with_suffix(".svg")
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(ROOT), capture_output=True,
                                    text=True).stdout.strip() or "unknown commit"
            load_name = "1,000 concurrent streams" if args.load == "streams" else "wrk, 16 connections, non-streamed"
            svg.write_text(flamegraph.render(raw.read_text(errors="replace").splitlines(),
                                             f"chatgate {commit} under {load_name} (py-spy, gunicorn workers)"),
                           encoding="utf-8")
            print(f"flame graph: {svg}")
    finally:
        managed.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def inproc(args) -> int:
    """Re-run this script under the app's python with the profiler importable from bench/.venv."""
    sys.path.insert(0, str(ROOT))
    from bench import procs
    from bench import run as benchrun

    tools = _bench_tools(["pyinstrument"])
    site = next((tools.parent / "lib").glob("python3*/site-packages"))
    benchrun.ensure_tools()
    managed = procs.Managed()
    work = Path(tempfile.mkdtemp(prefix="chatgate-profile-"))
    try:
        upstream = benchrun.Upstream(managed, work, 64, 20.0, 1)
        upstream.use("nginx")
        subject = benchrun.Chatgate(managed, work, upstream)
        env = subject.env()
        subject.resolve_config(env)
        subject.migrate(env)
        key, note = subject.create_key(env)
        if key is None:
            env["AUTH_MODE"] = "open"
            print(f"auth off: {note}", file=sys.stderr)
        env.update(BENCH_PROFILE_KEY=key or "", BENCH_PROFILE_SITE=str(site), BENCH_PROFILE_N=str(args.requests),
                   BENCH_PROFILE_TOOL=args.tool, BENCH_PROFILE_PATH=args.path, BENCH_PROFILE_TOP=str(args.top))
        return subprocess.run([str(ROOT / ".venv" / "bin" / "python"), __file__, "--_child"], env=env,
                              cwd=str(ROOT)).returncode
    finally:
        managed.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def _child() -> int:
    """Inside the app's python: build the app, warm up, profile N requests, print the report."""
    # Appended, not prepended: the app's own packages always win over anything in bench/.venv.
    sys.path.append(os.environ["BENCH_PROFILE_SITE"])
    sys.path.insert(0, str(ROOT))
    from wsgi import app

    key = os.environ.get("BENCH_PROFILE_KEY")
    n = int(os.environ["BENCH_PROFILE_N"])
    path = os.environ["BENCH_PROFILE_PATH"]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = ({"prompt": "Say hello."} if path == "/chat"
            else {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]})
    client = app.test_client()
    status = client.post(path, json=body, headers=headers).status_code
    if status != 200:
        print(f"{path} answered {status}; try --path /chat or /v1/chat/completions", file=sys.stderr)
        return 1
    for _ in range(200):
        client.post(path, json=body, headers=headers)
    tool = os.environ["BENCH_PROFILE_TOOL"]
    t = time.perf_counter()
    if tool == "cprofile":
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(n):
            client.post(path, json=body, headers=headers)
        prof.disable()
        elapsed = time.perf_counter() - t
        pstats.Stats(prof).sort_stats("tottime").print_stats(int(os.environ["BENCH_PROFILE_TOP"]))
    else:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0002)
        prof.start()
        for _ in range(n):
            client.post(path, json=body, headers=headers)
        prof.stop()
        elapsed = time.perf_counter() - t
        print(prof.output_text(unicode=True, color=False, show_all=False))
        PROFILES.mkdir(exist_ok=True)
        html = PROFILES / f"inproc-{time.strftime('%Y%m%dT%H%M%S')}.html"
        html.write_text(prof.output_html(), encoding="utf-8")
        print(f"HTML: {html.relative_to(ROOT)}")
    print(f"{n} requests to {path} in {elapsed:.2f} s under the profiler: {1000 * elapsed / n:.3f} ms each "
          + "(test client included)")
    return 0


def main(argv=None) -> int:
    """Command line."""
    if argv is None and sys.argv[1:] == ["--_child"]:
        return _child()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("live", "inproc"), default="live")
    parser.add_argument("--seconds", type=float, default=10.0, help="live: how long py-spy samples")
    parser.add_argument("--rate", type=int, default=250, help="live: py-spy samples per second")
    parser.add_argument("--load", choices=("wrk", "streams"), default="wrk",
                        help="live: non-streamed wrk load, or concurrent streams from the mock")
    parser.add_argument("--streams", type=int, default=1000, help="live --load streams: how many")
    parser.add_argument("-n", "--requests", type=int, default=3000, help="inproc: requests to profile")
    parser.add_argument("--tool", choices=("pyinstrument", "cprofile"), default="pyinstrument")
    parser.add_argument("--path", default="/v1/chat/completions", help="inproc: /chat or /v1/chat/completions")
    parser.add_argument("--top", type=int, default=25, help="how many lines of the summary")
    parser.add_argument("--svg", help="live: where to write the flame graph (default: beside the stacks)")
    args = parser.parse_args(argv)
    return live(args) if args.mode == "live" else inproc(args)


if __name__ == "__main__":
    sys.exit(main())
