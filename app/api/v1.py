"""The OpenAI-compatible front door: /v1/chat/completions and /v1/models.

Only the wire format differs from /chat: the same guard, upstream client,
filter and (through the shared pipeline) every other check apply.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Blueprint, current_app, jsonify, request

from ..core.gateway import Completion
from ..core.reply_stream import ReplyStream
from ..errors import InvalidRequest, NotFound
from .admission import current_caller, services
from .body import read_json_object, validate
from .caching import cache_control, with_cache_headers
from .event_stream import DONE, event, sse_response
from .openai_schemas import PASS_THROUGH, ChatCompletionRequest

bp = Blueprint("v1", __name__, url_prefix="/v1")


@bp.post("/chat/completions")
def chat_completions():
    """OpenAI's chat completions, JSON or streamed chunks."""
    body = read_json_object(request)
    req = validate(ChatCompletionRequest, body)
    gw = services().gateway
    gw.bounds.check_messages(body["messages"])
    prediction = body.get("prediction")
    if isinstance(prediction, dict):
        gw.bounds.check_content("prediction.content", prediction.get("content"))
    if req.stream and (req.n or 1) > 1:
        raise InvalidRequest("n greater than 1 cannot be streamed", param="n", code="unsupported_value")
    # Validation is strict (no coercion), so the client's own JSON is what goes upstream, as given.
    payload = {"model": gw.resolve_model(req.model), "messages": body["messages"],
               **{name: body[name] for name in PASS_THROUGH if body.get(name) is not None}}
    payload = gw.guard.payload(payload)
    if req.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        stream = gw.open_stream(payload, current_caller(), "/v1/chat/completions", control=cache_control())
        return sse_response(stream, _chunk_frames(stream, include_usage), opening=_opening(stream))
    done = gw.complete(payload, current_caller(), "/v1/chat/completions", cache_control())
    return with_cache_headers(jsonify(_completion_body(done)), done.cache)


def _completion_body(done: Completion) -> dict:
    choices = []
    for choice in done.choices:
        message: dict[str, object] = {
            "role": "assistant", "content": choice.reply if choice.reply or not choice.tool_calls else None,
            "refusal": choice.refusal}
        if choice.tool_calls:
            message["tool_calls"] = choice.tool_calls
        if choice.function_call:
            message["function_call"] = choice.function_call
        # "filter" is ours, not OpenAI's: SDKs ignore unknown keys, and clients can see what we changed.
        choices.append({"index": choice.index, "message": message, "logprobs": choice.logprobs,
                        "finish_reason": choice.finish_reason, "filter": choice.filter.to_dict()})
    return {"id": done.id, "object": "chat.completion", "created": done.created, "model": done.model,
            "choices": choices, "usage": done.usage}


def _chunk(stream: ReplyStream, created: int, delta: dict, finish=None, **extra) -> bytes:
    return event({"id": stream.id, "object": "chat.completion.chunk", "created": created, "model": stream.model,
                  "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra})


def _opening(stream: ReplyStream) -> bytes:
    return _chunk(stream, int(time.time()), {"role": "assistant", "content": ""})


def _chunk_frames(stream: ReplyStream, include_usage: bool):
    """OpenAI's chunk format: deltas, a finishing chunk, a usage chunk when asked, [DONE]."""
    created = int(time.time())

    def frames(kind: str, data) -> Iterator[bytes]:
        if kind == "delta":
            yield _chunk(stream, created, {"content": data})
        elif kind == "tool_calls":
            yield _chunk(stream, created, {"tool_calls": data})
        elif kind == "refusal":
            yield _chunk(stream, created, {"refusal": data})
        elif kind == "end":
            yield _chunk(stream, created, {}, data.finish_reason, filter=data.filter.to_dict())
            if include_usage:
                yield event({"id": stream.id, "object": "chat.completion.chunk", "created": created,
                             "model": stream.model, "choices": [], "usage": data.usage})
            yield DONE
        elif kind == "error":
            yield event(data.to_dict())
    return frames


@bp.get("/models")
def models():
    """The models a client may ask for, in OpenAI's list format."""
    return jsonify(object="list", data=[_model(name) for name in _models()])


@bp.get("/models/<path:model>")
def model(model: str):
    """One model, if a client may use it."""
    if model not in _models():
        raise NotFound(f"model {model!r} is not available", param="model", code="model_not_found")
    return jsonify(_model(model))


def _models() -> list[str]:
    """Chat models, then embedding models, each once."""
    config = current_app.config
    return list(dict.fromkeys((*config["ALLOWED_MODELS"], *config["ALLOWED_EMBEDDING_MODELS"])))


def _model(name: str) -> dict:
    # "kind" is ours (SDKs ignore keys they do not know): what the model can be asked for here.
    kind = "chat" if name in current_app.config["ALLOWED_MODELS"] else "embedding"
    return {"id": name, "object": "model", "created": 0, "owned_by": "chatgate", "kind": kind}
