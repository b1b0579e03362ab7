#!/usr/bin/env python3
"""Run the whole benchmark (``make bench``) and print one table.

Stdlib only, so it runs on a clean clone with the system ``python3``. It
installs what is missing (wrk and nginx with apt-get, bench/.venv with
uvloop, bench/.litellm-venv with LiteLLM's proxy, the app's .venv as
``make run`` would), then for the direct upstream and for each subject in
turn (bare proxy, chatgate, LiteLLM):

* non-streamed: wrk POSTs against nginx's canned completion, at 16 and at 1
  connections, after a warm-up;
* streamed: bench/streams.py holds 1,000 streams of 64 chunks at 20 ms from
  the asyncio mock, while the subject's process tree is sampled for memory;
* for chatgate also, restarted with the response cache on (CACHE_TTL=1h):
  non-streamed again with every request the same (all hits after the first)
  and with every request different (all misses, each one stored).

The subjects keep one upstream address for the whole run; nginx and the
stream mock take turns on it, so each subject starts only once. Results go
to bench/results/<timestamp>.json and latest.json, the table to stdout and
into docs/benchmarks.md. Every run is bounded in time, and every process
started here is stopped on the way out, also on errors and Ctrl-C.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench import procs, report  # noqa: E402
from bench.upstream import nginx  # noqa: E402
from tests.mock_upstream import canned  # noqa: E402

APP_VENV = ROOT / ".venv"
BENCH_VENV = BENCH / ".venv"
LITELLM_VENV = BENCH / ".litellm-venv"
# Pinned so that two runs compare the same LiteLLM; BENCH_LITELLM_SPEC overrides it.
LITELLM_SPEC = os.environ.get("BENCH_LITELLM_SPEC", "litellm[proxy]==1.106.2")
UPSTREAM_KEY = "sk-bench-not-a-real-key"
MODEL = "gpt-4o-mini"
PROMPT = "Say hello."
OPENAI_BODY = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
# Every limiter on and counting, with ceilings the load never reaches: the bench sends everything with
# one client key, where production traffic spreads over many.
LIMITS = {"RATE_LIMIT": "1000000/minute", "TOKEN_RATE_LIMIT": "1000000000/minute",
          "DAILY_TOKEN_QUOTA": "1000000000000", "MAX_STREAMS_PER_CLIENT": "100000"}
STREAM_CHUNKS = 64
STREAM_INTERVAL_MS = 20.0
# The failover rows: one route over two targets, the first failing (bench/run.py Chatgate.measure_failover).
FAILOVER_SCENARIOS = (
    ("primary", "primary only (one target)"),
    ("refused", "first target refuses connections"),
    ("503", "first target answers 503"),
    ("503_open", "first target answers 503, its circuit open"),
)

T0 = time.monotonic()


def log(msg: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"[bench {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- setup


def run_cmd(argv, timeout: float, env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run a command to completion with a bound, capturing its output."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def ensure_tools() -> None:
    """wrk and nginx from Debian, installed with apt-get when missing."""
    missing = [pkg for tool, pkg in (("wrk", "wrk"), ("nginx", "nginx-light"))
               if not (shutil.which(tool) or (tool == "nginx" and nginx.find_nginx()))]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"bench: missing {', '.join(missing)}; install with: sudo apt-get install -y "
                         + " ".join(missing))
    log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_cmd(["apt-get", "update"], 300, env=env)
    res = run_cmd(["apt-get", "install", "-y", "--no-install-recommends", *missing], 600, env=env)
    if res.returncode != 0:
        raise SystemExit("bench: apt-get install failed:\n" + res.stderr[-2000:])


def ensure_venv(path: Path, packages: list[str], check: str, timeout: float = 900) -> str | None:
    """A venv at ``path`` where ``check`` imports; None when ready, else why not."""
    py = path / "bin" / "python"
    if py.exists() and run_cmd([str(py), "-c", check], 120).returncode == 0:
        return None
    log(f"creating {path.relative_to(ROOT)} ({' '.join(packages)})")
    if not py.exists():
        res = run_cmd([sys.executable, "-m", "venv", str(path)], 300)
        if res.returncode != 0:
            return "venv: " + _last_line(res.stderr)
    res = run_cmd([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages], timeout)
    if res.returncode != 0:
        return "pip install failed: " + _last_line(res.stderr or res.stdout)
    if run_cmd([str(py), "-c", check], 120).returncode != 0:
        return f"installed, but `{check}` fails"
    return None


def ensure_app_venv() -> str | None:
    """The app's .venv as ``make run`` builds it; None when ready, else why not."""
    if (APP_VENV / "bin" / "gunicorn").exists():
        return None
    return ensure_venv(APP_VENV, ["-r", str(ROOT / "requirements.txt")], "import flask, gunicorn")


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def _error_line(text: str) -> str:
    """The last line of a log that names an error (a traceback's last line), else its last line."""
    for line in reversed((text or "").splitlines()):
        if re.search(r"\b\w*(Error|Exception)\b|error:|refused", line):
            return line.strip()[:300]
    return _last_line(text)


def raise_nofile() -> int:
    """Lift the open-file limit for us and every child (1,000 streams need ~3,000 descriptors)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft


# --------------------------------------------------------------------------- http probes


def post(url: str, body: dict, key: str | None = None, timeout: float = 10.0) -> tuple[int, dict, dict]:
    """POST JSON; (status, headers, parsed body or {}) without raising on HTTP errors."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, raw = err.code, dict(err.headers or {}), err.read()
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = {}
    return status, hdrs, data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- the upstream


class Upstream:
    """nginx and the stream mock taking turns on one port the subjects point at."""

    def __init__(self, managed: procs.Managed, work: Path, chunks: int, interval_ms: float, workers: int):
        self.managed = managed
        self.work = work
        self.port = procs.free_port()
        self.chunks = chunks
        self.interval_ms = interval_ms
        self.workers = workers
        self.proc = None
        self.mode = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL every subject is configured with."""
        return f"http://127.0.0.1:{self.port}/v1"

    def use(self, mode: str) -> None:
        """Serve ``nginx`` (canned completion) or ``mock`` (streams) on the shared port."""
        if mode == self.mode and self.proc is not None and self.proc.poll() is None:
            return
        if self.proc is not None:
            self.managed.stop(self.proc)
            procs.wait_for(lambda: not procs.port_open(self.port), 10)
        if mode == "nginx":
            root = self.work / "nginx"
            nginx.write_config(root, self.port)
            argv = [nginx.find_nginx(), "-p", str(root), "-e", str(root / "error.log"), "-c",
                    str(root / "nginx.conf")]
            self.proc = self.managed.start("nginx", argv, self.work / "nginx.log")
        else:
            argv = [bench_python(), "-m", "tests.mock_upstream.server", "--port", str(self.port), "--chunks",
                    str(self.chunks), "--interval-ms", str(self.interval_ms), "--workers", str(self.workers)]
            self.proc = self.managed.start("mock", argv, self.work / "mock.log", cwd=str(ROOT))
        if not procs.wait_for(lambda: procs.port_open(self.port), 15, self.proc):
            raise RuntimeError(f"the {mode} upstream did not start; see {self.work}/{mode}.log")
        self.mode = mode


def bench_python() -> str:
    """The bench venv's python (with uvloop) when present, else ours."""
    py = BENCH_VENV / "bin" / "python"
    return str(py) if py.exists() else sys.executable


# --------------------------------------------------------------------------- load generators


def wrk(url: str, connections: int, duration: float, body: dict, key: str | None, unique: bool = False) -> dict:
    """One bounded wrk run; its JSON summary plus requests/s. ``unique``: no two request bodies alike."""
    env = dict(os.environ, WRK_BODY=json.dumps(body), WRK_AUTH=key or "", WRK_UNIQUE="1" if unique else "")
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s",
            str(BENCH / "post.lua"), url]
    res = run_cmd(argv, duration + 60, env=env)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError("wrk printed no summary: " + _last_line(res.stderr or res.stdout))
    data = json.loads(line[len("WRK_JSON "):])
    data["connections"] = connections
    data["rps"] = round(data["requests"] / (data["duration_us"] / 1e6), 1)
    data["non_2xx_or_errors"] = sum(data["errors"].values())
    return data


def nonstream_runs(url: str, body: dict, key: str | None, duration: float, warmup: float,
                   sample_root: int | None, repeat: int = 1, unique: bool = False) -> dict:
    """Warm up, then measure at 16 and at 1 connections, ``repeat`` times each; the median run counts."""
    wrk(url, 16, warmup, body, key, unique)
    c16_runs, c1_runs = [], []
    for _ in range(max(1, repeat)):
        if sample_root is not None:
            pids = procs.tree(sample_root)
            cpu0 = procs.cpu_seconds(pids)
            with procs.MemorySampler(sample_root) as mem:
                run = wrk(url, 16, duration, body, key, unique)
            run["memory"] = mem.result()
            # CPU per request is steadier than requests/s when something else shares the machine.
            run["server_cpu_ms_per_request"] = round(
                1000 * (procs.cpu_seconds(pids) - cpu0) / max(1, run["requests"]), 3)
        else:
            run = wrk(url, 16, duration, body, key, unique)
        c16_runs.append(run)
        c1_runs.append(wrk(url, 1, duration, body, key, unique))
    out = {"c16": _median(c16_runs, lambda r: r["rps"]), "c1": _median(c1_runs, lambda r: -r["latency_us"]["p50"])}
    if repeat > 1:
        out["runs"] = {"c16": c16_runs, "c1": c1_runs}
    return out


def _median(runs: list[dict], key) -> dict:
    return sorted(runs, key=key)[(len(runs) - 1) // 2]


def stream_run(url: str, body: dict, key: str | None, streams: int, ramp_s: float, timeout_s: float,
               client_procs: int, sample_root: int | None, cpu_roots: dict[str, int]) -> dict:
    """One bounded run of bench/streams.py, with memory and CPU of the servers measured around it."""
    argv = [bench_python(), str(BENCH / "streams.py"), "--url", url, "--body", json.dumps(body), "--streams",
            str(streams), "--ramp-s", str(ramp_s), "--timeout-s", str(timeout_s), "--procs", str(client_procs),
            "--expect-text", canned.stream_text(STREAM_CHUNKS)]
    if (BENCH_VENV / "bin" / "python").exists():
        argv.append("--uvloop")
    if key:
        argv += ["--header", f"Authorization: Bearer {key}"]
    cpu_before = {name: procs.cpu_seconds(procs.tree(pid)) for name, pid in cpu_roots.items()}
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = procs.MemorySampler(sample_root) if sample_root is not None else None
    with sampler or contextlib.nullcontext():
        res = run_cmd(argv, timeout_s + 120)
    try:
        data = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError("stream client failed: " + _last_line(res.stderr or res.stdout)) from None
    data["cpu_s"] = {name: round(procs.cpu_seconds(procs.tree(pid)) - cpu_before[name], 2)
                     for name, pid in cpu_roots.items()}
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    data["cpu_s"]["client"] = round(client_after.ru_utime + client_after.ru_stime
                                    - client_before.ru_utime - client_before.ru_stime, 2)
    if sampler:
        data["memory"] = sampler.result()
    data["settings"] = {"streams": streams, "chunks": STREAM_CHUNKS, "interval_ms": STREAM_INTERVAL_MS,
                        "ramp_s": ramp_s, "timeout_s": timeout_s, "client_procs": client_procs}
    return data


# --------------------------------------------------------------------------- subjects


class Subject:
    """A server under test: how to start it, where to send what, and what it had on."""

    name = ""
    label = ""

    def __init__(self, managed: procs.Managed, work: Path, upstream: Upstream):
        self.managed = managed
        self.work = work
        self.upstream = upstream
        self.port = procs.free_port()
        self.proc = None
        self.key: str | None = None
        self.path = "/v1/chat/completions"
        self.info: dict = {}

    @property
    def url(self) -> str:
        """Where the non-streamed and streamed requests go."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    def body(self, stream: bool) -> dict:
        """The request body for this subject's path."""
        body = dict(OPENAI_BODY)
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return body

    def start(self) -> None:
        """Start the server and wait until it answers a completion."""
        raise NotImplementedError

    def wait_ready(self, timeout: float) -> None:
        """Wait for a 200 to a real completion request."""
        ok = procs.wait_for(lambda: post(self.url, self.body(False), self.key, timeout=5)[0] == 200, timeout,
                            self.proc, interval=0.5)
        if not ok:
            state = "exited" if self.proc.poll() is not None else "did not answer 200"
            raise RuntimeError(f"{self.label} {state} within {timeout:g}s; log: {self.log_tail()}")

    def log_tail(self) -> str:
        """The last meaningful line of this subject's log."""
        path = self.work / f"{self.name}.log"
        try:
            return _error_line(path.read_text(errors="replace"))
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server and all its workers."""
        if self.proc is not None:
            self.managed.stop(self.proc)
            self.proc = None


def chatgate_gunicorn_settings() -> dict:
    """Worker class, count and connections as chatgate's gunicorn.conf.py resolves them here."""
    code = ("import json, runpy; ns = runpy.run_path('gunicorn.conf.py'); "
            + "print(json.dumps({k: ns.get(k) for k in ('worker_class', 'workers', 'worker_connections', "
            + "'threads', 'keepalive', 'timeout')}))")
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_WORKER_CLASS")}
    try:
        res = run_cmd([str(APP_VENV / "bin" / "python"), "-c", code], 60, env=env, cwd=str(ROOT))
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError, OSError, subprocess.TimeoutExpired):
        return {}


class Bare(Subject):
    """bench/bare_proxy.py under gunicorn with chatgate's worker settings."""

    name = "bare"
    label = "bare proxy"

    def start(self) -> None:
        settings = chatgate_gunicorn_settings() or {"worker_class": "gevent", "workers": os.cpu_count() or 2,
                                                    "worker_connections": 2000, "threads": 1, "keepalive": 5}
        argv = [str(APP_VENV / "bin" / "gunicorn"), "--chdir", str(BENCH), "-b", f"127.0.0.1:{self.port}",
                "-k", str(settings["worker_class"]), "-w", str(settings["workers"]),
                "--worker-connections", str(settings["worker_connections"]),
                "--threads", str(settings.get("threads") or 1), "--keep-alive", str(settings.get("keepalive") or 5),
                "--log-level", "warning", "bare_proxy:app"]
        env = dict(os.environ, BARE_UPSTREAM=self.upstream.base_url, OPENAI_API_KEY=UPSTREAM_KEY)
        self.proc = self.managed.start(self.name, argv, self.work / f"{self.name}.log", env=env)
        self.info = {"server": "gunicorn " + " ".join(argv[3:-1]), "features": {"auth": False, "limits": False,
                                                                              "filter": False}}
        self.wait_ready(30)


class Chatgate(Subject):
    """chatgate as ``make run`` serves it, in the production configuration."""

    name = "chatgate"
    label = "chatgate"

    def __init__(self, *args):
        super().__init__(*args)
        self.generated: dict[str, str] = {}  # settings made at start, reused on a restart
        self.config_notes: list[str] = []
        self.migrated: bool | None = None

    def env(self, **extra) -> dict:
        """The production environment pointing at the bench upstream."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FLASK_"))}
        env.update(APP_ENV="production", OPENAI_API_KEY=UPSTREAM_KEY, OPENAI_BASE_URL=self.upstream.base_url,
                   OPENAI_MODEL=MODEL, HOST="127.0.0.1", PORT=str(self.port),
                   DATABASE_URL=f"sqlite:///{self.work / 'chatgate.db'}", AUTH_MODE="keys", **LIMITS)
        env.pop("WEB_CONCURRENCY", None)
        # BENCH_CHATGATE_X=v sets X=v for chatgate only, e.g. BENCH_CHATGATE_REDIS_URL for shared limit counters.
        env.update(self.overrides())
        env.update(extra)
        return env

    @staticmethod
    def overrides() -> dict:
        """Settings given as BENCH_CHATGATE_<NAME> in the bench's environment."""
        prefix = "BENCH_CHATGATE_"
        return {k[len(prefix):]: v for k, v in os.environ.items() if k.startswith(prefix) and len(k) > len(prefix)}

    def resolve_config(self, env: dict) -> list[str]:
        """Fill in settings production insists on (such as an encryption key) the way its error says to.

        chatgate names the missing variable and the command that makes a value; the bench runs that
        command and records what it added. Anything else is a real configuration error and is raised.
        """
        check = ("import sys\nfrom config import ConfigError, load_config\ntry:\n"
                 + "    load_config().check_serving()\nexcept ConfigError as err:\n"
                 + "    print('CONFIG_ERROR', err)\n    sys.exit(3)\n")
        notes: list[str] = []
        for _ in range(6):
            res = run_cmd([str(APP_VENV / "bin" / "python"), "-c", check], 60, env=env, cwd=str(ROOT))
            if res.returncode == 0:
                return notes
            line = next((ln for ln in res.stdout.splitlines() if ln.startswith("CONFIG_ERROR ")), None)
            if line is None:
                return notes  # the check itself does not fit this version of the app; gunicorn will tell
            m = re.match(r"CONFIG_ERROR (\w+): .*?`((?:flask --app wsgi|openssl rand) [^`]+)`", line)
            if not m or m.group(1) in env:
                raise RuntimeError("chatgate configuration error: " + line[len("CONFIG_ERROR "):])
            var, command = m.groups()
            argv = shlex.split(command)
            if argv[0] == "flask":
                argv[0] = str(APP_VENV / "bin" / "flask")
            elif not shutil.which("openssl"):
                argv = [sys.executable, "-c", "import secrets, base64; "
                        + "print(base64.b64encode(secrets.token_bytes(48)).decode())"]
            made = run_cmd(argv, 60, env=env, cwd=str(ROOT))
            value = _last_line(made.stdout) if made.returncode == 0 and made.stdout.strip() else None
            if value is None and "generate-key" in command:
                # The command is not there yet; the setting is a Fernet key, which the app's own library makes.
                value = run_cmd([str(APP_VENV / "bin" / "python"), "-c", "from cryptography.fernet import Fernet; "
                                 + "print(Fernet.generate_key().decode())"], 60).stdout.strip() or None
                command += " (failed; made a Fernet key directly)"
            if value is None:
                raise RuntimeError(f"chatgate needs {var}; `{command}` failed: "
                                   + _last_line(made.stderr or made.stdout))
            env[var] = value
            notes.append(f"{var} from `{command}`")
        return notes

    def migrate(self, env: dict) -> None:
        """Bring the bench database to the current schema, as a deploy would (when the app has the command)."""
        if self.migrated is not None:
            return
        res = run_cmd([str(APP_VENV / "bin" / "flask"), "--app", "wsgi", "db", "upgrade"], 120, env=env,
                      cwd=str(ROOT))
        self.migrated = res.returncode == 0
        self.config_notes.append("ran `flask --app wsgi db upgrade`" if self.migrated
                                 else "`flask --app wsgi db upgrade` failed: " + _last_line(res.stderr or res.stdout))

    def create_key(self, env: dict) -> tuple[str | None, str]:
        """A client key from ``flask keys create``; (None, why) when that does not work yet."""
        try:
            res = run_cmd([str(APP_VENV / "bin" / "flask"), "--app", "wsgi", "keys", "create", "bench"], 60,
                          env=env, cwd=str(ROOT))
        except subprocess.TimeoutExpired:
            return None, "`flask keys create` timed out"
        lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
        if res.returncode != 0 or not lines:
            return None, "`flask keys create` failed: " + _last_line(res.stderr or res.stdout)
        return lines[-1], "key from `flask --app wsgi keys create bench`"

    def start(self, env_extra: dict | None = None, reuse_key: bool = False) -> None:
        env = self.env(**(env_extra or {}))
        for name, value in self.generated.items():
            env.setdefault(name, value)
        before = set(env)
        notes = self.resolve_config(env)
        self.generated.update({k: env[k] for k in set(env) - before})
        self.config_notes = self.config_notes or notes
        self.migrate(env)
        if reuse_key and self.key:
            key_note = self.info.get("features", {}).get("auth_evidence", "")
        else:
            self.key, key_note = self.create_key(env)
        if self.key is None:
            # Without a key the production default (keys) would refuse every request; say so, run open.
            env["AUTH_MODE"] = "open"
        argv = [str(APP_VENV / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
        (ROOT / "instance").mkdir(exist_ok=True)  # as `make run` does
        self.proc = self.managed.start(self.name, argv, self.work / f"{self.name}.log", env=env, cwd=str(ROOT))
        self.path = "/v1/chat/completions"
        # Any HTTP answer means it is up; detect() then decides what the answers mean.
        ok = procs.wait_for(lambda: post(self.url, self.body(False), self.key, timeout=5)[0] > 0,
                            60, self.proc, interval=0.5)
        if not ok:
            raise RuntimeError(f"chatgate did not start; log: {self.log_tail()}")
        self.detect(env, key_note)

    def measure_failover(self, args, failing_url: str) -> dict:
        """Non-streamed runs through a route whose first target refuses connections or answers 503.

        Each scenario restarts chatgate with an UPSTREAMS_FILE. The failing
        target makes no retries, and its circuit never opens (a minimum of
        calls the run cannot reach) except in ``503_open``, where a warm-up
        opens it first: the rows show what each call pays to fall over, and
        what an open circuit saves.
        """
        saved, out = self.info, {}
        dead = f"http://127.0.0.1:{procs.free_port()}/v1"  # nothing listens there
        try:
            for scenario, label in FAILOVER_SCENARIOS:
                path = self.work / f"upstreams-{scenario}.toml"
                path.write_text(failover_file(self.upstream.base_url, dead if scenario == "refused" else failing_url,
                                              scenario), encoding="utf-8")
                self.port = procs.free_port()
                self.start({"UPSTREAMS_FILE": str(path)}, reuse_key=True)
                if scenario == "503_open":
                    for _ in range(10):
                        post(self.url, self.body(False), self.key)
                log(f"chatgate failover: {label}")
                run = nonstream_runs(self.url, self.body(False), self.key, args.duration, args.warmup,
                                     self.proc.pid, 1)
                out[scenario] = {"label": label, "c16": run["c16"], "c1": run["c1"]}
                self.stop()
        except Exception as err:  # noqa: BLE001 - the rows measured so far are kept; the reason is recorded
            out["failed"] = str(err)[:300]
        finally:
            self.stop()
            self.info = saved
        return out

    def detect(self, env: dict, key_note: str) -> None:
        """Pick the path and record which features were really on, from what the server does."""
        base = f"http://127.0.0.1:{self.port}"
        status, _, data = post(base + "/v1/chat/completions", self.body(False), self.key)
        openai_ok = status == 200 and isinstance(data.get("choices"), list)
        chat_status, chat_headers, chat = post(base + "/chat", {"prompt": PROMPT}, self.key)
        chat_ok = chat_status == 200 and "reply" in chat
        if openai_ok:
            self.path = "/v1/chat/completions"
        elif chat_ok:
            self.path = "/chat"
        else:
            raise RuntimeError(f"chatgate answered /v1/chat/completions {status} and /chat {chat_status}; "
                               + f"log: {self.log_tail()}")
        # Auth is on only if the server refuses the same request without the key.
        no_key_status = post(self.url, self.body(False), None)[0] if self.key else None
        auth_on = bool(self.key) and no_key_status in (401, 403)
        filt = chat.get("filter") if chat_ok else None
        where = "/chat reply"
        if not isinstance(filt, dict) and openai_ok and data["choices"] and isinstance(data["choices"][0], dict):
            filt, where = data["choices"][0].get("filter"), "/v1/chat/completions choice"
        filter_on = isinstance(filt, dict)
        limit_headers = sorted(h for h in chat_headers if "ratelimit" in h.lower())
        self.info = {
            "server": "gunicorn -c gunicorn.conf.py wsgi:app",
            "gunicorn": chatgate_gunicorn_settings(),
            "generated_settings": self.config_notes,
            "overridden_settings": sorted(self.overrides()),  # names only: values may hold secrets
            "path": self.path,
            "openai_endpoint": openai_ok,
            "features": {
                "auth": auth_on,
                "auth_evidence": (f"{key_note}; without it the server answered {no_key_status}"
                                  if self.key else key_note + "; ran with AUTH_MODE=open"),
                "filter": filter_on,
                "filter_evidence": (f"the {where} carries filter={json.dumps(filt)}" if filter_on
                                    else f"no `filter` object in the replies (/chat answered {chat_status})"),
                "limits": None,  # settled by verify_limits()
                "limits_config": {name: env.get(name) for name in LIMITS},
                "limit_headers": limit_headers,
            },
        }

    def measure_cache(self, args, result: dict) -> None:
        """Restart with the response cache on: every request alike (hits), then every one different (misses)."""
        saved = self.info
        rows = (("chatgate_cache_hit", "chatgate, cache hit", False), ("chatgate_cache_miss", "chatgate, cache miss",
                                                                       True))
        try:
            self.port = procs.free_port()
            self.start({"CACHE_TTL": "1h"}, reuse_key=True)
            for name, label, unique in rows:
                entry = result["subjects"].setdefault(name, {"label": label, "nonstream_only": True})
                try:
                    log(f"{label}: non-streamed on {self.path}")
                    if not unique:
                        status, headers, _ = post(self.url, self.body(False), self.key)
                        if status != 200 or headers.get("X-Cache") not in ("MISS", "HIT"):
                            raise RuntimeError(f"the cache did not answer (status {status}, "
                                               + f"X-Cache {headers.get('X-Cache')!r})")
                    entry["path"] = self.path
                    entry["features"] = dict(saved.get("features", {}), cache=True)
                    entry["nonstream"] = nonstream_runs(self.url, self.body(False), self.key, args.duration,
                                                        args.warmup, self.proc.pid, args.repeat, unique)
                    entry["status"] = "measured"
                except Exception as err:  # noqa: BLE001 - recorded, like any subject's failure
                    entry.update(status="failed", reason=str(err)[:500])
                    log(f"{label}: FAILED: {err}")
        except Exception as err:  # noqa: BLE001
            for name, label, _ in rows:
                result["subjects"].setdefault(name, {"label": label, "nonstream_only": True}).update(
                    status="failed", reason=str(err)[:500])
            log(f"chatgate with the cache: FAILED: {err}")
        finally:
            self.stop()
            self.info = saved

    def verify_limits(self) -> None:
        """Restart briefly with RATE_LIMIT=3/minute: limits count as on only if a 429 comes back."""
        saved = self.info
        statuses, failure = None, None
        try:
            self.port = procs.free_port()
            self.start({"RATE_LIMIT": "3/minute"}, reuse_key=True)
            statuses = [post(self.url, self.body(False), self.key)[0] for _ in range(5)]
        except Exception as err:  # noqa: BLE001 - the message is the evidence
            failure = str(err)
        finally:
            self.stop()
            self.info = saved
        feats = self.info.setdefault("features", {})
        if statuses is None:
            feats["limits"] = False
            feats["limits_evidence"] = f"could not verify: {failure}"
        else:
            feats["limits"] = 429 in statuses
            feats["limits_evidence"] = f"with RATE_LIMIT=3/minute, 5 requests answered {statuses}"

    def body(self, stream: bool) -> dict:
        if self.path == "/chat":
            return {"prompt": PROMPT, "stream": True} if stream else {"prompt": PROMPT}
        return super().body(stream)


class LiteLLM(Subject):
    """LiteLLM's proxy from PyPI: 2 workers, no database, the mock as its one model."""

    name = "litellm"
    label = "LiteLLM"
    master_key = "sk-bench-litellm-master-0123456789abcdef"

    def start(self) -> None:
        cfg = self.work / "litellm.yaml"
        cfg.write_text(
            "model_list:\n"
            + f"  - model_name: {MODEL}\n"
            + "    litellm_params:\n"
            + f"      model: openai/{MODEL}\n"
            + f"      api_base: {self.upstream.base_url}\n"
            + f"      api_key: {UPSTREAM_KEY}\n"
            + "litellm_settings:\n"
            + "  telemetry: false\n", encoding="utf-8")
        # Recent LiteLLM refuses to start without a master key; with one, it checks client keys like chatgate.
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env.update(LITELLM_MASTER_KEY=self.master_key, LITELLM_LOCAL_MODEL_COST_MAP="True")
        argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(cfg), "--host", "127.0.0.1",
                "--port", str(self.port), "--num_workers", "2",
                # uvicorn's supervisor restarts a worker that misses a 5 s health check; importing LiteLLM on
                # a busy 2-core box, or serving 1,000 streams, can take longer, and a restart is not the
                # overhead being measured.
                "--timeout_worker_healthcheck", "120"]
        self.key = self.master_key
        self.proc = self.managed.start(self.name, argv, self.work / f"{self.name}.log", env=env,
                                       cwd=str(self.work))
        version = run_cmd([str(LITELLM_VENV / "bin" / "python"), "-c",
                           "import importlib.metadata as m; print(m.version('litellm'))"], 60).stdout.strip()
        self.info = {"server": "litellm " + " ".join(argv[1:]).replace(str(self.work) + "/", ""),
                     "version": version, "features": {"auth": True, "auth_evidence": "master key (no database)",
                                                      "limits": False, "filter": False}}
        self.wait_ready(120)


def failover_file(primary: str, first: str, scenario: str) -> str:
    """The UPSTREAMS_FILE of one failover scenario: gpt-4o-mini over [first, primary], or primary alone."""
    # The most calls a circuit may need before it opens: out of reach, except where the row measures it open.
    min_requests = 5 if scenario == "503_open" else 100000
    targets = '["primary"]' if scenario == "primary" else '["first", "primary"]'
    return (f"[breaker]\nmin_requests = {min_requests}\ncooldown = \"1h\"\n"
            + f'[upstreams.primary]\nbase_url = "{primary}"\napi_key_env = "OPENAI_API_KEY"\n'
            + f'[upstreams.first]\nbase_url = "{first}"\nmax_retries = 0\n'
            + f'[models."{MODEL}"]\ntargets = {targets}\n')


# --------------------------------------------------------------------------- the run


def measure_subject(subject: Subject, upstream: Upstream, args, result: dict) -> None:
    """Start one subject, run both loads through it, stop it; failures are recorded, not raised."""
    entry = result["subjects"].setdefault(subject.name, {"label": subject.label})
    try:
        upstream.use("nginx")
        log(f"{subject.label}: starting")
        t = time.monotonic()
        subject.start()
        entry["startup_s"] = round(time.monotonic() - t, 1)
        entry.update(subject.info)
        entry["path"] = subject.path
        log(f"{subject.label}: non-streamed on {subject.path}")
        entry["nonstream"] = nonstream_runs(subject.url, subject.body(False), subject.key, args.duration,
                                            args.warmup, subject.proc.pid, args.repeat)
        upstream.use("mock")
        log(f"{subject.label}: {args.streams} streams")
        # A few streams first, so pooled upstream connections to nginx are replaced before timing.
        stream_run(subject.url, subject.body(True), subject.key, 16, 0.2, 30, 1, None, {})
        entry["stream"] = stream_run(subject.url, subject.body(True), subject.key, args.streams, args.ramp,
                                     args.stream_timeout, args.client_procs, subject.proc.pid,
                                     {"server": subject.proc.pid, "upstream": upstream.proc.pid})
        entry["status"] = "measured"
    except Exception as err:  # noqa: BLE001 - one subject failing must not lose the others
        entry["status"] = "failed"
        entry["reason"] = str(err)[:500]
        log(f"{subject.label}: FAILED: {err}")
    finally:
        subject.stop()
    if isinstance(subject, Chatgate) and entry.get("status") == "measured" and not args.no_cache:
        upstream.use("nginx")
        subject.measure_cache(args, result)
    if isinstance(subject, Chatgate) and entry.get("status") == "measured":
        log("chatgate: verifying the rate limiter with RATE_LIMIT=3/minute")
        upstream.use("nginx")
        subject.verify_limits()
        entry["features"] = subject.info.get("features", {})
        if not args.no_failover:
            # A second upstream that answers every completion with 503 (the mock, faulting on purpose).
            port = procs.free_port()
            argv = [bench_python(), "-m", "tests.mock_upstream.server", "--port", str(port), "--fault", "503"]
            failing = subject.managed.start("mock503", argv, subject.work / "mock503.log", cwd=str(ROOT))
            try:
                if not procs.wait_for(lambda: procs.port_open(port), 15, failing):
                    raise RuntimeError("the 503 mock did not start")
                entry["failover"] = subject.measure_failover(args, f"http://127.0.0.1:{port}/v1")
            except Exception as err:  # noqa: BLE001 - recorded, like every other stage's failure
                entry["failover"] = {"failed": str(err)[:300]}
            finally:
                subject.managed.stop(failing)


def main(argv=None) -> int:
    """Command line: run everything, write results and docs, print the table."""
    parser = argparse.ArgumentParser(description="chatgate benchmark: `make bench`")
    parser.add_argument("--subjects", default="bare,chatgate,litellm", help="comma list of bare, chatgate, litellm")
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up per subject")
    parser.add_argument("--repeat", type=int, default=1, help="measured wrk runs per setting; the median counts "
                        + "(single runs vary by up to ±25%% here)")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds over which the streams open")
    parser.add_argument("--stream-timeout", type=float, default=60.0, help="deadline of one stream run")
    parser.add_argument("--client-procs", type=int, default=2, help="stream client processes")
    parser.add_argument("--mock-workers", type=int, default=2, help="stream mock processes")
    parser.add_argument("--no-cache", action="store_true", help="skip chatgate's response-cache rows")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--no-save", action="store_true", help="write no results file (trial runs)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs and configs (path printed)")
    parser.add_argument("--no-failover", action="store_true", help="skip chatgate's failover rows")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.subjects.split(",") if s.strip()]

    started = dt.datetime.now(dt.timezone.utc)
    result: dict = {"schema": 1, "started_at": started.isoformat(timespec="seconds"), "subjects": {},
                    "settings": {"wrk_duration_s": args.duration, "wrk_warmup_s": args.warmup, "wrk_threads": 1,
                                 "wrk_repeat": args.repeat,
                                 "streams": args.streams, "stream_chunks": STREAM_CHUNKS,
                                 "stream_interval_ms": STREAM_INTERVAL_MS, "stream_ramp_s": args.ramp,
                                 "stream_client_procs": args.client_procs, "mock_workers": args.mock_workers,
                                 "request_body": OPENAI_BODY, "chatgate_limits": LIMITS}}
    managed = procs.Managed()

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="chatgate-bench-"))
    busy0 = own0 = wall0 = None
    try:
        result["nofile"] = raise_nofile()
        ensure_tools()
        why = ensure_venv(BENCH_VENV, ["uvloop"], "import uvloop", timeout=300)
        if why:
            log(f"bench venv without uvloop ({why}); the stream client uses asyncio's own loop")
        setup_errors = {}
        why = ensure_app_venv()
        if why:
            setup_errors["chatgate"] = setup_errors["bare"] = "app .venv: " + why
        if not (ROOT / "wsgi.py").exists() or not (ROOT / "gunicorn.conf.py").exists():
            setup_errors["chatgate"] = "not measured yet: wsgi.py or gunicorn.conf.py missing"
        if "litellm" in wanted:
            t = time.monotonic()
            # A metadata check, because importing the proxy itself costs ~10 CPU seconds.
            pinned = LITELLM_SPEC.partition("==")[2]
            check = "import importlib.metadata as m; v = m.version('litellm')"
            if pinned:
                check += f"; assert v == {pinned!r}"
            why = ensure_venv(LITELLM_VENV, [LITELLM_SPEC], check, timeout=900)
            result["litellm_install_s"] = round(time.monotonic() - t, 1)
            if why:
                setup_errors["litellm"] = "LiteLLM install failed: " + why
        result["machine"] = report.machine(str(APP_VENV / "bin" / "python"), LITELLM_VENV)
        result["machine"]["busy_before_pct"] = procs.busy_percent(2.0)
        if result["machine"]["busy_before_pct"] > 15:
            log(f"warning: the machine is {result['machine']['busy_before_pct']:.0f}% busy before the run; "
                + "other work will skew the numbers")

        # Everything the machine does from here on, minus what this run and its children use, is other work.
        busy0, own0, wall0 = procs.system_busy_seconds(), procs.own_seconds(), time.monotonic()
        upstream = Upstream(managed, work, STREAM_CHUNKS, STREAM_INTERVAL_MS, args.mock_workers)
        log(f"direct upstream (nginx on :{upstream.port}): non-streamed")
        upstream.use("nginx")
        direct = {"nonstream": nonstream_runs(upstream.base_url + "/chat/completions", OPENAI_BODY, None,
                                              args.duration, args.warmup, None, args.repeat)}
        upstream.use("mock")
        log(f"direct upstream (mock, {args.mock_workers} processes): {args.streams} streams")
        body = dict(OPENAI_BODY, stream=True, stream_options={"include_usage": True})
        stream_run(upstream.base_url + "/chat/completions", body, None, 16, 0.2, 30, 1, None, {})
        direct["stream"] = stream_run(upstream.base_url + "/chat/completions", body, None, args.streams,
                                      args.ramp, args.stream_timeout, args.client_procs, upstream.proc.pid,
                                      {"upstream": upstream.proc.pid})
        result["upstream"] = direct

        classes = {"bare": Bare, "chatgate": Chatgate, "litellm": LiteLLM}
        for name in ("bare", "chatgate", "litellm"):
            if name not in wanted:
                continue
            subject = classes[name](managed, work, upstream)
            if name in setup_errors:
                result["subjects"][name] = {"label": subject.label, "status": "failed", "reason": setup_errors[name]}
                log(f"{subject.label}: {setup_errors[name]}")
                continue
            measure_subject(subject, upstream, args, result)
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        managed.stop_all()
        return 130
    except Exception as err:  # noqa: BLE001 - without the direct upstream there is nothing to compare with
        log(f"bench failed: {err}")
        managed.stop_all()
        return 1
    finally:
        managed.stop_all()
        if args.keep_logs:
            log(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    if busy0 is not None:
        # Servers were stopped and reaped above, so their CPU (and their workers') is in own_seconds().
        other = (procs.system_busy_seconds() - busy0) - (procs.own_seconds() - own0)
        capacity = (time.monotonic() - wall0) * (os.cpu_count() or 1)
        result["machine"]["other_work_pct"] = round(max(0.0, 100 * other / capacity), 1)
        result["machine"]["busy_after_pct"] = procs.busy_percent(2.0)
    result["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    result["elapsed_s"] = round(time.monotonic() - T0, 1)
    report.derive(result)
    table = report.table(result)
    if not args.no_save:
        out = BENCH / "results"
        out.mkdir(exist_ok=True)
        text = json.dumps(result, indent=2) + "\n"
        (out / (started.strftime("%Y%m%dT%H%M%SZ") + ".json")).write_text(text, encoding="utf-8")
        (out / "latest.json").write_text(text, encoding="utf-8")
    if not args.no_docs:
        report.update_docs(ROOT / "docs" / "benchmarks.md", result, table)
    print(table)
    log(f"done in {result['elapsed_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
