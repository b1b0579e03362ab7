"""Routing through real gunicorn servers: the breaker's whole cycle, shared by workers and by instances over Redis.

Cool-downs are a second here, so the tests wait for state changes (polling
/readyz) rather than sleeping for a fixed time.
"""
from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from support import LiveServer, wait_for

from app.upstream.sse_codec import iter_sse
from mock_upstream import run_in_thread


@pytest.fixture
def mock():
    with run_in_thread(chunks=8, interval_ms=2) as server:
        yield server


def at(mock, options: str = "") -> str:
    return mock.base_url if not options else mock.base_url[:-3] + "/" + options + "/v1"


def upstreams_file(tmp_path, *targets: tuple[str, str], cooldown: str = "1") -> str:
    """One route, gpt-4o-mini, over ``targets`` (name, base URL); a breaker that opens after 2 calls."""
    text = f"[breaker]\nmin_requests = 2\nfailure_rate = 0.5\ncooldown = {cooldown}\n"
    for name, url in targets:
        text += f'[upstreams.{name}]\nbase_url = "{url}"\nmax_retries = 0\n'
    text += '[models."gpt-4o-mini"]\ntargets = [' + ", ".join(f'"{n}"' for n, _ in targets) + "]\n"
    path = tmp_path / "upstreams.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def v1(url: str, stream: bool = False) -> requests.Response:
    return requests.post(url + "/v1/chat/completions", timeout=30, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], "stream": stream})


def circuits(url: str) -> dict:
    return requests.get(url + "/readyz", timeout=10).json()["checks"]["upstreams"]


def test_breaker_open_fast_503_half_open_probe_closed(tmp_path, mock):
    path = upstreams_file(tmp_path, ("flaky", at(mock, "fault=500,times=2")))
    with LiveServer(workers=2, UPSTREAMS_FILE=path) as server:
        assert [v1(server.url).status_code for _ in range(2)] == [502, 502]
        assert circuits(server.url) == {"flaky": "open"}
        # Both workers see the one state (the instance's shared table): many calls, none reaches the upstream.
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: v1(server.url), range(16)))
        assert {r.status_code for r in answers} <= {503, 200}
        refused = [r for r in answers if r.status_code == 503]
        assert refused and all(r.json()["error"]["code"] == "upstream_unavailable" and r.headers["Retry-After"]
                               for r in refused)
        assert mock.stats.requests == 2 + (16 - len(refused))  # only a probe, once the cool-down ended, got through
        assert wait_for(lambda: circuits(server.url) != {"flaky": "open"}, 10)
        resp = v1(server.url, stream=True)  # the probe (or a call after it): the mock's faults are spent
        assert resp.status_code == 200 and resp.headers["X-Chatgate-Upstream"] == "flaky"
        assert circuits(server.url) == {"flaky": "closed"}
        metrics = requests.get(server.url + "/metrics", timeout=10).text
        assert 'chatgate_circuit_state{upstream="flaky"} 0.0' in metrics
        banner = server.output()
    assert "gpt-4o-mini -> flaky (fallback)" in banner and "flaky: " + at(mock, "fault=500,times=2") in banner


def test_a_client_that_leaves_does_not_open_the_breaker(tmp_path, mock):
    path = upstreams_file(tmp_path, ("slow", at(mock, "chunks=2000,interval_ms=5")), cooldown="60")
    with LiveServer(UPSTREAMS_FILE=path) as server:
        body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                           "messages": [{"role": "user", "content": "Hello"}]}).encode()
        for _ in range(6):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            received = b""
            while received.count(b"data: ") < 3:
                received += sock.recv(65536)
            sock.close()  # gone mid-stream
        assert wait_for(lambda: mock.stats.streams_open == 0, 10)
        assert circuits(server.url) == {"slow": "closed"}
        metrics = requests.get(server.url + "/metrics", timeout=10).text
        assert 'chatgate_upstream_requests_total{outcome="stream_failed",upstream="slow"} 0.0' in metrics
        assert 'chatgate_upstream_requests_total{outcome="ok",upstream="slow"} 6.0' in metrics


def test_two_instances_sharing_redis_see_one_breaker(tmp_path, mock, private_redis):
    path = upstreams_file(tmp_path, ("down", at(mock, "fault=503")), cooldown="60")
    env = {"UPSTREAMS_FILE": path, "REDIS_URL": private_redis.url, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    with LiveServer(**env) as one, LiveServer(**env) as two:
        assert [v1(one.url).status_code for _ in range(2)] == [502, 502]
        assert circuits(one.url) == circuits(two.url) == {"down": "open"}
        resp = v1(two.url, stream=True)  # the other instance never called it, and refuses at once
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "upstream_unavailable"
        assert 55 <= int(resp.headers["Retry-After"]) <= 60
        assert mock.stats.requests == 2
        assert requests.get(two.url + "/readyz", timeout=10).status_code == 503
        assert 'chatgate_circuit_state{upstream="down"} 2.0' in requests.get(two.url + "/metrics", timeout=10).text


def test_a_stream_falls_over_before_its_first_byte_through_gunicorn(tmp_path, mock):
    with run_in_thread(chunks=8, interval_ms=2) as second:
        path = upstreams_file(tmp_path, ("first", at(mock, "fault=cut,after=0")), ("second", second.base_url))
        with LiveServer(UPSTREAMS_FILE=path) as server:
            resp = requests.post(server.url + "/chat", json={"prompt": "Hello", "stream": True}, stream=True,
                                 timeout=30)
            with resp:
                got = [e.data for e in iter_sse(resp.iter_content(chunk_size=None))]
    assert resp.status_code == 200 and resp.headers["X-Chatgate-Upstream"] == "second"
    assert got[-1] == "[DONE]" and not any('"error"' in e for e in got)
