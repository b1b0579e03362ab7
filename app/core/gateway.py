"""The chat pipeline shared by every door: admit, call the upstream, filter every choice, record.

Doors (``/chat``, ``/v1/chat/completions``, ``/v1/responses``) only translate
their own wire format to and from these calls, so no check can exist on one
door and not the other. With the response cache on, a hit takes the same path
as a fresh reply from the filter on: a stored completion is filtered like an
upstream body, a stored one replayed for a stream like an upstream stream.
Nothing here knows about HTTP requests or Flask.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import APIError, InvalidRequest, StreamFailed
from ..filter import ContentFilter, FilterResult
from ..upstream.client import ChatStream
from .cache import DEFAULT, CacheControl, Lookup, Outcome, ResponseCache
from .estimate import usage_or_estimate
from .guard import PromptGuard
from .meter import Meter, Ticket
from .replay import CachedStream
from .reply_filter import StreamReplyFilter, filter_message
from .reply_stream import BLOCKED_FINISH, ReplyStream, StreamEnd, completion_id


@dataclass
class Choice:
    """One filtered reply of a completion."""

    index: int
    reply: str
    finish_reason: str | None
    filter: FilterResult
    tool_calls: list | None = None
    refusal: str | None = None
    function_call: dict | None = None
    # The upstream's log-probabilities, only where the filter changed nothing: their tokens would
    # otherwise spell out what was redacted.
    logprobs: dict | None = None


@dataclass
class Completion:
    """A filtered completion, ready for any door to format."""

    id: str
    model: str
    created: int
    usage: dict
    choices: list[Choice]
    replayed: bool = False  # answered from the store (a retried Idempotency-Key), not the upstream
    cache: Outcome | None = None  # what the response cache did (None: it is off)


class Gateway:
    """Holds the upstream client, the guard, the filter and the meter; runs one chat call through them."""

    def __init__(self, upstream, content_filter: ContentFilter, guard: PromptGuard, meter: Meter, *,
                 default_model: str, allowed_models: tuple[str, ...], embedding_models: tuple[str, ...] = (),
                 cache: ResponseCache | None = None):
        self.upstream = upstream
        self.cache = cache
        self.filter = content_filter
        self.guard = guard
        self.meter = meter
        self.default_model = default_model
        self.allowed_models = allowed_models
        self.embedding_models = embedding_models

    @property
    def bounds(self):
        """The per-request bounds every door checks client text against."""
        return self.meter.bounds

    def resolve_model(self, requested: str | None) -> str:
        """The model to use: the requested one if allowed, else the default."""
        if requested is None:
            return self.default_model
        if requested not in self.allowed_models:
            raise InvalidRequest(f"model {requested!r} is not available; see GET /v1/models",
                                 param="model", code="model_not_found")
        return requested

    def resolve_embedding_model(self, requested: str) -> str:
        """The embedding model asked for, if a client may use it."""
        if requested not in self.embedding_models:
            raise InvalidRequest(f"model {requested!r} is not an available embedding model; see GET /v1/models",
                                 param="model", code="model_not_found")
        return requested

    def embed(self, payload: dict, caller, endpoint: str) -> dict:
        """One embeddings call (inputs already guarded): admit, upstream, record; OpenAI's list body."""
        ticket = self.meter.admit_embedding(caller, payload, endpoint)
        try:
            body = self.upstream.embeddings(payload, ticket)
        except APIError as err:
            ticket.close(err.status, None, error=err.code)
            raise
        used = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        tokens = used.get("prompt_tokens")
        if not isinstance(tokens, int) or tokens < 0:
            tokens = usage_or_estimate(None, [{"content": t} for t in payload["input"]], "")["prompt_tokens"]
        usage: dict = {"prompt_tokens": tokens, "total_tokens": tokens}
        usage["cost_usd"] = ticket.price({**usage, "completion_tokens": 0})
        ticket.close(200, {**usage, "completion_tokens": 0})
        data = [{"object": "embedding", "index": item["index"], "embedding": item["embedding"]}
                for item in body["data"]]
        return {"object": "list", "data": data, "model": str(body.get("model") or payload["model"]), "usage": usage}

    def complete(self, payload: dict, caller, endpoint: str, control: CacheControl = DEFAULT) -> Completion:
        """One non-streamed call: admit, upstream (or the cache), the response filter on every choice, record."""
        lookup = self._lookup(payload, caller, control)
        ticket = self.meter.admit(caller, payload, endpoint, stream=False, cached=lookup.hit if lookup else False)
        if lookup is not None:
            self._counted(lookup)
        try:
            body = (lookup.reply.body if lookup is not None and lookup.reply is not None
                    else self.upstream.chat(payload, ticket))
            done = self._complete(payload, body, ticket)
        except APIError as err:
            ticket.close(err.status, None, error=err.code)
            raise
        blocked = any(c.filter.action == "blocked" for c in done.choices)
        redacted = any(c.filter.action == "redacted" for c in done.choices)
        if lookup is not None:
            done.cache = lookup.outcome
            if not blocked:
                self._keep(lookup, body)
        ticket.response_id, ticket.response_model = done.id, done.model
        ticket.finish_reasons = tuple(c.finish_reason for c in done.choices)
        done.usage["cost_usd"] = ticket.price(done.usage)
        ticket.close(200, done.usage, "blocked" if blocked else "redacted" if redacted else "none")
        return done

    # --- the response cache (each a no-op when it is off)

    def _lookup(self, payload: dict, caller, control: CacheControl) -> Lookup | None:
        return self.cache.lookup(payload, caller, control) if self.cache is not None else None

    def _counted(self, lookup: Lookup) -> None:
        if self.cache is not None:
            self.cache.count(lookup)

    def _keep(self, lookup: Lookup, body: dict) -> None:
        if self.cache is not None:
            self.cache.keep(lookup, body)

    def _complete(self, payload: dict, body: dict, ticket: Ticket) -> Completion:
        """An upstream (or stored) completion body with every choice through the reply filter."""
        choices, raw_texts = [], []
        for position, choice in enumerate(body["choices"]):
            message = choice["message"]  # shape checked by check_completion
            raw_texts.append(message.get("content") if isinstance(message.get("content"), str) else "")
            seen = filter_message(self.filter, message)
            result = seen.result
            if result.action != "blocked" and self.guard.flagged(result.text):
                result = FilterResult("", "blocked", (*result.findings, {"type": "moderation", "count": 1}))
            blocked = result.action == "blocked"
            self.meter.metrics.filtered(result.action, result.findings)
            index = choice.get("index")
            choices.append(Choice(index=index if isinstance(index, int) else position, reply=result.text,
                                  finish_reason=BLOCKED_FINISH if blocked else choice.get("finish_reason"),
                                  filter=result, tool_calls=None if blocked else seen.tool_calls,
                                  refusal=None if blocked else seen.refusal,
                                  function_call=None if blocked else seen.function_call,
                                  logprobs=choice.get("logprobs") if result.action == "none" else None))
        created = body.get("created")
        return Completion(id=str(body.get("id") or completion_id()),
                          # The model that answered: the upstream's own word, else the one the route asked for.
                          model=str(body.get("model") or ticket.upstream_model or payload["model"]),
                          created=created if isinstance(created, int) else int(time.time()),
                          usage=usage_or_estimate(body.get("usage"), payload["messages"], "".join(raw_texts)),
                          choices=choices)

    def open_stream(self, payload: dict, caller, endpoint: str,
                    on_end: Callable[[StreamEnd], None] | None = None,
                    control: CacheControl = DEFAULT) -> ReplyStream:
        """Start a streamed call (or a replay of a cached reply); a failure before the first event raises."""
        lookup = self._lookup(payload, caller, control)
        hit = lookup is not None and lookup.reply is not None
        ticket = self.meter.admit(caller, payload, endpoint, stream=True, cached=hit)
        if lookup is not None:
            self._counted(lookup)
        try:
            upstream: ChatStream | CachedStream = (
                CachedStream(lookup.reply.body) if lookup is not None and lookup.reply is not None
                else self.upstream.chat_stream(payload, ticket))
        except APIError as err:
            ticket.close(err.status, None, error=err.code)
            raise
        # A live stream that completes is kept; a replay is already.
        keep = (lambda body: self._keep(lookup, body)) if lookup is not None and lookup.digest and not hit else None
        stream = ReplyStream(upstream, StreamReplyFilter(self.filter), payload, ticket, on_end, on_complete=keep,
                             cache=lookup.outcome if lookup is not None else None)
        try:
            stream.prime()
        except StreamFailed as failed:
            upstream.close()
            ticket.close(failed.error.status, None, error=failed.error.code)
            raise failed.error from None
        return stream
