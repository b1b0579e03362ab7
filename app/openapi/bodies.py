"""Models of response bodies that their views build with jsonify rather than from app.api.schemas.

They exist so /openapi.json can describe those bodies; tests/openapi/test_openapi.py checks
real responses against them, so a view that changes its output fails a test
rather than drifting from the description.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, Field

from ..api.schemas import FilterReport, Usage
from .admin_bodies import ADMIN_MODELS


class Health(BaseModel):
    """Body of GET /healthz."""

    status: str


class Readiness(BaseModel):
    """Body of GET /readyz: 200 when ready, 503 when not."""

    status: str = Field(description="ready or not_ready.")
    checks: dict[str, Union[str, dict[str, str], list[str]]] = Field(
        description="Each dependency and its state. With UPSTREAMS_FILE, `upstreams` maps each upstream to its "
                    + "circuit (closed, half_open, open or unknown), and `unusable_models` lists the models whose "
                    + "every upstream is open.")


class ChatStreamDelta(BaseModel):
    """A streamed piece of the reply, already filtered."""

    delta: str


class ChatStreamEnd(BaseModel):
    """The last data event of a stream before [DONE]."""

    id: str
    model: str
    finish_reason: Optional[str]
    usage: Usage
    filter: FilterReport
    conversation_id: Optional[str]


class ConversationSummary(BaseModel):
    """One conversation in a list."""

    id: str
    created_at: datetime
    updated_at: datetime
    turns: int = Field(description="Prompts answered so far.")
    title: Optional[str] = Field(description="The start of the first prompt.")


class ConversationList(BaseModel):
    """Body of GET /conversations: one page, most recently active first."""

    data: list[ConversationSummary]
    next_cursor: Optional[str] = Field(description="Pass as ?cursor= for the next page; null on the last.")


class StoredMessage(BaseModel):
    """One message of a stored conversation."""

    role: str
    content: str
    created_at: datetime


class Conversation(BaseModel):
    """Body of GET /conversations/{conversation_id}."""

    id: str
    created_at: datetime
    updated_at: datetime
    system: Optional[str]
    messages: list[StoredMessage]


class ConversationDeleted(BaseModel):
    """Body of DELETE /conversations/{conversation_id}."""

    id: str
    deleted: bool


class UsageRow(BaseModel):
    """Requests and tokens for one UTC day and model."""

    day: str = Field(description="YYYY-MM-DD, UTC.")
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float = Field(description="Spend in US dollars at the gateway's price table.")
    cached: int = Field(description="How many of the requests the response cache answered: no tokens, no cost.")


class UsageReport(BaseModel):
    """Body of GET /usage."""

    days: int
    data: list[UsageRow]


class Model(BaseModel):
    """One model a client may use, in OpenAI's format."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    kind: Literal["chat", "embedding"] = Field(description="chatgate's addition: what the model can be asked for "
                                                           + "(POST /chat, /v1/chat/completions, /v1/responses; "
                                                           + "or POST /v1/embeddings).")


class ModelList(BaseModel):
    """Body of GET /v1/models."""

    object: Literal["list"]
    data: list[Model]


class AssistantReply(BaseModel):
    """The message of one completion choice."""

    role: Literal["assistant"]
    content: Optional[str]
    refusal: Optional[str]
    tool_calls: Optional[list[dict[str, Any]]] = None


class CompletionChoice(BaseModel):
    """One choice of a chat.completion; ``filter`` is chatgate's addition, which SDKs ignore."""

    index: int
    message: AssistantReply
    logprobs: Optional[dict[str, Any]] = Field(description="The upstream's, when asked for and the filter changed "
                                                           + "nothing; otherwise null.")
    finish_reason: Optional[str]
    filter: FilterReport


class ChatCompletion(BaseModel):
    """Body of a 200 from POST /v1/chat/completions."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ChunkChoice(BaseModel):
    """One choice of a streamed chunk."""

    index: int
    delta: dict[str, Any] = Field(description="role, content or tool_calls, as OpenAI streams them.")
    logprobs: None
    finish_reason: Optional[str]


class ChatCompletionChunk(BaseModel):
    """One streamed chunk; the last carries ``filter``, and ``usage`` comes when include_usage is set."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Optional[Usage] = None
    filter: Optional[FilterReport] = None


class ResponseUsage(BaseModel):
    """Token counts of a response, in the Responses API's shape."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens_details: dict[str, int]
    cost_usd: float = Field(description="What the call cost in US dollars at the gateway's price table.")


class ResponseObject(BaseModel):
    """Body of a 200 from POST /v1/responses (OpenAI's response object; ``filter`` is chatgate's addition)."""

    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    model: str
    output: list[dict[str, Any]] = Field(description="message and function_call items.")
    incomplete_details: Optional[dict[str, str]]
    usage: Optional[ResponseUsage]
    filter: Optional[FilterReport] = None


class ResponseStreamEvent(BaseModel):
    """One event of a streamed response: response.created … response.completed, as OpenAI streams them."""

    type: str = Field(description="response.created, response.output_text.delta, response.completed, …")
    sequence_number: int


class Embedding(BaseModel):
    """One input's vector: floats, or base64 of little-endian float32 with encoding_format=base64."""

    object: Literal["embedding"]
    index: int
    embedding: Union[list[float], str]


class EmbeddingUsage(BaseModel):
    """Tokens read, and what they cost."""

    prompt_tokens: int
    total_tokens: int
    cost_usd: float = Field(description="What the call cost in US dollars at the gateway's price table.")


class EmbeddingList(BaseModel):
    """Body of a 200 from POST /v1/embeddings."""

    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


DOC_MODELS = {m.__name__: m for m in (Health, Readiness, ChatStreamDelta, ChatStreamEnd, ConversationSummary,
                                       ConversationList, StoredMessage, Conversation, ConversationDeleted,
                                       UsageRow, UsageReport, Model, ModelList, AssistantReply, CompletionChoice,
                                       ChatCompletion, ChunkChoice, ChatCompletionChunk, ResponseUsage,
                                       ResponseObject, ResponseStreamEvent, Embedding, EmbeddingUsage,
                                       EmbeddingList, *ADMIN_MODELS)}
