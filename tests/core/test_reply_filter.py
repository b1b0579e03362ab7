"""One filter over every string a model returns, through /chat and /v1, whole and streamed."""
from __future__ import annotations

import json

import pytest
import responses
from conftest import UPSTREAM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import completion

from app.filter import ContentFilter

URL = UPSTREAM + "/chat/completions"
HI = [{"role": "user", "content": "hi"}]
B62 = "aB3dE5gH7jK9mN1pQ2sT4vW6yZ8"


def token(prefix: str, n: int) -> str:
    """A token of ``n`` characters after ``prefix``, assembled at run time (no secret-shaped literal)."""
    return prefix + (B62 * (n // len(B62) + 1))[:n]


# (what the model says, what must be gone from what the client sees, the placeholder expected)
VALUES = [
    ("write to jane.doe@example.com", "jane.doe@example.com", "[EMAIL]"),
    ("write to jane\uff0edoe\uff20example\uff0ecom", "example", "[EMAIL]"),             # fullwidth @ and .
    ("card 4111\u00a01111\u00a01111\u00a01111", "4111", "[CARD]"),                      # no-break spaces
    ("card 521\u200b1490677199249", "1490677199249", "[CARD]"),                         # a zero-width space
    ("card \uff14\uff11\uff11\uff11 1111 1111 1111", "1111 1111", "[CARD]"),            # fullwidth digits
    ("call +33 1 42 68 53 00", "42 68 53", "[PHONE]"),                                  # France
    ("call +44 20 7946 0958", "7946", "[PHONE]"),                                       # UK
    ("call +49 30 901820", "901820", "[PHONE]"),                                        # Germany
    ("call +81 3-1234-5678", "1234-5678", "[PHONE]"),                                   # Japan
    ("call +91 98765 43210", "98765", "[PHONE]"),                                       # India
    ("call +55 11 91234-5678", "91234", "[PHONE]"),                                     # Brazil
    ("call +61 2 9374 4000", "9374", "[PHONE]"),                                        # Australia
    ("call +34 912 34 56 78", "912 34", "[PHONE]"),                                     # Spain
    ("call (544) 944-9474 x894", "944-9474", "[PHONE]"),                                # US, extension
    ("key " + token("ghp_", 36), "ghp_", "[SECRET]"),
    ("key " + token("xoxb-123456789012-1234567890123-", 24), "xoxb-", "[SECRET]"),
    ("key " + token("sk_live_", 24), "sk_live_", "[SECRET]"),
    ("key " + token("AIza", 35), "AIza", "[SECRET]"),
    ("key " + token("glpat-", 20), "glpat-", "[SECRET]"),
    ("key " + token("sk-ant-api03-", 93) + "AA", "sk-ant-", "[SECRET]"),
]


def sse(*chunks: dict) -> str:
    """An upstream stream of chat.completion.chunk events, then [DONE]."""
    base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = [f"data: {json.dumps({**base, **c})}\n\n" for c in chunks]
    return "".join(events) + "data: [DONE]\n\n"


def content_chunks(text: str, size: int = 5) -> list[dict]:
    return [{"choices": [{"index": 0, "delta": {"content": text[i:i + size]}, "finish_reason": None}]}
            for i in range(0, len(text), size)] + [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]


def read_stream(resp) -> list:
    out = []
    for line in resp.data.decode().splitlines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest.mark.parametrize("said, secret, placeholder", VALUES)
@pytest.mark.parametrize("door", ["chat", "v1"])
@pytest.mark.parametrize("stream", [False, True])
@responses.activate
def test_every_kind_of_value_is_redacted_on_the_way_out(remote, said, secret, placeholder, door, stream):
    if stream:
        responses.post(URL, body=sse(*content_chunks(said)), content_type="text/event-stream")
    else:
        responses.post(URL, json=completion(said))
    if door == "chat":
        resp = remote.post("/chat", json={"prompt": "say it", "stream": stream})
    else:
        resp = remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI, "stream": stream})
    assert resp.status_code == 200
    if stream:
        events = [e for e in read_stream(resp) if isinstance(e, dict)]
        text = "".join(e.get("delta", "") if door == "chat" else
                       "".join((c["delta"].get("content") or "") for c in e.get("choices", [])) for e in events)
    else:
        body = resp.get_json()
        text = body["reply"] if door == "chat" else body["choices"][0]["message"]["content"]
    assert secret not in text and placeholder in text, text


def tool_completion(*calls, content=None, refusal=None, finish="tool_calls"):
    body = completion(content, finish=finish)
    message = body["choices"][0]["message"]
    message["tool_calls"] = [{"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
                             for i, (name, args) in enumerate(calls)]
    message["refusal"] = refusal
    return body


@responses.activate
def test_every_string_of_a_whole_reply_is_filtered_and_counted(remote):
    body = tool_completion(("lookup", json.dumps({"email": "jane.doe@example.com", "ip": "10.1.2.3"})),
                           ("notify", json.dumps({"to": "bob@example.org"})), content="Mail jane@example.com",
                           refusal="I won't call +44 20 7946 0958", finish="tool_calls")
    responses.post(URL, json=body)
    choice = remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI}).get_json()["choices"][0]
    message = choice["message"]
    assert message["content"] == "Mail [EMAIL]" and message["refusal"] == "I won't call [PHONE]"
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"email": "[EMAIL]", "ip": "[IP]"}
    assert json.loads(message["tool_calls"][1]["function"]["arguments"]) == {"to": "[EMAIL]"}
    assert choice["filter"] == {"action": "redacted", "findings": [
        {"type": "email", "count": 3}, {"type": "ip", "count": 1}, {"type": "phone", "count": 1}]}


@pytest.mark.parametrize("where", ["arguments", "legacy", "custom", "refusal"])
@responses.activate
def test_a_blocked_term_in_any_string_blocks_the_choice(remote, where):
    body = completion("fine", finish="tool_calls")
    message = body["choices"][0]["message"]
    bad = "you motherfucker"
    if where == "arguments":
        message["tool_calls"] = [{"id": "c", "type": "function", "function": {"name": "f",
                                                                             "arguments": json.dumps({"x": bad})}}]
    elif where == "legacy":
        message["function_call"] = {"name": "f", "arguments": json.dumps({"x": bad})}
    elif where == "custom":
        message["tool_calls"] = [{"id": "c", "type": "custom", "custom": {"name": "sql", "input": bad}}]
    else:
        message["refusal"] = bad
    responses.post(URL, json=body)
    choice = remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI}).get_json()["choices"][0]
    assert choice["finish_reason"] == "content_filter" and choice["filter"]["action"] == "blocked"
    assert "tool_calls" not in choice["message"] and "function_call" not in choice["message"]
    assert "motherfucker" not in json.dumps(choice)


def tool_call_stream(pieces: list[str], name: str = "lookup") -> str:
    first = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": name, "arguments": ""}}]},
        "finish_reason": None}]}
    more = [{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]},
                          "finish_reason": None}]} for p in pieces]
    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    return sse(first, *more, end)


def streamed_arguments(resp) -> tuple[str, dict]:
    args, final = [], {}
    for event in read_stream(resp):
        if not isinstance(event, dict):
            continue
        for choice in event.get("choices", []):
            for call in choice.get("delta", {}).get("tool_calls") or ():
                args.append(call.get("function", {}).get("arguments") or "")
            if choice.get("finish_reason"):
                final = {**choice, "filter": event.get("filter")}
    return "".join(args), final


ARGS = json.dumps({"email": "jane.doe@example.com", "card": "4111 1111 1111 1111", "note": "call +33 1 42 68 53 00",
                   "ok": True, "nested": {"ip": "10.1.2.3", "list": ["bob@example.org", 3]}})


@responses.activate
def test_streamed_tool_arguments_are_filtered_and_stay_json(remote):
    responses.post(URL, body=tool_call_stream([ARGS[i:i + 7] for i in range(0, len(ARGS), 7)]),
                   content_type="text/event-stream")
    resp = remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI, "stream": True})
    args, final = streamed_arguments(resp)
    assert json.loads(args) == {"email": "[EMAIL]", "card": "[CARD]", "note": "call [PHONE]", "ok": True,
                                "nested": {"ip": "[IP]", "list": ["[EMAIL]", 3]}}
    assert final["finish_reason"] == "tool_calls" and final["filter"]["action"] == "redacted"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(ARGS) - 1), max_size=12, unique=True))
def test_streamed_arguments_equal_the_whole_reply_filter_for_any_chunking(make_app, cuts):
    expected = ContentFilter().apply_arguments(ARGS).text
    bounds = [0, *sorted(cuts), len(ARGS)]
    pieces = [ARGS[a:b] for a, b in zip(bounds, bounds[1:])]
    client = make_app(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=UPSTREAM).test_client()
    with responses.RequestsMock() as mock:
        mock.post(URL, body=tool_call_stream(pieces), content_type="text/event-stream")
        resp = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI, "stream": True})
        assert streamed_arguments(resp)[0] == expected


@responses.activate
def test_a_blocked_term_in_streamed_arguments_stops_the_stream(remote):
    bad = json.dumps({"x": "you motherfucker, " + "padding " * 40})
    responses.post(URL, body=tool_call_stream([bad[i:i + 5] for i in range(0, len(bad), 5)]),
                   content_type="text/event-stream")
    resp = remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI, "stream": True})
    args, final = streamed_arguments(resp)
    assert "motherfucker" not in args and final["finish_reason"] == "content_filter"
    assert final["filter"]["action"] == "blocked"
