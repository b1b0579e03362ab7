"""Limits held across processes through Redis, and the fail mode when Redis goes away."""
from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from support import LiveServer, free_port

SHARED = "redis://127.0.0.1:6379/14"


def chat(url: str) -> int:
    return requests.post(url + "/chat", json={"prompt": "hi"}, timeout=30).status_code


def test_two_servers_sharing_redis_never_accept_more_than_the_limit(tmp_path):
    redis.Redis.from_url(SHARED).flushdb()
    # A long window, so the test cannot straddle a window boundary.
    env = {"REDIS_URL": SHARED, "RATE_LIMIT": "12 per 30 days", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    with LiveServer(workers=2, **env) as one, LiveServer(workers=2, **env) as two:
        urls = [one.url, two.url] * 20
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(chat, urls))
    assert statuses.count(200) == 12
    assert statuses.count(429) == len(urls) - 12


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of our own, so the test can stop it without touching anyone else's."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()

    def start():
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    state = {"proc": start()}

    class Handle:
        url = f"redis://127.0.0.1:{port}/0"

        @staticmethod
        def stop():
            state["proc"].terminate()
            state["proc"].wait(10)

        @staticmethod
        def restart():
            state["proc"] = start()

    yield Handle
    if state["proc"].poll() is None:
        Handle.stop()


@pytest.mark.parametrize("fail, while_down", [("closed", 503), ("open", 200)])
def test_redis_stopped_mid_run_follows_the_fail_mode(private_redis, tmp_path, fail, while_down):
    with LiveServer(REDIS_URL=private_redis.url, RATE_LIMIT="1000/minute", LIMITS_FAIL=fail,
                    DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite") as server:
        assert chat(server.url) == 200
        private_redis.stop()
        resp = requests.post(server.url + "/chat", json={"prompt": "hi"}, timeout=30)
        assert resp.status_code == while_down
        if while_down == 503:
            assert resp.json()["error"]["code"] == "limits_unavailable"
        private_redis.restart()
        assert chat(server.url) == 200
