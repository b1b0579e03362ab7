"""The official openai package against a live chatgate: only base_url changes."""
from __future__ import annotations

import json

import openai
import pytest
from support import LiveServer

from mock_upstream import run_in_thread


@pytest.fixture(scope="module")
def server():
    with LiveServer(ALLOWED_MODELS="gpt-4o-mini,gpt-4o") as live:
        yield live


@pytest.fixture
def sdk(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused-in-open-mode", max_retries=0)


def test_plain_completion(sdk):
    done = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])
    assert done.choices[0].message.content.startswith("[offline model]")
    assert done.choices[0].finish_reason == "stop" and done.usage.total_tokens > 0


def test_streamed_completion_with_the_sdk_iterator(sdk):
    whole = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Tell me of Mars"}])
    stream = sdk.chat.completions.create(model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
                                         messages=[{"role": "user", "content": "Tell me of Mars"}])
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == "stop" and usage.total_tokens == whole.usage.total_tokens


def test_tool_call_round_trip(sdk):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}}}}}]
    messages = [{"role": "user", "content": 'call: get_weather {"city": "Paris"}'}]
    first = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
                 {"role": "user", "content": "echo: It is sunny in Paris."}]
    second = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    assert second.choices[0].message.content == "It is sunny in Paris."


def test_json_mode(sdk):
    done = sdk.chat.completions.create(model="gpt-4o-mini", response_format={"type": "json_object"},
                                       messages=[{"role": "user", "content": "Give me JSON about Mars"}])
    assert isinstance(json.loads(done.choices[0].message.content), dict)


def test_models_list(sdk):
    assert [m.id for m in sdk.models.list()] == ["gpt-4o-mini", "gpt-4o"]
    assert sdk.models.retrieve("gpt-4o").id == "gpt-4o"


def test_bad_request_raises_bad_request_error(sdk):
    with pytest.raises(openai.BadRequestError) as err:
        sdk.chat.completions.create(model="gpt-4o-mini", temperature=3,
                                    messages=[{"role": "user", "content": "hi"}])
    assert err.value.code == "invalid_value" and err.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as err:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                    extra_body={"api_base": "http://169.254.169.254/"})
    assert err.value.param == "api_base"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-5")


@pytest.fixture(scope="module")
def faulty():
    """chatgate in front of a local upstream that fails as each test asks (fault in the base URL path)."""
    with run_in_thread(chunks=4, interval_ms=1) as mock:
        yield mock


@pytest.mark.parametrize("fault, error", [
    ("429", openai.RateLimitError),
    ("500", openai.InternalServerError),
    ("401", openai.InternalServerError),
    ("stall", openai.APIStatusError),
])
def test_upstream_failures_raise_the_matching_sdk_errors(faulty, fault, error):
    base = faulty.base_url[:-3] + f"/fault={fault},stall_s=30,retry_after=2/v1"
    with LiveServer(OPENAI_API_KEY="sk-test-0123456789", OPENAI_BASE_URL=base, UPSTREAM_MAX_RETRIES=0,
                    UPSTREAM_TIMEOUT=1) as live:
        sdk = openai.OpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(error) as err:
            sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    status = {"429": 429, "500": 502, "401": 502, "stall": 504}[fault]
    assert err.value.status_code == status
    if fault == "429":
        assert err.value.response.headers["retry-after"] == "2"
    if fault == "401":
        assert err.value.response.headers["x-should-retry"] == "false"
