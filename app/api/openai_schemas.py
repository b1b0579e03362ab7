"""Request schema of POST /v1/chat/completions: the fields we support, strictly typed.

Every model forbids unknown keys, so a field that could steer the upstream call
(``api_base``, ``api_key``, ``organization``, ``extra_headers`` …) is refused at
whatever depth it appears in a typed object. Free-form JSON Schema objects
(tool parameters, response schemas) are data for the model, never settings.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid", strict=True)
_NAME = r"^[A-Za-z0-9_-]{1,64}$"


class TextPart(BaseModel):
    """A text content part."""

    model_config = _STRICT
    type: Literal["text"]
    text: str


Content = Union[str, Annotated[list[TextPart], Field(min_length=1, max_length=256)]]


class FunctionCall(BaseModel):
    """The function an assistant asked to call."""

    model_config = _STRICT
    name: str = Field(max_length=64)
    arguments: str


class ToolCall(BaseModel):
    """A tool call made by the assistant in an earlier turn."""

    model_config = _STRICT
    id: str = Field(max_length=128)
    type: Literal["function"]
    function: FunctionCall


class SystemMessage(BaseModel):
    """Instructions for the model."""

    model_config = _STRICT
    role: Literal["system"]
    content: Content
    name: Optional[str] = Field(None, pattern=_NAME)


class UserMessage(BaseModel):
    """What the user said."""

    model_config = _STRICT
    role: Literal["user"]
    content: Content
    name: Optional[str] = Field(None, pattern=_NAME)


class AssistantMessage(BaseModel):
    """An earlier reply, possibly with tool calls."""

    model_config = _STRICT
    role: Literal["assistant"]
    content: Optional[Content] = None
    name: Optional[str] = Field(None, pattern=_NAME)
    tool_calls: Optional[list[ToolCall]] = Field(None, max_length=128)
    refusal: Optional[str] = None


class ToolMessage(BaseModel):
    """The result of a tool call."""

    model_config = _STRICT
    role: Literal["tool"]
    content: Content
    tool_call_id: str = Field(max_length=128)


Message = Annotated[Union[SystemMessage, UserMessage, AssistantMessage, ToolMessage], Field(discriminator="role")]


class FunctionDefinition(BaseModel):
    """A function the model may call."""

    model_config = _STRICT
    name: str = Field(pattern=_NAME)
    description: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None
    strict: Optional[bool] = None


class Tool(BaseModel):
    """A tool the model may use."""

    model_config = _STRICT
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    """Names the function in a forced tool choice."""

    model_config = _STRICT
    name: str = Field(pattern=_NAME)


class NamedToolChoice(BaseModel):
    """Forces one function."""

    model_config = _STRICT
    type: Literal["function"]
    function: NamedFunction


class TextFormat(BaseModel):
    """Plain text replies."""

    model_config = _STRICT
    type: Literal["text"]


class JSONObjectFormat(BaseModel):
    """JSON mode."""

    model_config = _STRICT
    type: Literal["json_object"]


class JSONSchemaSpec(BaseModel):
    """A JSON Schema the reply must follow."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)
    name: str = Field(pattern=_NAME)
    description: Optional[str] = None
    schema_: Optional[dict[str, Any]] = Field(None, alias="schema")
    strict: Optional[bool] = None


class JSONSchemaFormat(BaseModel):
    """Structured output."""

    model_config = _STRICT
    type: Literal["json_schema"]
    json_schema: JSONSchemaSpec


ResponseFormat = Annotated[Union[TextFormat, JSONObjectFormat, JSONSchemaFormat], Field(discriminator="type")]


class StreamOptions(BaseModel):
    """Options of a streamed reply."""

    model_config = _STRICT
    include_usage: Optional[bool] = None


class ChatCompletionRequest(BaseModel):
    """Body of POST /v1/chat/completions (OpenAI's format, the supported fields only)."""

    model_config = _STRICT

    messages: list[Message] = Field(min_length=1)
    model: str = Field(max_length=128)
    temperature: Optional[float] = Field(None, ge=0, le=2)
    top_p: Optional[float] = Field(None, ge=0, le=1)
    max_tokens: Optional[int] = Field(None, ge=1)
    max_completion_tokens: Optional[int] = Field(None, ge=1)
    n: Optional[int] = Field(None, ge=1, le=8)
    stop: Optional[Union[str, Annotated[list[str], Field(max_length=4)]]] = None
    seed: Optional[int] = None
    presence_penalty: Optional[float] = Field(None, ge=-2, le=2)
    frequency_penalty: Optional[float] = Field(None, ge=-2, le=2)
    response_format: Optional[ResponseFormat] = None
    tools: Optional[list[Tool]] = Field(None, max_length=128)
    tool_choice: Optional[Union[Literal["none", "auto", "required"], NamedToolChoice]] = None
    user: Optional[str] = Field(None, max_length=256)
    stream: Optional[bool] = None
    stream_options: Optional[StreamOptions] = None


# Copied to the upstream request when set; everything else is rebuilt by us.
PASS_THROUGH = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "seed",
                "presence_penalty", "frequency_penalty", "response_format", "tools", "tool_choice", "user")
