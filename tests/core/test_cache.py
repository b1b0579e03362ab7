"""The response cache's rules: Cache-Control, the key, what may be stored, and streams to bodies and back."""
from __future__ import annotations

import json

import pytest

from app.access.keys import Caller
from app.core.cache import CacheControl, Lookup, Outcome, ResponseCache, policy_version, storable
from app.core.replay import PIECE_CHARS, CachedStream, StreamRecorder, pieces
from app.storage.response_cache import StoredReply

ALICE = Caller(id="key:1", limit_key="key:1", name="alice")
BOB = Caller(id="key:2", limit_key="key:2", name="bob")
PAYLOAD = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], "temperature": 0.5}


@pytest.mark.parametrize("header, expected", [
    (None, CacheControl()),
    ("", CacheControl()),
    ("no-cache", CacheControl(read=False)),
    ("No-Cache", CacheControl(read=False)),
    ("no-store", CacheControl(read=False, write=False)),
    ("max-age=0", CacheControl(max_age=0)),
    ("max-age=600", CacheControl(max_age=600)),
    ('max-age="60"', CacheControl(max_age=60)),
    ("max-age=60, max-age=30", CacheControl(max_age=30)),
    ("no-cache, max-age=5", CacheControl(read=False, max_age=5)),
    (" no-store ,max-age=5", CacheControl(read=False, write=False, max_age=5)),
    ("max-age=-1", CacheControl()),
    ("max-age=soon", CacheControl()),
    ("max-age", CacheControl()),
    ("private, must-revalidate, x-unknown=1", CacheControl()),
    ("\x00\x7f;;==,,", CacheControl()),
])
def test_cache_control(header, expected):
    assert CacheControl.parse(header) == expected


def cache(scope="key", policy="p1", store=None, clock=lambda: 1000.0) -> ResponseCache:
    return ResponseCache(store, ttl=600, scope=scope, policy=policy, clock=clock)


def test_the_key_ignores_field_order_whitespace_and_how_a_number_is_written():
    c = cache()
    reordered = json.loads('{ "temperature" : 0.5,\n "messages":[{"content":"Hello","role":"user"}],'
                           + ' "model":"gpt-4o-mini"}')
    assert c.key(reordered, ALICE) == c.key(PAYLOAD, ALICE)
    assert c.key({**PAYLOAD, "max_tokens": 256.0}, ALICE) == c.key({**PAYLOAD, "max_tokens": 256}, ALICE)
    assert c.key({**PAYLOAD, "temperature": 0.50}, ALICE) == c.key(PAYLOAD, ALICE)


def test_streamed_and_whole_requests_share_a_key():
    c = cache()
    streamed = {**PAYLOAD, "stream": True, "stream_options": {"include_usage": True}}
    assert c.key(streamed, ALICE) == c.key(PAYLOAD, ALICE)


@pytest.mark.parametrize("change", [
    {"model": "gpt-4o"}, {"messages": [{"role": "user", "content": "Hello!"}]},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]},
    {"temperature": 0.7}, {"top_p": 0.9}, {"max_tokens": 10}, {"n": 2}, {"stop": ["\n"]}, {"seed": 7},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, {"tool_choice": "none"},
    {"response_format": {"type": "json_object"}}, {"presence_penalty": 1}, {"frequency_penalty": 1},
    {"logprobs": True}, {"user": "someone"},
])
def test_every_field_that_changes_the_reply_changes_the_key(change):
    c = cache()
    assert c.key({**PAYLOAD, **change}, ALICE) != c.key(PAYLOAD, ALICE)


def test_the_scope_is_the_caller_unless_shared():
    assert cache().key(PAYLOAD, ALICE) != cache().key(PAYLOAD, BOB)
    open_a = Caller(id="anonymous", limit_key="ip:10.0.0.1")
    open_b = Caller(id="anonymous", limit_key="ip:10.0.0.2")
    assert cache().key(PAYLOAD, open_a) != cache().key(PAYLOAD, open_b)  # open mode: one cache per address
    assert cache("shared").key(PAYLOAD, ALICE) == cache("shared").key(PAYLOAD, BOB)
    assert cache("shared").key(PAYLOAD, ALICE) != cache().key(PAYLOAD, ALICE)


def test_the_policy_version_is_part_of_the_key():
    assert cache(policy="p1").key(PAYLOAD, ALICE) != cache(policy="p2").key(PAYLOAD, ALICE)
    assert policy_version("abc", "off") != policy_version("abc", "openai")


class FakeStore:
    def __init__(self, reply=None):
        self.reply = reply
        self.asked: list[str] = []
        self.put_calls: list[tuple[str, dict]] = []

    def get(self, digest):
        self.asked.append(digest)
        return self.reply

    def put(self, digest, body):
        self.put_calls.append((digest, body))


BODY = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]}


@pytest.mark.parametrize("header, stored_age, status, age, asked, keeps", [
    (None, None, "MISS", None, True, True),
    (None, 30.5, "HIT", 30, True, False),
    (None, 601.0, "MISS", None, True, True),             # past the TTL, whatever the store says
    ("max-age=60", 30.0, "HIT", 30, True, False),
    ("max-age=60", 60.0, "HIT", 60, True, False),
    ("max-age=60", 61.0, "MISS", None, True, True),
    ("max-age=0", 0.001, "MISS", None, True, True),
    ("no-cache", 1.0, "BYPASS", None, False, True),        # not read, but stored
    ("no-store", 1.0, "BYPASS", None, False, False),       # neither
])
def test_lookups(header, stored_age, status, age, asked, keeps):
    store = FakeStore(None if stored_age is None else StoredReply(BODY, 1000.0 - stored_age))
    c = cache(store=store)
    lookup = c.lookup(PAYLOAD, ALICE, CacheControl.parse(header))
    assert lookup.outcome == Outcome(status, age)
    assert bool(store.asked) is asked
    assert c.keep(lookup, BODY) is keeps
    assert len(store.put_calls) == int(keeps)


def test_outcome_headers():
    assert Outcome("HIT", 12).headers() == {"X-Cache": "HIT", "Age": "12"}
    assert Outcome("MISS").headers() == {"X-Cache": "MISS"}
    assert Lookup(None, None, Outcome("BYPASS")).hit is False


@pytest.mark.parametrize("finishes, ok", [
    (["stop"], True), (["length"], True), (["tool_calls"], True), (["stop", "length"], True),
    (["content_filter"], False), ([None], False), (["stop", None], False), (["function_call"], False), ([], False),
])
def test_only_complete_successful_replies_are_storable(finishes, ok):
    body = {"choices": [{"index": i, "message": {"content": "x"}, "finish_reason": f} for i, f in enumerate(finishes)]}
    assert storable(body) is ok


# --- streams to bodies and back


def chunk(delta=None, finish=None, **extra):
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini",
            "choices": choices, **extra}


def test_a_stream_gathers_into_the_body_a_whole_reply_would_have_been():
    rec = StreamRecorder()
    for c in (chunk({"role": "assistant", "content": ""}), chunk({"content": "Write to "}),
              chunk({"content": "jane@example.com"}), chunk({}, "stop"),
              chunk(usage={"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})):
        rec.add(c)
    assert rec.body() == {
        "id": "chatcmpl-9", "created": 1700000000, "model": "gpt-4o-mini", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Write to jane@example.com"},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}


def test_tool_calls_refusals_and_logprobs_gather_too():
    rec = StreamRecorder()
    rec.add(chunk({"role": "assistant", "content": None}))
    rec.add(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                   "function": {"name": "lookup", "arguments": ""}}]}))
    rec.add(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}))
    rec.add(chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "custom",
                                   "custom": {"name": "shell", "input": "ls "}}]}))
    rec.add(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}))
    rec.add(chunk({"tool_calls": [{"index": 1, "custom": {"input": "-l"}}]}))
    rec.add({**chunk({"refusal": "no"}), "choices": [{"index": 0, "delta": {"refusal": "no"},
                                                       "logprobs": {"refusal": [{"token": "no"}]}}]})
    rec.add(chunk({}, "tool_calls"))
    rec.add({**chunk({"content": "ignored"}), "choices": [{"index": 1, "delta": {"content": "other choice"}}]})
    message = rec.body()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": None, "refusal": "no", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Paris"}'}},
        {"id": "call_2", "type": "custom", "custom": {"name": "shell", "input": "ls -l"}}]}
    assert rec.body()["choices"][0]["logprobs"] == {"refusal": [{"token": "no"}]}
    assert rec.body()["choices"][0]["finish_reason"] == "tool_calls"


def test_pieces_cut_at_word_ends_and_lose_nothing():
    text = "The solar system has eight planets, and Pluto is a dwarf planet.\nMars is red. " + "x" * 60
    got = pieces(text)
    assert "".join(got) == text and len(got) > 3
    assert all(len(p) <= PIECE_CHARS for p in got)
    assert got[0].endswith(" ")
    assert pieces("") == [] and pieces("Hi") == ["Hi"]


def test_a_replay_is_several_chunks_that_gather_back_into_the_body():
    body = {"id": "chatcmpl-7", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
                "role": "assistant", "content": "Let me look that up for you, one moment.", "refusal": "not that",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {
                                    "name": "lookup", "arguments": '{"city": "Paris", "country": "France"}'}},
                               {"id": "call_2", "type": "custom", "custom": {"name": "shell", "input": "ls -l"}}]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}
    chunks = list(CachedStream(body))
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert len([t for t in texts if t]) > 1  # several pieces, not one blob
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-1]["choices"] == []
    rec = StreamRecorder()
    for c in chunks:
        rec.add(c)
    assert rec.body() == body
    CachedStream(body).close()


def test_a_replay_without_usage_ends_with_its_finishing_chunk():
    body = {"id": "x", "model": "m", "choices": [{"index": 0, "message": {"content": "Hi"}, "finish_reason": "length"}]}
    chunks = list(CachedStream(body))
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": ""}, {"content": "Hi"}, {}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
