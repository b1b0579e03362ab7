"""The response cache through real gunicorn servers, against the mock upstream that counts every call."""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from dbfixtures import pg_schema
from mock_upstream import canned, run_in_thread
from support import LiveServer, free_port, run_cli, wait_for

from app.storage.cache_backends import REDIS_INDEX
from app.upstream.sse_codec import iter_sse

SHARED_REDIS = "redis://127.0.0.1:6379/4"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], "temperature": 0.5}
# The same request as the client might write it: other field order, other whitespace, 0.50 for 0.5.
SAME_BODY = ('{\n  "temperature": 0.50,\n  "messages": [ {"content": "Hello", "role": "user"} ],\n'
             + '  "model": "gpt-4o-mini"\n}')


@pytest.fixture(scope="module")
def mock():
    with run_in_thread(chunks=16, interval_ms=1) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_counts(mock):
    mock.server.stats.reset()


def calls(mock) -> int:
    """Upstream chat calls so far, whole and streamed."""
    return mock.stats.completions + mock.stats.streams


def settings(mock, tmp_path, options: str = "", **env) -> dict:
    base = mock.base_url if not options else mock.base_url[:-3] + "/" + options + "/v1"
    return {"OPENAI_API_KEY": "sk-test-0123456789", "OPENAI_BASE_URL": base, "CACHE_TTL": "1h",
            "DATABASE_URL": f"sqlite:///{tmp_path}/chatgate.db", **env}


def sqlite_entries(tmp_path) -> int:
    with sqlite3.connect(tmp_path / "chatgate.db") as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM response_cache").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def completions(url: str, body=None, **headers) -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body or BODY)
    return requests.post(url + "/v1/chat/completions", data=data, timeout=30,
                         headers={"Content-Type": "application/json", **headers})


def stream(url: str, path: str, body: dict, **headers) -> tuple[requests.Response, list]:
    resp = requests.post(url + path, json=body, headers=headers, stream=True, timeout=30)
    with resp:
        got = [e.data if e.data == "[DONE]" else json.loads(e.data) for e in iter_sse(resp.iter_content(None))]
    return resp, got


def test_hit_miss_bypass_and_max_age(mock, tmp_path):
    with LiveServer(workers=2, **settings(mock, tmp_path)) as server:
        first = completions(server.url)
        assert first.status_code == 200 and first.headers["X-Cache"] == "MISS" and "Age" not in first.headers
        assert calls(mock) == 1
        assert wait_for(lambda: sqlite_entries(tmp_path) == 1)  # written, so either worker finds it
        hits = [completions(server.url, SAME_BODY) for _ in range(4)]
        assert {h.headers["X-Cache"] for h in hits} == {"HIT"} and all(h.headers["Age"].isdigit() for h in hits)
        assert {json.dumps(h.json()["choices"]) for h in hits} == {json.dumps(first.json()["choices"])}
        assert calls(mock) == 1

        assert completions(server.url, **{"Cache-Control": "no-cache"}).headers["X-Cache"] == "BYPASS"
        assert calls(mock) == 2
        assert completions(server.url, **{"Cache-Control": "max-age=0"}).headers["X-Cache"] == "MISS"
        assert calls(mock) == 3
        assert completions(server.url, **{"Cache-Control": "max-age=3600"}).headers["X-Cache"] == "HIT"

        other = {**BODY, "messages": [{"role": "user", "content": "Something else"}]}
        assert completions(server.url, other, **{"Cache-Control": "no-store"}).headers["X-Cache"] == "BYPASS"
        assert calls(mock) == 4
        assert completions(server.url, other).headers["X-Cache"] == "MISS"  # no-store kept nothing
        assert calls(mock) == 5
        assert sqlite_entries(tmp_path) <= 2


def test_streamed_miss_then_a_hit_replayed_in_chunks_at_every_door(mock, tmp_path):
    with LiveServer(**settings(mock, tmp_path, "chunks=120")) as server:
        resp, missed = stream(server.url, "/chat", {"prompt": "Hello", "stream": True})
        assert resp.headers["X-Cache"] == "MISS" and missed[-1] == "[DONE]"
        assert calls(mock) == 1
        assert wait_for(lambda: sqlite_entries(tmp_path) == 1)

        resp, replay = stream(server.url, "/chat", {"prompt": "Hello", "stream": True})
        assert resp.headers["X-Cache"] == "HIT" and resp.headers["Content-Type"].startswith("text/event-stream")
        deltas = [e["delta"] for e in replay if isinstance(e, dict) and "delta" in e]
        assert len(deltas) > 1 and "".join(deltas) == canned.stream_text(120)
        end = replay[-2]
        assert end["finish_reason"] == "stop" and end["usage"]["cost_usd"] == 0 and end["conversation_id"]
        assert replay[-1] == "[DONE]"

        hello = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}  # /chat's request
        resp, chunks = stream(server.url, "/v1/chat/completions",
                              {**hello, "stream": True, "stream_options": {"include_usage": True}})
        assert resp.headers["X-Cache"] == "HIT"
        pieces = [c["choices"][0]["delta"].get("content") for c in chunks[:-1] if c["choices"]]
        assert len([p for p in pieces if p]) > 1 and "".join(p for p in pieces if p) == canned.stream_text(120)
        assert chunks[-3]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["usage"]["completion_tokens"] == 120
        assert chunks[-1] == "[DONE]"

        resp, events = stream(server.url, "/v1/responses", {"model": "gpt-4o-mini", "input": "Hello", "stream": True})
        assert resp.headers["X-Cache"] == "HIT"
        assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == canned.stream_text(120)

        # A whole reply for a request first answered as a stream.
        whole = completions(server.url, hello)
        assert whole.headers["X-Cache"] == "HIT"
        assert whole.json()["choices"][0]["message"]["content"] == canned.stream_text(120)
        assert calls(mock) == 1


def test_scopes_keep_keys_apart_unless_shared(mock, tmp_path):
    env = settings(mock, tmp_path, AUTH_MODE="keys", KEY_HASH_SECRET="k" * 40)
    keys = {}
    for name in ("alice", "bob"):
        made = run_cli("keys", "create", name, env=env)
        assert made.returncode == 0, made.stderr
        keys[name] = {"Authorization": "Bearer " + made.stdout.strip().splitlines()[-1]}
    with LiveServer(**env) as server:
        assert completions(server.url, **keys["alice"]).headers["X-Cache"] == "MISS"
        assert completions(server.url, **keys["alice"]).headers["X-Cache"] == "HIT"
        assert completions(server.url, **keys["bob"]).headers["X-Cache"] == "MISS"  # alice's entry is not bob's
        assert completions(server.url, **keys["bob"]).headers["X-Cache"] == "HIT"
        assert calls(mock) == 2
    with LiveServer(**{**env, "CACHE_SCOPE": "shared"}) as server:
        assert completions(server.url, **keys["alice"]).headers["X-Cache"] == "MISS"
        assert completions(server.url, **keys["bob"]).headers["X-Cache"] == "HIT"
        assert calls(mock) == 3


def test_a_cut_stream_is_not_kept(mock, tmp_path):
    # The first stream is cut half way; the upstream answers normally after that.
    with LiveServer(**settings(mock, tmp_path, "fault=cut,times=1,chunks=40")) as server:
        _, cut = stream(server.url, "/chat", {"prompt": "Hello", "stream": True})
        assert cut[-1]["error"]["code"] in ("upstream_stream_broken", "upstream_stream_truncated")
        resp, whole = stream(server.url, "/chat", {"prompt": "Hello", "stream": True})
        assert resp.headers["X-Cache"] == "MISS" and whole[-1] == "[DONE]"
        assert calls(mock) == 2
        resp, _ = stream(server.url, "/chat", {"prompt": "Hello", "stream": True})
        assert resp.headers["X-Cache"] == "HIT" and calls(mock) == 2


def test_a_policy_change_never_serves_an_entry_kept_under_the_old_one(mock, tmp_path):
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("canned\n", encoding="utf-8")  # a word of the mock's reply
    env = settings(mock, tmp_path)
    with LiveServer(**env) as server:
        assert completions(server.url).headers["X-Cache"] == "MISS"
        assert wait_for(lambda: sqlite_entries(tmp_path) == 1)
    with LiveServer(**env, BLOCKLIST_FILE=str(blocklist)) as server:
        blocked = completions(server.url)
        assert blocked.headers["X-Cache"] == "MISS" and calls(mock) == 2
        assert blocked.json()["choices"][0]["finish_reason"] == "content_filter"
        assert completions(server.url).headers["X-Cache"] == "MISS"  # a blocked reply is never kept
        assert calls(mock) == 3
    with LiveServer(**env, REPLY_REDACT="email") as server:
        assert completions(server.url).headers["X-Cache"] == "MISS" and calls(mock) == 4
    with LiveServer(**env) as server:  # the first policy again: its entry is still there
        assert completions(server.url).headers["X-Cache"] == "HIT" and calls(mock) == 4


def test_two_instances_share_entries_through_redis(mock, tmp_path):
    client = redis.Redis.from_url(SHARED_REDIS)
    client.flushdb()
    key = Fernet.generate_key().decode("ascii")
    env = {**settings(mock, tmp_path), "REDIS_URL": SHARED_REDIS, "DATA_ENCRYPTION_KEY": key}
    with LiveServer(**env) as one, LiveServer(**{**env, "DATABASE_URL": f"sqlite:///{tmp_path}/two.db"}) as two:
        assert completions(one.url).headers["X-Cache"] == "MISS"
        assert wait_for(lambda: client.zcard(REDIS_INDEX) == 1)
        hit = completions(two.url)
        assert hit.headers["X-Cache"] == "HIT" and calls(mock) == 1
        assert hit.json()["choices"][0]["message"]["content"] == canned.REPLY
        resp, got = stream(two.url, "/v1/chat/completions", {**BODY, "stream": True})
        assert resp.headers["X-Cache"] == "HIT" and got[-1] == "[DONE]" and calls(mock) == 1
    values = [client.get(k) for k in client.scan_iter("cg:cache:*")]
    assert values and all(b"canned" not in v and b"Hello" not in v for v in values)
    assert sqlite_entries(tmp_path) == 0  # with Redis, nothing goes into the database


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of our own, so the test can stop it without touching anyone else's."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()

    def start():
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        assert wait_for(lambda: _pings(client)), "redis did not start"
        return proc

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


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_cache_outage_becomes_a_miss_and_one_warning(mock, tmp_path, private_redis):
    # Limits would share the Redis: fail open, so this test sees the cache alone.
    env = {**settings(mock, tmp_path), "REDIS_URL": private_redis.url, "LIMITS_FAIL": "open"}
    with LiveServer(**env) as server:
        assert completions(server.url).headers["X-Cache"] == "MISS"
        assert wait_for(lambda: redis.Redis.from_url(private_redis.url).zcard(REDIS_INDEX) == 1)  # written
        assert completions(server.url).headers["X-Cache"] == "HIT"
        private_redis.stop()
        other = {**BODY, "messages": [{"role": "user", "content": "Not asked before"}]}
        during = [completions(server.url, other) for _ in range(3)]
        assert [(r.status_code, r.headers["X-Cache"]) for r in during] == [(200, "MISS")] * 3
        assert calls(mock) == 4
        # What this process read last it still has in memory.
        assert completions(server.url).headers["X-Cache"] == "HIT" and calls(mock) == 4
        resp, got = stream(server.url, "/chat", {"prompt": "Hello", "stream": True})
        assert resp.status_code == 200 and resp.headers["X-Cache"] == "MISS" and got[-1] == "[DONE]"
        private_redis.restart()
        # Once the cache has rested, it is used again: a miss stores, in Redis again.
        later = {**BODY, "messages": [{"role": "user", "content": "Asked after the outage"}]}
        assert wait_for(lambda: completions(server.url, later).headers["X-Cache"] == "HIT", 30)
        assert wait_for(lambda: redis.Redis.from_url(private_redis.url).zcard(REDIS_INDEX) >= 1)
        output = server.output()
    assert len(re.findall(r"response cache unavailable \(ConnectionError on read\); serving without it", output)) == 1
    assert "response cache available again" in output
    assert "Traceback" not in output


def test_no_cached_text_in_plain_form_in_sqlite(mock, tmp_path):
    prompt = "Tell me about the quokkas of Rottnest"
    with LiveServer(**settings(mock, tmp_path)) as server:
        assert requests.post(server.url + "/chat", json={"prompt": prompt}, timeout=30).headers["X-Cache"] == "MISS"
        resp, _ = stream(server.url, "/chat", {"prompt": prompt + "!", "stream": True})
        assert resp.headers["X-Cache"] == "MISS"
        assert wait_for(lambda: sqlite_entries(tmp_path) == 2)
    files = [p for p in Path(tmp_path).iterdir() if p.name.startswith("chatgate.db")]
    raw = b"".join(p.read_bytes() for p in files)
    assert b"response_cache" in raw
    for text in (canned.REPLY, canned.stream_text(16), prompt, "canned", "benchmark", "foxtrot", "quokkas"):
        assert text.encode() not in raw


def pg_dump() -> str:
    found = shutil.which("pg_dump") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))), None)
    assert found, "pg_dump is not installed"
    return str(found)


def test_no_cached_text_in_plain_form_in_pg_dump(mock, tmp_path):
    prompt = "Tell me about the quokkas of Rottnest"
    with pg_schema() as url:
        schema = re.search(r"search_path%3D(\w+)", url).group(1)
        env = {**settings(mock, tmp_path), "DATABASE_URL": url, "DATA_ENCRYPTION_KEY": Fernet.generate_key().decode()}
        with LiveServer(**env) as server:
            assert requests.post(server.url + "/chat", json={"prompt": prompt}, timeout=30).headers["X-Cache"] == "MISS"
            assert requests.post(server.url + "/chat", json={"prompt": prompt}, timeout=30).headers["X-Cache"] == "HIT"
        dump = subprocess.run([pg_dump(), "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-n", schema,
                               "--data-only"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
    assert dump.returncode == 0, dump.stderr
    # One row, its body in hex (COPY escapes the backslash of bytea's \x).
    assert re.search(r"COPY \w+\.response_cache .*\n[0-9a-f]{64}\t\\\\x[0-9a-f]+\t", dump.stdout)
    for text in (canned.REPLY, prompt, "canned", "benchmark", "quokkas"):
        assert text not in dump.stdout and text.encode().hex() not in dump.stdout  # bytea is dumped as hex


def test_operator_commands_look_after_the_entries(mock, tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = {**settings(mock, tmp_path), "DATA_ENCRYPTION_KEY": old}
    with LiveServer(**env) as server:
        completions(server.url)
        assert wait_for(lambda: sqlite_entries(tmp_path) == 1)
    rotated = run_cli("db", "rotate-key", env={**env, "DATA_ENCRYPTION_KEY": f"{new},{old}"})
    assert rotated.returncode == 0 and "1 response-cache entry" in rotated.stdout, rotated.stderr
    with LiveServer(**{**env, "DATA_ENCRYPTION_KEY": new}) as server:  # the old key is gone: still a hit
        assert completions(server.url).headers["X-Cache"] == "HIT"
    kept = run_cli("db", "purge-expired", env={**env, "DATA_ENCRYPTION_KEY": new})
    assert kept.returncode == 0 and "purged 0 expired response-cache entries" in kept.stdout, kept.stderr
    off = run_cli("db", "purge-expired", env={**env, "DATA_ENCRYPTION_KEY": new, "CACHE_TTL": "0"})
    assert off.returncode == 0 and "purged 1 expired response-cache entry" in off.stdout, off.stderr
    assert sqlite_entries(tmp_path) == 0
