"""The response cache at every chat door: hits filtered like fresh replies, streams replayed, nothing charged."""
from __future__ import annotations

import itertools
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib
import responses
from conftest import UPSTREAM, UPSTREAM_KEY
from dbfixtures import raw_rows
from support import completion

from app.storage.crypto import cache_context
from app.storage.response_cache import CacheStore
from app.upstream.sse_codec import iter_sse

URL = UPSTREAM + "/chat/completions"
HELLO = [{"role": "user", "content": "Hello"}]
REDIS = "redis://127.0.0.1:6379/3"


@pytest.fixture
def cached(make_app):
    """Apps pointed at the mocked upstream with the cache on (settings override the defaults)."""
    def factory(**env):
        settings = {"OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_BASE_URL": UPSTREAM, "CACHE_TTL": "1h"}
        return make_app(**{**settings, **env})
    return factory


def v1(client, headers=None, **body):
    return client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO, **body},
                       headers=headers or {}, buffered=True)


def events(resp) -> list:
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in iter_sse(resp.response)]


def sse(*chunks: dict) -> str:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def stream_of(text: str, finish="stop", usage=(5, 9)) -> str:
    head = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini"}
    words = [w + " " for w in text.split(" ")]
    words[-1] = words[-1][:-1]
    parts = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    parts += [{**head, "choices": [{"index": 0, "delta": {"content": w}}]} for w in words]
    parts.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    parts.append({**head, "choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                                   "total_tokens": sum(usage)}})
    return sse(*parts)


def stored_bodies(app) -> list[dict]:
    """Every entry the app's store holds (queued or written), decrypted."""
    store: CacheStore = app.extensions["chatgate"].cache_store
    store.flush()
    rows = raw_rows(app, "SELECT key, body FROM response_cache")
    cipher = app.extensions["chatgate"].cipher
    return [json.loads(cipher.decrypt(bytes(body), cache_context(key)))["body"] for (key, body) in rows]


@responses.activate
def test_a_repeat_is_a_hit_filtered_exactly_as_a_fresh_reply(cached):
    responses.add(responses.POST, URL, json=completion("Write to jane.doe@example.com today."))
    app = cached()
    client = app.test_client()
    first = v1(client)
    assert first.headers["X-Cache"] == "MISS" and "Age" not in first.headers
    second = v1(client)
    assert second.headers["X-Cache"] == "HIT" and second.headers["Age"] == "0"
    assert len(responses.calls) == 1
    assert second.json["choices"] == first.json["choices"]
    assert second.json["choices"][0]["message"]["content"] == "Write to [EMAIL] today."
    assert second.json["choices"][0]["filter"] == {"action": "redacted", "findings": [{"type": "email", "count": 1}]}
    # What is kept is the upstream's own reply: the filter runs again on every hit.
    [body] = stored_bodies(app)
    assert body["choices"][0]["message"]["content"] == "Write to jane.doe@example.com today."


@responses.activate
def test_field_order_and_whitespace_do_not_matter(cached):
    responses.add(responses.POST, URL, json=completion())
    client = cached().test_client()
    assert v1(client, temperature=1).headers["X-Cache"] == "MISS"
    raw = '{ "temperature": 1.0,\n  "messages": [{"content": "Hello", "role": "user"}], "model": "gpt-4o-mini" }'
    resp = client.post("/v1/chat/completions", data=raw, content_type="application/json", buffered=True)
    assert resp.headers["X-Cache"] == "HIT" and len(responses.calls) == 1


@responses.activate
def test_without_the_cache_there_is_no_header_and_nothing_stored(cached):
    responses.add(responses.POST, URL, json=completion())
    app = cached(CACHE_TTL="0")
    assert "X-Cache" not in v1(app.test_client()).headers
    assert "X-Cache" not in v1(app.test_client()).headers
    assert len(responses.calls) == 2 and app.extensions["chatgate"].cache is None
    assert stored_bodies(app) == []


@pytest.mark.parametrize("content, finish, kept", [
    ("A fine reply.", "stop", True),
    ("A reply cut at the token cap", "length", True),
    ("You absolute shit.", "stop", False),            # blocked by the filter: never kept
    ("Withheld upstream.", "content_filter", False),  # not a successful finish
])
@responses.activate
def test_only_complete_unblocked_replies_are_kept(cached, content, finish, kept):
    responses.add(responses.POST, URL, json=completion(content, finish=finish))
    app = cached()
    client = app.test_client()
    v1(client)
    again = v1(client)
    assert again.headers["X-Cache"] == ("HIT" if kept else "MISS")
    assert len(responses.calls) == (1 if kept else 2)
    assert len(stored_bodies(app)) == int(kept)


@responses.activate
def test_several_choices_and_tool_calls_come_back_as_they_were(cached):
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    body = completion("one", n=2)
    body["choices"] = [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                        "finish_reason": "tool_calls"},
                       {"index": 1, "message": {"role": "assistant", "content": "two"}, "finish_reason": "stop"}]
    responses.add(responses.POST, URL, json=body)
    client = cached().test_client()
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    first = v1(client, n=2, tools=tools)
    second = v1(client, n=2, tools=tools)
    assert second.headers["X-Cache"] == "HIT" and second.json["choices"] == first.json["choices"]
    assert second.json["choices"][0]["message"]["tool_calls"] == [call]


@responses.activate
def test_cache_control_from_the_client(cached):
    responses.add(responses.POST, URL, json=completion())
    client = cached().test_client()

    def ask(prompt, header=None):
        resp = v1(client, headers={"Cache-Control": header} if header else None,
                  messages=[{"role": "user", "content": prompt}])
        return resp.headers["X-Cache"], len(responses.calls)

    assert ask("one", "no-cache") == ("BYPASS", 1)   # not read...
    assert ask("one") == ("HIT", 1)                  # ...but stored
    assert ask("one", "no-cache") == ("BYPASS", 2)   # and never read, even when there is an entry
    assert ask("two", "no-store") == ("BYPASS", 3)   # neither read...
    assert ask("two") == ("MISS", 4)                 # ...nor stored
    assert ask("two", "no-store") == ("BYPASS", 5)
    assert ask("two", "max-age=3600") == ("HIT", 5)
    assert ask("two", "max-age=0") == ("MISS", 6)    # older than 0 seconds: fetched again, and stored anew
    assert ask("two", "junk, max-age=oops") == ("HIT", 6)


@responses.activate
def test_streamed_miss_then_replayed_hits_at_every_door(cached):
    # Long enough that the stream filter, which holds back what a pattern could still span, lets it out in pieces.
    text = " ".join(["The solar system has eight planets and Pluto is a dwarf planet far beyond Neptune."] * 12)
    responses.add(responses.POST, URL, body=stream_of(text), content_type="text/event-stream")
    client = cached().test_client()
    miss = client.post("/chat", json={"prompt": "Hello", "stream": True}, buffered=True)
    assert miss.headers["X-Cache"] == "MISS"
    got = events(miss)
    assert got[-1] == "[DONE]" and got[-2]["finish_reason"] == "stop"

    # /chat events, replayed: the same text in pieces, the final event, [DONE].
    hit = client.post("/chat", json={"prompt": "Hello", "stream": True}, buffered=True)
    assert hit.headers["X-Cache"] == "HIT" and "Age" in hit.headers and hit.mimetype == "text/event-stream"
    replay = events(hit)
    assert len(replay) > 4 and "".join(e["delta"] for e in replay[:-2]) == text
    assert replay[-2]["finish_reason"] == "stop" and replay[-2]["usage"]["cost_usd"] == 0
    assert replay[-2]["conversation_id"] != got[-2]["conversation_id"]
    assert replay[-1] == "[DONE]"

    # OpenAI chunks, with the usage chunk when asked for.
    chunks = events(client.post("/v1/chat/completions", json={
        "model": "gpt-4o-mini", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}},
        buffered=True))
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[:-1] if c["choices"]]
    assert len([c for c in contents if c]) > 1 and "".join(c for c in contents if c) == text
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["usage"]["prompt_tokens"] == 5
    assert chunks[-1] == "[DONE]"

    # Responses events.
    resp = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "Hello", "stream": True},
                       buffered=True)
    assert resp.headers["X-Cache"] == "HIT"
    kinds = [e["type"] for e in events(resp)]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") >= 1

    # A whole reply from what was first seen as a stream.
    whole = v1(client)
    assert whole.headers["X-Cache"] == "HIT" and whole.json["choices"][0]["message"]["content"] == text
    responses_whole = client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "Hello"}, buffered=True)
    assert responses_whole.headers["X-Cache"] == "HIT"
    assert responses_whole.json["output"][0]["content"][0]["text"] == text
    assert len(responses.calls) == 1


@responses.activate
def test_a_stream_that_breaks_is_not_kept(cached):
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    cut = "".join(f"data: {json.dumps({**head, 'choices': [{'index': 0, 'delta': {'content': w}}]})}\n\n"
                  for w in ("Half ", "a ", "reply"))
    responses.add(responses.POST, URL, body=cut, content_type="text/event-stream")
    responses.add(responses.POST, URL, body=stream_of("A whole reply."), content_type="text/event-stream")
    app = cached()
    client = app.test_client()
    broken = events(client.post("/chat", json={"prompt": "Hello", "stream": True}, buffered=True))
    assert broken[-1]["error"]["code"] == "upstream_stream_truncated"
    assert stored_bodies(app) == []
    assert client.post("/chat", json={"prompt": "Hello", "stream": True}, buffered=True).headers["X-Cache"] == "MISS"
    assert client.post("/chat", json={"prompt": "Hello"}, buffered=True).headers["X-Cache"] == "HIT"
    assert len(responses.calls) == 2


@responses.activate
def test_a_stream_the_filter_blocks_is_not_kept(cached):
    responses.add(responses.POST, URL, body=stream_of("What a load of shit that was."),
                  content_type="text/event-stream")
    app = cached()
    client = app.test_client()
    end = events(client.post("/chat", json={"prompt": "Hello", "stream": True}, buffered=True))[-2]
    assert end["finish_reason"] == "content_filter"
    assert stored_bodies(app) == []


@responses.activate
def test_a_client_that_leaves_mid_stream_leaves_nothing_behind(cached):
    responses.add(responses.POST, URL, body=stream_of(" ".join(["word"] * 400)), content_type="text/event-stream")
    app = cached()
    resp = app.test_client().post("/chat", json={"prompt": "Hello", "stream": True}, buffered=False)
    next(iter(resp.response))
    resp.close()
    assert stored_bodies(app) == []


@responses.activate
def test_a_hit_counts_toward_the_request_rate_but_holds_no_tokens(cached):
    responses.add(responses.POST, URL, json=completion(usage=(5, 590)))
    client = cached(RATE_LIMIT="4/minute", TOKEN_RATE_LIMIT="700/minute").test_client()
    assert v1(client, max_tokens=500).status_code == 200           # reserves ~510, settles to 595 used
    assert v1(client, max_tokens=500, messages=[{"role": "user", "content": "Other"}]).status_code == 429
    for _ in range(2):  # hits: no reservation, so the token limit does not stop them
        hit = v1(client, max_tokens=500)
        assert hit.status_code == 200 and hit.headers["X-Cache"] == "HIT"
        assert hit.json["usage"]["cost_usd"] == 0 and hit.json["usage"]["completion_tokens"] == 590
    over = v1(client, max_tokens=500)
    assert over.status_code == 429 and over.json["error"]["code"] == "rate_limit_exceeded"
    assert len(responses.calls) == 1


@responses.activate
def test_a_hit_is_served_past_a_spent_dollar_budget_and_recorded_apart(cached):
    responses.add(responses.POST, URL, json=completion(usage=(1000, 1000)))
    app = cached(AUTH_MODE="keys")
    with app.app_context():
        key = app.extensions["chatgate"].keyring.create("app", budget_day_micros=100)
    auth = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    # Its worst case fits in the budget; what it really used (1000 in, 1000 out: 750 micro-dollars) does not.
    assert v1(client, headers=auth, max_tokens=50).status_code == 200
    refused = v1(client, headers=auth, max_tokens=50, messages=[{"role": "user", "content": "Other"}])
    assert refused.status_code == 429 and refused.json["error"]["code"] == "budget_exceeded"
    hit = v1(client, headers=auth, max_tokens=50)
    assert hit.status_code == 200 and hit.headers["X-Cache"] == "HIT"
    app.extensions["chatgate"].ledger.flush()
    rows = raw_rows(app, "SELECT prompt_tokens, completion_tokens, cost_micros, cached FROM usage ORDER BY id")
    assert [r[3] for r in rows] == [0, 1] and rows[1][:3] == (0, 0, 0) and rows[0][2] > 0
    [day] = client.get("/usage", headers=auth).json["data"]
    assert day["requests"] == 2 and day["cached"] == 1 and day["prompt_tokens"] == 1000


@responses.activate
def test_a_chat_turn_is_stored_when_its_reply_comes_from_the_cache(cached):
    responses.add(responses.POST, URL, json=completion("Saturn."))
    client = cached().test_client()
    one = client.post("/chat", json={"prompt": "A planet?"}, buffered=True).json["conversation_id"]
    two = client.post("/chat", json={"prompt": "A planet?"}, buffered=True)
    assert two.headers["X-Cache"] == "HIT"
    more = client.post("/chat", json={"prompt": "Another?", "conversation_id": one}, buffered=True)
    assert more.headers["X-Cache"] == "MISS"
    # The second conversation has the same history now, so its next turn is a hit: and it is stored.
    again = client.post("/chat", json={"prompt": "Another?", "conversation_id": two.json["conversation_id"]},
                        buffered=True)
    assert again.headers["X-Cache"] == "HIT"
    messages = client.get(f"/conversations/{two.json['conversation_id']}").json["messages"]
    assert [m["content"] for m in messages] == ["A planet?", "Saturn.", "Another?", "Saturn."]
    assert len(responses.calls) == 2


@responses.activate
def test_the_outcome_is_counted_and_logged(cached, caplog):
    responses.add(responses.POST, URL, json=completion())
    app = cached()
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="app.request"):
        for n, control in enumerate((None, None, "no-store", "no-cache")):
            v1(client, headers={"X-Request-ID": f"cache-log-{n}", **({"Cache-Control": control} if control else {})})
            app.extensions["chatgate"].cache_store.flush()  # each write counted, none folded into the next
        app.extensions["chatgate"].request_log.flush()
    fields = [r.chatgate_fields for r in caplog.records
              if r.name == "app.request" and r.chatgate_fields["request_id"].startswith("cache-log-")]
    assert [f["cache"] for f in fields] == ["miss", "hit", "bypass", "bypass"]
    assert [f["prompt_tokens"] for f in fields] == [5, 0, 5, 5]
    assert [f["upstream"] for f in fields] == ["default", None, "default", "default"]
    metrics = app.extensions["chatgate"].metrics.registry
    count = lambda result: metrics.get_sample_value("chatgate_cache_requests_total", {"result": result})  # noqa: E731
    assert (count("hit"), count("miss"), count("bypass"), count("store"), count("error")) == (1, 1, 2, 2, 0)


@responses.activate
def test_a_cache_that_cannot_be_reached_is_a_miss(cached):
    responses.add(responses.POST, URL, json=completion())
    app = cached(REDIS_URL="redis://127.0.0.1:1/0", LIMITS_FAIL="open")
    client = app.test_client()
    assert v1(client).headers["X-Cache"] == "MISS"
    assert app.extensions["chatgate"].cache_store.flush() == 0  # not written: Redis is not there
    second = v1(client)
    assert second.status_code == 200 and second.headers["X-Cache"] == "MISS" and len(responses.calls) == 2


@pytest.mark.parametrize("backend", ["database", "redis"])
@responses.activate
def test_one_key_hammered_from_two_scopes_never_crosses_over(cached, backend):
    counter = itertools.count(1)
    lock = threading.Lock()

    def numbered(_request):
        with lock:
            n = next(counter)
        return 200, {}, json.dumps(completion(f"reply {n}"))

    responses.add_callback(responses.POST, URL, callback=numbered, content_type="application/json")
    env = {"AUTH_MODE": "keys"}
    if backend == "redis":
        redis_lib.Redis.from_url(REDIS).flushdb()
        env["REDIS_URL"] = REDIS
    app = cached(**env)
    with app.app_context():
        keys = {name: app.extensions["chatgate"].keyring.create(name) for name in ("alice", "bob")}

    def ask(name):
        resp = v1(app.test_client(), headers={"Authorization": f"Bearer {keys[name]}"})
        return name, resp.headers["X-Cache"], resp.json["choices"][0]["message"]["content"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, ["alice", "bob"] * 40))
    made = {name: {text for who, status, text in answers if who == name and status == "MISS"}
            for name in ("alice", "bob")}
    served = {name: {text for who, status, text in answers if who == name and status == "HIT"}
              for name in ("alice", "bob")}
    assert made["alice"].isdisjoint(made["bob"])
    for name in ("alice", "bob"):
        assert served[name] and served[name] <= made[name]
