"""Request schema of POST /v1/chat/completions: every field of OpenAI's request, strictly typed.

Fields are checked by type and range and then sent upstream exactly as the
client gave them (``PASS_THROUGH``); messages go through the prompt guard
first. Unknown fields are refused at every depth. Two documented values are
refused on purpose, with a reason: audio output (``modalities`` with
"audio", ``audio``), because a spoken reply cannot go through the reply
filter.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, Field, field_validator

from .openai_messages import (
    STRICT,
    AnyTool,
    Content,
    LegacyFunction,
    Message,
    NamedFunction,
    ResponseFormat,
    TextPart,
    ToolChoice,
)

__all__ = ["PASS_THROUGH", "ChatCompletionRequest", "Content", "Message", "TextPart"]


TokenId = Annotated[str, Field(pattern=r"^[0-9]{1,9}$")]


class StreamOptions(BaseModel):
    """Options of a streamed reply."""

    model_config = STRICT
    include_usage: Optional[bool] = None
    include_obfuscation: Optional[bool] = None


class Prediction(BaseModel):
    """Predicted output: text the reply will mostly repeat (the model sees it, so the guard reads it)."""

    model_config = STRICT
    type: Literal["content"]
    content: Union[str, Annotated[list[TextPart], Field(min_length=1, max_length=256)]]


class ApproximateLocation(BaseModel):
    """Where the user roughly is, for web search."""

    model_config = STRICT
    country: Optional[str] = Field(None, max_length=2)
    region: Optional[str] = Field(None, max_length=128)
    city: Optional[str] = Field(None, max_length=128)
    timezone: Optional[str] = Field(None, max_length=64)


class UserLocation(BaseModel):
    """An approximate user location."""

    model_config = STRICT
    type: Literal["approximate"]
    approximate: ApproximateLocation


class WebSearchOptions(BaseModel):
    """Web search, for the search models."""

    model_config = STRICT
    user_location: Optional[UserLocation] = None
    search_context_size: Optional[Literal["low", "medium", "high"]] = None


class CustomVoice(BaseModel):
    """A custom voice, by id."""

    model_config = STRICT
    id: str = Field(max_length=256)


class AudioOutput(BaseModel):
    """Parameters of audio output (refused: see the module docstring)."""

    model_config = STRICT
    voice: Union[str, CustomVoice]
    format: Literal["wav", "aac", "mp3", "flac", "opus", "pcm16"]


class ModerationMode(BaseModel):
    """How the upstream's own moderation treats one side of the call."""

    model_config = STRICT
    mode: Literal["score", "block"]


class ModerationPolicy(BaseModel):
    """The upstream moderation policy for input and output."""

    model_config = STRICT
    input: Optional[ModerationMode] = None
    output: Optional[ModerationMode] = None


class UpstreamModeration(BaseModel):
    """The upstream's own moderation of this call (chatgate's filter runs regardless)."""

    model_config = STRICT
    model: str = Field(max_length=128)
    policy: Optional[ModerationPolicy] = None


class PromptCacheOptions(BaseModel):
    """How the upstream caches this prompt's prefix."""

    model_config = STRICT
    ttl: Optional[Literal["30m"]] = None
    mode: Optional[Literal["implicit", "explicit"]] = None


class ChatCompletionRequest(BaseModel):
    """Body of POST /v1/chat/completions (OpenAI's format, every documented field)."""

    model_config = STRICT

    messages: list[Message] = Field(min_length=1)
    model: str = Field(max_length=128)
    temperature: Optional[float] = Field(None, ge=0, le=2)
    top_p: Optional[float] = Field(None, ge=0, le=1)
    max_tokens: Optional[int] = Field(None, ge=1)
    max_completion_tokens: Optional[int] = Field(None, ge=1)
    n: Optional[int] = Field(None, ge=1, le=8)
    stop: Optional[Union[str, Annotated[list[str], Field(min_length=1, max_length=4)]]] = None
    seed: Optional[int] = Field(None, ge=-(2**63), le=2**63 - 1)
    presence_penalty: Optional[float] = Field(None, ge=-2, le=2)
    frequency_penalty: Optional[float] = Field(None, ge=-2, le=2)
    logit_bias: Optional[dict[TokenId, Annotated[int, Field(ge=-100, le=100)]]] = Field(None, max_length=1024)
    logprobs: Optional[bool] = None
    top_logprobs: Optional[int] = Field(None, ge=0, le=20)
    response_format: Optional[ResponseFormat] = None
    tools: Optional[list[AnyTool]] = Field(None, max_length=128)
    tool_choice: Optional[ToolChoice] = None
    parallel_tool_calls: Optional[bool] = None
    functions: Optional[list[LegacyFunction]] = Field(None, min_length=1, max_length=128)
    function_call: Optional[Union[Literal["none", "auto"], NamedFunction]] = None
    user: Optional[str] = Field(None, max_length=256)
    safety_identifier: Optional[str] = Field(None, max_length=64)
    prompt_cache_key: Optional[str] = Field(None, max_length=1024)
    prompt_cache_retention: Optional[Literal["in_memory", "24h"]] = None
    prompt_cache_options: Optional[PromptCacheOptions] = None
    metadata: Optional[dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]]] = Field(
        None, max_length=16)
    store: Optional[bool] = None
    service_tier: Optional[Literal["auto", "default", "flex", "scale", "priority", "fast"]] = None
    reasoning_effort: Optional[Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]] = None
    verbosity: Optional[Literal["low", "medium", "high"]] = None
    modalities: Optional[Annotated[list[Literal["text", "audio"]], Field(min_length=1, max_length=2)]] = None
    audio: Optional[AudioOutput] = None
    prediction: Optional[Prediction] = None
    web_search_options: Optional[WebSearchOptions] = None
    moderation: Optional[UpstreamModeration] = None
    stream: Optional[bool] = None
    stream_options: Optional[StreamOptions] = None

    @field_validator("modalities")
    @classmethod
    def _text_only(cls, value):
        if value and "audio" in value:
            raise ValueError("audio output is not supported: a spoken reply cannot pass the reply filter")
        return value

    @field_validator("audio")
    @classmethod
    def _no_audio(cls, value):
        if value is not None:
            raise ValueError("audio output is not supported: a spoken reply cannot pass the reply filter")
        return value


# Copied to the upstream request as the client sent them (null means "not set"); the messages, the model
# and the stream fields are rebuilt by the gateway.
PASS_THROUGH = tuple(name for name in ChatCompletionRequest.model_fields
                     if name not in ("messages", "model", "stream", "stream_options"))
