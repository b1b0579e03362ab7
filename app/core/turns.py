"""Conversation turns, ``POST /chat``'s job: a prompt continues a stored conversation through the gateway.

A turn is stored only once its reply is complete (a failed call leaves
nothing), exactly as the client saw it: the guarded prompt and the filtered
reply. History sent upstream is the system prompt plus the newest whole turns
that fit the token budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..storage.conversations import ConversationStore, StoredConversation
from .cache import DEFAULT, CacheControl
from .estimate import estimate_messages
from .gateway import Completion, Gateway
from .reply_stream import ReplyStream, StreamEnd


@dataclass
class ChatInput:
    """A /chat request as the core sees it."""

    prompt: str
    system: str | None = None
    conversation_id: str | None = None
    model: str | None = None
    params: dict = field(default_factory=dict)  # sampling fields the client set


@dataclass
class Turn:
    """One prompt on its way: the upstream request, and what to store when the reply is complete."""

    store: ConversationStore
    client_id: str
    prompt: str
    system: str | None
    payload: dict
    conversation: StoredConversation | None = None

    def save(self, reply: str, finish_reason: str | None, filter_action: str) -> str:
        """Append the turn (creating the conversation if new) and return the conversation id."""
        if self.conversation is None:
            self.conversation = self.store.open(self.client_id, None, self.system)
        self.store.append_turn(self.conversation, self.prompt, reply, model=self.payload["model"],
                               finish_reason=finish_reason, filter_action=filter_action)
        return self.conversation.id


class ChatTurns:
    """Runs /chat turns: bounds, guard, history, the gateway, then the store."""

    ENDPOINT = "/chat"

    def __init__(self, gateway: Gateway, store: ConversationStore, *, history_budget: int):
        self.gateway = gateway
        self.store = store
        self.history_budget = history_budget

    def complete(self, caller, chat: ChatInput, control: CacheControl = DEFAULT) -> tuple[Completion, str]:
        """One whole reply (fresh or from the response cache), stored; returns it with its conversation id."""
        turn = self._begin(caller, chat)
        done = self.gateway.complete(turn.payload, caller, self.ENDPOINT, control)
        first = done.choices[0]
        return done, turn.save(first.reply, first.finish_reason, first.filter.action)

    def stream(self, caller, chat: ChatInput, control: CacheControl = DEFAULT) -> ReplyStream:
        """A streamed reply whose turn is stored before its end event (which then names the conversation)."""
        turn = self._begin(caller, chat)
        turn.payload["stream"] = True
        turn.payload["stream_options"] = {"include_usage": True}

        def store_turn(end: StreamEnd) -> None:
            end.conversation_id = turn.save(end.reply, end.finish_reason, end.filter.action)

        return self.gateway.open_stream(turn.payload, caller, self.ENDPOINT, on_end=store_turn, control=control)

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
        payload = {"model": model, "messages": messages, **chat.params}
        return Turn(self.store, caller.id, prompt, system, payload, conversation)
