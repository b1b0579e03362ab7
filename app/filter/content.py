"""Whole-text filtering of replies and prompts."""
from __future__ import annotations

from .blocklist import Blocklist, load_blocklist
from .pii import SCANNER
from .result import (
    ACTION_BLOCKED,
    ACTION_NONE,
    ACTION_REDACTED,
    BLOCKED_TYPE,
    HIGH_RISK_TYPES,
    PII_TYPES,
    FilterResult,
    check_types,
    make_findings,
    render,
)
from .stream import StreamFilter


class ContentFilter:
    """Block-list and PII filter for whole replies, prompts and streamed replies.

    Holds no per-call state, so one instance can serve every request and thread;
    each streamed reply gets its own StreamFilter.
    """

    def __init__(self, blocklist: Blocklist | None = None, redact=PII_TYPES):
        if blocklist is None:
            blocklist = load_blocklist()
        elif not isinstance(blocklist, Blocklist):
            raise TypeError("blocklist must be a Blocklist from load_blocklist(), not " + type(blocklist).__name__)
        self.blocklist = blocklist
        self.redact = check_types(redact)
        self.scanner = SCANNER
        # streams keep this much already-emitted text so look-behinds see what the whole text would
        self.context = max(self.scanner.behind, self.blocklist.behind)
        # a stream emits text only once no match attempt can still change it
        self.max_span = max(self.scanner.reach, self.blocklist.reach)

    def apply(self, text: str) -> FilterResult:
        """Filter a complete reply: block on a block-list hit, else redact the configured PII."""
        return self._filter(text, self.redact)

    def scan_prompt(self, text: str, redact=HIGH_RISK_TYPES) -> FilterResult:
        """Guard a prompt: block on a block-list hit, else redact only the given PII types."""
        return self._filter(text, check_types(redact))

    def stream(self) -> StreamFilter:
        """A new incremental filter for one streamed reply."""
        return StreamFilter(self)

    def _filter(self, text: str, redact: frozenset) -> FilterResult:
        hits = self.blocklist.count(text)
        if hits:
            return FilterResult("", ACTION_BLOCKED, make_findings({BLOCKED_TYPE: hits}))
        out, counts = render(text, self.scanner.find(text), redact)
        return FilterResult(out, ACTION_REDACTED if counts else ACTION_NONE, make_findings(counts))
