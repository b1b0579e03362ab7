"""POST /v1/responses: OpenAI's Responses API (the stateless subset), served over chat completions.

Whole replies are one response object; streams are the Responses event
sequence the SDKs parse (``response.created`` … ``response.completed``),
and a failure after the first event is one ``response.failed`` event.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import Blueprint, jsonify, request

from ..core.reply_stream import ReplyStream, StreamEnd
from ..errors import APIError
from . import responses_translate as tr
from .admission import current_caller, services
from .body import read_json_object, validate
from .caching import cache_control, with_cache_headers
from .event_stream import sse_response
from .responses_schemas import ResponsesRequest

bp = Blueprint("responses", __name__, url_prefix="/v1")
ENDPOINT = "/v1/responses"


@bp.post("/responses")
def create_response():
    """A response object, or its event stream."""
    body = read_json_object(request)
    req = validate(ResponsesRequest, body)
    gw = services().gateway
    check_texts(gw.bounds, body)
    payload = tr.chat_payload(body, gw.resolve_model(req.model))
    payload = gw.guard.payload(payload)
    if req.metadata:
        body = {**body, "metadata": {k: gw.guard.prose(v) for k, v in req.metadata.items()}}
    if req.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        stream = gw.open_stream(payload, current_caller(), ENDPOINT, control=cache_control())
        events = ResponseEvents(body, stream)
        return sse_response(stream, events.frames, opening=events.opening())
    done = gw.complete(payload, current_caller(), ENDPOINT, cache_control())
    return with_cache_headers(jsonify(tr.response_object(body, done)), done.cache)


def check_texts(bounds, body: dict) -> None:
    """Every text the client wrote, named by its own path: input, instructions, items and their parts."""
    if body.get("instructions") is not None:
        bounds.check_text("instructions", body["instructions"])
    given = body["input"]
    if isinstance(given, str):
        bounds.check_text("input", given, required=True)
        return
    for i, item in enumerate(given):
        if "content" in item:
            bounds.check_content(f"input.{i}.content", item["content"])
        elif "output" in item:
            bounds.check_content(f"input.{i}.output", item["output"])
        elif "arguments" in item:
            bounds.check_text(f"input.{i}.arguments", item["arguments"])


class ResponseEvents:
    """The Responses event sequence for one reply stream; each event is numbered."""

    def __init__(self, body: dict, stream: ReplyStream):
        self.response = tr.envelope(body, tr.new_id("resp"), int(time.time()), stream.model)
        self.sequence = 0
        self.output: list[dict] = []          # items, in output order (open ones updated in place)
        self.text: dict | None = None         # the open message item
        self.text_parts: list[str] = []
        self.calls: dict[int, dict] = {}      # chat tool-call index -> its open function_call item
        self.call_args: dict[int, list[str]] = {}

    def event(self, kind: str, **fields) -> bytes:
        """One SSE event: ``event:`` names it, ``data:`` carries it with its sequence number."""
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()

    def opening(self) -> bytes:
        """response.created then response.in_progress."""
        return (self.event("response.created", response=self.response)
                + self.event("response.in_progress", response=self.response))

    def frames(self, kind: str, data) -> Iterator[bytes]:
        """The events for one reply-stream event."""
        if kind in ("delta", "refusal"):
            # A streamed refusal reads as the reply's text here; whole responses carry it the same way.
            yield from self._text_delta(data)
        elif kind == "tool_calls":
            for delta in data:
                yield from self._call_delta(delta)
        elif kind == "end":
            yield from self._end(data)
        elif kind == "error":
            yield self._failed(data)

    def _text_delta(self, text: str) -> Iterator[bytes]:
        if self.text is None:
            self.text = tr.message_item(tr.new_id("msg"), "", "in_progress")
            self.text["content"] = []
            self.output.append(self.text)
            yield self.event("response.output_item.added", output_index=len(self.output) - 1, item=self.text)
            yield self.event("response.content_part.added", item_id=self.text["id"], output_index=len(self.output) - 1,
                             content_index=0, part={"type": "output_text", "text": "", "annotations": [],
                                                    "logprobs": []})
        self.text_parts.append(text)
        yield self.event("response.output_text.delta", item_id=self.text["id"], output_index=self._index(self.text),
                         content_index=0, delta=text, logprobs=[])

    def _call_delta(self, delta: dict) -> Iterator[bytes]:
        if not isinstance(delta, dict):
            return
        index = delta.get("index", 0)
        fn = delta.get("function") or {}
        item = self.calls.get(index)
        if item is None:
            yield from self._close_text("completed")
            item = tr.function_call_item(tr.new_id("fc"), str(delta.get("id") or tr.new_id("call")),
                                         str(fn.get("name") or ""), "", "in_progress")
            self.calls[index], self.call_args[index] = item, []
            self.output.append(item)
            yield self.event("response.output_item.added", output_index=len(self.output) - 1, item=dict(item))
        piece = fn.get("arguments")
        if isinstance(piece, str) and piece:
            self.call_args[index].append(piece)
            yield self.event("response.function_call_arguments.delta", item_id=item["id"],
                             output_index=self._index(item), delta=piece)

    def _close_text(self, status: str) -> Iterator[bytes]:
        if self.text is None:
            return
        text, item = "".join(self.text_parts), self.text
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        index = self._index(item)
        yield self.event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                         text=text, logprobs=[])
        yield self.event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0,
                         part=part)
        item.update(status=status, content=[part])
        yield self.event("response.output_item.done", output_index=index, item=item)
        self.text = None

    def _end(self, end: StreamEnd) -> Iterator[bytes]:
        status = "incomplete" if end.finish_reason in ("length", "content_filter") else "completed"
        if self.text is None and not self.calls and not self.output:
            yield from self._text_delta("")  # every response holds its (possibly empty) message
        yield from self._close_text(status)
        for index, item in self.calls.items():
            item.update(arguments="".join(self.call_args[index]), status="completed")
            yield self.event("response.function_call_arguments.done", item_id=item["id"], name=item["name"],
                             output_index=self._index(item), arguments=item["arguments"])
            yield self.event("response.output_item.done", output_index=self._index(item), item=item)
        done = tr.finished(self.response, end.finish_reason, self.output, end.usage, end.filter.to_dict())
        yield self.event(f"response.{done['status']}", response=done)

    def _failed(self, err: APIError) -> bytes:
        code = "rate_limit_exceeded" if err.status == 429 else "server_error"
        failed = {**self.response, "status": "failed", "output": self.output,
                  "error": {"code": code, "message": err.message}}
        return self.event("response.failed", response=failed)

    def _index(self, item: dict) -> int:
        return next(i for i, it in enumerate(self.output) if it is item)
