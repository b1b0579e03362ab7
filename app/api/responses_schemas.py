"""Request schema of POST /v1/responses: the stateless subset of OpenAI's Responses API that chat SDKs use.

chatgate serves it over the upstream's chat completions, so it keeps no
responses: ``previous_response_id`` and ``store: true`` are refused with a
reason, as are tools other than functions and input items other than
messages, function calls and their outputs. Anything else unknown is a 400
naming the field, as everywhere.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from .openai_messages import NAME, STRICT
from .openai_schemas import StreamOptions

IMAGE_URL = r"^(https?://[^\s]+|data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=]*)$"


class InputText(BaseModel):
    """Text the user (or system) wrote."""

    model_config = STRICT
    type: Literal["input_text"]
    text: str


class InputImage(BaseModel):
    """An image by URL or data: URL."""

    model_config = STRICT
    type: Literal["input_image"]
    image_url: str = Field(pattern=IMAGE_URL)
    detail: Optional[Literal["auto", "low", "high"]] = None


class OutputText(BaseModel):
    """Text of an earlier reply, sent back as history."""

    model_config = STRICT
    type: Literal["output_text"]
    text: str
    annotations: Optional[list[dict[str, Any]]] = None
    logprobs: Optional[list[dict[str, Any]]] = None


class Refusal(BaseModel):
    """An earlier refusal, sent back as history."""

    model_config = STRICT
    type: Literal["refusal"]
    refusal: str


ContentItem = Annotated[Union[InputText, InputImage, OutputText, Refusal], Field(discriminator="type")]
ItemStatus = Optional[Literal["in_progress", "completed", "incomplete"]]


class MessageItem(BaseModel):
    """A message of the conversation; ``type`` may be left out."""

    model_config = STRICT
    type: Optional[Literal["message"]] = None
    role: Literal["user", "assistant", "system", "developer"]
    content: Union[str, Annotated[list[ContentItem], Field(min_length=1, max_length=256)]]
    id: Optional[str] = Field(None, max_length=128)
    status: ItemStatus = None


class FunctionCallItem(BaseModel):
    """A function call the model made earlier."""

    model_config = STRICT
    type: Literal["function_call"]
    call_id: str = Field(max_length=128)
    name: str = Field(pattern=NAME)
    arguments: str
    id: Optional[str] = Field(None, max_length=128)
    status: ItemStatus = None


class FunctionCallOutputItem(BaseModel):
    """What a function call returned."""

    model_config = STRICT
    type: Literal["function_call_output"]
    call_id: str = Field(max_length=128)
    output: Union[str, Annotated[list[InputText], Field(min_length=1, max_length=256)]]
    id: Optional[str] = Field(None, max_length=128)
    status: ItemStatus = None


def _item_kind(item: Any) -> str:
    """A message item may leave out its type."""
    if isinstance(item, dict):
        return str(item.get("type") or "message")
    return str(getattr(item, "type", None) or "message")


InputItem = Annotated[Union[Annotated[MessageItem, Tag("message")], Annotated[FunctionCallItem, Tag("function_call")],
                            Annotated[FunctionCallOutputItem, Tag("function_call_output")]],
                      Discriminator(_item_kind)]


class FunctionTool(BaseModel):
    """A function the model may call."""

    model_config = STRICT
    type: Literal["function"]
    name: str = Field(pattern=NAME)
    description: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None
    strict: Optional[bool] = None


class FunctionChoice(BaseModel):
    """Forces one function."""

    model_config = STRICT
    type: Literal["function"]
    name: str = Field(pattern=NAME)


class TextFormatPlain(BaseModel):
    """Plain text output."""

    model_config = STRICT
    type: Literal["text"]


class TextFormatJSONObject(BaseModel):
    """JSON mode."""

    model_config = STRICT
    type: Literal["json_object"]


class TextFormatJSONSchema(BaseModel):
    """Structured output following a JSON Schema."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)
    type: Literal["json_schema"]
    name: str = Field(pattern=NAME)
    schema_: dict[str, Any] = Field(alias="schema")
    description: Optional[str] = None
    strict: Optional[bool] = None


class TextConfig(BaseModel):
    """Output text options."""

    model_config = STRICT
    format: Optional[Annotated[Union[TextFormatPlain, TextFormatJSONObject, TextFormatJSONSchema],
                               Field(discriminator="type")]] = None
    verbosity: Optional[Literal["low", "medium", "high"]] = None


class ReasoningConfig(BaseModel):
    """Reasoning options (effort only)."""

    model_config = STRICT
    effort: Optional[Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]] = None


class ResponsesRequest(BaseModel):
    """Body of POST /v1/responses (the stateless subset)."""

    model_config = STRICT

    model: str = Field(max_length=128)
    input: Union[str, Annotated[list[InputItem], Field(min_length=1)]]
    instructions: Optional[str] = None
    temperature: Optional[float] = Field(None, ge=0, le=2)
    top_p: Optional[float] = Field(None, ge=0, le=1)
    max_output_tokens: Optional[int] = Field(None, ge=1)
    tools: Optional[list[FunctionTool]] = Field(None, max_length=128)
    tool_choice: Optional[Union[Literal["none", "auto", "required"], FunctionChoice]] = None
    parallel_tool_calls: Optional[bool] = None
    text: Optional[TextConfig] = None
    reasoning: Optional[ReasoningConfig] = None
    metadata: Optional[dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]]] = Field(
        None, max_length=16)
    user: Optional[str] = Field(None, max_length=256)
    safety_identifier: Optional[str] = Field(None, max_length=64)
    prompt_cache_key: Optional[str] = Field(None, max_length=1024)
    prompt_cache_retention: Optional[Literal["in_memory", "24h"]] = None
    service_tier: Optional[Literal["auto", "default", "flex", "scale", "priority", "fast"]] = None
    truncation: Optional[Literal["disabled"]] = None
    store: Optional[bool] = None
    previous_response_id: Optional[str] = None
    stream: Optional[bool] = None
    stream_options: Optional[StreamOptions] = None

    @field_validator("store")
    @classmethod
    def _nothing_stored(cls, value):
        if value:
            raise ValueError("chatgate stores no responses: send store: false (or leave it out)")
        return value

    @field_validator("previous_response_id")
    @classmethod
    def _no_previous(cls, value):
        if value is not None:
            raise ValueError("chatgate stores no responses: send the earlier turns in input instead")
        return value
