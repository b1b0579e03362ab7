"""Limits through real gunicorn servers: exact across one instance's workers without Redis, exact across
instances with Redis, the fail mode when Redis goes away, and slots and reservations back after an outage."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from support import LiveServer, wait_for

from app.upstream.sse_codec import iter_sse
from mock_upstream import run_in_thread


def chat(url: str) -> int:
    return requests.post(url + "/chat", json={"prompt": "hi"}, timeout=30).status_code


def test_one_instance_without_redis_counts_exactly_across_its_workers():
    # A window no test can straddle; many connections at once, so both workers serve some.
    with LiveServer(workers=2, RATE_LIMIT="5 per 30 days") as server:
        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(chat, [server.url] * 30))
        banner = server.output()
    assert statuses.count(200) == 5 and statuses.count(429) == 25
    assert "store: shared by this instance's workers" in banner


def test_two_servers_sharing_redis_never_accept_more_than_the_limit(private_redis, tmp_path):
    env = {"REDIS_URL": private_redis.url, "RATE_LIMIT": "12 per 30 days",
           "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    with LiveServer(workers=2, **env) as one, LiveServer(workers=2, **env) as two:
        urls = [one.url, two.url] * 20
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(chat, urls))
    assert statuses.count(200) == 12
    assert statuses.count(429) == len(urls) - 12


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


@pytest.fixture(scope="module")
def slow_upstream():
    """Streams of 100 chunks, 50 ms apart: five seconds each, so two are still open when a loaded
    machine gets round to the third request."""
    with run_in_thread(chunks=100, interval_ms=50) as mock:
        yield mock


def open_stream(url: str) -> requests.Response:
    return requests.post(url + "/chat", json={"prompt": "hi", "stream": True}, stream=True, timeout=60)


def finish(resp: requests.Response, events: list) -> None:
    with resp:
        events += [e.data for e in iter_sse(resp.iter_content(chunk_size=None))]


def test_slots_and_reservations_come_back_within_seconds_after_a_redis_outage(private_redis, slow_upstream,
                                                                              tmp_path):
    # Two instances, one client (open mode: one address) with 2 stream slots and a token budget that
    # holds two reservations (1,000 reply tokens each, plus the prompt) but not three.
    env = {"REDIS_URL": private_redis.url, "LIMITS_FAIL": "open", "MAX_STREAMS_PER_CLIENT": "2",
           "MAX_TOKENS_CAP": "1000", "TOKEN_RATE_LIMIT": "2500 per 30 days",
           "OPENAI_API_KEY": "sk-test-0123456789", "OPENAI_BASE_URL": slow_upstream.base_url,
           "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    with LiveServer(**env) as one, LiveServer(**env) as two:
        streams = [open_stream(one.url), open_stream(two.url)]
        assert [s.status_code for s in streams] == [200, 200]
        refused = open_stream(one.url)
        assert refused.status_code == 429  # out of tokens and of slots
        private_redis.pause()  # Redis keeps its data but answers nothing: every release and settle times out
        try:
            results: list[list] = [[], []]
            readers = [threading.Thread(target=finish, args=(s, r)) for s, r in zip(streams, results, strict=True)]
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join(60)
            assert [r[-1] for r in results] == ["[DONE]", "[DONE]"]  # the replies themselves were whole
        finally:
            private_redis.resume()

        def two_streams_are_accepted() -> bool:
            # Both slots free, and both reservations fit again: the two stuck ones were settled to what
            # the streams really used (a few dozen tokens), or two new ones would not fit beside them.
            again = [open_stream(one.url), open_stream(two.url)]
            try:
                if [s.status_code for s in again] != [200, 200]:
                    return False
                for resp in again:
                    last = [e.data for e in iter_sse(resp.iter_content(chunk_size=None))][-2]
                    assert json.loads(last)["finish_reason"] == "stop"
                return True
            finally:
                for resp in again:
                    resp.close()

        # Within seconds (a slot lapses six seconds after its last renewal), not within the hour.
        assert wait_for(two_streams_are_accepted, 30)
