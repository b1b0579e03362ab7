"""Streams through the real servers: unbuffered, cut off when the client leaves, many at once, never timed out."""
from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from support import LiveServer, wait_for

from app.upstream.sse_codec import iter_sse
from mock_upstream import run_in_thread


@pytest.fixture(scope="module")
def mock():
    with run_in_thread(chunks=16, interval_ms=5) as server:
        yield server


def remote_env(mock, options: str = "", **env) -> dict:
    base = mock.base_url if not options else mock.base_url[:-3] + "/" + options + "/v1"
    return {"OPENAI_API_KEY": "sk-test-0123456789", "OPENAI_BASE_URL": base, **env}


def stream_events(url: str, **body):
    resp = requests.post(url + "/chat", json={"prompt": "Hello", "stream": True, **body}, stream=True, timeout=60)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    return resp, iter_sse(resp.iter_content(chunk_size=None))


def read_all(url: str, **body) -> list:
    resp, events = stream_events(url, **body)
    with resp:
        return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in events]


def test_the_offline_model_streams_through_gunicorn_in_pieces():
    with LiveServer(OFFLINE_STREAM_DELAY="0.01") as server:
        got = read_all(server.url)
    deltas = [e for e in got[:-2] if "delta" in e]
    assert len(deltas) > 5 and got[-1] == "[DONE]" and got[-2]["finish_reason"] == "stop"


def test_gunicorn_does_not_buffer_a_stream(mock):
    mock.server.stats.reset()
    with LiveServer(**remote_env(mock, "chunks=400,interval_ms=10")) as server:
        resp, events = stream_events(server.url)
        with resp:
            assert "delta" in json.loads(next(events).data)
            # The first delta is here while the upstream is still producing: nothing waited for the end.
            assert mock.stats.streams_open == 1 and mock.stats.streams_finished == 0


def test_a_client_that_leaves_stops_the_upstream(mock):
    mock.server.stats.reset()
    with LiveServer(**remote_env(mock, "chunks=3000,interval_ms=5")) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        body = json.dumps({"prompt": "Hello", "stream": True}).encode()
        sock.sendall(b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while received.count(b"data: ") < 3:
            received += sock.recv(65536)
        sock.close()
        left_at = mock.stats.chunks_sent
        assert wait_for(lambda: mock.stats.streams_open == 0, 10)
        after_close = mock.stats.chunks_sent - left_at
        time.sleep(0.3)
        assert mock.stats.chunks_sent - left_at == after_close  # nothing more once the upstream was closed
        assert after_close < 200 and mock.stats.streams_finished == 0
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_many_streams_at_once(mock):
    with LiveServer(MAX_STREAMS_PER_CLIENT="100", **remote_env(mock, "chunks=20,interval_ms=20")) as server:
        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(pool.map(lambda _: read_all(server.url), range(64)))
    assert all(r[-1] == "[DONE]" and r[-2]["finish_reason"] == "stop" for r in results)


def test_the_worker_timeout_does_not_kill_a_long_stream(mock):
    # Streams last longer than gunicorn's worker timeout; gevent workers keep heartbeating.
    with LiveServer(GUNICORN_TIMEOUT="2", **remote_env(mock, "chunks=80,interval_ms=50")) as server:
        got = read_all(server.url)
    assert got[-1] == "[DONE]" and got[-2]["finish_reason"] == "stop"


def test_the_development_server_streams_too():
    with LiveServer(dev=True, OFFLINE_STREAM_DELAY="0.01") as server:
        got = read_all(server.url)
    assert got[-1] == "[DONE]" and len([e for e in got if isinstance(e, dict) and "delta" in e]) > 5


@pytest.mark.parametrize("options", ["chunks=3000,interval_ms=10", "fault=stall,after=2,stall_s=120"],
                         ids=["long", "stalled"])
def test_a_stream_longer_than_max_stream_duration_ends_with_an_error_and_frees_the_upstream(mock, options):
    mock.server.stats.reset()
    with LiveServer(MAX_STREAM_DURATION="1s", UPSTREAM_TIMEOUT="60", **remote_env(mock, options)) as server:
        got = read_all(server.url)  # the long one would take 30 s, the stalled one 120 s
        assert got[-1] == {"error": {"message": "the stream ran longer than MAX_STREAM_DURATION and was ended",
                                     "type": "timeout", "param": None, "code": "stream_too_long"}}
        assert wait_for(lambda: mock.stats.streams_open == 0, 10) and mock.stats.streams_finished == 0
