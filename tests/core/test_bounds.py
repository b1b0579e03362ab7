"""Token bounds: the reservation and MAX_TOTAL_CHARS weigh the whole request, and every call sends a reply cap."""
from __future__ import annotations

import json

import pytest
import responses
from conftest import UPSTREAM, UPSTREAM_KEY
from support import completion

from app.core.bounds import Bounds
from app.core.estimate import estimate_request, estimate_text, request_texts

URL = UPSTREAM + "/chat/completions"
HELLO = [{"role": "user", "content": "Hello"}]


def tool(description: str) -> dict:
    return {"type": "function", "function": {"name": "lookup", "description": description,
                                             "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}


@pytest.fixture
def mocked(make_app):
    """A client behind the mocked upstream, with whatever settings the test adds."""
    def factory(**env):
        env.setdefault("ALLOWED_MODELS", "gpt-4o-mini,o3-mini,gpt-5-mini,llama3.1")
        return make_app(OPENAI_API_KEY=UPSTREAM_KEY, OPENAI_BASE_URL=UPSTREAM, **env).test_client()
    return factory


def sent() -> dict:
    return json.loads(responses.calls[-1].request.body)


@responses.activate
def test_a_huge_tools_description_is_counted_against_the_token_limit(mocked):
    responses.post(URL, json=completion())
    client = mocked(TOKEN_RATE_LIMIT="100/minute", MAX_CONTENT_LENGTH=2_000_000, MAX_TOTAL_CHARS=2_000_000)
    resp = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 10,
                                                     "tools": [tool("x" * 900_000)]})
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "token_limit_exceeded"
    assert len(responses.calls) == 0
    small = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 10,
                                                      "tools": [tool("Look a word up.")]})
    assert small.status_code == 200


@responses.activate
@pytest.mark.parametrize("extra", [
    {"tools": [tool("d" * 300)]},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"description": "s" * 300}}}},
    {"stop": ["s" * 150, "t" * 150]},
    {"messages": [{"role": "user", "content": "hi", "name": "n"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "a" * 300}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "ok"}]},
])
def test_max_total_chars_counts_every_string_the_model_reads(mocked, extra):
    responses.post(URL, json=completion())
    body = {"model": "gpt-4o-mini", "messages": HELLO, **extra}
    resp = mocked(MAX_TOTAL_CHARS=250).post("/v1/chat/completions", json=body)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "too_long"
    assert mocked(MAX_TOTAL_CHARS=2000).post("/v1/chat/completions", json=body).status_code == 200


@responses.activate
@pytest.mark.parametrize("model, field", [("gpt-4o-mini", "max_tokens"), ("llama3.1", "max_tokens"),
                                          ("o3-mini", "max_completion_tokens"),
                                          ("gpt-5-mini", "max_completion_tokens")])
def test_max_tokens_cap_is_sent_when_the_client_sets_no_cap(mocked, model, field):
    responses.post(URL, json=completion())
    client = mocked(MAX_TOKENS_CAP=512)
    assert client.post("/chat", json={"prompt": "hi", "model": model}).status_code == 200
    assert sent()[field] == 512 and len({"max_tokens", "max_completion_tokens"} & set(sent())) == 1
    assert client.post("/v1/chat/completions", json={"model": model, "messages": HELLO}).status_code == 200
    assert sent()[field] == 512
    assert client.post("/v1/chat/completions", json={"model": model, "messages": HELLO, "stream": True},
                       buffered=False).status_code == 502  # the mock answers JSON, not a stream
    assert sent()[field] == 512


@responses.activate
def test_a_cap_the_client_set_is_kept_and_not_doubled(mocked):
    responses.post(URL, json=completion())
    client = mocked()
    client.post("/v1/chat/completions", json={"model": "o3-mini", "messages": HELLO, "max_completion_tokens": 30})
    assert sent()["max_completion_tokens"] == 30 and "max_tokens" not in sent()
    client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 20})
    assert sent()["max_tokens"] == 20 and "max_completion_tokens" not in sent()
    # /chat's own max_tokens goes out in the field the model takes.
    client.post("/chat", json={"prompt": "hi", "model": "o3-mini", "max_tokens": 40})
    assert sent()["max_completion_tokens"] == 40 and "max_tokens" not in sent()




def test_the_estimate_weighs_every_text_the_model_reads():
    base = {"model": "m", "messages": HELLO}
    plain = estimate_request(base)
    assert plain == 3 + 4 + estimate_text("Hello")
    assert estimate_request({**base, "tools": [tool("x" * 3000)]}) > plain + 1000
    assert estimate_request({**base, "stop": "y" * 300}) == plain + 100
    assert estimate_request({**base, "stop": ["y" * 300, "z" * 3]}) == plain + 101
    assert list(request_texts({**base, "tool_choice": "auto", "user": "u" * 99, "seed": 1})) == ["Hello"]
    assert list(request_texts({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                          {"type": "text", "text": "b"}]}]})) == ["a\nb"]


def test_check_payload_fills_in_the_cap_and_refuses_one_over_it():
    bounds = Bounds(max_prompt_chars=100, max_messages=4, max_total_chars=100, max_tokens_cap=64)
    payload = {"model": "gpt-4o-mini", "messages": HELLO}
    assert bounds.check_payload(payload) == 64 and payload["max_tokens"] == 64
    payload = {"model": "gpt-4o-mini", "messages": HELLO, "max_completion_tokens": 10}
    assert bounds.check_payload(payload) == 10 and "max_tokens" not in payload
    payload = {"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 50, "max_completion_tokens": 20}
    assert bounds.check_payload(payload) == 20
    with pytest.raises(Exception) as err:
        bounds.check_payload({"model": "gpt-4o-mini", "messages": HELLO, "max_tokens": 65})
    assert getattr(err.value, "param", None) == "max_tokens"
