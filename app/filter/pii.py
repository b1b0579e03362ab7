"""PII and secret detection: one left-to-right scan shared by the whole-text and streaming filters.

Each detector is a bounded "head" pattern. The scan takes the leftmost place
where any head matches and offers it to every detector whose head matches
there, in priority order: each extends its head by its "tail" if it has one (a
run of token characters, or up to a PEM END line) and lets its check accept or
reject it (Luhn, mod-97, `ipaddress`, `phonenumbers`, ...). The first accepted
candidate is redacted and scanning resumes after it; when every candidate at
that place is rejected, scanning resumes one character later, so what lies
inside them can still match. A rejected secret therefore never hides the
e-mail address that starts at the same place.

Detectors are searched separately because a pattern that starts with a
selective character lets the regex engine skip ahead, which one alternation
with look-behinds at the front does not. The heads that start with a digit
share one search and are then tried one by one at the place it found.

Every step is bounded, so the scan is linear in the text: heads and checks
have a bounded reach, and a tail's end is remembered for the run it covers, so
a run with many heads in it is walked once.

Deliberate choices:
- a bare dotted quad with valid octets ("1.2.3.4") is an IPv4 address even if
  it was meant as a version; anything touching another dot-number ("1.2.3.4.5"),
  a letter ("v1.2.3.4") or an octet above 255 ("10.0.19045") is not;
- IPv6 needs at least four hex digits and a decimal digit, so Python slices
  ("a[1::2]"), C++ scopes ("std::map") and clock times ("12:30:45") never match;
- a `Bearer` token keeps the word "Bearer" and loses only the token.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from . import secrets
from .phones import DEFAULT_REGIONS, PhoneCheck
from .phones import HEAD as PHONE_HEAD
from .reach import Frontier, pattern_reach
from .validators import VALIDATORS

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# a number continued by ".5" or "-7" is something else; "," is allowed so CSV cells still match
_TAIL_END = r"(?![\w]|[.-][0-9])"

# Heads that start with a digit: (kind, pattern after the first digit); their order is their priority.
_DIGIT_KINDS = (
    ("card", r"(?<![\w+.-][0-9])(?:[0-9]{11,18}|[0-9]{3}(?: [0-9]{4}){2,3} [0-9]{1,4}"
             + r"|[0-9]{3}(?:-[0-9]{4}){2,3}-[0-9]{1,4}|[0-9]{3}[ -][0-9]{6}[ -][0-9]{5})" + _TAIL_END),
    ("ssn", r"(?<![\w-][0-9])[0-9]{2}-[0-9]{2}-[0-9]{4}" + _TAIL_END),
    # the first octet continues after its first digit, in the same order as _OCTET
    ("ipv4", r"(?<![\w.][0-9])(?:(?<=2)5[0-5]|(?<=2)[0-4][0-9]|(?<=1)[0-9]{2}|(?<=[1-9])[0-9]|)\."
             + rf"(?:{_OCTET}\.){{2}}{_OCTET}(?!\w|\.\w)"),
)

# (name, head) in priority order, after the secrets; "digits" stands for the _DIGIT_KINDS.
_HEADS = (
    ("email", r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9]"),
    ("iban", r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"),
    ("digits", "[0-9](?:" + "|".join(body for _kind, body in _DIGIT_KINDS) + ")"),
    ("phone", PHONE_HEAD),
    ("ipv6", r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}(?![\w:]|\.[0-9])"),
)

KIND_TYPE = {
    **{kind: "secret" for kind in secrets.CHECKS},
    "email": "email", "iban": "iban", "card": "card", "ssn": "ssn", "phone": "phone", "ipv6": "ip", "ipv4": "ip",
}

_TAILS = {**secrets.TAILS, "email": re.compile(r"[A-Za-z0-9.-]*")}
_DIGITS = frozenset("0123456789")
_EMAIL_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")


class _EmailSearch:
    """Same result as the email head regex's search(), found from the '@' signs instead."""

    def __init__(self, rx: re.Pattern):
        self._match = rx.match

    def search(self, s: str, pos: int):
        at = s.find("@", pos + 1)
        while at != -1:
            # the only start that can work is the beginning of the local-part run before '@'
            start, low = at, max(pos, at - 64)
            while start > low and s[start - 1] in _EMAIL_LOCAL:
                start -= 1
            if start < at:
                m = self._match(s, start)
                if m is not None:
                    return m
            at = s.find("@", at + 1)
        return None


class _ColonSearch:
    """Same result as the IPv6 head regex's search(): a match has a ':' within its first five characters."""

    def __init__(self, rx: re.Pattern):
        self._match = rx.match

    def search(self, s: str, pos: int):
        colon = s.find(":", pos)
        tried = pos
        while colon != -1:
            for start in range(max(tried, colon - 4), colon + 1):
                m = self._match(s, start)
                if m is not None:
                    return m
            tried = colon + 1
            colon = s.find(":", tried)
        return None


class _DigitRuns:
    """Starts of the runs of digits in one text, found once per scan for every head that needs a digit.

    The regex engine searches for a character class several times more slowly
    per character than str.find searches for one character, so the next digit
    is found as the nearest of ten finds (each remembered until passed), and the
    heads that start at or just before a digit (cards, SSNs, IPv4, IBANs,
    phones) share the answers.
    """

    _REST = re.compile(r"[0-9]*")

    def __init__(self, s: str):
        self._s = s
        self._starts: list[int] = []  # run starts found so far, in order
        self._upto = -1               # every run start before this is in _starts (-1: nothing searched)
        self._next: list[int | None] = [None] * 10  # next occurrence of each digit at or after _upto (-1: none)

    def first(self, pos: int) -> int:
        """Start of the first run of digits that starts at or after pos (-1 if none).

        A scan only moves forward, so each character is searched once.
        """
        starts = self._starts
        i = bisect_left(starts, pos)
        if i < len(starts):
            return starts[i]
        s = self._s
        if self._upto < pos:
            self._upto = pos
            if 0 < pos < len(s) and s[pos - 1] in _DIGITS and s[pos] in _DIGITS:
                self._upto = self._REST.match(s, pos).end()  # type: ignore[union-attr]  # [...]* always matches  # pos is inside a run that started before it
        q = self._next_digit()
        if q == -1:
            self._upto = len(s)
            return -1
        starts.append(q)
        self._upto = self._REST.match(s, q).end()  # type: ignore[union-attr]  # [...]* always matches
        return q

    def _next_digit(self) -> int:
        s, upto, nxt = self._s, self._upto, self._next
        best = -1
        for d in range(10):
            x = nxt[d]
            if x is None or (x != -1 and x < upto):
                x = nxt[d] = s.find("0123456789"[d], upto)
            if x != -1 and (best == -1 or x < best):
                best = x
        return best


class _DigitSearch:
    """Same result as a head regex's search() for heads that start `back` characters or fewer before a run of digits."""

    def __init__(self, rx: re.Pattern, back: tuple):
        self._match = rx.match
        self._back = back

    def search(self, s: str, pos: int, runs: _DigitRuns):
        d = runs.first(pos)
        while d != -1:
            for back in self._back:
                if d - back >= pos:
                    m = self._match(s, d - back)
                    if m is not None:
                        return m
            d = runs.first(d + 1)
        return None


_SEARCHERS: dict[str, Callable[[re.Pattern], Any]] = {"email": _EmailSearch, "ipv6": _ColonSearch}
# heads that start a fixed few characters before a run of digits, farthest first
_DIGIT_LED = {
    "digits": (0,),        # the run itself: no head may start right after a digit
    "iban": (2,),          # two letters, then the check digits
    "phone": (3, 2, 1, 0),  # "+ (0", "+(0", "+ 4", "(0", "+4", "5"; leftmost first
}


class PiiScanner:
    """Finds PII spans; `scan` can resume on a growing text and reports how far it is sure."""

    def __init__(self, phone_regions=DEFAULT_REGIONS):
        self.checks: dict[str, Callable[..., Any]] = {**VALIDATORS, **secrets.CHECKS,
                                                      "phone": PhoneCheck(phone_regions)}
        # (search, kinds, digit-led): kinds are (kind, anchored match or None for the head's own match)
        self._heads: list[tuple[Callable[..., Any], tuple, bool]] = []
        for name, body in (*secrets.HEADS, *_HEADS):
            rx = re.compile(body)
            kinds: tuple
            if name == "digits":
                kinds = tuple((kind, re.compile("[0-9]" + part).match) for kind, part in _DIGIT_KINDS)
            else:
                kinds = ((name, None),)
            if name in _DIGIT_LED:
                self._heads.append((_DigitSearch(rx, _DIGIT_LED[name]).search, kinds, True))
            else:
                self._heads.append((_SEARCHERS.get(name, lambda r: r)(rx).search, kinds, False))
        self.reach = self.behind = 0
        for _name, body in (*secrets.HEADS, *_HEADS):
            reach = pattern_reach(body)
            self.reach = max(self.reach, reach.ahead)
            self.behind = max(self.behind, reach.behind)
        self._pem_end_reach = pattern_reach(secrets.PEM_END.pattern).ahead
        # longest reach first, so horizon() can stop once no later head can start earlier
        heads = (*secrets.HEADS, *_HEADS)
        self._frontiers = sorted((Frontier(body, pattern_reach(body).ahead) for _name, body in heads),
                                 key=lambda f: -f.reach)

    def horizon(self, s: str, pos: int) -> int:
        """The first position at or after `pos` where a head's match attempt still depends on text to come."""
        n = len(s)
        best = n
        for frontier in self._frontiers:
            if n - frontier.reach + 1 >= best:
                break
            best = min(best, frontier(s, pos))
        return best

    def find(self, text: str) -> list:
        """All (start, end, type) spans in a complete text."""
        return self.scan(text, 0, True, len(text))[0]

    def still_open(self, kind: str, s: str, head_end: int, old_len: int) -> bool:
        """Whether a tail that was open when `s` had `old_len` characters is still open.

        Lets a stream skip rescanning while a long token or key block arrives.
        """
        if kind == "pem":
            return secrets.PEM_END.search(s, max(head_end, old_len - self._pem_end_reach)) is None
        return _TAILS[kind].match(s, old_len).end() == len(s)  # type: ignore[union-attr]  # tails are [...]*

    def _candidates(self, s: str, pos: int, cache: list, runs: _DigitRuns):
        # the leftmost place any head matches, and every (kind, head match) there in priority order
        first = None
        for i, (search, _kinds, digit_led) in enumerate(self._heads):
            m = cache[i]
            if m is False or (m is not None and m.start() < pos):
                m = cache[i] = search(s, pos, runs) if digit_led else search(s, pos)
            if m is not None and (first is None or m.start() < first):
                first = m.start()
        if first is None:
            return None, ()
        found = []
        for i, m in enumerate(cache):
            if m is not None and m.start() == first:
                for kind, match in self._heads[i][1]:
                    mm = m if match is None else match(s, first)
                    if mm is not None:
                        found.append((kind, mm))
        return first, found

    def scan(self, s: str, pos: int, final: bool, limit: int) -> tuple[list, int, tuple | None]:
        """Spans decided in s[pos:limit], where scanning must resume, and any open tail.

        Unless `final`, `s` may still grow: a match attempt only counts once all
        the characters it could examine (`reach`) are present. The open tail is
        (kind, start, head_end) of a candidate whose end has not arrived yet.
        """
        n = len(s)
        spans: list[tuple[int, int, str]] = []
        cache: list = [False] * len(self._heads)
        digit_runs = _DigitRuns(s)
        runs: dict = {}  # kind -> (from, to) of the last token run its tail covered
        horizon = n if final else self.horizon(s, pos)
        while True:
            start, found = self._candidates(s, pos, cache, digit_runs)
            if start is None or start >= horizon:
                return spans, min(max(pos, horizon), limit), None
            hit = None
            for kind, m in found:
                end = self._tail_end(kind, s, m.end(), final, runs)
                if end is None:
                    return spans, min(start, limit), (kind, start, m.end())
                hit = self.checks[kind](s, start, end)
                if hit:
                    break
            nxt = hit[1] if hit else start + 1
            if nxt > limit:
                return spans, min(start, limit), None
            if hit:
                spans.append((hit[0], hit[1], KIND_TYPE[kind]))
            pos = nxt

    def _tail_end(self, kind: str, s: str, head_end: int, final: bool, runs: dict):
        if kind == "pem":
            m = secrets.PEM_END.search(s, head_end)
            if m is not None and (final or m.start() + self._pem_end_reach <= len(s)):
                return m.end()
            return len(s) if final else None
        tail = _TAILS.get(kind)
        if tail is None:
            return head_end
        run = runs.get(kind)
        if run is not None and run[0] <= head_end <= run[1]:
            end = run[1]  # inside the run walked before: it ends at the same place
        else:
            end = tail.match(s, head_end).end()  # type: ignore[union-attr]  # tails are [...]*
            runs[kind] = (head_end, end)
        return end if (final or end < len(s)) else None


@lru_cache(maxsize=16)
def scanner_for(phone_regions: tuple) -> PiiScanner:
    """The shared scanner for a tuple of phone regions (scanners hold no per-call state)."""
    return PiiScanner(phone_regions)


SCANNER = scanner_for(DEFAULT_REGIONS)
