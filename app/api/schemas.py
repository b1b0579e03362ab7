"""Request and response schemas: the one source for validation and OpenAPI."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

# Strict: true is not a number and "0.5" is not a number; unknown fields are refused.
_STRICT = ConfigDict(extra="forbid", strict=True)


class ChatRequest(BaseModel):
    """Body of POST /chat."""

    model_config = _STRICT

    prompt: str = Field(description="The user's message.")
    system: Optional[str] = Field(None, description="System message; starts or replaces a conversation's.")
    conversation_id: Optional[str] = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                           description="Continue this conversation.")
    model: Optional[str] = Field(None, max_length=128, description="One of GET /v1/models.")
    temperature: Optional[float] = Field(None, ge=0, le=2)
    top_p: Optional[float] = Field(None, ge=0, le=1)
    max_tokens: Optional[int] = Field(None, ge=1)
    presence_penalty: Optional[float] = Field(None, ge=-2, le=2)
    frequency_penalty: Optional[float] = Field(None, ge=-2, le=2)
    stream: bool = Field(False, description="Answer as server-sent events.")


# Sampling fields copied verbatim to the upstream request when the client set them.
SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty")


class PromptTokensDetails(BaseModel):
    """Prompt tokens the upstream served from its prompt cache (when it says)."""

    cached_tokens: int


class Usage(BaseModel):
    """Token counts reported by the upstream, and what the call cost."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: Optional[PromptTokensDetails] = Field(
        None, description="Present when the upstream reported cached prompt tokens (priced lower).")
    cost_usd: float = Field(description="What the call cost in US dollars at the gateway's price table "
                                        + "(0 for a model without a price).")


class Finding(BaseModel):
    """One kind of content the filter acted on; never the value itself."""

    type: str
    count: int


class FilterReport(BaseModel):
    """What the response filter did."""

    action: Literal["none", "redacted", "blocked"]
    findings: list[Finding]


class ChatResponse(BaseModel):
    """Body of a 200 from POST /chat."""

    id: str
    conversation_id: Optional[str]
    model: str
    reply: str
    finish_reason: Optional[str]
    usage: Usage
    filter: FilterReport


class ErrorDetail(BaseModel):
    """The inside of every error body."""

    message: str
    type: str
    param: Optional[str]
    code: Optional[str]


class ErrorBody(BaseModel):
    """The one error shape, the one OpenAI's SDKs parse."""

    error: ErrorDetail
