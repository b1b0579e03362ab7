"""Redis servers of the tests' own, on free ports: nothing here touches a Redis anyone else uses.

``redis_url`` is one private server for the whole run, emptied before each
test that asks for it; ``private_redis`` is a fresh server per test that the
test may stop, pause (SIGSTOP: connections hang, data stays) and restart.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import redis
from support import free_port


class PrivateRedis:
    """A redis-server subprocess on a free port, without persistence."""

    def __init__(self, directory: str):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = directory
        self._proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        """Start (or start again, empty) and wait until it answers."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", self._dir], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.025)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        """Stop it for good (its data goes with it)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
            self._proc.terminate()
            self._proc.wait(10)

    restart = start

    def pause(self) -> None:
        """Freeze it: clients time out, nothing is lost (an outage that keeps its data)."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze it."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        """A plain client for looking inside."""
        return redis.Redis.from_url(self.url)


@pytest.fixture(scope="session")
def _session_redis():
    directory = tempfile.mkdtemp(prefix="chatgate-redis-")
    server = PrivateRedis(directory)
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_url(_session_redis) -> str:
    """The URL of this run's private Redis, emptied for the test."""
    _session_redis.client().flushall()
    return _session_redis.url


@pytest.fixture
def private_redis(tmp_path):
    """A Redis for this test alone, which it may stop, pause and restart."""
    server = PrivateRedis(str(tmp_path))
    yield server
    server.stop()
