"""Every documented field of OpenAI's chat request is accepted, checked, and sent upstream as given."""
from __future__ import annotations

import json

import pytest
import responses
from conftest import UPSTREAM
from support import completion

URL = UPSTREAM + "/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def v1(client, **body):
    return client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI, **body})


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
ACCEPTED = [
    {"parallel_tool_calls": False, "tools": [TOOL]},
    {"logprobs": True, "top_logprobs": 3},
    {"logit_bias": {"50256": -100, "15339": 5}},
    {"store": True},
    {"metadata": {"user_id": "u-42", "feature": "faq"}},
    {"reasoning_effort": "low"},
    {"reasoning_effort": "minimal"},
    {"verbosity": "high"},
    {"service_tier": "flex"},
    {"modalities": ["text"]},
    {"prediction": {"type": "content", "content": "The answer is 42."}},
    {"prediction": {"type": "content", "content": [{"type": "text", "text": "The answer"}]}},
    {"prompt_cache_key": "faq-v1"},
    {"prompt_cache_retention": "24h"},
    {"prompt_cache_options": {"ttl": "30m", "mode": "explicit"}},
    {"safety_identifier": "hash-123"},
    {"max_completion_tokens": 100},
    {"seed": -5},
    {"web_search_options": {"search_context_size": "low",
                            "user_location": {"type": "approximate", "approximate": {"country": "FR", "city": "Paris"}}}},
    {"moderation": {"model": "omni-moderation-latest", "policy": {"input": {"mode": "block"}}}},
    {"functions": [{"name": "lookup", "parameters": {"type": "object"}}], "function_call": {"name": "lookup"}},
    {"functions": [{"name": "lookup"}], "function_call": "auto"},
    {"tools": [{"type": "custom", "custom": {"name": "sql", "format": {"type": "grammar",
                                                                      "grammar": {"definition": "start: /SELECT.*/",
                                                                                  "syntax": "lark"}}}}]},
    {"tools": [TOOL], "tool_choice": {"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "lookup"}}]}}},
    {"tools": [TOOL], "tool_choice": {"type": "custom", "custom": {"name": "lookup"}}},
    {"stop": "\n\n"},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"},
                                                                "strict": True}}},
]


@pytest.mark.parametrize("extra", ACCEPTED)
@responses.activate
def test_every_documented_field_is_accepted_and_sent_as_given(remote, extra):
    responses.post(URL, json=completion())
    resp = v1(remote, **extra)
    assert resp.status_code == 200, resp.get_json()
    sent = json.loads(responses.calls[0].request.body)
    for key, value in extra.items():
        assert sent[key] == value, key


MESSAGES = [
    [{"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "hi"}],
    [{"role": "developer", "content": [{"type": "text", "text": "Be brief.",
                                        "prompt_cache_breakpoint": {"mode": "explicit"}}]},
     {"role": "user", "content": "hi"}],
    [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                  {"type": "image_url", "image_url": {"url": "https://example.com/a.png",
                                                                      "detail": "low"}}]}],
    [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}],
    [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}],
    [{"role": "user", "content": [{"type": "file", "file": {"filename": "a.pdf", "file_data": "JVBERi0="}}]}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
     {"role": "user", "content": "please"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None,
                                         "function_call": {"name": "lookup", "arguments": "{}"}},
     {"role": "function", "name": "lookup", "content": "{\"ok\": true}"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}]},
     {"role": "tool", "tool_call_id": "c1", "content": "1"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "audio": {"id": "audio_1"}}],
]


@pytest.mark.parametrize("messages", MESSAGES)
@responses.activate
def test_every_message_shape_is_accepted_and_sent_as_given(remote, messages):
    responses.post(URL, json=completion())
    resp = v1(remote, messages=messages)
    assert resp.status_code == 200, resp.get_json()
    assert json.loads(responses.calls[0].request.body)["messages"] == messages


def test_the_developer_role_reaches_the_offline_model_as_instructions(client):
    body = v1(client, messages=[{"role": "developer", "content": "Be terse."},
                                {"role": "user", "content": "Tell me about Mars"}]).get_json()
    assert "following your system instructions" in body["choices"][0]["message"]["content"]


@pytest.mark.parametrize("extra, param, code", [
    ({"logit_bias": {"50256": 101}}, "logit_bias.50256", "invalid_value"),
    ({"logit_bias": {"not-a-token": 1}}, "logit_bias.not-a-token", "invalid_value"),
    ({"top_logprobs": 21}, "top_logprobs", "invalid_value"),
    ({"logprobs": "yes"}, "logprobs", "invalid_type"),
    ({"reasoning_effort": "huge"}, "reasoning_effort", "invalid_value"),
    ({"verbosity": 3}, "verbosity", "invalid_value"),
    ({"service_tier": "gold"}, "service_tier", "invalid_value"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "invalid_value"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k", "invalid_value"),
    ({"metadata": {"k": 5}}, "metadata.k", "invalid_type"),
    ({"store": "true"}, "store", "invalid_type"),
    ({"safety_identifier": "x" * 65}, "safety_identifier", "invalid_value"),
    ({"prediction": {"type": "content"}}, "prediction.content", "missing_required"),
    ({"prompt_cache_retention": "forever"}, "prompt_cache_retention", "invalid_value"),
    ({"modalities": ["text", "audio"]}, "modalities", "unsupported_value"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "unsupported_value"),
    ({"web_search_options": {"search_context_size": "huge"}}, "web_search_options.search_context_size",
     "invalid_value"),
    ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "sometimes", "tools": []}}},
     "tool_choice.allowed_tools.mode", "invalid_value"),
    ({"messages": [{"role": "developer", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]},
     "messages.0.content.0.image_url", "unknown_field"),
])
@responses.activate
def test_documented_fields_are_still_checked_by_type_and_range(remote, extra, param, code):
    responses.post(URL, json=completion())
    resp = v1(remote, **extra)
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert (error["param"], error["code"]) == (param, code), error
    assert len(responses.calls) == 0


def test_audio_output_is_refused_with_the_reason(client):
    error = v1(client, modalities=["audio"]).get_json()["error"]
    assert "cannot pass the reply filter" in error["message"]


@responses.activate
def test_log_probabilities_are_relayed_only_when_the_filter_changed_nothing(remote):
    logprobs = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}], "refusal": None}
    plain = completion("Hi")
    plain["choices"][0]["logprobs"] = logprobs
    leaky = completion("Mail jane.doe@example.com")
    leaky["choices"][0]["logprobs"] = {"content": [{"token": "jane.doe@example.com", "logprob": -0.5,
                                                    "bytes": [], "top_logprobs": []}], "refusal": None}
    responses.post(URL, json=plain)
    responses.post(URL, json=leaky)
    first = v1(remote, logprobs=True).get_json()["choices"][0]
    assert first["logprobs"] == logprobs
    second = v1(remote, logprobs=True).get_json()["choices"][0]
    assert second["filter"]["action"] == "redacted" and second["logprobs"] is None
    assert "jane.doe" not in json.dumps(second)
