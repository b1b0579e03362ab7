"""POST /chat: the main job, prompt in, filtered reply out (JSON or SSE)."""
from __future__ import annotations

from typing import Iterator

from flask import Blueprint, current_app, jsonify, request

from .auth import current_caller
from .errors import APIError
from .pipeline import Gateway, build_messages
from .relay import ReplyStream
from .store import get_store
from .schemas import SAMPLING_FIELDS, ChatRequest
from .streaming import DONE, event, sse_response
from .validation import check_text, read_json_object, validate

bp = Blueprint("chat", __name__)


def gateway() -> Gateway:
    """The app's chat pipeline."""
    return current_app.extensions["chatgate"]


@bp.post("/chat")
def chat():
    """Validate the prompt, continue the conversation, call the upstream, filter and store the reply."""
    req = validate(ChatRequest, read_json_object(request))
    limit = current_app.config["MAX_PROMPT_CHARS"]
    check_text("prompt", req.prompt, limit, required=True)
    if req.system is not None:
        check_text("system", req.system, limit)
    gw, store, caller = gateway(), get_store(), current_caller()
    model = gw.resolve_model(req.model)
    prompt = gw.guard([{"role": "user", "content": req.prompt}])[0]["content"]
    system = gw.guard([{"role": "system", "content": req.system}])[0]["content"] if req.system else None
    turn = Turn(store, caller.id, prompt, system, model)
    if req.conversation_id is not None:
        turn.conversation = store.open(caller.id, req.conversation_id, system)
        history = store.history(turn.conversation, current_app.config["HISTORY_TOKEN_BUDGET"])
        messages = history + [{"role": "user", "content": prompt}]
    else:
        messages = build_messages(prompt, system)
    payload = {"model": model, "messages": messages}
    for name in SAMPLING_FIELDS:
        value = getattr(req, name)
        if value is not None:
            payload[name] = value
    if req.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        stream = gw.open_stream(payload, caller, "/chat")
        return sse_response(stream, _chat_frames(stream, turn))
    done = gw.complete(payload, caller, "/chat")
    first = done.choices[0]
    conversation_id = turn.save(first.reply, first.finish_reason, first.filter.action)
    return jsonify(id=done.id, conversation_id=conversation_id, model=done.model, reply=first.reply,
                   finish_reason=first.finish_reason, usage=done.usage, filter=first.filter.to_dict())


class Turn:
    """One prompt and its reply, stored once the reply is complete (a failed call leaves nothing)."""

    def __init__(self, store, client_id: str, prompt: str, system: str | None, model: str):
        self.store, self.client_id, self.prompt, self.system, self.model = store, client_id, prompt, system, model
        self.conversation = None

    def save(self, reply: str, finish_reason: str | None, filter_action: str) -> str:
        """Append the turn (creating the conversation if new) and return the conversation id."""
        if self.conversation is None:
            self.conversation = self.store.open(self.client_id, None, self.system)
        self.store.append_turn(self.conversation, self.prompt, reply, model=self.model,
                               finish_reason=finish_reason, filter_action=filter_action)
        return self.conversation.id


def _chat_frames(stream: ReplyStream, turn: Turn):
    """Our own event format: deltas, one final event, [DONE]; or one error event."""
    def frames(kind: str, data) -> Iterator[bytes]:
        if kind == "delta":
            yield event({"delta": data})
        elif kind == "end":
            try:
                conversation_id = turn.save(data.reply, data.finish_reason, data.filter.action)
            except APIError as err:
                # Nothing may claim a finished turn that was not stored.
                yield event(err.to_dict())
                return
            yield event({"id": stream.id, "model": stream.model, "finish_reason": data.finish_reason,
                         "usage": data.usage, "filter": data.filter.to_dict(), "conversation_id": conversation_id})
            yield DONE
        elif kind == "error":
            yield event(data.to_dict())
    return frames
