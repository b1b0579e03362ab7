"""Filtering tool-call argument strings (JSON), whole and streamed, so valid JSON stays valid JSON.

A small lexer, which never fails, cuts the argument text into string literals
and the text between them. Each piece is filtered on its own, so a match never
runs across a quote:
- inside a string literal the detectors read the decoded value: escapes
  (`\\u0040`, `\\n`, surrogate pairs) are decoded into the shadow copy before it
  is folded (see `normalize`), and a redaction replaces the raw escapes it
  covers. The placeholder has nothing to escape, so the literal stays valid;
  untouched escapes stay byte for byte;
- between literals the text filter runs as it is, except that a placeholder is
  written as a JSON string (`4111111111111111` → `"[CARD]"`), so a redacted
  number keeps the value valid. In valid JSON that text holds only numbers,
  `true`/`false`/`null` and punctuation; in invalid or partial JSON it is
  whatever the model wrote, and it is filtered as text. That is the fallback to
  the text filter, per piece rather than for the whole string, because a stream
  cannot know before the end whether the whole will parse, and its output must
  not depend on that;
- an unterminated literal (partial JSON) is filtered as a literal up to the end;
  a malformed escape is read as the characters it is made of.

A block-list hit in any piece blocks the whole argument string.

`filter_arguments` is the whole-text form; `ArgumentStreamFilter` takes the
deltas of one tool call and, for any chunking, emits exactly what
`filter_arguments` returns for their concatenation.
"""
from __future__ import annotations

from collections import Counter

from .normalize import Folded, fold, fold_char
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
from .stream import StreamFilter

QUOTED_PLACEHOLDERS = {kind: f'"{text}"' for kind, text in PLACEHOLDERS.items()}
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


class _LiteralDecoder:
    """Turns the raw content of a JSON string literal into folded pieces, holding back unfinished escapes."""

    def __init__(self):
        self.pending = ""  # raw characters of an escape that is not complete yet

    def push(self, raw: str, final: bool) -> Folded:
        """Fold what `raw` (after anything pending) completes; with `final`, nothing stays pending."""
        text = self.pending + raw
        shadow: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if ch != "\\":
                j, value = i + 1, ch
            else:
                j, value = _escape(text, i, final)
                if j is None:
                    break
            folded = fold_char(value)
            shadow.append(folded)
            starts.extend([i] * len(folded))
            ends.extend([j] * len(folded))
            i = j
        self.pending = text[i:]
        return Folded(text[:i], "".join(shadow), starts, ends)


def _escape(text: str, i: int, final: bool):
    """(end, decoded value) of the escape at text[i], or (None, "") when more text is needed."""
    n = len(text)
    if i + 1 >= n:
        return (None, "") if not final else (i + 1, "\\")
    code = text[i + 1]
    if code in _SIMPLE_ESCAPES:
        return i + 2, _SIMPLE_ESCAPES[code]
    if code != "u":
        return i + 1, "\\"  # not an escape: the backslash is read as itself
    digits = text[i + 2:i + 6]
    if len(digits) < 4 and all(c in _HEX for c in digits) and not final:
        return None, ""
    if len(digits) < 4 or not all(c in _HEX for c in digits):
        return i + 1, "\\"
    unit = int(digits, 16)
    if 0xD800 <= unit < 0xDC00:
        # a high surrogate joins the low surrogate escape right after it
        low = text[i + 6:i + 12]
        could_be_low = "\\u"[:len(low)] == low[:2] and all(c in _HEX for c in low[2:])
        if could_be_low and len(low) < 6 and not final:
            return None, ""
        if could_be_low and len(low) == 6:
            second = int(low[2:], 16)
            if 0xDC00 <= second < 0xE000:
                return i + 12, chr(0x10000 + ((unit - 0xD800) << 10) + (second - 0xDC00))
    return i + 6, chr(unit)


def _pieces(text: str):
    """("quote" | "text" | "string", raw) pieces of an argument string, in order."""
    out = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            out.append(("quote", '"'))
            j = _literal_end(text, i + 1)
            out.append(("string", text[i + 1:j]))
            if j < n:
                out.append(("quote", '"'))
            i = j + 1
        else:
            j = text.find('"', i)
            j = n if j == -1 else j
            out.append(("text", text[i:j]))
            i = j
    return out


def _literal_end(text: str, i: int) -> int:
    """Index of the closing quote of the literal whose content starts at i (len(text) if none)."""
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return i
        i += 2 if ch == "\\" else 1
    return n


def filter_arguments(content_filter, text: str, redact: frozenset) -> FilterResult:
    """The whole-text filter of a tool-call argument string (module docstring)."""
    pieces: list[tuple[str, str, Folded | None]] = []
    hits = 0
    for kind, raw in _pieces(text):
        if kind == "quote":
            pieces.append((kind, raw, None))
            continue
        folded = fold(raw) if kind == "text" else _LiteralDecoder().push(raw, True)
        hits += content_filter.blocklist.count(folded.shadow)
        pieces.append((kind, raw, folded))
    if hits:
        return FilterResult("", ACTION_BLOCKED, make_findings({BLOCKED_TYPE: hits}))
    counts: Counter = Counter()
    parts = []
    for kind, raw, shadow in pieces:
        if shadow is None:
            parts.append(raw)
            continue
        spans = shadow.spans(content_filter.scanner.find(shadow.shadow))
        out, found = render(raw, spans, redact, placeholders=QUOTED_PLACEHOLDERS if kind == "text" else PLACEHOLDERS)
        parts.append(out)
        counts.update(found)
    return FilterResult("".join(parts), ACTION_REDACTED if counts else ACTION_NONE, make_findings(counts))


class ArgumentStreamFilter:
    """Incremental filter for one tool call's argument deltas; same output as `filter_arguments` on the whole."""

    def __init__(self, content_filter, redact: frozenset):
        self._filter = content_filter
        self._redact = redact
        self._in_string = False
        self._escaped = False   # the last character seen inside a literal was an unpaired backslash
        self._decoder: _LiteralDecoder | None = None
        self._piece = self._new_piece()
        self._piece_open = True  # False once finish() has folded its findings into _done
        self._emitted: list[str] = []
        self._done: Counter = Counter()   # findings of finished pieces
        self._blocked = False
        self._hits = 0
        self._finished = False

    @property
    def blocked(self) -> bool:
        """True once any piece hit the block list; nothing more is emitted."""
        return self._blocked

    def feed(self, chunk: str) -> str:
        """Add the next argument delta; returns the text that is now safe to emit."""
        if self._finished:
            raise RuntimeError("feed() called after finish()")
        if not isinstance(chunk, str):
            raise TypeError(f"chunk must be str, not {type(chunk).__name__}")
        out = []
        i, n = 0, len(chunk)
        while i < n and not self._blocked:
            j = self._piece_end(chunk, i)
            if j > i:
                out.append(self._feed_piece(chunk[i:j], final=False))
            if j < n and not self._blocked:
                out.append(self._close_piece())
                out.append('"')
                self._in_string = not self._in_string
                self._piece = self._new_piece()
                j += 1
            i = j
        return self._emit("".join(out))

    def finish(self) -> str:
        """End of the arguments: the rest of the filtered text (empty if blocked)."""
        if self._finished or self._blocked:
            self._finished = True
            return ""
        self._finished = True
        out = self._close_piece()
        self._piece_open = False  # its findings are in _done now
        return self._emit(out)

    def result(self) -> FilterResult:
        """Action and findings so far (the whole argument string after finish()); text is everything emitted."""
        counts = Counter(self._done)
        if not self._blocked and self._piece_open:
            counts.update({f["type"]: f["count"] for f in self._piece.result().findings})
        text = "".join(self._emitted)
        if self._blocked:
            counts[BLOCKED_TYPE] = self._hits
            return FilterResult(text, ACTION_BLOCKED, make_findings(counts))
        return FilterResult(text, ACTION_REDACTED if counts else ACTION_NONE, make_findings(counts))

    def _new_piece(self) -> StreamFilter:
        self._decoder = _LiteralDecoder() if self._in_string else None
        placeholders = PLACEHOLDERS if self._in_string else QUOTED_PLACEHOLDERS
        return StreamFilter(self._filter, redact=self._redact, placeholders=placeholders)

    def _piece_end(self, chunk: str, i: int) -> int:
        # where the current piece ends in chunk: at the next quote that is not escaped
        n = len(chunk)
        if not self._in_string:
            j = chunk.find('"', i)
            return n if j == -1 else j
        while i < n:
            ch = chunk[i]
            if self._escaped:
                self._escaped = False
            elif ch == "\\":
                self._escaped = True
            elif ch == '"':
                return i
            i += 1
        return n

    def _feed_piece(self, raw: str, final: bool) -> str:
        piece = self._piece
        out = piece.feed(raw) if self._decoder is None else piece.feed_folded(self._decoder.push(raw, final))
        if piece.blocked:
            self._block(piece)
        return out

    def _close_piece(self) -> str:
        piece = self._piece
        out = ""
        if self._decoder is not None and self._decoder.pending:
            out = self._feed_piece("", final=True)
        if not self._blocked:
            out += piece.finish()
            if piece.blocked:
                self._block(piece)
                return ""
            for f in piece.result().findings:
                self._done[f["type"]] += f["count"]
        return "" if self._blocked else out

    def _block(self, piece: StreamFilter) -> None:
        self._blocked = True
        found = {f["type"]: f["count"] for f in piece.result().findings}
        self._hits = found.pop(BLOCKED_TYPE, 0)
        self._done.update(found)

    def _emit(self, out: str) -> str:
        if self._blocked:
            return ""
        if out:
            self._emitted.append(out)
        return out
