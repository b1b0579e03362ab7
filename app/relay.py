"""Relaying an upstream stream through the stream filter, as events any front door can format."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterator

from .accounting import CLIENT_CLOSED
from .filter import FilterResult
from .tokens import usage_or_estimate
from .upstream import ChatStream, StreamFailed

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


class ReplyStream:
    """Relays an upstream stream through the stream filter as neutral events.

    ``events()`` yields ("delta", text), ("tool_calls", list), then exactly one of
    ("end", StreamEnd) or ("error", APIError). The upstream is closed when the
    consumer stops early (client gone), when the reply is blocked, and at the end.
    """

    def __init__(self, upstream: ChatStream, stream_filter, payload: dict, ticket=None):
        self._ticket = ticket
        self._upstream = upstream
        self._chunks = iter(upstream)
        self._filter = stream_filter
        self._payload = payload
        self._first: dict | None = None
        self.id = completion_id()
        self.model = payload["model"]

    def prime(self) -> None:
        """Read the first upstream event, so early failures are still plain HTTP errors."""
        try:
            self._first = next(self._chunks)
        except StopIteration:
            self._first = None
        if self._first:
            self.id = str(self._first.get("id") or self.id)
            self.model = str(self._first.get("model") or self.model)

    def _all_chunks(self) -> Iterator[dict]:
        if self._first is not None:
            yield self._first
            yield from self._chunks

    def events(self) -> Iterator[tuple[str, object]]:
        """Filtered deltas, then the end or the error."""
        received: list[str] = []
        usage = None
        finish = None
        status, final_usage, action = CLIENT_CLOSED, None, "none"
        try:
            for chunk in self._all_chunks():
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or ():
                    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        received.append(text)
                        safe = self._filter.feed(text)
                        if self._filter.blocked:
                            end = self._blocked_end(received)
                            status, final_usage, action = 200, end.usage, "blocked"
                            yield "end", end
                            return
                        if safe:
                            yield "delta", safe
                    if delta.get("tool_calls"):
                        yield "tool_calls", delta["tool_calls"]
                    finish = choice.get("finish_reason") or finish
            tail = self._filter.finish()
            if self._filter.blocked:
                end = self._blocked_end(received, finished=True)
                status, final_usage, action = 200, end.usage, "blocked"
                yield "end", end
                return
            if tail:
                yield "delta", tail
            result = self._filter.result()
            end = StreamEnd(finish, usage_or_estimate(usage, self._payload["messages"], "".join(received)),
                            result, reply=result.text)
            status, final_usage, action = 200, end.usage, result.action
            yield "end", end
        except StreamFailed as failed:
            status = failed.error.status
            yield "error", failed.error
        finally:
            self._upstream.close()
            if self._ticket is not None:
                # A client that left still spent what was generated so far.
                self._ticket.close(status, final_usage or usage_or_estimate(usage, self._payload["messages"],
                                                                 "".join(received)), action)

    def _blocked_end(self, received: list[str], finished: bool = False) -> StreamEnd:
        # Close first: every further token would be generated and billed for nothing.
        self._upstream.close()
        if not finished:
            self._filter.finish()  # emits nothing once blocked; settles the findings
        result = self._filter.result()
        return StreamEnd(BLOCKED_FINISH, usage_or_estimate(None, self._payload["messages"], "".join(received)),
                         result, reply="")
