"""A reply stream: an upstream stream relayed through the stream filter, as events any door can format."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from time import perf_counter

from ..errors import APIError, StreamFailed
from ..filter import FilterResult
from ..storage.idempotency import StoredReply
from ..upstream.stream import ChatStream
from .cache import Outcome
from .estimate import usage_or_estimate
from .meter import CLIENT_CLOSED, Ticket
from .replay import CachedStream, StreamRecorder
from .reply_filter import StreamReplyFilter

BLOCKED_FINISH = "content_filter"


def completion_id() -> str:
    """A fresh id in OpenAI's style, for replies whose upstream sent none."""
    return "chatcmpl-" + uuid.uuid4().hex[:24]


@dataclass
class StreamEnd:
    """The last thing a reply stream reports when it finished (not failed)."""

    finish_reason: str | None
    usage: dict
    filter: FilterResult
    reply: str = ""
    conversation_id: str | None = None


class ReplayStream:
    """A stored reply (a retried Idempotency-Key) told as the events of a stream: its text, then its end."""

    replayed = True
    cache: Outcome | None = None  # answered from the turn store, so the response cache was not asked

    def __init__(self, stored: StoredReply):
        meta = stored.meta
        self.id, self.model = meta["id"], meta["model"]
        self._end = StreamEnd(meta["finish_reason"], meta["usage"],
                              FilterResult(stored.reply, meta["filter"]["action"], tuple(meta["filter"]["findings"])),
                              reply=stored.reply, conversation_id=stored.conversation_id)

    def events(self) -> Generator[tuple[str, object], None, None]:
        """The whole reply as one delta, then the end."""
        if self._end.reply:
            yield "delta", self._end.reply
        yield "end", self._end

    def batches(self) -> Generator[list[tuple[str, object]], None, None]:
        """Every event at once: nothing is waited for."""
        yield list(self.events())


Event = tuple[str, object]


def _upstream_batches(upstream: ChatStream | CachedStream) -> Iterator[list[dict]]:
    """The upstream's chunks a read at a time (one at a time from an upstream that has no reads)."""
    if isinstance(upstream, ChatStream):
        return upstream.batches()
    return ([chunk] for chunk in upstream)


class ReplyStream:
    """Relays an upstream stream through the stream filter as neutral events.

    ``events()`` yields ("delta", text), ("tool_calls", list), then exactly one of
    ("end", StreamEnd) or ("error", APIError); ``batches()`` yields the same
    events as one list per upstream read, so what arrived together can be
    written together. Within a read, consecutive pieces of reply text go
    through the filter as one. The upstream is closed when the consumer stops
    early (client gone), when the reply is blocked, and at the end.
    ``on_end`` runs before the end is reported (``/chat`` stores its turn there);
    if it raises an APIError, that error is reported instead, since nothing may
    claim a finished turn that was not stored. ``on_complete`` gets the raw
    reply as one completion body when the stream finished normally and was
    not blocked (the response cache keeps it); ``cache`` is what the response
    cache did for this request, for the door's headers.
    """

    replayed = False

    def __init__(self, upstream: ChatStream | CachedStream, stream_filter: StreamReplyFilter, payload: dict,
                 ticket: Ticket | None = None,
                 on_end: Callable[[StreamEnd], None] | None = None,
                 on_complete: Callable[[dict], object] | None = None, cache: Outcome | None = None):
        self._ticket = ticket
        self._on_end = on_end
        self._on_complete = on_complete
        self._recorder = StreamRecorder() if on_complete is not None else None
        self.cache = cache
        self._upstream = upstream
        self._batches = _upstream_batches(upstream)
        self._filter = stream_filter
        self._payload = payload
        self._first: list[dict] | None = None
        self._first_sent = False
        self.id = completion_id()
        # The model that answers: the upstream's own word (first chunk), else the one the route asked for.
        self.model = (ticket.upstream_model if ticket is not None else None) or payload["model"]

    def prime(self) -> None:
        """Read the first upstream read's events, so early failures are still plain HTTP errors."""
        self._first = next(self._batches, None)
        if self._first:
            first = self._first[0]
            self.id = str(first.get("id") or self.id)
            self.model = str(first.get("model") or self.model)

    def _all_batches(self) -> Iterator[list[dict]]:
        if self._first is not None:
            yield self._first
            yield from self._batches

    def events(self) -> Generator[Event, None, None]:
        """Filtered pieces (text, refusal, tool-call deltas), then the end or the error."""
        batches = self.batches()
        try:
            for batch in batches:
                yield from batch
        finally:
            batches.close()

    def batches(self) -> Generator[list[Event], None, None]:
        """The events of each upstream read as one list (never an empty one); the last holds the end or error."""
        received: list[str] = []
        usage = None
        finish = None
        error: str | None = "client_closed"
        status, final_usage, action = CLIENT_CLOSED, None, "none"
        filters = self._filter
        recorder = self._recorder
        try:
            for chunks in self._all_batches():
                out: list[Event] = []
                text: list[str] = []  # reply text of this read not yet through the filter
                for chunk in chunks:
                    if recorder is not None:
                        recorder.add(chunk)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                            continue
                        delta = choice.get("delta") or {}
                        piece = delta.get("content")
                        if isinstance(piece, str) and piece:
                            received.append(piece)
                            text.append(piece)
                        if delta.get("refusal") or delta.get("tool_calls"):
                            # Text that came before a refusal or a tool call goes out before it.
                            self._feed(text, out)
                            text = []
                            if not filters.blocked:
                                self._others(delta, received, out)
                        if filters.blocked:
                            break
                        finish = choice.get("finish_reason") or finish
                    if filters.blocked:
                        break
                if text and not filters.blocked:
                    self._feed(text, out)
                if filters.blocked:
                    end = self._blocked_end(received)
                    status, final_usage, action, error = 200, end.usage, "blocked", None
                    out.append(self._ending(end))
                    yield out
                    return
                if out:
                    yield out
            out = []
            tail, refusal, calls = filters.finish()
            if filters.blocked:
                end = self._blocked_end(received, finished=True)
                status, final_usage, action, error = 200, end.usage, "blocked", None
                yield [self._ending(end)]
                return
            if (tail or refusal or calls) and not self._first_sent:
                self._first_token()  # a short reply can be held back whole until the end
            if tail:
                out.append(("delta", tail))
            if refusal:
                out.append(("refusal", refusal))
            if calls:
                out.append(("tool_calls", calls))
            result = filters.result()
            end = StreamEnd(finish, usage_or_estimate(usage, self._payload["messages"], "".join(received)),
                            result, reply=result.text)
            status, final_usage, action, error = 200, end.usage, result.action, None
            kind, data = self._ending(end)
            if kind == "end" and self._on_complete is not None and recorder is not None:
                # Before the end goes out: a client that leaves once it has the end must not lose the entry.
                self._on_complete(recorder.body())
            out.append((kind, data))
            yield out
        except StreamFailed as failed:
            # The upstream side counted it (chatgate_upstream_requests_total, and its circuit).
            status, error = failed.error.status, failed.error.code
            yield [("error", failed.error)]
        finally:
            self._upstream.close()
            if self._ticket is not None:
                # A client that left still spent what was generated so far.
                self._ticket.close(status, final_usage or usage_or_estimate(usage, self._payload["messages"],
                                                                 "".join(received)), action, error)

    def _emit(self, out: list[Event], kind: str, data: object) -> None:
        if not self._first_sent:
            self._first_token()
        out.append((kind, data))

    def _feed(self, text: list[str], out: list[Event]) -> None:
        """Reply text, joined, through its stream filter: the filter's output is the same for any chunking."""
        if not text:
            return
        filters = self._filter
        safe = filters.feed_text(text[0] if len(text) == 1 else "".join(text))
        if safe and not filters.blocked:
            self._emit(out, "delta", safe)

    def _first_token(self) -> None:
        """Time to first token: from the request's arrival to its first piece of reply, as the client sees it."""
        self._first_sent = True
        if self._ticket is not None:
            ticket = self._ticket
            ticket.meter.metrics.first_token(ticket.model, perf_counter() - ticket.arrived, ticket.provider)

    def _others(self, delta: dict, received: list[str], out: list[Event]) -> None:
        """What one upstream delta's refusal and tool calls let through, each through its own stream filter."""
        filters = self._filter
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            received.append(refusal)
            safe = filters.refusal(refusal)
            if safe and not filters.blocked:
                self._emit(out, "refusal", safe)
        calls = delta.get("tool_calls")
        if isinstance(calls, list) and calls:
            if any(filters.is_new_call(call) for call in calls):
                # Models finish their text before calling a tool: release it, so it comes first.
                tail = filters.end_text()
                if tail and not filters.blocked:
                    self._emit(out, "delta", tail)
            calls_out = []
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    received.append(fn["arguments"])
                filtered = filters.tool_call(call)
                if filtered is not None:
                    calls_out.append(filtered)
            if calls_out and not filters.blocked:
                self._emit(out, "tool_calls", calls_out)

    def _ending(self, end: StreamEnd) -> tuple[str, object]:
        ticket = self._ticket
        if ticket is not None:
            ticket.meter.metrics.filtered(end.filter.action, end.filter.findings)
            ticket.response_id, ticket.response_model = self.id, self.model
            ticket.finish_reasons = (end.finish_reason,) if end.finish_reason else ()
            # Priced now, so the final event tells the client the same cost the ledger records.
            end.usage["cost_usd"] = ticket.price(end.usage)
        if self._on_end is not None:
            try:
                self._on_end(end)
            except APIError as err:
                if ticket is not None and ticket.record is not None:
                    ticket.record.error = err.code
                return "error", err
        return "end", end

    def _blocked_end(self, received: list[str], finished: bool = False) -> StreamEnd:
        # Close first: every further token would be generated and billed for nothing.
        self._upstream.close()
        if not finished:
            self._filter.finish()  # emits nothing once blocked; settles the findings
        result = self._filter.result()
        return StreamEnd(BLOCKED_FINISH, usage_or_estimate(None, self._payload["messages"], "".join(received)),
                         result, reply="")
