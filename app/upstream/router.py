"""Routing: each public model name to its targets, tried in turn, within one deadline, behind circuit breakers.

A call goes to its route's targets in order (``fallback``) or in a weighted
random order over the targets whose circuits are closed (``weighted``). Each
target makes its own retries first (``UpstreamClient``, Retry-After
honoured); then, if what failed was the upstream, the next target is tried:

* on a connection error, a connect or read timeout, 408, 409, 429, 5xx, a
  redirect or a reply we cannot use: fall back, and count it against that
  upstream's circuit;
* on 401, 403 (it refused its own key) and 404 (it lacks the model or the
  deployment): the same, with one loud line naming the upstream;
* on 400 and 422 never: the request itself is wrong, and would be wrong
  everywhere. The upstream answered, so its circuit counts a success.

A stream falls back the same way until its first content event
(``ChatStream.prime``); after that nothing can be taken back, and a failure
is the stream's error event. One deadline bounds the whole call (every
target, retry and back-off) up to a stream's first content. When every
target is open, the answer is at once a 503 ``upstream_unavailable`` whose
Retry-After is the soonest cool-down end; so it is when every target of a
route of several failed. A route of one target answers that target's own
error, as a lone upstream always has.

Who served is written, as each target is tried, to the ``served`` object the
caller passes (the meter's ticket): the ledger, the log line, the metrics and
the ``X-Chatgate-Upstream`` header all read it from there.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..errors import APIError, InvalidRequest, StreamFailed, UpstreamUnavailable
from ..ops.metrics import NULL
from .breaker import Breaker, Pass, State
from .client import UpstreamClient
from .stream import ChatStream
from .targets import Target

log = logging.getLogger(__name__)

T = TypeVar("T")
# A route without a deadline (one upstream made from OPENAI_*) holds a probe this long at most.
DEFAULT_PROBE_HOLD = 120.0


class Served(Protocol):
    """Where a routed call notes which upstream (and model) it is using; the meter's ticket is one."""

    def served_by(self, upstream: str | None, model: str | None, provider: str | None) -> None:
        """The call is now with ``upstream`` (None: with none of them)."""


@dataclass(frozen=True)
class Route:
    """A public model name, its targets and how to pick among them."""

    name: str
    targets: tuple[Target, ...]
    strategy: str = "fallback"
    weights: tuple[float, ...] = ()


class Router:
    """The upstream side of every call: chat, streams, embeddings and moderation, routed by model name."""

    def __init__(self, routes: Mapping[str, Route], breaker: Breaker, *, default_model: str,
                 deadline: float | None = None, metrics=NULL, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic, upstreams: Mapping[str, UpstreamClient] | None = None):
        self.routes = dict(routes)
        self.breaker = breaker
        self.deadline = deadline
        self.metrics = metrics
        self.rng = rng or random.Random()
        self._clock = clock
        self._default = self.routes.get(default_model) or next(iter(self.routes.values()))
        # Every configured upstream, routed or not: operators check and watch them all.
        self.upstreams = dict(upstreams or {t.name: t.client for r in self.routes.values() for t in r.targets})

    def __repr__(self) -> str:
        return f"<Router upstreams={sorted(self.upstreams)} routes={len(self.routes)}>"

    # --- the calls

    def chat(self, payload: dict, served: Served | None = None) -> dict:
        """One non-streamed completion from the first target that answers."""
        return self._run(payload, served, lambda target, body, deadline: target.client.chat(body, deadline))

    def chat_stream(self, payload: dict, served: Served | None = None) -> ChatStream:
        """A stream already past its first content event, from the first target whose stream got that far.

        A route of one target has nowhere to fall back to: its stream is primed
        to the first event only, as a lone upstream's always was.
        """
        whole = len(self._route(payload["model"]).targets) > 1
        return self._run(payload, served, lambda target, body, deadline: self._open_stream(target, body, deadline,
                                                                                           whole))

    def embeddings(self, payload: dict, served: Served | None = None) -> dict:
        """Embeddings through the route of the same name, else from the default route's first upstream."""
        return self._run(payload, served, lambda target, body, deadline: target.client.embeddings(body, deadline))

    def moderate(self, text: str) -> bool:
        """Moderation, asked of the default model's first upstream."""
        return self._default.targets[0].client.moderate(text)

    # --- what operators see

    def states(self) -> dict[str, State]:
        """Every upstream's circuit, by name."""
        return self.breaker.states(self.upstreams)

    def unusable_routes(self) -> list[str]:
        """Routes whose every target is cooling down (open): /readyz fails while there are any."""
        states = self.states()
        return [name for name, route in list(self.routes.items())
                if all(states[t.name].kind == "open" for t in route.targets)]

    # --- the loop

    def _route(self, model: str) -> Route:
        route = self.routes.get(model)
        if route is None:
            # An embedding model without a route of its own: the default route's first upstream, as named.
            first = self._default.targets[0]
            route = self.routes[model] = Route(model, (Target(first.client, model, provider=first.provider),))
        return route

    def _run(self, payload: dict, served: Served | None, call: Callable[[Target, dict, float | None], T]) -> T:
        route = self._route(payload["model"])
        targets = route.targets
        if len(targets) == 1 and not self.breaker.guarded(targets[0].name):
            # One upstream without a breaker (the OPENAI_* settings): nothing to choose, nothing to count.
            target = targets[0]
            if served is not None:
                served.served_by(target.name, target.model, target.provider)
            result = call(target, target.shape(payload), None)
            if isinstance(result, ChatStream):
                result.on_failure = lambda err: self._stream_failed(target, Pass(target.name, 0), err)
            return result
        deadline = None if self.deadline is None else self._clock() + self.deadline
        hold = self.deadline or DEFAULT_PROBE_HOLD
        states = self.breaker.states(t.name for t in targets)
        waits: list[float] = []
        last: APIError | None = None
        for target in self._order(route, states):
            if deadline is not None and self._clock() >= deadline:
                break
            state = states[target.name]
            allowed = self.breaker.admit(state, hold)
            if allowed is None:
                waits.append(state.retry_after)
                continue
            if served is not None:
                served.served_by(target.name, target.model, target.provider)
            try:
                result = call(target, target.shape(payload), deadline)
            except InvalidRequest:
                self.breaker.succeeded(allowed)  # it answered; the request is what is wrong
                raise
            except APIError as err:
                self._failed(target, allowed, err)
                last = err
                if err.upstream_retry_after is not None:
                    waits.append(err.upstream_retry_after)
                continue
            self.breaker.succeeded(allowed)
            if isinstance(result, ChatStream):
                result.on_failure = lambda err, t=target, p=allowed: self._stream_failed(t, p, err)
            return result
        if last is not None and len(targets) == 1:
            raise last  # a lone target's own error, as before routing
        if served is not None:
            served.served_by(None, None, None)
        raise self._unavailable(route, waits, tried=last is not None)

    def _order(self, route: Route, states: Mapping[str, State]) -> list[Target]:
        """Targets in the order to try them: as listed, or weighted over the closed ones first."""
        if route.strategy != "weighted":
            return list(route.targets)
        closed = [(t, w) for t, w in zip(route.targets, route.weights, strict=True) if states[t.name].kind == "closed"]
        order = []
        while closed:
            pick = self.rng.uniform(0, sum(w for _, w in closed))
            for i, (target, weight) in enumerate(closed):
                pick -= weight
                if pick <= 0 or i == len(closed) - 1:
                    order.append(target)
                    del closed[i]
                    break
        return order + [t for t in route.targets if t not in order]

    def _open_stream(self, target: Target, body: dict, deadline: float | None, content: bool) -> ChatStream:
        stream = target.client.chat_stream(body, deadline)
        try:
            stream.prime(deadline, until_content=content)
        except StreamFailed as failed:
            stream.close()
            self.metrics.upstream_attempt("stream_failed", target.name)
            raise failed.error from None
        return stream

    def _failed(self, target: Target, allowed: Pass, err: APIError) -> None:
        status = err.upstream_status
        if status in (401, 403):
            log.error("upstream %s refused its own key (status %s): fix its key in UPSTREAMS_FILE; trying the next "
                      + "target", target.name, status)
        elif status == 404:
            log.error("upstream %s does not know model %r (status 404): check the route's target; trying the next "
                      + "target", target.name, target.model)
        else:
            log.warning("upstream %s failed (%s); trying the next target", target.name, err.code)
        self.breaker.failed(allowed, err.upstream_retry_after if status == 429 else None)

    def _stream_failed(self, target: Target, allowed: Pass, err: APIError) -> None:
        """A stream broke after its first content: the client gets an error event; the upstream, a failure."""
        self.metrics.upstream_attempt("stream_failed", target.name)
        if err.code != "stream_too_long":  # our own limit, not the upstream's fault
            self.breaker.failed(allowed, counted=True)

    def _unavailable(self, route: Route, waits: list[float], *, tried: bool) -> UpstreamUnavailable:
        seconds = max(1, round(min(waits))) if waits else 1
        why = "failed" if tried else "is cooling down after failures"
        log.warning("route %r: every upstream %s; answering 503 (Retry-After %d s)", route.name,
                    "failed or is cooling down" if tried else why, seconds)
        return UpstreamUnavailable(f"every upstream serving model {route.name!r} {why}; retry later",
                                   headers={"Retry-After": str(seconds)})
