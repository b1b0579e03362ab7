"""POST /chat: the main job, prompt in, filtered reply out (JSON or SSE)."""
from __future__ import annotations

from typing import Iterator

from flask import Blueprint, current_app, jsonify, request

from .errors import NotFound
from .pipeline import Gateway, ReplyStream, build_messages
from .schemas import SAMPLING_FIELDS, ChatRequest
from .streaming import DONE, event, sse_response
from .validation import check_text, read_json_object, validate

bp = Blueprint("chat", __name__)


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
        stream = gw.open_stream(payload)
        return sse_response(stream, _chat_frames(stream, conversation_id=None))
    done = gw.complete(payload)
    first = done.choices[0]
    return jsonify(id=done.id, conversation_id=None, model=done.model, reply=first.reply,
                   finish_reason=first.finish_reason, usage=done.usage, filter=first.filter.to_dict())


def _chat_frames(stream: ReplyStream, conversation_id: str | None):
    """Our own event format: deltas, one final event, [DONE]; or one error event."""
    def frames(kind: str, data) -> Iterator[bytes]:
        if kind == "delta":
            yield event({"delta": data})
        elif kind == "end":
            yield event({"id": stream.id, "model": stream.model, "finish_reason": data.finish_reason,
                         "usage": data.usage, "filter": data.filter.to_dict(), "conversation_id": conversation_id})
            yield DONE
        elif kind == "error":
            yield event(data.to_dict())
    return frames
