"""POST /chat: the main job, prompt in, filtered reply out (JSON or SSE)."""
from __future__ import annotations

import json
from typing import Iterator

from flask import Blueprint, Response, current_app, jsonify, request

from .errors import NotFound
from .pipeline import Gateway, ReplyStream, build_messages
from .schemas import SAMPLING_FIELDS, ChatRequest
from .sse import encode_sse
from .validation import check_text, read_json_object, validate

bp = Blueprint("chat", __name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"


def gateway() -> Gateway:
    """The app's chat pipeline."""
    return current_app.extensions["chatgate"]


@bp.post("/chat")
def chat():
    """Validate the prompt, call the upstream, filter the reply."""
    req = validate(ChatRequest, read_json_object(request))
    limit = current_app.config["MAX_PROMPT_CHARS"]
    check_text("prompt", req.prompt, limit, required=True)
    if req.system is not None:
        check_text("system", req.system, limit)
    if req.conversation_id is not None:
        # Conversations are not stored yet, so no id can name one.
        raise NotFound("conversation not found", param="conversation_id", code="conversation_not_found")
    gw = gateway()
    payload = {"model": gw.resolve_model(req.model),
               "messages": gw.guard(build_messages(req.prompt, req.system))}
    for name in SAMPLING_FIELDS:
        value = getattr(req, name)
        if value is not None:
            payload[name] = value
    if req.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        return sse_response(_chat_events(gw.open_stream(payload), conversation_id=None))
    done = gw.complete(payload)
    return jsonify(id=done.id, conversation_id=None, model=done.model, reply=done.reply,
                   finish_reason=done.finish_reason, usage=done.usage, filter=done.filter.to_dict())


def _chat_events(stream: ReplyStream, conversation_id: str | None) -> Iterator[bytes]:
    events = stream.events()
    try:
        for kind, data in events:
            if kind == "delta":
                yield encode_sse(_dumps({"delta": data}))
            elif kind == "end":
                yield encode_sse(_dumps({"id": stream.id, "model": stream.model,
                                         "finish_reason": data.finish_reason, "usage": data.usage,
                                         "filter": data.filter.to_dict(), "conversation_id": conversation_id}))
                yield DONE
            elif kind == "error":
                yield encode_sse(_dumps(data.to_dict()))
    finally:
        # The client may leave mid-stream: closing the relay closes the upstream response.
        events.close()


def sse_response(body: Iterator[bytes]) -> Response:
    """A text/event-stream response that proxies must not buffer."""
    return Response(body, mimetype="text/event-stream", headers=SSE_HEADERS, direct_passthrough=True)


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
