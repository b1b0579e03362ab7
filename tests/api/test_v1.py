"""The OpenAI-compatible door: format, validation, no steering, same checks as /chat."""
from __future__ import annotations

import json

import pytest
import responses
from conftest import UPSTREAM
from support import completion

from app.upstream.sse_codec import iter_sse

URL = UPSTREAM + "/chat/completions"
HELLO = [{"role": "user", "content": "Hello"}]


def v1(client, **body):
    return client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO, **body})


def chunks(resp):
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in iter_sse(resp.response)]


def test_completion_has_openai_shape(client):
    body = v1(client).get_json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int) and body["model"] == "gpt-4o-mini"
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].startswith("[offline model]")
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"}
    assert body["usage"]["cost_usd"] > 0  # gpt-4o-mini is in the shipped price table


def test_content_part_arrays_and_all_roles_are_accepted(client):
    messages = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [{"type": "text", "text": "echo: "}, {"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
                {"role": "user", "content": "echo: done"}]
    resp = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": messages})
    assert resp.status_code == 200 and resp.get_json()["choices"][0]["message"]["content"] == "done"


@pytest.mark.parametrize("extra", [
    {"temperature": 0.5, "top_p": 0.9, "max_tokens": 20, "max_completion_tokens": 20, "n": 2, "stop": ["x"],
     "seed": 7, "presence_penalty": 1, "frequency_penalty": -1, "user": "u-1"},
    {"stop": "END"},
    {"response_format": {"type": "json_object"}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"},
                                                                "strict": True}}},
    {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                                                 "parameters": {"type": "object", "properties": {}}}}],
     "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    {"tool_choice": "auto"},
])
@responses.activate
def test_supported_fields_pass_through(remote, extra):
    responses.post(URL, json=completion())
    resp = v1(remote, **extra)
    assert resp.status_code == 200, resp.get_json()
    sent = json.loads(responses.calls[0].request.body)
    for key, value in extra.items():
        assert sent[key] == value


@pytest.mark.parametrize("body, param", [
    ({"api_base": "http://169.254.169.254/"}, "api_base"),
    ({"base_url": "http://evil/v1"}, "base_url"),
    ({"api_key": "sk-other"}, "api_key"),
    ({"api_version": "2024-01-01"}, "api_version"),
    ({"organization": "org-x"}, "organization"),
    ({"extra_headers": {"Authorization": "Bearer x"}}, "extra_headers"),
    ({"extra_body": {"api_base": "http://evil"}}, "extra_body"),
    ({"messages": [{"role": "user", "content": "hi", "api_base": "http://evil"}]}, "messages.0.api_base"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "base_url": "x"}]}]},
     "messages.0.content.0.base_url"),
    ({"stream_options": {"include_usage": True, "api_key": "k"}}, "stream_options.api_key"),
    ({"tool_choice": {"type": "function", "function": {"name": "f", "organization": "o"}}},
     "tool_choice.function.organization"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "api_base": "x"}}},
     "response_format.json_schema.api_base"),
    ({"api_type": "azure"}, "api_type"),
    ({"web_search_options": {"search_context_size": "low", "endpoint": "http://evil"}}, "web_search_options.endpoint"),
    ({"prediction": {"type": "content", "content": "x", "base_url": "y"}}, "prediction.base_url"),
])
@responses.activate
def test_nothing_in_a_request_can_steer_the_upstream(remote, body, param):
    responses.post(URL, json=completion())
    resp = v1(remote, **body)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["param"] == param and resp.get_json()["error"]["code"] == "unknown_field"
    assert resp.headers["x-should-retry"] == "false"
    assert len(responses.calls) == 0


@pytest.mark.parametrize("body, param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": ""}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages.0.content.0.image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "video", "video": "x"}]}]}, "messages.0.content.0.type"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool_call_id"),
    ({"model": 4}, "model"),
    ({"model": "gpt-unknown"}, "model"),
    ({"temperature": True}, "temperature"),
    ({"n": 9}, "n"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools.0.function.name"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"stream": True, "n": 2}, "n"),
])
def test_invalid_fields_are_refused_naming_the_field(client, body, param):
    resp = v1(client, **body)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["param"] == param


def test_missing_model_is_refused(client):
    resp = client.post("/v1/chat/completions", json={"messages": HELLO})
    assert resp.status_code == 400 and resp.get_json()["error"]["param"] == "model"


@responses.activate
def test_tool_calls_in_replies_keep_their_shape_and_lose_their_pii(remote):
    calls = [{"id": "call_1", "type": "function",
              "function": {"name": "lookup", "arguments": "{\"email\": \"a@b.co\"}"}}]
    body = completion(None, finish="tool_calls")
    body["choices"][0]["message"]["tool_calls"] = calls
    responses.post(URL, json=body)
    choice = v1(remote).get_json()["choices"][0]
    got = choice["message"]["tool_calls"]
    assert [{**c, "function": {**c["function"], "arguments": None}} for c in got] == [
        {**c, "function": {**c["function"], "arguments": None}} for c in calls]
    assert json.loads(got[0]["function"]["arguments"]) == {"email": "[EMAIL]"}
    assert choice["message"]["content"] is None and choice["finish_reason"] == "tool_calls"
    assert choice["filter"] == {"action": "redacted", "findings": [{"type": "email", "count": 1}]}


@responses.activate
def test_every_choice_is_filtered(remote):
    body = completion("mail a@b.co")
    body["choices"].append({"index": 1, "message": {"role": "assistant", "content": "clean"}, "finish_reason": "stop"})
    responses.post(URL, json=body)
    choices = v1(remote, n=2).get_json()["choices"]
    assert [c["message"]["content"] for c in choices] == ["mail [EMAIL]", "clean"]
    assert [c["filter"]["action"] for c in choices] == ["redacted", "none"]


def test_stream_uses_openai_chunks(make_app):
    client = make_app(OFFLINE_STREAM_DELAY=0).test_client()
    whole = v1(client).get_json()["choices"][0]["message"]["content"]
    got = chunks(client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO,
                                                           "stream": True}, buffered=False))
    assert got[-1] == "[DONE]"
    assert all(c["object"] == "chat.completion.chunk" for c in got[:-1])
    assert got[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert got[-2]["choices"][0]["finish_reason"] == "stop" and got[-2]["choices"][0]["delta"] == {}
    assert "usage" not in got[-2]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in got[:-1])
    assert text == whole


def test_stream_usage_chunk_only_when_asked(client):
    got = chunks(client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO,
                                                           "stream": True, "stream_options": {"include_usage": True}},
                             buffered=False))
    assert got[-2]["choices"] == [] and got[-2]["usage"]["total_tokens"] > 0


def test_streamed_tool_calls_pass_through(client):
    body = {"model": "gpt-4o-mini", "stream": True,
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
            "messages": [{"role": "user", "content": 'call: get_weather {"city": "Paris"}'}]}
    got = chunks(client.post("/v1/chat/completions", json=body, buffered=False))
    calls = [c["choices"][0]["delta"]["tool_calls"] for c in got[:-1] if "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0][0]["function"]["name"] == "get_weather"
    args = "".join(part[0]["function"].get("arguments", "") for part in calls)
    assert json.loads(args) == {"city": "Paris"}
    assert got[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_models_list_and_retrieve(make_app):
    client = make_app(ALLOWED_MODELS="gpt-4o-mini,gpt-4o").test_client()
    assert client.get("/v1/models").get_json() == {"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "chatgate", "kind": "chat"},
        {"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "chatgate", "kind": "chat"},
        {"id": "text-embedding-3-small", "object": "model", "created": 0, "owned_by": "chatgate",
         "kind": "embedding"}]}
    assert client.get("/v1/models/gpt-4o").get_json()["id"] == "gpt-4o"
    assert client.get("/v1/models/text-embedding-3-small").get_json()["id"] == "text-embedding-3-small"
    assert client.get("/v1/models/gpt-5").status_code == 404


def test_embedding_models_are_listed_once_after_the_chat_models(make_app):
    client = make_app(ALLOWED_MODELS="gpt-4o", ALLOWED_EMBEDDING_MODELS="text-embedding-3-large,gpt-4o").test_client()
    assert [m["id"] for m in client.get("/v1/models").get_json()["data"]] == ["gpt-4o", "text-embedding-3-large"]


# --- the same hostile cases through both doors -------------------------------------------


def through_chat(client, text, **extra):
    return client.post("/chat", json={"prompt": text, **extra})


def through_v1(client, text, **extra):
    return client.post("/v1/chat/completions",
                       json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra})


DOORS = pytest.mark.parametrize("door", [through_chat, through_v1], ids=["chat", "v1"])


@DOORS
@pytest.mark.parametrize("text, extra, status, code", [
    ("", {}, 400, "empty_value"),
    ("a\x00b", {}, 400, "invalid_value"),
    ("x" * 33000, {}, 400, "too_long"),
    ("hi", {"temperature": 2.5}, 400, "invalid_value"),
    ("hi", {"max_tokens": 0}, 400, "invalid_value"),
    ("hi", {"api_key": "sk-x"}, 400, "unknown_field"),
    ("hi", {"model": "not-allowed"}, 400, "model_not_found"),
])
def test_hostile_input_is_refused_the_same_way(client, door, text, extra, status, code):
    resp = door(client, text, **extra)
    assert resp.status_code == status and resp.get_json()["error"]["code"] == code


@DOORS
def test_blocked_prompts_are_refused_on_both_doors(make_app, tmp_path, door):
    blocklist = tmp_path / "b.txt"
    blocklist.write_text("zorblax\n")
    client = make_app(BLOCKLIST_FILE=str(blocklist)).test_client()
    resp = door(client, "please zorbl4x")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "prompt_blocked"


@DOORS
@responses.activate
def test_prompt_pii_is_redacted_on_both_doors(remote, door):
    responses.post(URL, json=completion("ok"))
    door(remote, "card 4111 1111 1111 1111")
    assert json.loads(responses.calls[0].request.body)["messages"][-1]["content"] == "card [CARD]"


@DOORS
@responses.activate
def test_replies_are_filtered_on_both_doors(remote, door):
    responses.post(URL, json=completion("reach me at a@b.co"))
    body = door(remote, "hi").get_json()
    reply = body["reply"] if "reply" in body else body["choices"][0]["message"]["content"]
    assert reply == "reach me at [EMAIL]"


@DOORS
@responses.activate
def test_upstream_errors_map_the_same_on_both_doors(remote, door):
    responses.post(URL, json={}, status=401)
    resp = door(remote, "hi")
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "upstream_misconfigured"
    assert resp.headers["x-should-retry"] == "false"
