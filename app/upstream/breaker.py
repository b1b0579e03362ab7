"""A circuit breaker per upstream, its state shared through the counters store every worker and instance uses.

States::

    closed ──(failure rate over the window, or a 429 with Retry-After)──▶ open
    open ──(cool-down over)──▶ half-open: the next caller takes the one probe
    probe succeeds ──▶ closed          probe fails ──▶ open again

Each upstream's state is one counter, ``cb:<name>``, changed only by the
store's compare-and-set (``swap``), so exactly one caller wins each
transition, whichever worker or instance it runs in: one opens the circuit,
one takes the probe, one closes it. The value is ``4 * n + phase`` (phase 0
closed, 1 open, 2 probing), where ``n`` counts transitions, so no value comes
back and a stale caller's swap always loses. The counter's time to live is
the current phase's end plus ``HORIZON``: a cool-down (or a probe's hold)
ends when less than ``HORIZON`` is left, and a breaker nobody touched for a
whole ``HORIZON`` after its cool-down forgets it was open.

Failures are counted per closed period (``n``) in two windows of ``window``
seconds on the caller's clock; the rate is the current window plus the
share of the previous one that still overlaps, a sliding window. Successes
only count calls. Nothing here counts a client that left or a request we
refused ourselves: the router reports only what an upstream did.

When the store cannot answer, breakers read as closed and record nothing,
so a store outage never stops routing (it is logged, at most every 30 s).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..config.routing import BreakerSpec
from ..errors import StoreDown

log = logging.getLogger(__name__)

HORIZON = 86400.0
CLOSED, OPEN, PROBING = 0, 1, 2
# Retry-After while another caller's probe is out: its answer is usually a second away.
PROBE_RETRY_AFTER = 1.0
STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}  # chatgate_circuit_state
_QUIET = 30.0


class Store(Protocol):
    """What the breaker needs of the counters store (``app.access.counters``)."""

    def add(self, key: str, amount: int, window: float) -> tuple[int, float]:
        """Add to a windowed counter; its new value and seconds left."""

    def add_many(self, ops: Sequence[tuple[str, int, float]]) -> list[tuple[int, float]]:
        """``add`` for several counters in one step."""

    def swap(self, key: str, expect: int, value: int, ttl: float) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds if it holds ``expect`` now."""


@dataclass(frozen=True)
class State:
    """One upstream's breaker as read: its counter's value and how long its phase still runs."""

    name: str
    value: int = 0
    left: float = 0.0  # seconds until the open or probing phase ends (<= 0: it has)
    known: bool = True

    @property
    def phase(self) -> int:
        """CLOSED, OPEN or PROBING."""
        return self.value % 4

    @property
    def kind(self) -> str:
        """closed, open or half_open (cool-down over, or a probe out)."""
        if self.phase == CLOSED:
            return "closed"
        return "open" if self.phase == OPEN and self.left > 0 else "half_open"

    @property
    def retry_after(self) -> float:
        """Seconds until this upstream may be tried again (0: now)."""
        if self.phase == CLOSED or self.left <= 0:
            return 0.0
        return self.left if self.phase == OPEN else min(self.left, PROBE_RETRY_AFTER)


@dataclass(frozen=True)
class Pass:
    """Leave to call one upstream: as a probe, or in the closed period the caller saw."""

    name: str
    value: int
    probe: bool = False


class Breaker:
    """Every upstream's breaker, over one shared store; see the module docstring."""

    def __init__(self, store: Store | None, specs: Mapping[str, BreakerSpec],
                 clock: Callable[[], float] = time.time):
        self._store = store
        self._specs = dict(specs)
        self._clock = clock
        self._quiet_until = 0.0

    def guarded(self, name: str) -> bool:
        """True when ``name`` has a breaker at all (one upstream made from OPENAI_* has none)."""
        spec = self._specs.get(name)
        return self._store is not None and spec is not None and spec.enabled

    def states(self, names: Iterable[str]) -> dict[str, State]:
        """The current state of each named upstream, read in one step."""
        names = list(dict.fromkeys(names))
        guarded = [n for n in names if self.guarded(n)]
        out = {n: State(n) for n in names}
        if not guarded or self._store is None:
            return out
        try:
            got = self._store.add_many([(_cell(n), 0, HORIZON) for n in guarded])
        except StoreDown as err:
            self._down(err)
            return {n: State(n, known=n not in guarded) for n in names}
        for name, (value, left) in zip(guarded, got, strict=True):
            out[name] = State(name, value, left - HORIZON)
        return out

    def admit(self, state: State, hold: float) -> Pass | None:
        """A pass for this call, or None while the upstream cools down or another caller probes it.

        After a cool-down, the first caller to get here takes the probe and
        holds it for ``hold`` seconds (the call's deadline); if it never
        reports, the next caller after that takes it again.
        """
        if state.phase == CLOSED:
            return Pass(state.name, state.value)
        if state.left > 0 or not self.guarded(state.name) or self._store is None:
            return None
        probing = _next(state.value, PROBING)
        try:
            won = self._store.swap(_cell(state.name), state.value, probing, hold + HORIZON)
        except StoreDown as err:
            self._down(err)
            return None
        if won:
            log.info("upstream %s: circuit half-open, probing", state.name)
        return Pass(state.name, probing, probe=True) if won else None

    def succeeded(self, p: Pass) -> None:
        """The upstream answered: a probe closes the circuit; any other call counts as a call."""
        if not self.guarded(p.name) or self._store is None:
            return
        try:
            if p.probe:
                if self._store.swap(_cell(p.name), p.value, _next(p.value, CLOSED), HORIZON):
                    log.warning("upstream %s: circuit closed (the probe succeeded)", p.name)
                return
            spec = self._specs[p.name]
            self._store.add(self._window_key(p, self._clock(), 0, "c"), 1, 2 * spec.window)
        except StoreDown as err:
            self._down(err)

    def failed(self, p: Pass, retry_after: float | None = None, *, counted: bool = False) -> None:
        """The upstream failed: a probe reopens the circuit; otherwise the failure counts, and may open it.

        ``retry_after`` is the upstream's own hint with a 429: the circuit opens
        at once, for at least that long. ``counted``: the call was already
        counted as a success (a stream that broke after it had started).
        """
        if not self.guarded(p.name) or self._store is None:
            return
        spec = self._specs[p.name]
        try:
            if p.probe:
                self._open(p, spec, retry_after, "the probe failed")
                return
            now = self._clock()
            ops = [(self._window_key(p, now, back, kind), 0 if back or (counted and kind == "c") else 1,
                    2 * spec.window) for back in (0, 1) for kind in ("c", "f")]
            (calls, _), (fails, _), (prev_calls, _), (prev_fails, _) = self._store.add_many(ops)
            if retry_after is not None:
                self._open(p, spec, retry_after, "it answered 429 with Retry-After")
                return
            overlap = 1.0 - (now % spec.window) / spec.window
            total, failures = calls + prev_calls * overlap, fails + prev_fails * overlap
            if total >= spec.min_requests and failures >= spec.failure_rate * total:
                self._open(p, spec, None, f"{failures:.0f} of {total:.0f} recent calls failed")
        except StoreDown as err:
            self._down(err)

    def _open(self, p: Pass, spec: BreakerSpec, retry_after: float | None, why: str) -> None:
        cooldown = max(spec.cooldown, retry_after or 0.0)
        if self._store is not None and self._store.swap(_cell(p.name), p.value, _next(p.value, OPEN),
                                                        cooldown + HORIZON):
            log.warning("upstream %s: circuit open for %.0f s (%s)", p.name, cooldown, why)

    def _window_key(self, p: Pass, now: float, back: int, kind: str) -> str:
        window = int(now // self._specs[p.name].window) - back
        return f"{_cell(p.name)}:{p.value // 4}:{window}:{kind}"

    def _down(self, err: StoreDown) -> None:
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + _QUIET
            log.error("circuit breakers: the shared store did not answer (%s); every circuit reads as closed", err)


def _cell(name: str) -> str:
    return "cb:" + name


def _next(value: int, phase: int) -> int:
    """The value of the next transition, into ``phase``."""
    return (value // 4 + 1) * 4 + phase
