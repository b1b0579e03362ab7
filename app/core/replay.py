"""Streams and whole replies, each turned into the other for the response cache.

``StreamRecorder`` gathers the raw chunks of a streamed reply (choice 0, as
streams carry) into the one completion body a whole reply would have been,
whatever the chunking. ``CachedStream`` plays a stored completion back as the
chunks an upstream stream sends (role, text in several pieces, tool calls,
the finishing chunk, usage), so a hit for a streaming request runs through
the same ``ReplyStream`` as a live one: the same filter, formats and
accounting.
"""
from __future__ import annotations

from collections.abc import Iterator

# Roughly a few words a chunk: a replay arrives in pieces, like the stream it stands for.
PIECE_CHARS = 24


class StreamRecorder:
    """The raw chunks of one streamed reply, gathered into a completion body."""

    def __init__(self):
        self._head: dict = {}
        self._content: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, dict] = {}
        self._logprobs: dict[str, list] = {}
        self._finish: str | None = None
        self._usage: dict | None = None

    def add(self, chunk: dict) -> None:
        """One upstream chunk, as it came (unfiltered)."""
        for name in ("id", "created", "model", "system_fingerprint"):
            if name not in self._head and chunk.get(name) is not None:
                self._head[name] = chunk[name]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self._content.append(delta["content"])
            if isinstance(delta.get("refusal"), str):
                self._refusal.append(delta["refusal"])
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._call(call)
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict):
                for name, items in logprobs.items():
                    if isinstance(items, list):
                        self._logprobs.setdefault(name, []).extend(items)
            self._finish = choice.get("finish_reason") or self._finish

    def _call(self, delta: dict) -> None:
        call = self._calls.setdefault(delta.get("index", 0), {})
        for name, value in delta.items():
            if name == "index":
                continue
            if isinstance(value, dict):  # function (name, arguments) or custom (name, input)
                inner = call.setdefault(name, {})
                for key, piece in value.items():
                    if key in ("arguments", "input") and isinstance(piece, str):
                        inner[key] = inner.get(key, "") + piece
                    elif piece is not None:
                        inner.setdefault(key, piece)
            elif value is not None:
                call.setdefault(name, value)

    def body(self) -> dict:
        """The completion the chunks spell out."""
        message: dict = {"role": "assistant", "content": "".join(self._content)}
        if self._refusal:
            message["refusal"] = "".join(self._refusal)
        if self._calls:
            message["tool_calls"] = [self._calls[i] for i in sorted(self._calls)]
            if not message["content"]:
                message["content"] = None
        choice: dict = {"index": 0, "message": message, "finish_reason": self._finish,
                        "logprobs": self._logprobs or None}
        body = {**self._head, "object": "chat.completion", "choices": [choice]}
        if self._usage is not None:
            body["usage"] = self._usage
        return body


def pieces(text: str) -> list[str]:
    """``text`` in pieces of at most PIECE_CHARS characters, cut after a space or line end where there is one."""
    out, start, size = [], 0, len(text)
    while start < size:
        end = start + PIECE_CHARS
        if end < size:
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            if cut > start:
                end = cut + 1
        out.append(text[start:end])
        start = end
    return out


class CachedStream:
    """A stored completion played back as upstream stream chunks; iterate, like ``ChatStream``."""

    def __init__(self, body: dict):
        self._body = body

    def __iter__(self) -> Iterator[dict]:
        body = self._body
        head = {"id": body.get("id"), "object": "chat.completion.chunk", "created": body.get("created"),
                "model": body.get("model")}
        choice = body["choices"][0]
        message = choice.get("message") or {}

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": ""})
        for piece in pieces(message.get("content") or ""):
            yield chunk({"content": piece})
        for piece in pieces(message.get("refusal") or ""):
            yield chunk({"refusal": piece})
        for index, call in enumerate(message.get("tool_calls") or ()):
            yield from self._call(chunk, index, call)
        yield chunk({}, choice.get("finish_reason"))
        if isinstance(body.get("usage"), dict):
            yield {**head, "choices": [], "usage": body["usage"]}

    @staticmethod
    def _call(chunk, index: int, call: dict) -> Iterator[dict]:
        inner_key, piece_key = ("custom", "input") if isinstance(call.get("custom"), dict) else ("function",
                                                                                               "arguments")
        inner = call.get(inner_key) or {}
        whole = inner.get(piece_key) or ""
        first = {k: v for k, v in call.items() if k != inner_key}
        yield chunk({"tool_calls": [{**first, "index": index,
                                     inner_key: {**{k: v for k, v in inner.items() if k != piece_key},
                                                 piece_key: ""}}]})
        for start in range(0, len(whole), PIECE_CHARS):
            yield chunk({"tool_calls": [{"index": index, inner_key: {piece_key: whole[start:start + PIECE_CHARS]}}]})

    def close(self) -> None:
        """Nothing to release: the reply is in memory."""
