"""Every per-request bound in one place: text size, message count, total size and reply caps.

The doors call ``check_text``/``check_messages`` on what the client wrote
(before the prompt guard, so errors name the client's own fields), and the
meter calls ``check_payload`` on the request as it will go upstream. Settings:
``MAX_PROMPT_CHARS``, ``MAX_MESSAGES``, ``MAX_TOTAL_CHARS``, ``MAX_TOKENS_CAP``.
(``MAX_CONTENT_LENGTH`` bounds the raw body, before there is any JSON.)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidRequest
from ..upstream.targets import reply_cap_field
from .estimate import request_texts

REPLY_CAP_FIELDS = ("max_tokens", "max_completion_tokens")
# OpenAI's own limit on the inputs of one embeddings call.
MAX_EMBEDDING_INPUTS = 2048
# What one embeddings reply may weigh (the upstream client reads no more), and what one number of it may
# take: a float written as JSON ("-0.0123456789012345,"), or four bytes of float32 in base64.
MAX_EMBEDDINGS_REPLY_BYTES = 60 * 1024 * 1024
BYTES_PER_FLOAT = {"float": 22, "base64": 6}
# Vector sizes of OpenAI's models by default; an unknown model is assumed to be as large as the largest.
DEFAULT_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
                      "text-embedding-ada-002": 1536}


def check_text(name: str, value: str, max_chars: int, *, required: bool = False) -> None:
    """Refuse blank (when required), over-long, NUL-bearing or non-encodable text."""
    if required and not value.strip():
        raise InvalidRequest(f"{name} must not be empty", param=name, code="empty_value")
    if len(value) > max_chars:
        raise InvalidRequest(f"{name} is too long ({len(value)} characters, at most {max_chars})",
                             param=name, code="too_long")
    if "\x00" in value:
        raise InvalidRequest(f"{name} contains a NUL character", param=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates from "\ud800" escapes cannot be stored or sent upstream.
        raise InvalidRequest(f"{name} contains invalid Unicode", param=name) from None


@dataclass(frozen=True)
class Bounds:
    """The configured bounds, and the checks that apply them."""

    max_prompt_chars: int
    max_messages: int
    max_total_chars: int
    max_tokens_cap: int

    def check_text(self, name: str, value: str, *, required: bool = False) -> None:
        """One client-written text against MAX_PROMPT_CHARS (see ``check_text``)."""
        check_text(name, value, self.max_prompt_chars, required=required)

    def check_content(self, name: str, content: object, *, required: bool = False) -> None:
        """A string, or a list of text parts, against MAX_PROMPT_CHARS (see ``check_text``)."""
        if isinstance(content, str):
            self.check_text(name, content, required=required)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str):
                    self.check_text(f"{name}.{j}.text", text)

    def check_messages(self, messages: list[dict]) -> None:
        """Every text of OpenAI-style messages; a user message must say something."""
        for i, message in enumerate(messages):
            self.check_content(f"messages.{i}.content", message.get("content"),
                               required=message.get("role") == "user")

    def check_inputs(self, inputs: list[str]) -> None:
        """Embedding inputs: how many, each text, and their total size."""
        if len(inputs) > MAX_EMBEDDING_INPUTS:
            raise InvalidRequest(f"too many inputs ({len(inputs)}, at most {MAX_EMBEDDING_INPUTS})", param="input",
                                 code="too_many_inputs")
        for i, text in enumerate(inputs):
            self.check_text("input" if len(inputs) == 1 else f"input.{i}", text, required=True)
        total = sum(len(text) for text in inputs)
        if total > self.max_total_chars:
            raise InvalidRequest(f"the inputs are too long ({total} characters, at most {self.max_total_chars})",
                                 param="input", code="too_long")

    def check_embedding_reply(self, payload: dict) -> None:
        """Refuse an embeddings call whose reply could outgrow what is read of one (send fewer, or base64)."""
        count = len(payload["input"])
        dims = payload.get("dimensions") or DEFAULT_DIMENSIONS.get(payload["model"], 3072)
        size = count * dims * BYTES_PER_FLOAT[payload.get("encoding_format") or "float"]
        if size > MAX_EMBEDDINGS_REPLY_BYTES:
            mb, most = size // (1024 * 1024), MAX_EMBEDDINGS_REPLY_BYTES // (1024 * 1024)
            raise InvalidRequest(f"the reply to {count} inputs of {dims} dimensions could be about {mb} MB, "
                                 + f"over {most} MB; send fewer inputs per call, fewer dimensions, "
                                 + "or encoding_format base64", param="input", code="reply_too_large")

    def check_payload(self, payload: dict) -> int:
        """Message count, total size and reply caps of an upstream request; returns the reply's token cap.

        A request that sets no cap gets MAX_TOKENS_CAP in the field its model
        takes, so the upstream stops where the token reservation assumed.
        """
        messages = payload["messages"]
        if len(messages) > self.max_messages:
            raise InvalidRequest(f"too many messages ({len(messages)}, at most {self.max_messages})",
                                 param="messages", code="too_many_messages")
        total = sum(len(text) for text in request_texts(payload))
        if total > self.max_total_chars:
            raise InvalidRequest(f"the request's text is too long ({total} characters, at most "
                                 + f"{self.max_total_chars}, counting messages, tools, schemas and stop)",
                                 param="messages", code="too_long")
        reply_cap = self.max_tokens_cap
        capped = False
        for name in REPLY_CAP_FIELDS:
            asked = payload.get(name)
            if asked is not None:
                if asked > self.max_tokens_cap:
                    raise InvalidRequest(f"{name} must be at most {self.max_tokens_cap}", param=name,
                                         code="invalid_value")
                reply_cap = min(reply_cap, asked)
                capped = True
        if not capped:
            payload[reply_cap_field(payload["model"])] = reply_cap
        return reply_cap
