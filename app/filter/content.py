"""Whole-text filtering of replies, prompts and tool-call arguments."""
from __future__ import annotations

import functools
import hashlib
import json

from .blocklist import Blocklist, load_blocklist
from .json_args import ArgumentStreamFilter, filter_arguments
from .normalize import fold
from .phones import DEFAULT_REGIONS
from .pii import scanner_for
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
from .stream import STREAM_BATCH, StreamFilter


class ContentFilter:
    """Block-list and PII filter for whole replies, prompts, streamed replies and tool-call arguments.

    Holds no per-call state, so one instance can serve every request and thread;
    each streamed reply (or streamed argument string) gets its own stream filter.
    """

    def __init__(self, blocklist: Blocklist | None = None, redact=PII_TYPES, phone_regions=DEFAULT_REGIONS):
        if blocklist is None:
            blocklist = load_blocklist()
        elif not isinstance(blocklist, Blocklist):
            raise TypeError("blocklist must be a Blocklist from load_blocklist(), not " + type(blocklist).__name__)
        if isinstance(phone_regions, str):
            raise TypeError("phone_regions must be a sequence of region codes such as ('US', 'GB'), not a str")
        self.blocklist = blocklist
        self.redact = check_types(redact)
        self.phone_regions = tuple(phone_regions)
        self.scanner = scanner_for(self.phone_regions)
        # streams keep this much already-emitted text so look-behinds see what the whole text would
        self.context = max(self.scanner.behind, self.blocklist.behind)
        # a stream emits text only once no match attempt can still change it (prose settles up to
        # its last word, a candidate value up to its full reach), and scans again once a batch of
        # new text has arrived: the most it holds back is max_span
        self.max_span = max(self.scanner.reach, self.blocklist.reach) + STREAM_BATCH

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of the policy (block list, redacted types, phone regions): it changes when any of them does."""
        policy = [self.blocklist.terms, self.blocklist.patterns, sorted(self.redact), self.phone_regions]
        return hashlib.sha256(json.dumps(policy, ensure_ascii=False).encode("utf-8")).hexdigest()

    def apply(self, text: str) -> FilterResult:
        """Filter a complete reply: block on a block-list hit, else redact the configured PII."""
        return self._filter(text, self.redact)

    def scan_prompt(self, text: str, redact=HIGH_RISK_TYPES) -> FilterResult:
        """Guard a prompt: block on a block-list hit, else redact only the given PII types."""
        return self._filter(text, check_types(redact))

    def stream(self) -> StreamFilter:
        """A new incremental filter for one streamed reply."""
        return StreamFilter(self)

    def apply_arguments(self, arguments: str, redact=None) -> FilterResult:
        """Filter a complete tool-call argument string (JSON) inside its string values; see `json_args`."""
        return filter_arguments(self, arguments, self.redact if redact is None else check_types(redact))

    def stream_arguments(self, redact=None) -> ArgumentStreamFilter:
        """A new incremental filter for one tool call's streamed argument deltas."""
        return ArgumentStreamFilter(self, self.redact if redact is None else check_types(redact))

    def _filter(self, text: str, redact: frozenset) -> FilterResult:
        folded = None if text.isascii() else fold(text)  # ASCII text is its own shadow
        shadow = text if folded is None else folded.shadow
        hits = self.blocklist.count(shadow)
        if hits:
            return FilterResult("", ACTION_BLOCKED, make_findings({BLOCKED_TYPE: hits}))
        spans = self.scanner.find(shadow)
        if folded is not None:
            spans = folded.spans(spans)
        out, counts = render(text, spans, redact)
        return FilterResult(out, ACTION_REDACTED if counts else ACTION_NONE, make_findings(counts))
