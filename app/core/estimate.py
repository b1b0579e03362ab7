"""Token estimates without a tokenizer: conservative, so budgets and limits err on the safe side."""
from __future__ import annotations

import json
from collections.abc import Iterator

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


def request_texts(payload: dict) -> Iterator[str]:
    """Every text of a chat request the model reads: messages (names, tool calls included), tools, schemas, stop.

    The token reservation and MAX_TOTAL_CHARS both count exactly these, so a
    large ``tools`` description costs what it weighs. Objects are counted as
    the compact JSON the upstream receives (keys, punctuation and all).
    """
    for message in payload.get("messages") or ():
        yield message_text(message)
        for name in ("name", "tool_call_id", "refusal"):
            if isinstance(message.get(name), str):
                yield message[name]
        if message.get("tool_calls"):
            yield _compact(message["tool_calls"])
    for name in ("tools", "response_format", "tool_choice"):
        value = payload.get(name)
        if isinstance(value, (dict, list)) and value:
            yield _compact(value)
    stop = payload.get("stop")
    if isinstance(stop, str):
        yield stop
    elif isinstance(stop, list):
        yield from (s for s in stop if isinstance(s, str))


def estimate_request(payload: dict) -> int:
    """Upper-bound estimate of the prompt tokens of a whole chat request (every text in ``request_texts``)."""
    total = 3 + TOKENS_PER_MESSAGE * len(payload.get("messages") or ())
    return total + sum(estimate_text(text) for text in request_texts(payload))


def _compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def message_text(message: dict) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def usage_or_estimate(usage, messages: list[dict], reply: str) -> dict:
    """The upstream's usage when it sent a sane one, else a conservative estimate."""
    if isinstance(usage, dict):
        try:
            prompt = int(usage.get("prompt_tokens") or 0)
            completion = int(usage.get("completion_tokens") or 0)
            if prompt >= 0 and completion >= 0:
                out: dict = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
                details = usage.get("prompt_tokens_details")
                cached = details.get("cached_tokens") if isinstance(details, dict) else None
                if isinstance(cached, int) and not isinstance(cached, bool) and 0 <= cached <= prompt:
                    # Cached prompt tokens are cheaper (pricing), and OpenAI's SDKs read this shape.
                    out["prompt_tokens_details"] = {"cached_tokens": cached}
                return out
        except (TypeError, ValueError):
            pass
    prompt = estimate_messages(messages)
    completion = estimate_text(reply)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
