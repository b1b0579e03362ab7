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
    # Chat models, then the embedding models (issue: /v1/models lists embedding models too).
    assert [m.id for m in sdk.models.list()] == ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
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


# --- the fields, endpoints and roles the SDK's users reach for


def test_every_newly_accepted_chat_field_through_the_sdk(sdk):
    done = sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "developer", "content": "Answer briefly."},
                  {"role": "user", "content": "Tell me about Saturn"}],
        parallel_tool_calls=False, tools=[{"type": "function", "function": {"name": "noop"}}],
        logprobs=True, top_logprobs=2, logit_bias={"50256": -100}, store=False, metadata={"feature": "faq"},
        reasoning_effort="low", verbosity="low", service_tier="auto", modalities=["text"],
        prediction={"type": "content", "content": "Hello"}, prompt_cache_key="faq-v1", safety_identifier="hash-1",
        max_completion_tokens=200, seed=7)
    assert done.choices[0].message.content.startswith("[offline model]")
    assert "following your system instructions" in done.choices[0].message.content


def test_responses_create_plain(sdk):
    response = sdk.responses.create(model="gpt-4o-mini", input="echo: write to jane.doe@example.com",
                                    instructions="Be brief.")
    assert response.status == "completed" and response.output_text == "write to [EMAIL]"
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_responses_streamed_with_the_sdk_iterator(sdk):
    whole = sdk.responses.create(model="gpt-4o-mini", input="Tell me about Jupiter")
    kinds, text, final = [], [], None
    for event in sdk.responses.create(model="gpt-4o-mini", input="Tell me about Jupiter", stream=True):
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "".join(text) == whole.output_text == final.output_text


def test_responses_stream_helper_accumulates(sdk):
    with sdk.responses.stream(model="gpt-4o-mini", input="Tell me about Venus") as stream:
        for _event in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text.startswith("[offline model]")


def test_responses_with_a_function_tool_round_trip(sdk):
    tools = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    first = sdk.responses.create(model="gpt-4o-mini", input='call: get_weather {"city": "Paris"}', tools=tools)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    second = sdk.responses.create(model="gpt-4o-mini", tools=tools, input=[
        {"role": "user", "content": 'call: get_weather {"city": "Paris"}'},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        {"role": "user", "content": "echo: It is sunny in Paris."}])
    assert second.output_text == "It is sunny in Paris."


def test_embeddings_create_floats_and_the_sdks_default_base64(sdk):
    floats = sdk.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], dimensions=8,
                                   encoding_format="float")
    assert [len(d.embedding) for d in floats.data] == [8, 8]
    # Without encoding_format the SDK asks for base64 and decodes it itself.
    default = sdk.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=8)
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert floats.usage.total_tokens > 0


def test_errors_of_the_new_endpoints_are_sdk_errors(sdk):
    with pytest.raises(openai.BadRequestError) as err:
        sdk.responses.create(model="gpt-4o-mini", input="x", previous_response_id="resp_1")
    assert err.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.BadRequestError):
        sdk.embeddings.create(model="gpt-4o-mini", input="x")
