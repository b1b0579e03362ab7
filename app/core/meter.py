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

from ..access.keys import Caller
from ..errors import APIError
from .bounds import Bounds
from .estimate import estimate_request

log = logging.getLogger(__name__)

# Status recorded when the client went away before the reply was complete (nginx's convention).
CLIENT_CLOSED = 499


@dataclass
class Ticket:
    """One admitted call: what it reserved, and how to settle and record it."""

    meter: Meter
    caller: Caller
    endpoint: str
    stream: bool
    model: str
    reservation: object = None
    stream_lease: object = None
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

    def __init__(self, limiter, ledger, bounds: Bounds):
        self.limiter = limiter
        self.ledger = ledger
        self.bounds = bounds

    def admit(self, caller, payload: dict, endpoint: str, stream: bool) -> Ticket:
        """Check the abuse bounds and hold the tokens this call may spend, or raise."""
        reply_cap = self.bounds.check_payload(payload)
        ticket = Ticket(self, caller, endpoint, stream, payload["model"])
        # The whole request (tools and schemas too) plus the most every reply may use.
        ticket.reservation = self.limiter.reserve(
            caller, estimate_request(payload) + reply_cap * payload.get("n", 1))
        if stream:
            try:
                ticket.stream_lease = self.limiter.open_stream(caller)
            except APIError:
                self.limiter.settle(ticket.reservation, 0)
                raise
        return ticket

    def finish(self, ticket: Ticket, status: int, usage: dict, filter_action: str) -> None:
        """Settle, free and record one finished call."""
        used = int(usage.get("total_tokens") or 0)
        self.limiter.settle(ticket.reservation, used)
        self.limiter.close_stream(ticket.stream_lease)
        try:
            self.ledger.record(client_id=ticket.caller.id, model=ticket.model,
                               prompt_tokens=int(usage.get("prompt_tokens") or 0),
                               completion_tokens=int(usage.get("completion_tokens") or 0),
                               latency_ms=(time.perf_counter() - ticket.started) * 1000.0, status=status,
                               filter_action=filter_action, endpoint=ticket.endpoint, stream=ticket.stream)
        except APIError as err:
            # The reply is already on its way; a ledger outage must not turn it into an error.
            log.error("usage not recorded (%s)", err.code)
