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
from functools import lru_cache

from . import secrets
from .phones import DEFAULT_REGIONS, HEAD as PHONE_HEAD, PhoneCheck
from .reach import pattern_reach
from .validators import VALIDATORS

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# a number continued by ".5" or "-7" is something else; "," is allowed so CSV cells still match
_TAIL_END = r"(?![\w]|[.-][0-9])"

# Heads that start with a digit: (kind, pattern after the first digit); their order is their priority.
_DIGIT_KINDS = (
    ("card", r"(?<![\w+.-][0-9])(?:[0-9]{12,18}|[0-9]{3}(?: [0-9]{4}){2,3} [0-9]{1,4}"
             + r"|[0-9]{3}(?:-[0-9]{4}){2,3}-[0-9]{1,4}|[0-9]{3}[ -][0-9]{6}[ -][0-9]{5})" + _TAIL_END),
    ("ssn", r"(?<![\w-][0-9])[0-9]{2}-[0-9]{2}-[0-9]{4}" + _TAIL_END),
    # the first octet continues after its first digit, in the same order as _OCTET
    ("ipv4", r"(?<![\w.][0-9])(?:(?<=2)5[0-5]|(?<=2)[0-4][0-9]|(?<=1)[0-9]{2}|(?<=[1-9])[0-9]|)\."
             + rf"(?:{_OCTET}\.){{2}}{_OCTET}(?!\w|\.\w)"),
)

# (name, head) in priority order; "digits" stands for the _DIGIT_KINDS.
_HEADS = (
    *secrets.HEADS,
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

    def __init__(self, phone_regions=DEFAULT_REGIONS):
        self.checks = {**VALIDATORS, **secrets.CHECKS, "phone": PhoneCheck(phone_regions)}
        self._detectors = []  # (search, ((kind, match or None), ...))
        self.reach = self.behind = 0
        for name, body in _HEADS:
            rx = re.compile(body)
            finder = _SEARCHERS.get(name, lambda r: r)(rx)
            if name == "digits":
                kinds = tuple((kind, re.compile("[0-9]" + part).match) for kind, part in _DIGIT_KINDS)
            else:
                kinds = ((name, None),)
            self._detectors.append((finder.search, kinds))
            reach = pattern_reach(body)
            self.reach = max(self.reach, reach.ahead)
            self.behind = max(self.behind, reach.behind)
        self._pem_end_reach = pattern_reach(secrets.PEM_END.pattern).ahead

    def find(self, text: str) -> list:
        """All (start, end, type) spans in a complete text."""
        return self.scan(text, 0, True, len(text))[0]

    def still_open(self, kind: str, s: str, head_end: int, old_len: int) -> bool:
        """Whether a tail that was open when `s` had `old_len` characters is still open.

        Lets a stream skip rescanning while a long token or key block arrives.
        """
        if kind == "pem":
            return secrets.PEM_END.search(s, max(head_end, old_len - self._pem_end_reach)) is None
        return _TAILS[kind].match(s, old_len).end() == len(s)

    def _candidates(self, s: str, pos: int, cache: list):
        # the leftmost place any head matches, and every (kind, head match) there in priority order
        first = None
        for i, (search, _kinds) in enumerate(self._detectors):
            m = cache[i]
            if m is False or (m is not None and m.start() < pos):
                m = cache[i] = search(s, pos)
            if m is not None and (first is None or m.start() < first):
                first = m.start()
        if first is None:
            return None, ()
        found = []
        for i, (_search, kinds) in enumerate(self._detectors):
            m = cache[i]
            if m is None or m.start() != first:
                continue
            for kind, match in kinds:
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
        spans = []
        cache = [False] * len(self._detectors)
        runs: dict = {}  # kind -> (from, to) of the last token run its tail covered
        while True:
            start, found = self._candidates(s, pos, cache)
            if start is None or (not final and start + self.reach > n):
                safe = n if final else max(pos, n - self.reach + 1)
                return spans, min(safe, limit), None
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
            end = tail.match(s, head_end).end()
            runs[kind] = (head_end, end)
        return end if (final or end < len(s)) else None


@lru_cache(maxsize=16)
def scanner_for(phone_regions: tuple) -> PiiScanner:
    """The shared scanner for a tuple of phone regions (scanners hold no per-call state)."""
    return PiiScanner(phone_regions)


SCANNER = scanner_for(DEFAULT_REGIONS)
