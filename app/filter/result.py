"""The outcome of filtering one text, and the names shared by every part of the filter."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PII_TYPES = ("email", "phone", "card", "ssn", "iban", "ip", "secret")
HIGH_RISK_TYPES = ("card", "ssn", "secret")
BLOCKED_TYPE = "blocked_content"

ACTION_NONE = "none"
ACTION_REDACTED = "redacted"
ACTION_BLOCKED = "blocked"

PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in PII_TYPES}


@dataclass(frozen=True)
class FilterResult:
    """Filtered text, what was done to it, and per-type counts (never the matched values)."""

    text: str
    action: str
    findings: tuple = ()

    def to_dict(self) -> dict:
        """JSON-ready summary without the text: {"action": ..., "findings": [...]}."""
        return {"action": self.action, "findings": [dict(f) for f in self.findings]}


def make_findings(counts: Mapping[str, int]) -> tuple:
    """Findings tuple sorted by type, leaving out zero counts."""
    return tuple({"type": kind, "count": counts[kind]} for kind in sorted(counts) if counts[kind])


def check_types(types: Iterable[str]) -> frozenset:
    """Validate a collection of PII type names."""
    if isinstance(types, str):
        types = (types,)
    chosen = frozenset(types)
    unknown = chosen.difference(PII_TYPES)
    if unknown:
        raise ValueError(f"unknown PII type(s) {sorted(unknown)}; expected some of {list(PII_TYPES)}")
    return chosen


def render(text: str, spans, redact: frozenset, start: int = 0, end: int | None = None, placeholders=PLACEHOLDERS):
    """Text of text[start:end] with the spans of redacted types replaced; returns (text, counts)."""
    counts: Counter = Counter()
    parts = []
    cursor = start
    for a, b, kind in spans:
        if kind in redact:
            parts.append(text[cursor:a])
            parts.append(placeholders[kind])
            counts[kind] += 1
            cursor = b
    parts.append(text[cursor:end])
    return "".join(parts), counts
