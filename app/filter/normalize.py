"""The shadow copy the detectors read, and the map that carries its offsets back to the original.

Disguises that do not change how a value reads are undone in the shadow:
NFKC (fullwidth digits and letters, ligatures, mathematical letters), Unicode
format characters (category Cf: zero-width spaces and joiners, bidi controls,
the soft hyphen) and combining marks are removed, every Unicode space becomes
" ", every dash and minus sign "-", every decimal digit its ASCII digit, and
Cyrillic and Greek letters that look like Latin ones become those letters
("fu\u0441k" with a Cyrillic es, U+0441, reads "fuck"; so does "fück" once its diaeresis
is gone).

Each original character maps to zero or more shadow characters, never
depending on its neighbours, so the shadow of a concatenation is the
concatenation of the shadows: a stream can fold chunk by chunk and agree with
the whole text. A shadow character remembers the original character it came
from; a match over shadow[a:b] covers original[starts[a]:ends[b-1]], which
includes every removed character inside it. ASCII text is its own shadow and
costs one `str.isascii()` call.
"""
from __future__ import annotations

import re
import unicodedata

# Look-alikes that NFKC leaves alone. Only letters whose usual glyph is
# indistinguishable from the Latin one in common fonts are listed.
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "к": "k",
    "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "χ": "x",
    "ε": "e", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin letters without a decomposition
    "ı": "i", "ȷ": "j", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ħ": "h",
    "ŧ": "t", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ɑ": "a", "ɡ": "g",
}
_DASHES = "\u2212\u2796"  # minus signs, which are not category Pd (NFKC already makes small and fullwidth hyphens "-")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

# Folded forms of the non-ASCII characters seen so far; a fold depends on the
# character alone, so the cache never needs invalidating.
_FOLDED: dict[str, str] = {}


def fold_char(ch: str) -> str:
    """The shadow of one character ("" when it is removed)."""
    done = _FOLDED.get(ch)
    if done is None:
        done = _FOLDED[ch] = "".join(_fold_one(c) for c in unicodedata.normalize("NFKC", ch))
    return done


def _fold_one(ch: str) -> str:
    if ch.isascii():
        return ch
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""
    if category == "Zs":
        return " "
    if category in ("Zl", "Zp"):
        return "\n"
    if category == "Pd" or ch in _DASHES:
        return "-"
    if category == "Nd":
        return str(unicodedata.digit(ch))
    if ch in _HOMOGLYPHS:
        return _HOMOGLYPHS[ch]
    # accents and other combining marks go, whether standing alone or inside a precomposed letter
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) not in ("Mn", "Me"))
    return "".join(_HOMOGLYPHS.get(c, c) for c in base) if base != ch else ch


class Folded:
    """A text, its shadow and the offset map (None when the shadow has the text's offsets)."""

    __slots__ = ("ends", "shadow", "starts", "text")

    def __init__(self, text: str, shadow: str, starts: list | None, ends: list | None):
        self.text = text
        self.shadow = shadow
        self.starts = starts
        self.ends = ends

    def span(self, a: int, b: int) -> tuple[int, int]:
        """Original (start, end) of the non-empty shadow span [a, b)."""
        starts, ends = self.starts, self.ends
        if starts is None or ends is None:
            return a, b
        return starts[a], ends[b - 1]

    def spans(self, found) -> list:
        """Shadow (start, end, type) spans mapped to the original text."""
        starts, ends = self.starts, self.ends
        if starts is None or ends is None:
            return found
        return [(starts[a], ends[b - 1], kind) for a, b, kind in found]


def fold(text: str) -> Folded:
    """The shadow of `text` with its offset map; ASCII text is returned as it is."""
    if text.isascii():
        return Folded(text, text, None, None)
    pieces = []
    starts: list[int] = []
    ends: list[int] = []
    same_offsets = True
    cursor = 0
    for run in _NON_ASCII.finditer(text):
        a, b = run.span()
        if a > cursor:
            pieces.append(text[cursor:a])
            starts.extend(range(cursor, a))
            ends.extend(range(cursor + 1, a + 1))
        for i in range(a, b):
            out = fold_char(text[i])
            if len(out) != 1:
                same_offsets = False
            pieces.append(out)
            starts.extend([i] * len(out))
            ends.extend([i + 1] * len(out))
        cursor = b
    if cursor < len(text):
        pieces.append(text[cursor:])
        starts.extend(range(cursor, len(text)))
        ends.extend(range(cursor + 1, len(text) + 1))
    shadow = "".join(pieces)
    if same_offsets:
        return Folded(text, shadow, None, None)
    return Folded(text, shadow, starts, ends)
