"""The prompt guard reads every string a client sends upstream, through both doors and /v1/responses."""
from __future__ import annotations

import json

import pytest
import responses
from conftest import UPSTREAM
from support import completion

URL = UPSTREAM + "/chat/completions"
CARD = "4111 1111 1111 1111"   # Luhn-valid test number: in PROMPT_REDACT by default
BLOCKED = "motherfucker"       # on the shipped block list
HI = {"role": "user", "content": "hi"}


def schema_with(text: str) -> dict:
    return {"type": "object", "description": f"card {text}",
            "properties": {"number": {"type": "string", "description": f"e.g. {text}", "examples": [text]}}}


# (request fields, where the card lands in the upstream request)
PLACES = [
    ({"messages": [{"role": "user", "content": f"pay with {CARD}"}]}, lambda s: s["messages"][0]["content"]),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": f"pay with {CARD}"}]}]},
     lambda s: s["messages"][0]["content"][0]["text"]),
    ({"messages": [{"role": "developer", "content": f"card {CARD}"}, HI]}, lambda s: s["messages"][0]["content"]),
    ({"messages": [HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "pay", "arguments": json.dumps({"card": CARD})}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": "ok"}]},
     lambda s: s["messages"][1]["tool_calls"][0]["function"]["arguments"]),
    ({"messages": [HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "pay", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": f"charged {CARD}"}]},
     lambda s: s["messages"][2]["content"]),
    ({"messages": [HI, {"role": "assistant", "content": None,
                        "function_call": {"name": "pay", "arguments": json.dumps({"card": CARD})}},
                   {"role": "function", "name": "pay", "content": "ok"}]},
     lambda s: s["messages"][1]["function_call"]["arguments"]),
    ({"messages": [HI, {"role": "assistant", "content": [{"type": "refusal", "refusal": f"not {CARD}"}]}, HI]},
     lambda s: s["messages"][1]["content"][0]["refusal"]),
    ({"tools": [{"type": "function", "function": {"name": "pay", "description": f"charges {CARD}"}}]},
     lambda s: s["tools"][0]["function"]["description"]),
    ({"tools": [{"type": "function", "function": {"name": "pay", "parameters": schema_with(CARD)}}]},
     lambda s: s["tools"][0]["function"]["parameters"]["properties"]["number"]["examples"][0]),
    ({"functions": [{"name": "pay", "description": f"charges {CARD}"}]},
     lambda s: s["functions"][0]["description"]),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema_with(CARD)}}},
     lambda s: s["response_format"]["json_schema"]["schema"]["description"]),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "description": f"card {CARD}"}}},
     lambda s: s["response_format"]["json_schema"]["description"]),
    ({"stop": [f"card {CARD}"]}, lambda s: s["stop"][0]),
    ({"stop": f"card {CARD}"}, lambda s: s["stop"]),
    ({"user": f"card {CARD}"}, lambda s: s["user"]),
    ({"metadata": {"note": f"card {CARD}"}}, lambda s: s["metadata"]["note"]),
    ({"prediction": {"type": "content", "content": f"card {CARD}"}}, lambda s: s["prediction"]["content"]),
]


@pytest.mark.parametrize("fields, where", PLACES)
@responses.activate
def test_pii_is_redacted_wherever_it_is_sent(remote, fields, where):
    responses.post(URL, json=completion())
    resp = remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [HI], **fields})
    assert resp.status_code == 200, resp.get_json()
    sent = json.loads(responses.calls[0].request.body)
    assert CARD not in json.dumps(sent)
    assert "[CARD]" in where(sent)


@pytest.mark.parametrize("fields", [
    {"messages": [{"role": "user", "content": f"you {BLOCKED}"}]},
    {"messages": [HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": json.dumps({"x": BLOCKED})}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "ok"}]},
    {"tools": [{"type": "function", "function": {"name": "f", "description": f"a {BLOCKED}"}}]},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "mood": {"type": "string", "enum": ["calm", BLOCKED]}}}}}]},
    {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        BLOCKED: {"type": "string"}}}}}]},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"title": BLOCKED}}}},
    {"stop": BLOCKED},
    {"metadata": {"note": BLOCKED}},
    {"prediction": {"type": "content", "content": BLOCKED}},
    {"messages": [{"role": "user", "content": "hi", "name": "motherfucker_bot"}]},
])
@responses.activate
def test_a_blocked_term_anywhere_refuses_the_request_before_it_leaves(remote, fields):
    responses.post(URL, json=completion())
    resp = remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [HI], **fields})
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "prompt_blocked"
    assert len(responses.calls) == 0


@responses.activate
def test_names_enum_values_and_schema_keywords_are_never_rewritten(remote):
    # The guard only refuses identifiers; rewriting them would break the client's own code.
    schema = {"type": "object", "properties": {"card_4111111111111111": {"type": "string", "enum": [CARD],
                                                                         "pattern": "^[0-9 ]+$"}},
              "required": ["card_4111111111111111"]}
    responses.post(URL, json=completion())
    tools = [{"type": "function", "function": {"name": "pay", "parameters": schema}}]
    assert remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [HI],
                                                     "tools": tools}).status_code == 200
    sent = json.loads(responses.calls[0].request.body)
    assert sent["tools"][0]["function"]["parameters"] == schema


@responses.activate
def test_redacted_tool_arguments_stay_valid_json(remote):
    args = json.dumps({"card": CARD, "note": f"\"quoted\" {CARD} and \\u0041", "n": [1, 2]})
    responses.post(URL, json=completion())
    remote.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [
        HI, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "pay", "arguments": args}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}]})
    sent = json.loads(responses.calls[0].request.body)["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent) == {"card": "[CARD]", "note": "\"quoted\" [CARD] and \\u0041", "n": [1, 2]}


@responses.activate
def test_the_responses_api_is_guarded_the_same_way(remote):
    responses.post(URL, json=completion())
    resp = remote.post("/v1/responses", json={
        "model": "gpt-4o-mini", "instructions": f"card {CARD}",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": f"pay {CARD}"}]},
                  {"type": "function_call", "call_id": "c1", "name": "pay", "arguments": json.dumps({"c": CARD})},
                  {"type": "function_call_output", "call_id": "c1", "output": f"charged {CARD}"}],
        "tools": [{"type": "function", "name": "pay", "description": f"charges {CARD}"}],
        "metadata": {"note": f"card {CARD}"}})
    assert resp.status_code == 200, resp.get_json()
    assert CARD not in responses.calls[0].request.body.decode()
    assert resp.get_json()["metadata"] == {"note": "card [CARD]"}
    blocked = remote.post("/v1/responses", json={"model": "gpt-4o-mini", "input": f"you {BLOCKED}"})
    assert blocked.status_code == 400 and blocked.get_json()["error"]["code"] == "prompt_blocked"
    assert len(responses.calls) == 1


def test_prompt_redact_none_leaves_every_field_alone(make_app):
    client = make_app(PROMPT_REDACT="none").test_client()
    reply = client.post("/chat", json={"prompt": f"echo: {CARD}"}).get_json()
    assert reply["reply"] == "[CARD]"  # the reply filter still redacts on the way back
