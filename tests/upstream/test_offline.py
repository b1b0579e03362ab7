"""Tests for the offline model, exercised through a real requests.Session."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from app.upstream import offline
from app.upstream.offline import OFFLINE_BASE_URL, OfflineAdapter, offline_reply
from app.upstream.sse_codec import iter_sse

CHAT_URL = OFFLINE_BASE_URL + "/chat/completions"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def make_session(**kwargs) -> requests.Session:
    session = requests.Session()
    session.mount(OFFLINE_BASE_URL, OfflineAdapter(**kwargs))
    return session


@pytest.fixture
def session():
    with make_session() as s:
        yield s


def user(text) -> dict:
    return {"role": "user", "content": text}


def chat(session, *messages, **extra) -> requests.Response:
    payload = {"model": "gpt-4o-mini", "messages": list(messages), **extra}
    return session.post(CHAT_URL, json=payload, timeout=(5, 60), stream=payload.get("stream", False))


def reply(session, *messages, **extra) -> str:
    resp = chat(session, *messages, **extra)
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["message"]["content"]


def stream_chunks(session, *messages, **extra) -> list[str]:
    with chat(session, *messages, stream=True, **extra) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        return [e.data for e in iter_sse(resp.iter_content(chunk_size=None))]


def test_non_stream_body_matches_openai_shape(session):
    resp = chat(session, user("Tell me about volcanoes in Iceland"), model="gpt-test")
    assert resp.status_code == 200 and resp.reason == "OK"
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.url == CHAT_URL and resp.request.method == "POST"
    body = resp.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert isinstance(body["created"], int) and body["model"] == "gpt-test"
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content.startswith("[offline model]")
    assert "You asked about volcanoes and Iceland." in content
    usage = body["usage"]
    assert usage["completion_tokens"] == len(content.split())
    assert usage["prompt_tokens"] == -(-len("Tell me about volcanoes in Iceland") // 4) + 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_replies_are_deterministic(session):
    msgs = [{"role": "system", "content": "Be brief."}, user("Compare rust and golang")]
    first, second = chat(session, *msgs).json(), chat(session, *msgs).json()
    first.pop("created"), second.pop("created")
    assert first == second
    other = chat(session, user("Compare python and golang")).json()
    assert other["id"] != first["id"]


def test_greeting_explains_missing_key(session):
    text = reply(session, user("Hello!"))
    assert text.startswith("[offline model] Hello")
    assert "OPENAI_API_KEY" in text and "set" in text


def test_long_message_starting_with_greeting_is_not_a_greeting(session):
    text = reply(session, user("hi, can you explain how photosynthesis works in desert plants?"))
    assert "photosynthesis" in text and "Hello" not in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("echo: My SSN is 123-45-6789", "My SSN is 123-45-6789"),
        ("REPEAT:   spaced out  ", "spaced out"),
        ("Echo:line one\nline two", "line one\nline two"),
        ("echo:", ""),
    ],
)
def test_echo_mode(session, content, expected):
    assert reply(session, user(content)) == expected


def test_echo_wins_over_json_mode(session):
    assert reply(session, user("echo: not json"), response_format={"type": "json_object"}) == "not json"


def test_multi_turn_counts_user_messages(session):
    msgs = [user("first question"), {"role": "assistant", "content": "answer"},
            user("second question"), {"role": "assistant", "content": None}, user("third question about tides")]
    text = reply(session, *msgs)
    assert "This is message 3 in our conversation." in text and "tides" in text


def test_system_prompt_mentioned(session):
    assert "system instructions" not in reply(session, user("Describe glaciers"))
    for role in ("system", "developer"):
        text = reply(session, {"role": role, "content": "You are a pirate."}, user("Describe glaciers"))
        assert "(following your system instructions)" in text


def test_keywords(session):
    assert "couldn't pick out any key words" in reply(session, user("?? 42 !! what's that"))
    assert "about sky, blue and noon." in reply(session, user("Why is the sky blue at noon? Sky!"))
    assert "about capital and France." in reply(session, user("What's the capital of France?"))


def test_content_part_arrays_are_joined(session):
    parts = [{"type": "text", "text": "echo: alpha"}, {"type": "image_url", "image_url": {"url": "x"}},
             {"type": "text", "text": "beta"}, "junk"]
    assert reply(session, user(parts)) == "alpha\nbeta"
    text = reply(session, user([{"type": "text", "text": "Summarize quantum entanglement"}]))
    assert "quantum" in text and "entanglement" in text


def test_no_user_message(session):
    assert "no user message" in reply(session, {"role": "system", "content": "hi"})


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_with_length(session, key):
    body = chat(session, user("echo: one two three four five"), **{key: 3}).json()
    choice = body["choices"][0]
    assert choice["message"]["content"] == "one two three"
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    full = chat(session, user("echo: one two three"), **{key: 3}).json()
    assert full["choices"][0]["finish_reason"] == "stop" and full["usage"]["completion_tokens"] == 3


def test_max_completion_tokens_takes_precedence(session):
    msgs = [user("echo: one two three four five")]
    body = chat(session, *msgs, max_completion_tokens=2, max_tokens=4).json()
    assert body["choices"][0]["message"]["content"] == "one two"
    body = chat(session, *msgs, max_completion_tokens=None, max_tokens=4).json()
    assert body["choices"][0]["message"]["content"] == "one two three four"


def test_offline_reply_direct():
    msgs = [user("echo: a b c")]
    assert offline_reply(msgs, "m", None) == ("a b c", "stop")
    assert offline_reply(msgs, "m", 0) == ("", "length")
    assert offline_reply(msgs, "m", -5) == ("", "length")
    assert offline_reply(msgs, "m", 2) == offline_reply(msgs, "m", 2)


@pytest.mark.parametrize("fmt", [{"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "x"}}])
def test_json_mode_yields_json(session, fmt):
    obj = json.loads(reply(session, user("List three fruits"), response_format=fmt))
    assert obj["source"] == "offline" and obj["reply"].startswith("[offline model]")


def test_json_schema_properties_are_filled(session):
    props = {"answer": {"type": "string"}, "score": {"type": "number"}, "ok": {"type": "boolean"},
             "tags": {"type": "array"}, "mood": {"enum": ["calm", "busy"]}, "note": {"type": ["null", "integer"]},
             "odd": {"type": ["null"]}, "weird": {"type": 5}, "bare": True}
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": props}}}
    obj = json.loads(reply(session, user("Rate this"), response_format=fmt))
    text = obj["answer"]
    assert text.startswith("[offline model]")
    assert obj == {"answer": text, "score": 0, "ok": False, "tags": [], "mood": "calm", "note": 0, "odd": None,
                   "weird": text, "bare": text}


@pytest.mark.parametrize("wrapper", ["not a dict", {"schema": "nope"}, {"schema": {"properties": {}}}])
def test_json_schema_odd_shapes_fall_back(session, wrapper):
    fmt = {"type": "json_schema", "json_schema": wrapper}
    assert json.loads(reply(session, user("Rate this"), response_format=fmt))["source"] == "offline"


def test_tool_call_non_stream(session):
    body = chat(session, user('call: get_weather {"city": "Paris"}'), tools=TOOLS).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    (call,) = message["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


def test_call_prefix_without_tools_is_a_normal_reply(session):
    assert reply(session, user('call: get_weather {"city": "Paris"}')).startswith("[offline model]")
    body = chat(session, user("call: get_weather"), tools=TOOLS).json()
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_tool_call_stream(session):
    args = '{"city": "Paris", "unit": "celsius"}'
    events = stream_chunks(session, user(f"call: get_weather {args}"), tools=TOOLS)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    assert first["tool_calls"][0]["id"].startswith("call_")
    streamed = "".join(c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in chunks[:-1])
    assert streamed == args and len(chunks) > 3
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}


@pytest.mark.parametrize("msgs", [[user("Explain how tides work on Mars")], [user("echo: a\n b  c")]])
def test_stream_reassembles_to_non_stream_text(session, msgs):
    events = stream_chunks(session, *msgs)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    deltas = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    body = chat(session, *msgs).json()
    assert "".join(deltas) == body["choices"][0]["message"]["content"]
    assert len(deltas) == body["usage"]["completion_tokens"] > 1
    assert {c["id"] for c in chunks} == {body["id"]}


def test_stream_include_usage(session):
    msgs = [user("echo: one two three four")]
    events = stream_chunks(session, *msgs, stream_options={"include_usage": True}, max_tokens=2)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 2
    assert last["usage"] == chat(session, *msgs, max_tokens=2).json()["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    for options in ({"include_usage": False}, "junk"):
        plain = stream_chunks(session, *msgs, stream_options=options)
        assert plain[-1] == "[DONE]" and all(json.loads(e)["choices"] for e in plain[:-1])


@pytest.fixture
def generated(monkeypatch) -> list[str]:
    """Records every SSE event the offline stream produces, as it produces it."""
    events: list[str] = []
    real_encode = offline.encode_sse
    monkeypatch.setattr(offline, "encode_sse", lambda data: events.append(data) or real_encode(data))
    return events


def test_stream_arrives_lazily_with_delay(generated):
    with make_session(chunk_delay=0.02) as s, chat(s, user("echo: a b c d e f"), stream=True) as resp:
        assert generated == []  # nothing is produced until the body is read
        chunks = resp.iter_content(chunk_size=None)
        next(chunks)
        assert len(generated) == 1
        stamps = [time.monotonic()]
        for _ in chunks:
            stamps.append(time.monotonic())
    assert len(stamps) == 9  # role, 6 words, finish, [DONE]
    assert stamps[-1] - stamps[0] >= 0.02 * 8 * 0.5  # loose bound: only shows the delays happened
    assert all(b > a for a, b in zip(stamps, stamps[1:]))


def test_close_stops_generation(generated):
    with make_session() as s:
        resp = chat(s, user("echo: " + " ".join(["word"] * 50)), stream=True)
        events = iter_sse(resp.iter_content(chunk_size=None))
        next(events), next(events)
        resp.close()
        assert len(generated) == 2
        assert list(events) == []
        assert len(generated) == 2


def test_close_from_another_thread_interrupts_delay(generated):
    with make_session(chunk_delay=5.0) as s:
        resp = chat(s, user("echo: a b c"), stream=True)
        received = []

        def read_all():
            for chunk in resp.iter_content(chunk_size=None):
                received.append(chunk)

        reader = threading.Thread(target=read_all)
        reader.start()
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)  # let the reader block inside the inter-chunk delay
        start = time.monotonic()
        resp.close()
        reader.join(timeout=4)
        assert not reader.is_alive() and time.monotonic() - start < 4
    assert len(received) == 1 and len(generated) == 1


def test_raw_read_and_content_with_small_chunks(session):
    resp = chat(session, user("echo: x y"), stream=True)
    assert resp.raw.read(5) == b"data:"
    rest = resp.raw.read()
    assert rest.endswith(b"data: [DONE]\n\n")
    assert resp.raw.read() == b""
    resp.close()
    assert resp.raw.read() == b""
    small = chat(session, user("echo: x y"), stream=True)
    pieces = list(small.iter_content(chunk_size=7))
    assert all(len(p) <= 7 for p in pieces) and b"".join(pieces).endswith(b"[DONE]\n\n")


def test_streaming_body_read_fully_with_text(session):
    text = chat(session, user("echo: hi"), stream=True).text
    assert [e.data for e in iter_sse([text.encode()])][-1] == "[DONE]"


def test_models_lists_configured_models():
    for kwargs, expected in [({}, ["gpt-4o-mini"]), ({"models": ["a", "b"]}, ["a", "b"])]:
        with make_session(**kwargs) as s:
            resp = s.get(OFFLINE_BASE_URL + "/models", timeout=5)
            body = resp.json()
            assert resp.status_code == 200 and body["object"] == "list"
            assert [m["id"] for m in body["data"]] == expected
            assert all(m["object"] == "model" and isinstance(m["created"], int) for m in body["data"])


def assert_error(resp, status, code, param=None):
    assert resp.status_code == status
    assert resp.headers["Content-Type"] == "application/json"
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == code and error["param"] == param
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("GET", "/chat/completions"), ("POST", "/models")])
def test_unknown_routes_404(session, method, path):
    resp = session.request(method, OFFLINE_BASE_URL + path, timeout=5)
    assert_error(resp, 404, "not_found")
    assert resp.reason == "Not Found"


@pytest.mark.parametrize("data", [b"{not json", "{also not", b"\xff\xfe", None])
def test_malformed_body_400(session, data):
    resp = session.post(CHAT_URL, data=data, timeout=5)
    assert_error(resp, 400, "invalid_json")


@pytest.mark.parametrize(
    ("payload", "code", "param"),
    [
        ([1, 2], "invalid_json", None),
        ({"messages": [user("x")]}, "missing_required_parameter", "model"),
        ({"model": "m", "messages": []}, "invalid_value", "messages"),
        ({"model": "m", "messages": ["x"]}, "invalid_value", "messages"),
        ({"model": "m", "messages": [user("x")], "max_tokens": "5"}, "invalid_type", "max_tokens"),
        ({"model": "m", "messages": [user("x")], "max_completion_tokens": True}, "invalid_type",
         "max_completion_tokens"),
    ],
)
def test_invalid_request_400(session, payload, code, param):
    assert_error(session.post(CHAT_URL, json=payload, timeout=5), 400, code, param)


def test_adapter_close_is_harmless():
    adapter = OfflineAdapter()
    adapter.close()
    with make_session() as s:
        assert reply(s, user("echo: still fine")) == "still fine"
