"""POST /v1/responses: the stateless Responses API over chat completions, whole and streamed.

Streamed events and response objects are validated against the schemas of OpenAI's published OpenAPI
description (tests/api/fixtures/openai_responses_events.json: openai/openai-openapi, commit f85dbe2).
"""
from __future__ import annotations

import json
import os

import jsonschema
import pytest
import responses
from conftest import UPSTREAM
from support import completion

from app.api.responses_translate import chat_payload

URL = UPSTREAM + "/chat/completions"
FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "openai_responses_events.json")
with open(FIXTURE, encoding="utf-8") as fh:
    SCHEMAS = json.load(fh)
EVENT_SCHEMA = {"response.created": "ResponseCreatedEvent", "response.in_progress": "ResponseInProgressEvent",
                "response.output_item.added": "ResponseOutputItemAddedEvent",
                "response.content_part.added": "ResponseContentPartAddedEvent",
                "response.output_text.delta": "ResponseTextDeltaEvent",
                "response.output_text.done": "ResponseTextDoneEvent",
                "response.content_part.done": "ResponseContentPartDoneEvent",
                "response.output_item.done": "ResponseOutputItemDoneEvent",
                "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
                "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
                "response.completed": "ResponseCompletedEvent", "response.incomplete": "ResponseIncompleteEvent",
                "response.failed": "ResponseFailedEvent", "error": "ResponseErrorEvent"}


def schema_errors(name: str, instance) -> list[str]:
    validator = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": SCHEMAS["$defs"]})
    return [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(instance)]


def events(resp) -> list[dict]:
    """The streamed events, each checked: its `event:` name is its type, and it fits OpenAI's schema."""
    out, name = [], None
    for line in resp.data.decode().splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            event = json.loads(line[6:])
            assert event["type"] == name
            assert schema_errors(EVENT_SCHEMA[event["type"]], event) == [], event
            out.append(event)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


def post(client, **body):
    return client.post("/v1/responses", json={"model": "gpt-4o-mini", **body})


# --- translation


def test_a_string_input_and_instructions_become_system_then_user():
    assert chat_payload({"input": "Hi", "instructions": "Be brief."}, "gpt-4o-mini") == {
        "model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Hi"}]}


def test_items_become_messages_with_tool_calls_and_results():
    body = {"input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Look up Paris"},
                                     {"type": "input_image", "image_url": "https://example.com/p.png", "detail": "low"}]},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "sunny"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Paris is sunny.", "annotations": [], "logprobs": []}]},
        {"role": "developer", "content": "Answer in French."}]}
    assert chat_payload(body, "gpt-4o")["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Look up Paris"},
                                     {"type": "image_url", "image_url": {"url": "https://example.com/p.png",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "tool", "tool_call_id": "c2", "content": "sunny"},
        {"role": "assistant", "content": [{"type": "text", "text": "Paris is sunny."}]},
        {"role": "developer", "content": "Answer in French."}]


def test_options_map_onto_their_chat_fields():
    body = {"input": "x", "temperature": 0.2, "top_p": 0.9, "max_output_tokens": 64, "parallel_tool_calls": False,
            "user": "u", "safety_identifier": "s", "prompt_cache_key": "k", "service_tier": "flex",
            "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"},
                       "strict": True}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}, "strict": True},
                     "verbosity": "low"},
            "reasoning": {"effort": "low"}}
    payload = chat_payload(body, "gpt-4o")
    assert {k: v for k, v in payload.items() if k != "messages"} == {
        "model": "gpt-4o", "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "parallel_tool_calls": False,
        "user": "u", "safety_identifier": "s", "prompt_cache_key": "k", "service_tier": "flex",
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"},
                                                    "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"},
                                                                   "strict": True}},
        "verbosity": "low", "reasoning_effort": "low"}
    assert chat_payload({"input": "x", "text": {"format": {"type": "json_object"}}}, "m")["response_format"] == {
        "type": "json_object"}


# --- whole responses


def test_a_whole_response_is_openais_response_object(client):
    body = post(client, input="echo: mail jane.doe@example.com", instructions="x", metadata={"a": "b"}).get_json()
    assert schema_errors("Response", body) == [], body
    assert body["status"] == "completed" and body["object"] == "response" and body["id"].startswith("resp_")
    [item] = body["output"]
    assert item["type"] == "message" and item["content"][0]["text"] == "mail [EMAIL]"
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"]
    assert body["filter"] == {"action": "redacted", "findings": [{"type": "email", "count": 1}]}
    assert body["metadata"] == {"a": "b"} and body["instructions"] == "x" and body["store"] is False


@responses.activate
def test_function_calls_come_back_as_output_items(remote):
    reply = completion(None, finish="tool_calls")
    reply["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"to\": \"a@b.co\"}"}}]
    responses.post(URL, json=reply)
    body = post(remote, input="hi", tools=[{"type": "function", "name": "lookup"}]).get_json()
    assert schema_errors("Response", body) == []
    [call] = body["output"]
    assert (call["type"], call["call_id"], call["name"]) == ("function_call", "call_1", "lookup")
    assert json.loads(call["arguments"]) == {"to": "[EMAIL]"}
    sent = json.loads(responses.calls[0].request.body)
    assert sent["tools"] == [{"type": "function", "function": {"name": "lookup"}}]


@pytest.mark.parametrize("said, finish, status, reason", [
    ("cut short", "length", "incomplete", "max_output_tokens"),
    ("you motherfucker", "stop", "incomplete", "content_filter"),
])
@responses.activate
def test_short_and_blocked_replies_are_incomplete(remote, said, finish, status, reason):
    responses.post(URL, json=completion(said, finish=finish))
    body = post(remote, input="hi").get_json()
    assert schema_errors("Response", body) == []
    assert body["status"] == status and body["incomplete_details"] == {"reason": reason}
    assert "motherfucker" not in json.dumps(body)


# --- streams


def test_a_stream_is_the_responses_event_sequence(client):
    got = events(post(client, input="echo: mail jane.doe@example.com now", stream=True))
    kinds = [e["type"] for e in got]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    text = "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta")
    final = got[-1]["response"]
    assert text == final["output"][0]["content"][0]["text"] == "mail [EMAIL] now"
    assert final["usage"]["output_tokens"] > 0 and final["filter"]["action"] == "redacted"
    assert len({e.get("item_id") for e in got if "item_id" in e}) == 1


def sse(*chunks: dict, done: bool = True) -> str:
    base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    body = "".join(f"data: {json.dumps({**base, **c})}\n\n" for c in chunks)
    return body + ("data: [DONE]\n\n" if done else "")


@responses.activate
def test_a_streamed_function_call_is_its_own_item(remote):
    responses.post(URL, content_type="text/event-stream", body=sse(
        {"choices": [{"index": 0, "delta": {"content": "Let me check."}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                                                            "function": {"name": "lookup", "arguments": ""}}]},
                      "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\": "}}]},
                      "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"x\"}"}}]},
                      "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}))
    got = events(post(remote, input="hi", tools=[{"type": "function", "name": "lookup"}], stream=True))
    kinds = [e["type"] for e in got]
    assert kinds.index("response.output_item.done") < kinds.index("response.function_call_arguments.delta")
    done = next(e for e in got if e["type"] == "response.function_call_arguments.done")
    assert (done["name"], json.loads(done["arguments"])) == ("lookup", {"q": "x"})
    final = got[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]
    assert final["output"][1]["call_id"] == "call_9" and final["usage"]["total_tokens"] == 7


@responses.activate
def test_a_stream_that_breaks_ends_with_response_failed(remote):
    responses.post(URL, content_type="text/event-stream", body=sse(
        *[{"choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]} for i in range(60)],
        done=False))
    got = events(post(remote, input="hi", stream=True))
    assert got[-1]["type"] == "response.failed"
    assert got[-1]["response"]["status"] == "failed" and got[-1]["response"]["error"]["code"] == "server_error"
    assert not any(e["type"] == "response.completed" for e in got)


# --- what is refused, and the shared checks


@pytest.mark.parametrize("extra, param, code", [
    ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_value"),
    ({"store": True}, "store", "unsupported_value"),
    ({"include": ["reasoning.encrypted_content"]}, "include", "unknown_field"),
    ({"tools": [{"type": "web_search"}]}, "tools.0.type", "invalid_value"),
    ({"input": [{"type": "reasoning", "id": "r1", "summary": []}]}, "input.0.type", "invalid_value"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input.0.content.0.type",
     "invalid_value"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input.0.role", "invalid_value"),
    ({"input": "x", "truncation": "auto"}, "truncation", "invalid_value"),
    ({"input": "x", "api_base": "http://evil"}, "api_base", "unknown_field"),
    ({"input": "x", "temperature": 3}, "temperature", "invalid_value"),
    ({"input": "x", "model": "gpt-unknown"}, "model", "model_not_found"),
])
def test_what_is_outside_the_subset_is_refused_naming_it(client, extra, param, code):
    body = {"input": "hi", **extra}
    error = post(client, **body).get_json()["error"]
    assert (error["param"], error["code"]) == (param, code), error


def test_images_are_only_for_user_messages(client):
    resp = post(client, input=[{"role": "system", "content": [{"type": "input_image",
                                                               "image_url": "https://example.com/a.png"}]}])
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "unsupported_value"


def test_responses_count_against_limits_and_reach_the_ledger(make_app):
    app = make_app(RATE_LIMIT="2/minute")
    client = app.test_client()
    assert [post(client, input="hi").status_code for _ in range(3)] == [200, 200, 429]
    rows = app.extensions["chatgate"].ledger.totals("ip:127.0.0.1", 1)
    app.extensions["chatgate"].ledger.flush()
    assert rows and rows[0]["requests"] == 2


@pytest.mark.parametrize("body, param, code", [
    ({"input": ""}, "input", "empty_value"),
    ({"input": "  \n"}, "input", "empty_value"),
    ({"input": "x\x00y"}, "input", "invalid_value"),
    ({"input": "hi", "instructions": "a\x00"}, "instructions", "invalid_value"),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "\x00"}]}]}, "input.0.content.0.text",
     "invalid_value"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": "\x00"}]}, "input.0.output",
     "invalid_value"),
])
def test_texts_are_checked_where_the_client_wrote_them(client, body, param, code):
    error = post(client, **body).get_json()["error"]
    assert (error["param"], error["code"]) == (param, code), error
