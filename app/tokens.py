"""Offline token estimates: conservative, so budgets and limits err on the safe side."""
from __future__ import annotations

# Real tokenizers average about 4 characters of English per token and about one per CJK
# character; counting a token per 3 UTF-8 bytes over-estimates both, which is what limits want.
BYTES_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4


def estimate_text(text: str) -> int:
    """Upper-bound estimate of the tokens in ``text``."""
    if not text:
        return 0
    return -(-len(text.encode("utf-8", "replace")) // BYTES_PER_TOKEN)


def estimate_messages(messages: list[dict]) -> int:
    """Upper-bound estimate of the prompt tokens of a chat request."""
    total = 3  # every reply is primed with a few tokens
    for message in messages:
        total += TOKENS_PER_MESSAGE + estimate_text(message_text(message))
    return total


def message_text(message: dict) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""
