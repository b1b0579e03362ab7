"""Incremental filtering of a streamed reply.

The stream runs the same scans as the whole-text filter on a growing buffer and
emits text only up to a point that no later chunk can change: every match
attempt before it has seen all the characters it could examine (the
patterns' computed reach), no candidate straddles it, and the block list has
cleared everything before it. Already-emitted text is kept as left context so
look-behinds and word boundaries behave exactly as on the whole text. A PEM
private-key block, or any other open-ended token, holds emission from its
start until it ends.

The scans read the shadow copy (see `normalize`), chunk by chunk, and every
position the stream keeps is a shadow position; only emission goes back to the
original text, through the buffer's offset map.
"""
from __future__ import annotations

from collections import Counter

from .buffer import ShadowBuffer
from .normalize import Folded, fold
from .result import (
    ACTION_BLOCKED,
    ACTION_NONE,
    ACTION_REDACTED,
    BLOCKED_TYPE,
    PLACEHOLDERS,
    FilterResult,
    make_findings,
    render,
)

# Characters a stream lets arrive before it scans again: a scan costs about the same for one
# new character as for a few dozen, and chunks of a streamed reply are often a few characters.
STREAM_BATCH = 32


class StreamFilter:
    """Incremental filter for one reply; never emits what the whole-reply filter would change."""

    def __init__(self, content_filter, redact=None, placeholders=PLACEHOLDERS):
        self._blocklist = content_filter.blocklist
        self._scanner = content_filter.scanner
        self._redact = content_filter.redact if redact is None else redact
        self._placeholders = placeholders
        self._context = content_filter.context
        self.max_span = content_filter.max_span
        self._buf = ShadowBuffer()  # left context followed by text not yet emitted
        self._ppos = 0   # shadow index of the first character not yet emitted
        self._opos = 0   # text index of the first character not yet emitted
        self._bpos = 0   # shadow index before which no blocked term can start
        self._emitted: list[str] = []
        self._counts: Counter = Counter()
        self._hits = 0
        self._blocked = False
        self._finished = False
        self._open = None  # (kind, head_end, buffer length) of a candidate waiting for its end
        self._fresh = 0    # characters received since the last scan

    @property
    def blocked(self) -> bool:
        """True once the reply hit the block list; nothing more is emitted."""
        return self._blocked

    @property
    def pending(self) -> int:
        """Characters received but not yet emitted."""
        return len(self._buf.text) - self._opos

    def feed(self, chunk: str) -> str:
        """Add the next piece of the reply; returns the text that is now safe to emit."""
        if self._finished:
            raise RuntimeError("feed() called after finish()")
        if not isinstance(chunk, str):
            raise TypeError(f"chunk must be str, not {type(chunk).__name__}")
        if self._blocked or not chunk:
            return ""
        piece = fold(chunk)
        self._buf.extend(piece)
        self._fresh += len(piece.text)
        if self._fresh < STREAM_BATCH and self._open is None:
            return ""
        return self._advance(final=False)

    def feed_folded(self, piece: Folded) -> str:
        """Like feed(), for a piece whose shadow the caller built (e.g. a decoded JSON string)."""
        if self._blocked or not piece.text:
            return ""
        self._buf.extend(piece)
        self._fresh += len(piece.text)
        if self._fresh < STREAM_BATCH and self._open is None:
            return ""
        return self._advance(final=False)

    def finish(self) -> str:
        """End of the reply: returns the rest of the filtered text (empty if blocked)."""
        if self._finished or self._blocked:
            self._finished = True
            return ""
        self._finished = True
        return self._advance(final=True)

    def result(self) -> FilterResult:
        """Action and findings so far (the whole reply after finish()); text is everything emitted.

        When blocked, findings hold the block-list hits seen before stopping plus
        the PII redacted in the text already emitted.
        """
        text = "".join(self._emitted)
        counts = Counter(self._counts)
        if self._blocked:
            counts[BLOCKED_TYPE] = self._hits
            return FilterResult(text, ACTION_BLOCKED, make_findings(counts))
        return FilterResult(text, ACTION_REDACTED if counts else ACTION_NONE, make_findings(counts))

    def _advance(self, final: bool) -> str:
        self._fresh = 0
        buf = self._buf
        shadow = buf.shadow
        hits, self._bpos = self._blocklist.scan(shadow, self._bpos, final)
        if hits:
            self._blocked = True
            self._hits = hits
            buf.clear()
            self._ppos = self._opos = self._bpos = 0
            return ""
        if not final and self._open is not None:
            kind, head_end, old_len = self._open
            if self._scanner.still_open(kind, shadow, head_end, old_len):
                # nothing before the open candidate is pending, so the scan would emit nothing
                self._open = (kind, head_end, len(shadow))
                return ""
        spans, upto, open_tail = self._scanner.scan(shadow, self._ppos, final, self._bpos)
        self._open = None
        if open_tail is not None and open_tail[1] == upto:
            self._open = (open_tail[0], open_tail[2], len(shadow))
        stop = max(buf.boundary(upto), self._opos)
        mapped = buf.spans(spans)
        for _a, b, kind in mapped:
            if kind in self._redact and b > stop:
                # the scan stopped inside the folding of one character (NFKC reads "¼" as three) and this
                # redaction ends there too: it covers that whole character, so it is emitted now
                stop = b
        out, counts = render(buf.text, mapped, self._redact, self._opos, stop, self._placeholders)
        self._counts.update(counts)
        drop = max(0, upto - self._context)
        cut = buf.drop(drop)
        self._ppos = upto - drop
        self._opos = stop - cut
        self._bpos -= drop
        if self._open is not None:
            kind, head_end, length = self._open
            self._open = (kind, head_end - drop, length - drop)
        if out:
            self._emitted.append(out)
        return out
