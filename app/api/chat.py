"""POST /chat: the main job, prompt in, filtered reply out (JSON or SSE)."""
from __future__ import annotations

import re
from collections.abc import Iterator

from flask import Blueprint, jsonify, request

from ..core.reply_stream import ReplayStream, ReplyStream
from ..core.turns import ChatInput
from ..errors import InvalidRequest
from ..storage.idempotency import Idempotency
from .admission import current_caller, services
from .body import read_json_object, validate
from .caching import cache_control, with_cache_headers
from .event_stream import DONE, event, sse_response
from .schemas import SAMPLING_FIELDS, ChatRequest

bp = Blueprint("chat", __name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Visible ASCII, as the IETF draft and Stripe's keys are; a UUID is the usual choice.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
REPLAYED_HEADER = "Idempotent-Replayed"


@bp.post("/chat")
def chat():
    """Translate /chat's JSON to a turn and the turn's reply back to /chat's JSON or events."""
    body = read_json_object(request)
    req = validate(ChatRequest, body)
    params = {name: getattr(req, name) for name in SAMPLING_FIELDS if getattr(req, name) is not None}
    chat_input = ChatInput(prompt=req.prompt, system=req.system, conversation_id=req.conversation_id,
                           model=req.model, params=params, idempotency=_idempotency(body))
    turns = services().turns
    if req.stream:
        stream = turns.stream(current_caller(), chat_input, cache_control())
        resp = sse_response(stream, _chat_frames(stream))
        replayed = stream.replayed
    else:
        done, conversation_id = turns.complete(current_caller(), chat_input, cache_control())
        first = done.choices[0]
        resp = with_cache_headers(jsonify(id=done.id, conversation_id=conversation_id, model=done.model,
                                          reply=first.reply, finish_reason=first.finish_reason, usage=done.usage,
                                          filter=first.filter.to_dict()), done.cache)
        replayed = done.replayed
    if replayed:
        resp.headers[REPLAYED_HEADER] = "true"
    return resp


def _idempotency(body: dict) -> Idempotency | None:
    """The request's Idempotency-Key with its body, or None; a malformed key is a 400."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequest(f"{IDEMPOTENCY_HEADER} must be 1 to 255 visible ASCII characters (a UUID, say)",
                             param=IDEMPOTENCY_HEADER)
    return Idempotency.of(key, body)


def _chat_frames(stream: ReplyStream | ReplayStream):
    """Our own event format: deltas, one final event, [DONE]; or one error event."""
    def frames(kind: str, data) -> Iterator[bytes]:
        if kind == "delta":
            yield event({"delta": data})
        elif kind == "end":
            yield event({"id": stream.id, "model": stream.model, "finish_reason": data.finish_reason,
                         "usage": data.usage, "filter": data.filter.to_dict(),
                         "conversation_id": data.conversation_id})
            yield DONE
        elif kind == "error":
            yield event(data.to_dict())
    return frames
