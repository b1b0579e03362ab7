"""Offline stand-in for the OpenAI API, mounted as a ``requests`` transport adapter.

Mounting the adapter on the normal pooled session keeps serialization, status
handling and SSE parsing on the same code path as real upstream calls.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from .offline_embeddings import offline_embeddings
from .sse_codec import encode_sse

__all__ = ["OFFLINE_BASE_URL", "OfflineAdapter", "offline_reply"]

OFFLINE_BASE_URL = "http://offline.chatgate.invalid/v1"
_PREFIX = "[offline model]"
_MODEL_CREATED = 1_700_000_000  # fixed so /models output is reproducible
_PIECE = re.compile(r"\S+\s*")
_WORD = re.compile(r"[^\W\d_][\w'-]*")
_GREETING = re.compile(r"\W*(hi|hello|hey|hiya|howdy|greetings|good (morning|afternoon|evening))\b", re.I)
_ECHO = re.compile(r"\s*(echo|repeat):", re.I)
_CALL = re.compile(r"\s*call:\s*([\w.-]+)\s*(.*)", re.I | re.S)
_GREETING_REPLY = (
    f"{_PREFIX} Hello! chatgate is answering with its built-in offline model because no OPENAI_API_KEY is set "
    + "(or OFFLINE_MODEL is on); put OPENAI_API_KEY=sk-... in the environment or .env and restart to talk to a "
    + "real model."
)
_PLACEHOLDERS = {"number": 0, "integer": 0, "boolean": False, "array": [], "object": {}, "null": None}
_STOPWORDS = frozenset(
    "about after again all also and any are because been before being between but can could did does doing "
    "explain for from get had has have having her here him his how into its just know let like may more most "
    "much need not now other our out over please same she should some such tell than that the their them then "
    "there these they this those through too under until use very want was what when where which while who "
    "why with would you your yours".split()
)


def _text(content: Any) -> str:
    """Plain text of a message's content, joining the text parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text")
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def _last_user_text(messages: list[dict]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return None


def _keywords(text: str, limit: int = 3) -> list[str]:
    seen: dict[str, str] = {}
    for word in _WORD.findall(text):
        word = word.strip("'-")
        # Contractions are nearly always function words ("what's", "don't").
        if len(word) >= 3 and "'" not in word and word.lower() not in _STOPWORDS:
            seen.setdefault(word.lower(), word)
    return list(seen.values())[:limit]


def _compose(messages: list[dict]) -> str:
    """Full, untruncated offline reply text."""
    last = _last_user_text(messages)
    if last is None:
        return f"{_PREFIX} There is no user message for me to reply to yet."
    if _GREETING.match(last) and len(last.split()) <= 6:
        return _GREETING_REPLY
    turn = sum(1 for m in messages if m.get("role") == "user")
    system = any(m.get("role") in ("system", "developer") for m in messages)
    words = _keywords(last)
    topic = "I couldn't pick out any key words in your message."
    if words:
        listing = ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0]
        topic = f"You asked about {listing}."
    note = " (following your system instructions)" if system else ""
    return (f"{_PREFIX} {topic} This is message {turn} in our conversation{note}. "
            + "I can only give canned answers; set OPENAI_API_KEY for real ones.")


def _placeholder(spec: Any, text: str) -> Any:
    """A value of the type a JSON-schema property asks for (shallow: nested schemas are not filled)."""
    if not isinstance(spec, dict):
        return text
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return spec["enum"][0]
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return _PLACEHOLDERS.get(kind, text) if isinstance(kind, str) else text


def _json_reply(text: str, response_format: dict) -> str:
    """A small JSON object, shaped by a json_schema's top-level properties when given."""
    wrapper = response_format.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict) or not props:
        return json.dumps({"reply": text, "source": "offline"})
    return json.dumps({name: _placeholder(spec, text) for name, spec in props.items()})


def offline_reply(
    messages: list[dict], model: str, max_tokens: int | None, *, response_format: dict | None = None
) -> tuple[str, str]:
    """Deterministic offline reply text and finish_reason for a chat request."""
    last = _last_user_text(messages)
    echo = _ECHO.match(last) if last is not None else None
    if echo and last is not None:
        text = last[echo.end() :].strip()
    else:
        text = _compose(messages)
        if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
            text = _json_reply(text, response_format)
    pieces = _PIECE.findall(text)
    if max_tokens is not None and len(pieces) > max(max_tokens, 0):
        return "".join(pieces[: max(max_tokens, 0)]).rstrip(), "length"
    return text, "stop"


def _tool_call(payload: dict, call_id: str) -> dict | None:
    """The tool call requested by a ``call: name {args}`` message, if tools are on offer."""
    last = _last_user_text(payload["messages"])
    match = _CALL.match(last) if payload.get("tools") and last is not None else None
    if not match:
        return None
    # Arguments pass through verbatim so callers can exercise malformed-JSON handling.
    arguments = match.group(2).strip() or "{}"
    return {"id": "call_" + call_id[-24:], "type": "function",
            "function": {"name": match.group(1), "arguments": arguments}}


def _error(status: int, message: str, code: str, param: str | None = None) -> tuple[int, dict]:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return status, {"error": error}


def _validate(body: Any) -> tuple[int, dict] | None:
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.", "invalid_json")
    if not body.get("model") or not isinstance(body["model"], str):
        return _error(400, "you must provide a model parameter", "missing_required_parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return _error(400, "'messages' must be a non-empty array of objects.", "invalid_value", "messages")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (type(value) is not int):
            return _error(400, f"'{key}' must be an integer.", "invalid_type", key)
    return None


class _LazyBody:
    """Minimal urllib3-like raw stream that pulls body chunks from a generator on demand."""

    def __init__(self, chunks: Iterator[bytes], stop: threading.Event) -> None:
        self._chunks = chunks
        self._stop = stop
        self._buffer = b""

    def _next(self) -> bytes:
        if self._stop.is_set():
            return b""
        return next(self._chunks, b"")

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        """Read up to ``amt`` bytes, or everything that is left."""
        while amt is None or len(self._buffer) < amt:
            if not (chunk := self._next()):
                break
            self._buffer += chunk
        cut = len(self._buffer) if amt is None else amt
        data, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return data

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        """Yield the body as it is generated: one chunk each, or ``amt``-sized pieces."""
        while data := (self.read(amt) if amt else self._buffer or self._next()):
            if not amt:
                self._buffer = b""
            yield data

    def close(self) -> None:
        """Stop generating; a generator paused between chunks wakes and exits."""
        self._stop.set()
        try:
            getattr(self._chunks, "close", lambda: None)()
        except ValueError:
            pass  # it is running in another thread, which sees the stop flag before the next chunk


class OfflineAdapter(BaseAdapter):
    """Transport adapter that answers OpenAI-style requests with the offline model."""

    def __init__(self, chunk_delay: float = 0.0, models: list[str] | None = None) -> None:
        super().__init__()
        self.chunk_delay = chunk_delay
        self.models = list(models) if models is not None else ["gpt-4o-mini"]

    def send(self, request, stream=False, timeout=None, verify=True, cert=None,
             proxies=None) -> requests.Response:
        """Answer ``request`` locally; ``timeout``, ``verify``, ``cert`` and ``proxies`` are ignored."""
        path = urlsplit(request.url).path.rstrip("/")
        if request.method == "POST" and path.endswith(("/chat/completions", "/embeddings")):
            try:
                body = request.body
                payload = json.loads(body.decode() if isinstance(body, (bytes, bytearray)) else body)
            except (TypeError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                problem = _error(400, "We could not parse the JSON body of your request.", "invalid_json")
                return self._build(request, *problem)
            if path.endswith("/embeddings"):
                return self._build(request, *offline_embeddings(payload))
            invalid = _validate(payload)
            if invalid:
                return self._build(request, *invalid)
            if payload.get("stream") is True:
                stop = threading.Event()
                return self._build(request, 200, self._stream(payload, stop), stop)
            return self._build(request, 200, self._completion(payload))
        if request.method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": _MODEL_CREATED, "owned_by": "chatgate-offline"}
                    for m in self.models]
            return self._build(request, 200, {"object": "list", "data": data})
        problem = _error(404, f"Unknown request URL: {request.method} {path}.", "not_found")
        return self._build(request, *problem)

    def close(self) -> None:
        """Nothing to release: the adapter holds no connections."""

    def _build(self, request, status: int, body: dict | Iterator[bytes],
               stop: threading.Event | None = None) -> requests.Response:
        response = requests.Response()
        if isinstance(body, dict):
            raw = json.dumps(body).encode()
            body = iter([raw])
            headers = {"Content-Type": "application/json", "Content-Length": str(len(raw))}
        else:
            headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        response.raw = _LazyBody(body, stop or threading.Event())
        response.status_code = status
        response.reason = HTTPStatus(status).phrase
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        response.connection = self  # type: ignore[assignment]  # any BaseAdapter can answer, not only HTTPAdapter
        return response

    @staticmethod
    def _answer(payload: dict) -> tuple[dict, str | None, dict | None, str, dict]:
        """Shared envelope fields, reply text or tool call, finish reason and usage."""
        key = {k: v for k, v in payload.items() if k not in ("stream", "stream_options")}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        envelope = {"id": "chatcmpl-" + digest[:29], "created": int(time.time()), "model": payload["model"],
                    "system_fingerprint": "fp_offline"}
        call = _tool_call(payload, envelope["id"])
        if call:
            text, finish = None, "tool_calls"
        else:
            limit = payload.get("max_completion_tokens")
            limit = payload.get("max_tokens") if limit is None else limit
            fmt = payload.get("response_format")
            text, finish = offline_reply(payload["messages"], payload["model"], limit, response_format=fmt)
        prompt = sum(math.ceil(len(_text(m.get("content"))) / 4) + 4 for m in payload["messages"])
        completion = len(_PIECE.findall(call["function"]["arguments"] if call else text or ""))
        return envelope, text, call, finish, {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, payload: dict) -> dict:
        envelope, text, call, finish, usage = self._answer(payload)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if call:
            message["tool_calls"] = [call]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return {"id": envelope["id"], "object": "chat.completion", **envelope, "choices": [choice], "usage": usage}

    def _stream(self, payload: dict, stop: threading.Event) -> Iterator[bytes]:
        """Generate SSE chunks lazily, pausing ``chunk_delay`` between them."""
        envelope, text, call, finish, usage = self._answer(payload)
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        base = {"id": envelope["id"], "object": "chat.completion.chunk", **envelope}
        if include_usage:
            base["usage"] = None  # OpenAI marks every chunk but the last this way

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        if call:
            args, name = call["function"]["arguments"], call["function"]["name"]
            tool = {"index": 0, "id": call["id"], "type": "function", "function": {"name": name, "arguments": ""}}
            first = {"role": "assistant", "content": None, "tool_calls": [tool]}
            deltas = [{"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 8]}}]}
                      for i in range(0, len(args), 8)]
        else:
            first = {"role": "assistant", "content": "", "refusal": None}
            deltas = [{"content": piece} for piece in _PIECE.findall(text or "")]
        events: list[dict | str] = [chunk(first), *map(chunk, deltas), chunk({}, finish)]
        if include_usage:
            events.append({**base, "choices": [], "usage": usage})
        events.append("[DONE]")
        for index, event in enumerate(events):
            # Event.wait doubles as an interruptible sleep, so close() ends a paused stream at once.
            if index and self.chunk_delay > 0 and stop.wait(self.chunk_delay):
                return
            yield encode_sse(event if isinstance(event, str) else json.dumps(event))
