"""PII and secret detection: one left-to-right scan shared by the whole-text and streaming filters.

Each detector is a bounded "head" pattern in one alternation (leftmost match
wins, earlier alternatives win ties), optionally extended by a "tail" (a run
of token characters, or up to a PEM END marker) and checked by a validator
(Luhn, mod-97, `ipaddress`, ...). A rejected candidate is left as it is and
scanning resumes one character later, so what lies inside it can still match.

Deliberate choices:
- a bare dotted quad with valid octets ("1.2.3.4") is an IPv4 address even if
  it was meant as a version; anything touching another dot-number ("1.2.3.4.5"),
  a letter ("v1.2.3.4") or an octet above 255 ("10.0.19045") is not;
- IPv6 needs at least four hex digits and a decimal digit, so Python slices
  ("a[1::2]"), C++ scopes ("std::map") and clock times ("12:30:45") never match;
- a `Bearer` token keeps the word "Bearer" and loses only the token.
"""
from __future__ import annotations

import ipaddress
import re

from .reach import pattern_reach

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_TAIL_END = r"(?![\w]|[.,-][0-9])"

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
               r"(?<![\w+.,-][0-9])(?P<card>[0-9]{12,18}|[0-9]{3}(?: [0-9]{4}){2,3} [0-9]{1,4}"
               r"|[0-9]{3}(?:-[0-9]{4}){2,3}-[0-9]{1,4}|[0-9]{3}[ -][0-9]{6}[ -][0-9]{5})" + _TAIL_END +
               r"|(?<![\w-][0-9])(?P<ssn>[0-9]{2}-[0-9]{2}-[0-9]{4})" + _TAIL_END +
               r"|(?<![\w.+-][0-9])(?P<phone>(?<=1)-[0-9]{3}-[0-9]{3}-[0-9]{4}|[0-9]{2}-[0-9]{3}-[0-9]{4}"
               r"|[0-9]{2}\.[0-9]{3}\.[0-9]{4}|(?<=0)[0-9]{2,4}[ -][0-9]{3,4}[ -]?[0-9]{3,4})" + _TAIL_END +
               # the first octet continues after its first digit, in the same order as _OCTET
               r"|(?<![\w.][0-9])(?P<ipv4>(?:(?<=2)5[0-5]|(?<=2)[0-4][0-9]|(?<=1)[0-9]{2}|(?<=[1-9])[0-9]|)\."
               rf"(?:{_OCTET}\.){{2}}{_OCTET})(?!\w|\.\w))"),
    ("phone_intl", r"\+(?<![\w+]\+)[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,6}\)?){1,5}" + _TAIL_END),
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

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_BEARER_TOKEN = re.compile(r"[Bb]earer[ \t]+")
_NON_DIGIT = re.compile(r"[^0-9]")
_EMAIL_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_HEX = re.compile(r"[0-9A-Fa-f]")

# Registered IBAN lengths (ISO 13616 registry); an unknown country is not an IBAN.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a string of decimal digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    """ISO 7064 mod-97 check of an IBAN without spaces."""
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _check_card(cand: str, start: int):
    digits = _NON_DIGIT.sub("", cand)
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return start, start + len(cand)
    return None


def _check_iban(cand: str, start: int):
    want = _IBAN_LENGTHS.get(cand[:2])
    if want is None:
        return None
    seen = 0
    for i, ch in enumerate(cand):
        if ch != " ":
            seen += 1
            if seen == want:
                end = i + 1
                # a trimmed IBAN must end where a group ends, not mid-group
                if end < len(cand) and cand[end] != " ":
                    return None
                return (start, start + end) if iban_ok(cand[:end].replace(" ", "")) else None
    return None


def _check_ssn(cand: str, start: int):
    area, group, serial = cand.split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return start, start + len(cand)


def _check_phone(cand: str, start: int):
    n = len(_NON_DIGIT.sub("", cand))
    return (start, start + len(cand)) if 7 <= n <= 15 else None


def _check_email(cand: str, start: int):
    local, _, domain = cand.partition("@")
    domain = domain.rstrip(".-")
    if not _DOMAIN.fullmatch(domain):
        return None
    return start, start + len(local) + 1 + len(domain)


def _check_jwt(cand: str, start: int):
    m = _JWT.match(cand)
    return (start, start + m.end()) if m else None


def _check_sk(cand: str, start: int):
    return (start, start + len(cand)) if any(ch.isdigit() for ch in cand[3:]) else None


def _check_bearer(cand: str, start: int):
    skip = _BEARER_TOKEN.match(cand).end()
    token = cand[skip:].rstrip(".")
    has_digit = any(ch.isdigit() for ch in token)
    has_alpha = any(ch.isalpha() for ch in token)
    if len(token) >= 8 and (len(token) >= 20 or (has_digit and has_alpha)):
        return start + skip, start + skip + len(token)
    return None


def _check_ipv6(cand: str, start: int):
    if len(_HEX.findall(cand)) < 4 or not any(ch.isdigit() for ch in cand):
        return None
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return None
    return start, start + len(cand)


def _accept(cand: str, start: int):
    return start, start + len(cand)


_VALIDATORS = {
    "pem": _accept, "aws": _accept, "ipv4": _accept, "ssn": _check_ssn,
    "bearer": _check_bearer, "sk": _check_sk, "jwt": _check_jwt, "email": _check_email,
    "iban": _check_iban, "card": _check_card, "ipv6": _check_ipv6,
    "phone_intl": _check_phone, "phone_paren": _check_phone, "phone": _check_phone,
}


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

    def scan(self, s: str, pos: int, final: bool, limit: int) -> tuple[list, int]:
        """Spans decided in s[pos:limit] and where scanning must resume.

        Unless `final`, `s` may still grow: a match attempt only counts once all
        the characters it could examine (`reach`) are present.
        """
        n = len(s)
        spans = []
        cache = [False] * len(self._detectors)
        while True:
            best = self._next(s, pos, cache)
            if best is None or (not final and best[1].start() + self.reach > n):
                safe = n if final else max(pos, n - self.reach + 1)
                return spans, min(safe, limit)
            m = best[1]
            kind = m.lastgroup or self._detectors[best[0]][0]
            start = m.start()
            end = self._tail_end(kind, s, m.end(), final)
            if end is None:
                return spans, min(start, limit)
            hit = _VALIDATORS[kind](s[start:end], start)
            nxt = hit[1] if hit else start + 1
            if nxt > limit:
                return spans, min(start, limit)
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
