"""The messages, content parts, tools and formats of OpenAI's chat-completions request, strictly typed.

Every model forbids unknown keys, so a field that could steer the upstream call
(``api_base``, ``api_key``, ``organization``, ``extra_headers`` …) is refused at
whatever depth it appears in a typed object. Free-form JSON Schema objects
(tool parameters, response schemas) are data for the model, never settings;
the prompt guard reads their strings. Shapes follow OpenAI's published
OpenAPI description (``CreateChatCompletionRequest``).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

STRICT = ConfigDict(extra="forbid", strict=True)
NAME = r"^[A-Za-z0-9_-]{1,64}$"
MAX_PARTS = 256
MAX_TOOLS = 128


class CacheBreakpoint(BaseModel):
    """Marks where a cached prompt prefix ends."""

    model_config = STRICT
    mode: Literal["explicit"]


class TextPart(BaseModel):
    """A text content part."""

    model_config = STRICT
    type: Literal["text"]
    text: str
    prompt_cache_breakpoint: Optional[CacheBreakpoint] = None


class ImageURL(BaseModel):
    """An image by http(s) URL or data: URL (passed to the model; the filter reads text only)."""

    model_config = STRICT
    url: str = Field(pattern=r"^(https?://[^\s]+|data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=]*)$")
    detail: Optional[Literal["auto", "low", "high"]] = None


class ImagePart(BaseModel):
    """An image content part."""

    model_config = STRICT
    type: Literal["image_url"]
    image_url: ImageURL
    prompt_cache_breakpoint: Optional[CacheBreakpoint] = None


class InputAudio(BaseModel):
    """Base64 audio for the model to hear."""

    model_config = STRICT
    data: str
    format: Literal["wav", "mp3"]


class AudioPart(BaseModel):
    """An audio content part."""

    model_config = STRICT
    type: Literal["input_audio"]
    input_audio: InputAudio
    prompt_cache_breakpoint: Optional[CacheBreakpoint] = None


class FileData(BaseModel):
    """A file given inline (base64) or by id."""

    model_config = STRICT
    filename: Optional[str] = Field(None, max_length=256)
    file_data: Optional[str] = None
    file_id: Optional[str] = Field(None, max_length=256)


class FilePart(BaseModel):
    """A file content part."""

    model_config = STRICT
    type: Literal["file"]
    file: FileData
    prompt_cache_breakpoint: Optional[CacheBreakpoint] = None


class RefusalPart(BaseModel):
    """An earlier refusal, in an assistant message."""

    model_config = STRICT
    type: Literal["refusal"]
    refusal: str


TextContent = Union[str, Annotated[list[TextPart], Field(min_length=1, max_length=MAX_PARTS)]]
UserPart = Annotated[Union[TextPart, ImagePart, AudioPart, FilePart], Field(discriminator="type")]
UserContent = Union[str, Annotated[list[UserPart], Field(min_length=1, max_length=MAX_PARTS)]]
AssistantPart = Annotated[Union[TextPart, RefusalPart], Field(discriminator="type")]
AssistantContent = Union[str, Annotated[list[AssistantPart], Field(min_length=1, max_length=MAX_PARTS)]]
# Kept under its first name: the OpenAPI document and older clients know it as Content.
Content = TextContent


class FunctionCall(BaseModel):
    """The function an assistant asked to call."""

    model_config = STRICT
    name: str = Field(max_length=64)
    arguments: str


class ToolCall(BaseModel):
    """A function tool call made by the assistant in an earlier turn."""

    model_config = STRICT
    id: str = Field(max_length=128)
    type: Literal["function"]
    function: FunctionCall


class CustomCall(BaseModel):
    """The free-form input an assistant gave a custom tool."""

    model_config = STRICT
    name: str = Field(max_length=64)
    input: str


class CustomToolCall(BaseModel):
    """A custom tool call made by the assistant in an earlier turn."""

    model_config = STRICT
    id: str = Field(max_length=128)
    type: Literal["custom"]
    custom: CustomCall


class AudioRef(BaseModel):
    """An earlier audio reply, by id."""

    model_config = STRICT
    id: str = Field(max_length=256)


class DeveloperMessage(BaseModel):
    """Instructions for the model (newer models' name for system)."""

    model_config = STRICT
    role: Literal["developer"]
    content: TextContent
    name: Optional[str] = Field(None, pattern=NAME)


class SystemMessage(BaseModel):
    """Instructions for the model."""

    model_config = STRICT
    role: Literal["system"]
    content: TextContent
    name: Optional[str] = Field(None, pattern=NAME)


class UserMessage(BaseModel):
    """What the user said."""

    model_config = STRICT
    role: Literal["user"]
    content: UserContent
    name: Optional[str] = Field(None, pattern=NAME)


class AssistantMessage(BaseModel):
    """An earlier reply, possibly with tool calls."""

    model_config = STRICT
    role: Literal["assistant"]
    content: Optional[AssistantContent] = None
    name: Optional[str] = Field(None, pattern=NAME)
    tool_calls: Optional[list[Annotated[Union[ToolCall, CustomToolCall], Field(discriminator="type")]]] = Field(
        None, max_length=MAX_TOOLS)
    function_call: Optional[FunctionCall] = None
    refusal: Optional[str] = None
    audio: Optional[AudioRef] = None


class ToolMessage(BaseModel):
    """The result of a tool call."""

    model_config = STRICT
    role: Literal["tool"]
    content: TextContent
    tool_call_id: str = Field(max_length=128)


class FunctionMessage(BaseModel):
    """The result of a function call (the older form of ``tool``)."""

    model_config = STRICT
    role: Literal["function"]
    content: Optional[str]
    name: str = Field(pattern=NAME)


Message = Annotated[Union[DeveloperMessage, SystemMessage, UserMessage, AssistantMessage, ToolMessage,
                          FunctionMessage], Field(discriminator="role")]


class FunctionDefinition(BaseModel):
    """A function the model may call."""

    model_config = STRICT
    name: str = Field(pattern=NAME)
    description: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None
    strict: Optional[bool] = None


class Tool(BaseModel):
    """A function tool the model may use."""

    model_config = STRICT
    type: Literal["function"]
    function: FunctionDefinition


class TextGrammarFormat(BaseModel):
    """A custom tool takes free text."""

    model_config = STRICT
    type: Literal["text"]


class Grammar(BaseModel):
    """The grammar a custom tool's input must follow."""

    model_config = STRICT
    definition: str
    syntax: Literal["lark", "regex"]


class GrammarFormat(BaseModel):
    """A custom tool takes input in a grammar."""

    model_config = STRICT
    type: Literal["grammar"]
    grammar: Grammar


class CustomDefinition(BaseModel):
    """A custom tool: free-form input instead of JSON arguments."""

    model_config = STRICT
    name: str = Field(pattern=NAME)
    description: Optional[str] = None
    format: Optional[Annotated[Union[TextGrammarFormat, GrammarFormat], Field(discriminator="type")]] = None


class CustomTool(BaseModel):
    """A custom tool the model may use."""

    model_config = STRICT
    type: Literal["custom"]
    custom: CustomDefinition


AnyTool = Annotated[Union[Tool, CustomTool], Field(discriminator="type")]


class LegacyFunction(BaseModel):
    """A function in the older ``functions`` list."""

    model_config = STRICT
    name: str = Field(pattern=NAME)
    description: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None


class NamedFunction(BaseModel):
    """Names the function in a forced tool choice."""

    model_config = STRICT
    name: str = Field(pattern=NAME)


class NamedToolChoice(BaseModel):
    """Forces one function."""

    model_config = STRICT
    type: Literal["function"]
    function: NamedFunction


class NamedCustomChoice(BaseModel):
    """Forces one custom tool."""

    model_config = STRICT
    type: Literal["custom"]
    custom: NamedFunction


class AllowedTools(BaseModel):
    """The tools the model may pick from this time."""

    model_config = STRICT
    mode: Literal["auto", "required"]
    tools: list[Annotated[Union[NamedToolChoice, NamedCustomChoice], Field(discriminator="type")]] = Field(
        min_length=1, max_length=MAX_TOOLS)


class AllowedToolsChoice(BaseModel):
    """Restricts the tools the model may call."""

    model_config = STRICT
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = Union[Literal["none", "auto", "required"],
                   Annotated[Union[NamedToolChoice, NamedCustomChoice, AllowedToolsChoice],
                             Field(discriminator="type")]]


class TextFormat(BaseModel):
    """Plain text replies."""

    model_config = STRICT
    type: Literal["text"]


class JSONObjectFormat(BaseModel):
    """JSON mode."""

    model_config = STRICT
    type: Literal["json_object"]


class JSONSchemaSpec(BaseModel):
    """A JSON Schema the reply must follow."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)
    name: str = Field(pattern=NAME)
    description: Optional[str] = None
    schema_: Optional[dict[str, Any]] = Field(None, alias="schema")
    strict: Optional[bool] = None


class JSONSchemaFormat(BaseModel):
    """Structured output."""

    model_config = STRICT
    type: Literal["json_schema"]
    json_schema: JSONSchemaSpec


ResponseFormat = Annotated[Union[TextFormat, JSONObjectFormat, JSONSchemaFormat], Field(discriminator="type")]
