"""Admitting a chat call against the caller's limits, and recording what it cost.

Every front door goes through ``Meter.admit`` before the upstream is called
and closes the returned ``Ticket`` exactly once when the call is over, so
bounds, token limits, open-stream caps and the usage ledger cannot differ
between doors or between streamed and whole replies.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .errors import APIError, InvalidRequest
from .tokens import estimate_messages, message_text

log = logging.getLogger(__name__)

# Status recorded when the client went away before the reply was complete (nginx's convention).
CLIENT_CLOSED = 499


@dataclass
class Ticket:
    """One admitted call: what it reserved, and how to settle and record it."""

    meter: "Meter"
    caller: object
    endpoint: str
    stream: bool
    model: str
    reservation: object = None
    stream_key: str | None = None
    started: float = field(default_factory=time.perf_counter)
    closed: bool = False

    def close(self, status: int, usage: dict | None, filter_action: str = "none") -> None:
        """Settle the reservation, free the stream slot and write the ledger row (once)."""
        if self.closed:
            return
        self.closed = True
        self.meter.finish(self, status, usage or {}, filter_action)


class Meter:
    """Request bounds, token reservations, stream caps and the usage ledger."""

    def __init__(self, limiter, store, *, max_tokens_cap: int, max_messages: int, max_total_chars: int):
        self.limiter = limiter
        self.store = store
        self.max_tokens_cap = max_tokens_cap
        self.max_messages = max_messages
        self.max_total_chars = max_total_chars

    def admit(self, caller, payload: dict, endpoint: str, stream: bool) -> Ticket:
        """Check the abuse bounds and hold the tokens this call may spend, or raise."""
        messages = payload["messages"]
        if len(messages) > self.max_messages:
            raise InvalidRequest(f"too many messages ({len(messages)}, at most {self.max_messages})",
                                 param="messages", code="too_many_messages")
        total = sum(len(message_text(m)) for m in messages)
        if total > self.max_total_chars:
            raise InvalidRequest(f"the messages are too long ({total} characters, at most {self.max_total_chars})",
                                 param="messages", code="too_long")
        reply_cap = self.max_tokens_cap
        for name in ("max_tokens", "max_completion_tokens"):
            asked = payload.get(name)
            if asked is not None:
                if asked > self.max_tokens_cap:
                    raise InvalidRequest(f"{name} must be at most {self.max_tokens_cap}", param=name,
                                         code="invalid_value")
                reply_cap = min(reply_cap, asked)
        ticket = Ticket(self, caller, endpoint, stream, payload["model"])
        ticket.reservation = self.limiter.reserve(caller, estimate_messages(messages) + reply_cap * payload.get("n", 1))
        if stream:
            try:
                ticket.stream_key = self.limiter.open_stream(caller)
            except APIError:
                self.limiter.settle(ticket.reservation, 0)
                raise
        return ticket

    def finish(self, ticket: Ticket, status: int, usage: dict, filter_action: str) -> None:
        """Settle, free and record one finished call."""
        used = int(usage.get("total_tokens") or 0)
        self.limiter.settle(ticket.reservation, used)
        self.limiter.close_stream(ticket.stream_key)
        try:
            self.store.record_usage(client_id=ticket.caller.id, model=ticket.model,
                                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                                    completion_tokens=int(usage.get("completion_tokens") or 0),
                                    latency_ms=(time.perf_counter() - ticket.started) * 1000.0, status=status,
                                    filter_action=filter_action, endpoint=ticket.endpoint, stream=ticket.stream)
        except APIError as err:
            # The reply is already on its way; a ledger outage must not turn it into an error.
            log.error("usage not recorded (%s)", err.code)
