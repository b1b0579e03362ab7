"""PII and secret detection: one left-to-right scan shared by the whole-text and streaming filters.

Each detector is a bounded "head" pattern. The scan takes the leftmost head of
all detectors (the earlier detector on a tie, as one big alternation would),
extends it by its "tail" if it has one (a run of token characters, or up to a
PEM END marker), and lets the type's check in `validators` accept or reject it
(Luhn, mod-97, `ipaddress`, ...). A rejected candidate is left as it is and
scanning resumes one character later, so what lies inside it can still match.
Detectors are searched separately because a pattern that starts with a
selective character lets the regex engine skip ahead, which one alternation
with look-behinds at the front does not.

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

from .reach import pattern_reach
from .validators import VALIDATORS

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# a number continued by ".5" or "-7" is something else; "," is allowed so CSV cells still match
_TAIL_END = r"(?![\w]|[.-][0-9])"

# Each head starts with a literal or a character class so that the regex engine
# can skip ahead quickly; the left-boundary look-behind therefore comes after
# the first character and includes it.
_HEADS = (
    ("pem", r"-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY-----"),
    ("bearer", r"[Bb]earer(?<![\w-][Bb]earer)[ \t]{1,4}[A-Za-z0-9._~+/=-]{8}"),
    ("sk", r"sk-(?<![\w-]sk-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20}"),
    ("aws", r"A(?<![A-Za-z0-9]A)(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("jwt", r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{8}"),
    ("email", r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9]"),
    ("iban", r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z][0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"),
    # heads that start with a digit share one search; their order is their priority
    ("digits", r"[0-9](?:"
               + r"(?<![\w+.-][0-9])(?P<card>[0-9]{12,18}|[0-9]{3}(?: [0-9]{4}){2,3} [0-9]{1,4}"
               + r"|[0-9]{3}(?:-[0-9]{4}){2,3}-[0-9]{1,4}|[0-9]{3}[ -][0-9]{6}[ -][0-9]{5})" + _TAIL_END +
               r"|(?<![\w-][0-9])(?P<ssn>[0-9]{2}-[0-9]{2}-[0-9]{4})" + _TAIL_END +
               r"|(?<![\w.+-][0-9])(?P<phone>(?<=1)-[0-9]{3}-[0-9]{3}-[0-9]{4}|[0-9]{2}-[0-9]{3}-[0-9]{4}"
               + r"|[0-9]{2}\.[0-9]{3}\.[0-9]{4}|(?<=0)[0-9]{2,4}[ -][0-9]{3,4}[ -]?[0-9]{3,4})" + _TAIL_END +
               # the first octet continues after its first digit, in the same order as _OCTET
               r"|(?<![\w.][0-9])(?P<ipv4>(?:(?<=2)5[0-5]|(?<=2)[0-4][0-9]|(?<=1)[0-9]{2}|(?<=[1-9])[0-9]|)\."
               + rf"(?:{_OCTET}\.){{2}}{_OCTET})(?!\w|\.\w))"),
    # possessive digit runs: a long run of digits must not be split every possible way
    ("phone_intl", r"\+(?<![\w+]\+)[0-9]{1,3}(?:[ .-]?(?:\([0-9]{1,6}+\)|[0-9]{1,6}+)){1,5}" + _TAIL_END),
    ("phone_paren", r"\((?<![\w)]\()[0-9]{3}\) ?[0-9]{3}[ .-][0-9]{4}" + _TAIL_END),
    ("ipv6", r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}(?![\w:]|\.[0-9])"),
)

KIND_TYPE = {
    "pem": "secret", "bearer": "secret", "sk": "secret", "aws": "secret", "jwt": "secret",
    "email": "email", "iban": "iban", "card": "card", "ssn": "ssn",
    "phone_intl": "phone", "phone_paren": "phone", "phone": "phone",
    "ipv6": "ip", "ipv4": "ip",
}

# Heads whose match continues over a run of token characters of any length.
_TAILS = {
    "bearer": re.compile(r"[A-Za-z0-9._~+/=-]*"),
    "sk": re.compile(r"[A-Za-z0-9_-]*"),
    "jwt": re.compile(r"[A-Za-z0-9_.-]*"),
    "email": re.compile(r"[A-Za-z0-9.-]*"),
}
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY-----")
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


_SEARCHERS = {"email": _EmailSearch, "ipv6": _ColonSearch}


class PiiScanner:
    """Finds PII spans; `scan` can resume on a growing text and reports how far it is sure."""

    def __init__(self):
        self._detectors = []
        self.reach = self.behind = 0
        for name, body in _HEADS:
            rx = re.compile(body)
            finder = _SEARCHERS.get(name, lambda r: r)(rx)
            self._detectors.append((name, finder.search))
            reach = pattern_reach(body)
            self.reach = max(self.reach, reach.ahead)
            self.behind = max(self.behind, reach.behind)
        self._pem_end_reach = pattern_reach(_PEM_END.pattern).ahead

    def find(self, text: str) -> list:
        """All (start, end, type) spans in a complete text."""
        return self.scan(text, 0, True, len(text))[0]

    def still_open(self, kind: str, s: str, head_end: int, old_len: int) -> bool:
        """Whether a tail that was open when `s` had `old_len` characters is still open.

        Lets a stream skip rescanning while a long token or key block arrives.
        """
        if kind == "pem":
            return _PEM_END.search(s, max(head_end, old_len - self._pem_end_reach)) is None
        return _TAILS[kind].match(s, old_len).end() == len(s)

    def _next(self, s: str, pos: int, cache: list):
        # leftmost head over all detectors, earlier detector first on a tie:
        # exactly what one alternation of all heads would find
        best = None
        for i, (_name, search) in enumerate(self._detectors):
            m = cache[i]
            if m is False or (m is not None and m.start() < pos):
                m = cache[i] = search(s, pos)
            if m is not None and (best is None or m.start() < best[1].start()):
                best = (i, m)
        return best

    def scan(self, s: str, pos: int, final: bool, limit: int) -> tuple[list, int, tuple | None]:
        """Spans decided in s[pos:limit], where scanning must resume, and any open tail.

        Unless `final`, `s` may still grow: a match attempt only counts once all
        the characters it could examine (`reach`) are present. The open tail is
        (kind, start, head_end) of a candidate whose end has not arrived yet.
        """
        n = len(s)
        spans = []
        cache = [False] * len(self._detectors)
        while True:
            best = self._next(s, pos, cache)
            if best is None or (not final and best[1].start() + self.reach > n):
                safe = n if final else max(pos, n - self.reach + 1)
                return spans, min(safe, limit), None
            m = best[1]
            kind = m.lastgroup or self._detectors[best[0]][0]
            start = m.start()
            end = self._tail_end(kind, s, m.end(), final)
            if end is None:
                return spans, min(start, limit), (kind, start, m.end())
            hit = VALIDATORS[kind](s[start:end], start)
            nxt = hit[1] if hit else start + 1
            if nxt > limit:
                return spans, min(start, limit), None
            if hit:
                spans.append((hit[0], hit[1], KIND_TYPE[kind]))
            pos = nxt

    def _tail_end(self, kind: str, s: str, head_end: int, final: bool):
        if kind == "pem":
            m = _PEM_END.search(s, head_end)
            if m is not None and (final or m.start() + self._pem_end_reach <= len(s)):
                return m.end()
            return len(s) if final else None
        tail = _TAILS.get(kind)
        if tail is None:
            return head_end
        end = tail.match(s, head_end).end()
        return end if (final or end < len(s)) else None


SCANNER = PiiScanner()
