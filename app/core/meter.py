"""Admitting a chat call against the caller's limits and budgets, and recording what it cost.

Every front door goes through ``Meter.admit`` before the upstream is called
and closes the returned ``Ticket`` exactly once when the call is over, so
bounds, token limits, dollar budgets, open-stream caps, the usage ledger, the
metrics and the trace cannot differ between doors or between streamed and
whole replies. A reply from the response cache is admitted too (``cached``):
its bounds are checked and it is recorded, but it holds and spends no tokens
and no dollars, takes no stream slot and makes no trace span (there is no
upstream call); its ledger row has zero tokens and the cached flag.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..access.budgets import BudgetHold
from ..access.keys import Caller
from ..errors import APIError
from ..ops.metrics import NULL
from ..ops.record import RequestRecord, current
from ..ops.tracing import NO_TRACING
from .bounds import Bounds
from .estimate import estimate_request, estimate_text
from .pricing import PriceTable

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
    budget: BudgetHold | None = None
    stream_lease: object = None
    stream_counted: bool = False
    record: RequestRecord | None = None
    span: object = None
    started: float = field(default_factory=time.perf_counter)
    cost_micros: int | None = None
    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: tuple = ()
    closed: bool = False
    cached: bool = False  # answered from the response cache
    # Who is serving the call, as the router tries each target (see served_by); None for a cached reply.
    upstream: str | None = None
    upstream_model: str | None = None
    provider: str | None = None

    @property
    def arrived(self) -> float:
        """When the request reached chatgate (admission time outside a request)."""
        return self.record.started if self.record is not None else self.started

    def served_by(self, upstream: str | None, model: str | None, provider: str | None) -> None:
        """The router is now trying ``upstream`` with ``model`` (None: no upstream could serve)."""
        self.upstream, self.upstream_model, self.provider = upstream, model, provider
        if self.record is not None:
            self.record.upstream = upstream  # known before a stream's headers go: X-Chatgate-Upstream

    @property
    def priced_model(self) -> str:
        """The model a call is priced by: the one that served it when the price table knows it, else the one asked."""
        served = self.upstream_model
        if served and served != self.model and self.meter.prices.price(served) is not None:
            return served
        return self.model

    def price(self, usage: dict) -> float:
        """The call's cost in US dollars for ``usage``, fixed from now on (what the client is told)."""
        self.cost_micros = 0 if self.cached else self.meter.prices.cost_micros(self.priced_model, usage)
        return self.cost_micros / 1_000_000

    def close(self, status: int, usage: dict | None, filter_action: str = "none", error: str | None = None) -> None:
        """Settle the reservations, free the stream slot, record the row, metrics and trace (once)."""
        if self.closed:
            return
        self.closed = True
        self.meter.finish(self, status, usage or {}, filter_action, error)


class Meter:
    """Request bounds, token reservations, budgets, stream caps, and the record of every call."""

    def __init__(self, limiter, ledger, bounds: Bounds, *, prices: PriceTable, budgets=None, metrics=NULL,
                 tracing=NO_TRACING, upstream_name: str = "default"):
        self.limiter = limiter
        self.ledger = ledger
        self.bounds = bounds
        self.prices = prices
        self.budgets = budgets
        self.metrics = metrics
        self.tracing = tracing
        self.upstream_name = upstream_name

    def admit(self, caller, payload: dict, endpoint: str, stream: bool, *, cached: bool = False) -> Ticket:
        """Check the abuse bounds and hold the tokens and dollars this call may spend, or raise.

        ``cached``: the reply comes from the response cache; bounds only, nothing is held.
        """
        reply_cap = self.bounds.check_payload(payload)
        if cached:
            ticket = Ticket(self, caller, endpoint, stream, payload["model"], record=current(), cached=True)
            if stream:
                ticket.stream_counted = True
                self.metrics.stream_opened()
            return ticket
        # The whole request (tools and schemas too) plus the most every reply may use.
        return self._hold(caller, payload["model"], endpoint, stream, estimate_request(payload),
                          reply_cap * payload.get("n", 1))

    def admit_embedding(self, caller, payload: dict, endpoint: str) -> Ticket:
        """Hold the tokens and dollars of an embeddings call (its inputs; there is no reply), or raise."""
        prompt = sum(estimate_text(text) + 1 for text in payload["input"])
        return self._hold(caller, payload["model"], endpoint, False, prompt, 0)

    def _hold(self, caller, model: str, endpoint: str, stream: bool, prompt: int, reply: int) -> Ticket:
        ticket = Ticket(self, caller, endpoint, stream, model, record=current(), upstream=self.upstream_name)
        ticket.reservation = self.limiter.reserve(caller, prompt + reply)
        try:
            if self.budgets is not None:
                ticket.budget = self.budgets.reserve(caller, self.prices.worst_case_micros(model, prompt, reply))
            if stream:
                ticket.stream_lease = self.limiter.open_stream(caller)
        except APIError:
            self.limiter.settle(ticket.reservation, 0)
            if self.budgets is not None:
                self.budgets.settle(ticket.budget, 0)
            raise
        if stream:
            ticket.stream_counted = True
            self.metrics.stream_opened()
        ticket.span = self.tracing.start(model, ticket.record)
        return ticket

    def finish(self, ticket: Ticket, status: int, usage: dict, filter_action: str, error: str | None) -> None:
        """Settle, free and record one finished call."""
        if ticket.cached:
            prompt = completion = cost = 0  # the upstream generated nothing for this one
        else:
            prompt = int(usage.get("prompt_tokens") or 0)
            completion = int(usage.get("completion_tokens") or 0)
            cost = (ticket.cost_micros if ticket.cost_micros is not None
                    else self.prices.cost_micros(ticket.priced_model, usage))
            self.limiter.settle(ticket.reservation, prompt + completion)
            if self.budgets is not None:
                self.budgets.settle(ticket.budget, cost)
            self.limiter.close_stream(ticket.stream_lease)
        if ticket.stream_counted:
            self.metrics.stream_closed()
        seconds = time.perf_counter() - ticket.started
        self.metrics.call(ticket.model, seconds, error, prompt, completion, cost, ticket.provider)
        record = ticket.record
        if record is not None:
            # A reply from the cache came from no upstream (ticket.upstream stays None).
            record.model, record.upstream, record.stream = ticket.model, ticket.upstream, ticket.stream
            record.prompt_tokens, record.completion_tokens, record.cost_micros = prompt, completion, cost
            record.filter = filter_action
            if error is not None:
                record.error = error
        if ticket.span is not None:
            self.tracing.end(ticket.span, ticket, prompt, completion, error)
        try:
            self.ledger.record(client_id=ticket.caller.id, model=ticket.model, prompt_tokens=prompt,
                               completion_tokens=completion, latency_ms=seconds * 1000.0, status=status,
                               filter_action=filter_action, endpoint=ticket.endpoint, stream=ticket.stream,
                               cost_micros=cost, cached=ticket.cached, upstream=ticket.upstream,
                               upstream_model=ticket.upstream_model)
        except APIError as err:
            # The reply is already on its way; a ledger outage must not turn it into an error.
            log.error("usage not recorded (%s)", err.code)
