"""Secret detectors: credential shapes anchored on each issuer's prefix and length.

Each entry is a bounded head pattern, optionally continued by a tail (a run of
the token's characters), and a check. Prefixes are matched with the case the
issuer uses (`ghp_`, `xoxb-`, `sk_live_`, `AIza`, `glpat-`, `sk-ant-`, `AKIA`);
the word of an HTTP `Bearer` scheme is matched as "Bearer", "bearer" or
"BEARER", and the words of PEM armour lines in any case, because people and
tools write them all those ways. A head never starts
inside a longer token: the character before it is checked, as is the one
after a fixed-length key.

A private-key block runs from its BEGIN line to the matching END line, or to
the end of the text when the END line never comes.
"""
from __future__ import annotations

import re

_PEM_WORDS = r"(?:[A-Za-z0-9]{1,12} ){0,3}[Pp][Rr][Ii][Vv][Aa][Tt][Ee] [Kk][Ee][Yy](?: [Bb][Ll][Oo][Cc][Kk])?"
# -----BEGIN RSA PRIVATE KEY-----, ---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----, -----begin private key-----
PEM_BEGIN = r"---(?<!----)-{0,3}[ ]?[Bb][Ee][Gg][Ii][Nn] " + _PEM_WORDS + r"[ ]?-{3,6}"
PEM_END = re.compile(r"-{3,6}[ ]?[Ee][Nn][Dd] " + _PEM_WORDS + r"[ ]?-{3,6}")

_BEARER = r"{0}(?<![\w-]{0})[ \t]{{1,4}}[A-Za-z0-9._~+/=-]{{8}}"

# (kind, head); order is priority when two heads start at the same place. Each head opens with
# its whole literal prefix and only then looks behind, so the regex engine can skip ahead to
# the prefix (a head that opened with a look-behind or a one-letter class would be tried at
# almost every character).
HEADS = (
    ("pem", PEM_BEGIN),
    # GitHub: ghp_ (classic), gho_ (OAuth), ghu_ (user-to-server), ghs_ (server), ghr_ (refresh): 36+ base62
    ("github", r"gh[pousr]_(?<![\w-]gh[pousr]_)[A-Za-z0-9]{36}"),
    ("github_pat", r"github_pat_(?<![\w-]github_pat_)[A-Za-z0-9]{22}_[A-Za-z0-9]{8}"),
    ("slack", r"xox[baprs]-(?<![\w-]xox[baprs]-)[0-9A-Za-z-]{6}"),
    ("stripe", r"sk_(?<![\w-]sk_)(?:live|test)_[0-9A-Za-z]{24}"),
    ("stripe", r"rk_(?<![\w-]rk_)(?:live|test)_[0-9A-Za-z]{24}"),
    ("google", r"AIza(?<![\w-]AIza)[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    ("gitlab", r"glpat-(?<![\w-]glpat-)[0-9A-Za-z_-]{20}"),
    ("anthropic", r"sk-ant-(?<![\w-]sk-ant-)[A-Za-z0-9_-]{20}"),
    # the scheme word as "Bearer", "bearer" or "BEARER"; mixed case ("BeArEr") is not looked for
    ("bearer", _BEARER.format("Bearer")),
    ("bearer", _BEARER.format("bearer")),
    ("bearer", _BEARER.format("BEARER")),
    ("sk", r"sk-(?<![\w-]sk-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20}"),
    # AWS access key ids: AKIA long-term, ASIA temporary (STS); upper case only
    ("aws", r"AKIA(?<![A-Za-z0-9]AKIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("aws", r"ASIA(?<![A-Za-z0-9]ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("jwt", r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{8}"),
)

# Heads whose match continues over a run of token characters of any length.
TAILS = {
    "github": re.compile(r"[A-Za-z0-9]*"),
    "github_pat": re.compile(r"[A-Za-z0-9_]*"),
    "slack": re.compile(r"[0-9A-Za-z-]*"),
    "stripe": re.compile(r"[0-9A-Za-z]*"),
    "gitlab": re.compile(r"[0-9A-Za-z_-]*"),
    "anthropic": re.compile(r"[A-Za-z0-9_-]*"),
    "bearer": re.compile(r"[A-Za-z0-9._~+/=-]*"),
    "sk": re.compile(r"[A-Za-z0-9_-]*"),
    "jwt": re.compile(r"[A-Za-z0-9_.-]*"),
}

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_BEARER_WORD = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+")
_SLACK = re.compile(r"xox[baprs]-(?:[0-9A-Za-z]+-)+[0-9A-Za-z]+")
_GITHUB_PAT_BODY = 82  # 22 characters, "_", 59 characters


def _check_jwt(s: str, start: int, end: int):
    m = _JWT.match(s, start, end)
    return (start, m.end()) if m else None


def _has_digit(s: str, start: int, end: int) -> bool:
    return any(ch.isdigit() for ch in s[start:end])


def _check_sk(s: str, start: int, end: int):
    return (start, end) if _has_digit(s, start + 3, end) else None


def _check_bearer(s: str, start: int, end: int):
    skip = _BEARER_WORD.match(s, start, end).end()  # type: ignore[union-attr]  # the head began with the word
    stop = end
    while stop > skip and s[stop - 1] == ".":
        stop -= 1
    length = stop - skip
    if length >= 8 and (length >= 20 or (_has_digit(s, skip, stop) and any(ch.isalpha() for ch in s[skip:stop]))):
        return skip, stop
    return None


def _check_github(s: str, start: int, end: int):
    return (start, end) if end - start - 4 <= 255 else None


def _check_github_pat(s: str, start: int, end: int):
    return (start, end) if end - start - len("github_pat_") >= _GITHUB_PAT_BODY else None


def _check_slack(s: str, start: int, end: int):
    # bot/user/app tokens are dash-separated numeric ids and a random part; at least one digit group
    while end > start and s[end - 1] == "-":
        end -= 1
    m = _SLACK.fullmatch(s, start, end)
    return (start, end) if m and end - start >= 24 and _has_digit(s, start + 5, end) else None


def _accept(s: str, start: int, end: int):
    return start, end


CHECKS = {
    "pem": _accept, "github": _check_github, "github_pat": _check_github_pat, "slack": _check_slack,
    "stripe": _accept, "google": _accept, "gitlab": _accept, "anthropic": _accept,
    "bearer": _check_bearer, "sk": _check_sk, "aws": _accept, "jwt": _check_jwt,
}
