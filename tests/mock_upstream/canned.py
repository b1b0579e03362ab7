"""The fixed OpenAI-format bodies the mock upstreams send.

Both the nginx upstream and the asyncio server use these, so a client sees
the same completion whichever one answers. Everything is deterministic: the
stream client checks the reassembled text against ``stream_text()``.
"""
from __future__ import annotations

import json

MODEL = "gpt-4o-mini"
CREATED = 1700000000
REPLY = "Hello! This is the canned reply from the benchmark upstream."
# Plain lowercase words: nothing a reply filter could mistake for an email, a number or a secret.
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
         "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa")
PROMPT_TOKENS = 12


def completion(model: str = MODEL, completion_id: str = "chatcmpl-bench") -> dict:
    """A non-streamed chat.completion object."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_bench",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": REPLY, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 13, "total_tokens": PROMPT_TOKENS + 13},
    }


def completion_bytes(model: str = MODEL) -> bytes:
    """The completion as compact JSON bytes."""
    return json.dumps(completion(model), separators=(",", ":")).encode()


def stream_piece(index: int) -> str:
    """The content carried by stream chunk ``index``."""
    return WORDS[index % len(WORDS)] + " "


def stream_text(chunks: int) -> str:
    """The full reply a stream of ``chunks`` content chunks spells out."""
    return "".join(stream_piece(i) for i in range(chunks))


class StreamEncoder:
    """Builds the SSE events of one streamed completion, pre-encoded per model."""

    def __init__(self, model: str = MODEL, completion_id: str = "chatcmpl-bench-stream"):
        head = {"id": completion_id, "object": "chat.completion.chunk", "created": CREATED,
                "model": model, "system_fingerprint": "fp_bench"}
        self._head = head
        # Streams repeat the same chunks; encoding each once keeps the mock cheap per chunk.
        self._chunks: dict[int, bytes] = {}

    def _event(self, body: dict) -> bytes:
        return b"data: " + json.dumps({**self._head, **body}, separators=(",", ":")).encode() + b"\n\n"

    def chunk(self, index: int) -> bytes:
        """Content chunk ``index``; the first one also carries the assistant role."""
        event = self._chunks.get(index)
        if event is None:
            delta = {"content": stream_piece(index)}
            if index == 0:
                delta = {"role": "assistant", **delta}
            event = self._event({"choices": [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": None}]})
            if len(self._chunks) < 4096:
                self._chunks[index] = event
        return event

    def finish(self) -> bytes:
        """The chunk that closes the choice with finish_reason=stop."""
        return self._event({"choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})

    def usage(self, chunks: int) -> bytes:
        """The include_usage chunk: no choices, only token counts."""
        return self._event({"choices": [], "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": chunks,
                                                     "total_tokens": PROMPT_TOKENS + chunks}})

    @staticmethod
    def done() -> bytes:
        """The terminating sentinel event."""
        return b"data: [DONE]\n\n"

    @staticmethod
    def malformed() -> bytes:
        """An event whose data is not JSON."""
        return b"data: {\"choices\": [{\"delta\": {\"content\": \"bro\n\n"

    def error_event(self) -> bytes:
        """An in-band error event, as OpenAI sends when generation fails mid-stream."""
        return b"data: " + json.dumps({"error": {"message": "mock upstream failure mid-stream",
                                                 "type": "server_error", "code": None}}).encode() + b"\n\n"


def error_body(status: int) -> bytes:
    """An OpenAI-style error object for ``status``."""
    kinds = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded"}
    body = {"error": {"message": f"mock upstream fault: status {status}",
                      "type": kinds.get(status, "server_error"), "param": None, "code": None}}
    return json.dumps(body).encode()
