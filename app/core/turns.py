"""Conversation turns, ``POST /chat``'s job: a prompt continues a stored conversation through the gateway.

A turn is stored only once its reply is complete (a failed call leaves
nothing), exactly as the client saw it: the guarded prompt and the filtered
reply. History sent upstream is the system prompt plus the newest whole turns
that fit the token budget. A turn sent with an Idempotency-Key that was
already stored is answered from the store (``replayed``), without calling
the upstream or storing it again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..filter import FilterResult
from ..storage.conversations import ConversationStore, StoredConversation
from ..storage.idempotency import Idempotency, StoredReply
from ..upstream.targets import reply_cap_field
from .cache import DEFAULT, CacheControl
from .estimate import estimate_messages
from .gateway import Choice, Completion, Gateway
from .reply_stream import ReplayStream, ReplyStream, StreamEnd


@dataclass
class ChatInput:
    """A /chat request as the core sees it."""

    prompt: str
    system: str | None = None
    conversation_id: str | None = None
    model: str | None = None
    params: dict = field(default_factory=dict)  # sampling fields the client set
    idempotency: Idempotency | None = None  # the Idempotency-Key and body, when the client sent one


@dataclass
class Turn:
    """One prompt on its way: the upstream request, and what to store when the reply is complete."""

    store: ConversationStore
    client_id: str
    prompt: str
    system: str | None
    payload: dict
    conversation: StoredConversation | None = None
    idempotency: Idempotency | None = None

    def save(self, reply: str, finish_reason: str | None, filter: FilterResult, meta: dict) -> str | StoredReply:
        """Store the turn (with its conversation, if new); the conversation id, or an earlier duplicate's reply."""
        return self.store.save_turn(self.conversation, self.client_id, self.system, self.prompt, reply,
                                    model=self.payload["model"], finish_reason=finish_reason,
                                    filter_action=filter.action, idempotency_key=self.idempotency,
                                    meta={**meta, "finish_reason": finish_reason, "filter": filter.to_dict()})


def replayed(stored: StoredReply) -> Completion:
    """The completion an earlier request with the same Idempotency-Key got, from the store."""
    meta = stored.meta
    result = FilterResult(stored.reply, meta["filter"]["action"], tuple(meta["filter"]["findings"]))
    return Completion(id=meta["id"], model=meta["model"], created=meta["created"], usage=meta["usage"],
                      choices=[Choice(0, stored.reply, meta["finish_reason"], result)], replayed=True)


class ChatTurns:
    """Runs /chat turns: bounds, guard, history, the gateway, then the store."""

    ENDPOINT = "/chat"

    def __init__(self, gateway: Gateway, store: ConversationStore, *, history_budget: int):
        self.gateway = gateway
        self.store = store
        self.history_budget = history_budget

    def complete(self, caller, chat: ChatInput, control: CacheControl = DEFAULT) -> tuple[Completion, str]:
        """One whole reply (fresh, or from the response cache), stored; returns it with its conversation id."""
        if chat.idempotency is not None:
            stored = self.store.replay(caller.id, chat.idempotency)
            if stored is not None:
                return replayed(stored), stored.conversation_id
        turn = self._begin(caller, chat)
        done = self.gateway.complete(turn.payload, caller, self.ENDPOINT, control)
        first = done.choices[0]
        saved = turn.save(first.reply, first.finish_reason, first.filter,
                          {"id": done.id, "model": done.model, "created": done.created, "usage": done.usage})
        if isinstance(saved, StoredReply):
            return replayed(saved), saved.conversation_id
        return done, saved

    def stream(self, caller, chat: ChatInput, control: CacheControl = DEFAULT) -> ReplyStream | ReplayStream:
        """A streamed reply whose turn is stored before its end event (which then names the conversation)."""
        if chat.idempotency is not None:
            stored = self.store.replay(caller.id, chat.idempotency)
            if stored is not None:
                return ReplayStream(stored)
        turn = self._begin(caller, chat)
        turn.payload["stream"] = True
        turn.payload["stream_options"] = {"include_usage": True}
        opened: list[ReplyStream] = []

        def store_turn(end: StreamEnd) -> None:
            stream = opened[0]
            saved = turn.save(end.reply, end.finish_reason, end.filter,
                              {"id": stream.id, "model": stream.model, "created": int(time.time()), "usage": end.usage})
            end.conversation_id = saved.conversation_id if isinstance(saved, StoredReply) else saved

        opened.append(self.gateway.open_stream(turn.payload, caller, self.ENDPOINT, on_end=store_turn,
                                               control=control))
        return opened[0]

    def history(self, conversation: StoredConversation) -> list[dict]:
        """System prompt (always) plus the newest whole turns that fit the budget, oldest first."""
        system = [{"role": "system", "content": conversation.system}] if conversation.system else []
        spent = estimate_messages(system)
        kept: list[list[dict]] = []
        for turn in self.store.recent_turns(conversation):
            cost = estimate_messages(turn) - estimate_messages([])
            if spent + cost > self.history_budget:
                break
            spent += cost
            kept.append(turn)
        return system + [message for turn in reversed(kept) for message in turn]

    def _begin(self, caller, chat: ChatInput) -> Turn:
        gw = self.gateway
        gw.bounds.check_text("prompt", chat.prompt, required=True)
        if chat.system is not None:
            gw.bounds.check_text("system", chat.system)
        model = gw.resolve_model(chat.model)
        prompt = gw.guard.text(chat.prompt) or ""
        system = gw.guard.text(chat.system) if chat.system else None
        conversation = None
        if chat.conversation_id is not None:
            conversation = self.store.open(caller.id, chat.conversation_id, system)
            messages = [*self.history(conversation), {"role": "user", "content": prompt}]
        else:
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": prompt})
        params = dict(chat.params)
        if "max_tokens" in params:
            # /chat's own max_tokens, sent in the field the model takes (see upstream.targets).
            params[reply_cap_field(model)] = params.pop("max_tokens")
        payload = {"model": model, "messages": messages, **params}
        return Turn(self.store, caller.id, prompt, system, payload, conversation, chat.idempotency)
