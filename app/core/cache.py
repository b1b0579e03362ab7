"""The response cache's rules: when a request may be answered from it, under which key, and what is kept.

The key is the SHA-256 of canonical JSON (sorted keys, no whitespace,
integral numbers written one way) of three things:

- the request as it goes upstream, after routing and the prompt guard
  (model, messages, every sampling field, tools, tool choice, response
  format, ``n``, ``stop``, ``seed``, …), without ``stream`` and
  ``stream_options``, so streamed and whole requests share entries;
- the scope: the caller (its client key, or its address in open mode) with
  ``CACHE_SCOPE=key``, one scope for everybody with ``shared``;
- the policy version: the reply filter's fingerprint (block list, redacted
  types, phone regions), the moderation mode and the entry format, so a policy
  change never serves what was kept under the old one.

What is kept is the upstream's own reply, unfiltered; every hit goes through
the reply filter exactly as a fresh reply does. Only complete, successful
replies are kept (every choice finished with ``stop``, ``length`` or
``tool_calls``). ``Cache-Control`` from the client: ``no-cache`` skips the
lookup but keeps the reply, ``no-store`` does neither, ``max-age=N`` takes
only an entry at most N seconds old.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..ops.metrics import NULL
from ..ops.record import current
from ..storage.response_cache import CacheStore, StoredReply

# What differs between a streamed and a whole request for the same reply.
STREAM_FIELDS = ("stream", "stream_options")
STORABLE_FINISH = frozenset({"stop", "length", "tool_calls"})
# The layout of a stored entry; a change here must not read entries written under another.
ENTRY_FORMAT = 1
SHARED_SCOPE = "shared"

_DIRECTIVE = re.compile(r"\s*([A-Za-z-]+)\s*(?:=\s*\"?([^\",]*)\"?)?\s*")


@dataclass(frozen=True)
class CacheControl:
    """What the client's ``Cache-Control`` lets the cache do for one request."""

    read: bool = True
    write: bool = True
    max_age: int | None = None

    @classmethod
    def parse(cls, header: str | None) -> CacheControl:
        """The directives we honour; anything else (unknown, malformed) is ignored, as HTTP caches do."""
        if not header:
            return DEFAULT
        read = write = True
        max_age: int | None = None
        for part in header.split(","):
            m = _DIRECTIVE.fullmatch(part)
            if not m:
                continue
            name, value = m.group(1).lower(), m.group(2)
            if name == "no-store":
                read = write = False
            elif name == "no-cache":
                read = False
            elif name == "max-age" and value is not None and value.strip().isdigit():
                seconds = int(value.strip())
                max_age = seconds if max_age is None else min(max_age, seconds)
        return cls(read, write, max_age)


DEFAULT = CacheControl()


@dataclass(frozen=True)
class Outcome:
    """What the cache did for a request, as the client is told: ``X-Cache`` and, on a hit, ``Age``."""

    status: str  # HIT, MISS or BYPASS
    age: int | None = None

    def headers(self) -> dict[str, str]:
        """The response headers that report it."""
        if self.age is None:
            return {"X-Cache": self.status}
        return {"X-Cache": self.status, "Age": str(self.age)}


@dataclass(frozen=True)
class Lookup:
    """One request's lookup: the stored reply on a hit, and where to store a fresh one (None: do not)."""

    digest: str | None
    reply: StoredReply | None
    outcome: Outcome

    @property
    def hit(self) -> bool:
        """True when the reply comes from the cache."""
        return self.reply is not None


class ResponseCache:
    """Looks requests up and stores complete replies, in one scope rule and under one policy version."""

    def __init__(self, store: CacheStore, *, ttl: int, scope: str, policy: str, metrics=NULL,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.ttl = ttl
        self.scope = scope
        self.policy = policy
        self.metrics = metrics
        self._clock = clock

    def key(self, payload: dict, caller) -> str:
        """The hex digest a request's entry is stored under."""
        request = {name: value for name, value in payload.items() if name not in STREAM_FIELDS}
        material = {"format": ENTRY_FORMAT, "policy": self.policy, "request": _canonical(request),
                    "scope": SHARED_SCOPE if self.scope == SHARED_SCOPE else caller.limit_key}
        text = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def lookup(self, payload: dict, caller, control: CacheControl = DEFAULT) -> Lookup:
        """Look the request up as ``control`` allows; a failing store is a miss."""
        if not control.read and not control.write:
            return Lookup(None, None, Outcome("BYPASS"))
        digest = self.key(payload, caller)
        if not control.read:
            return Lookup(digest, None, Outcome("BYPASS"))
        reply = self.store.get(digest)
        if reply is not None:
            age = max(0.0, self._clock() - reply.stored_at)
            limit = self.ttl if control.max_age is None else min(self.ttl, control.max_age)
            if age <= limit:
                return Lookup(digest, reply, Outcome("HIT", int(age)))
        return Lookup(digest if control.write else None, None, Outcome("MISS"))

    def count(self, lookup: Lookup) -> None:
        """The request was admitted: count its outcome, and note it for its log line."""
        result = lookup.outcome.status.lower()
        self.metrics.cache(result)
        record = current()
        if record is not None:
            record.cache = result

    def keep(self, lookup: Lookup, body: dict) -> bool:
        """Store a fresh upstream reply when it is complete and the client allows it; True when stored."""
        if lookup.digest is None or lookup.hit or not storable(body):
            return False
        self.store.put(lookup.digest, body)
        return True


def storable(body: dict) -> bool:
    """True for a complete, successful completion: every choice finished with stop, length or tool_calls."""
    choices = body.get("choices")
    return isinstance(choices, list) and bool(choices) and all(
        isinstance(c, dict) and c.get("finish_reason") in STORABLE_FINISH for c in choices)


def policy_version(filter_fingerprint: str, moderation: str) -> str:
    """The version of everything that decides how a reply is filtered."""
    return f"{filter_fingerprint}:{moderation}"


def _canonical(value):
    """``value`` with integral floats as integers, so ``1.0`` and ``1`` ask the same thing."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value
