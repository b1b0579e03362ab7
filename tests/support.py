"""Helpers shared by the tests: canned upstream bodies and live servers."""
from __future__ import annotations


def completion(content="Hello there.", finish="stop", usage=(5, 3), **extra):
    """An OpenAI chat.completion body."""
    body = {"id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}
    body.update(extra)
    return body


class FakeClock:
    """A monotonic clock the test moves by hand (counters, keepers and streams take a ``clock``)."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- live servers -------------------------------------------------------------------------

import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import requests  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_for(predicate, seconds: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` pass; its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def free_port() -> int:
    """A TCP port nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**env) -> dict:
    """A clean environment for a server subprocess: PATH plus what the test sets."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "APP_ENV": "development",
            "PYTHONUNBUFFERED": "1", "OFFLINE_STREAM_DELAY": "0", "LANG": "C.UTF-8"}
    base.update({k: str(v) for k, v in env.items()})
    return base


class LiveServer:
    """A chatgate server in a subprocess, stopped on exit from the with-block."""

    def __init__(self, *, dev: bool = False, workers: int = 1, scheme: str = "http", verify=True, **env):
        self.port = free_port()
        self._tmp: str | None = None
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.verify = verify
        if dev:
            cmd = [sys.executable, "wsgi.py"]
        else:
            cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
            env.setdefault("WEB_CONCURRENCY", workers)
        if "DATABASE_URL" not in env:
            # A database of its own, so servers never share state unless a test asks them to.
            self._tmp = tempfile.mkdtemp(prefix="chatgate-live-")
            env["DATABASE_URL"] = f"sqlite:///{self._tmp}/chatgate.db"
        self.env = server_env(HOST="127.0.0.1", PORT=self.port, **env)
        self.cmd = cmd
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(ROOT, "tests", "artifacts", f"server-{self.port}.log")

    def __enter__(self) -> "LiveServer":
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self._log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1, verify=self.verify).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"server did not become healthy:\n{self.output()}")

    def output(self) -> str:
        """Everything the server printed so far."""
        self._log.flush()
        with open(self.log_path) as fh:
            return fh.read()

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            # SIGINT is a quick shutdown for gunicorn and a KeyboardInterrupt for the dev server.
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def run_cli(*args: str, env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``flask --app wsgi ARGS`` the way an operator would."""
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=server_env(**(env or {})), input=input, capture_output=True, text=True, timeout=60)
