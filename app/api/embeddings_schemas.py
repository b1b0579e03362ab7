"""Request schema of POST /v1/embeddings (OpenAI's format).

Inputs are text. OpenAI also takes token-id arrays; chatgate refuses them with
a reason, because the prompt guard cannot read what a token array says.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, Field, field_validator

from .openai_messages import STRICT


class EmbeddingsRequest(BaseModel):
    """Body of POST /v1/embeddings."""

    model_config = STRICT

    input: Union[str, Annotated[list[str], Field(min_length=1)]]
    model: str = Field(max_length=128)
    dimensions: Optional[int] = Field(None, ge=1, le=8192)
    encoding_format: Optional[Literal["float", "base64"]] = None
    user: Optional[str] = Field(None, max_length=256)

    @field_validator("input", mode="before")
    @classmethod
    def _text_only(cls, value):
        if isinstance(value, list) and any(isinstance(item, (int, list)) for item in value):
            raise ValueError("token arrays are not accepted: send text, so the prompt guard can read it")
        return value


EMBEDDING_OPTIONS = ("dimensions", "encoding_format")
