"""Blocked terms: file loading, obfuscation-tolerant matching and a resumable scan.

Terms are matched case-insensitively on word boundaries, directly on the
original text (so offsets need no mapping back). Each letter of a term matches
its common leetspeak stand-ins, and a term also matches when every letter is
separated from the next by one to three punctuation or space characters
("f.u.c.k", "f u c k", "f*u*c*k"). Mixed forms such as "fu ck" are not matched
on purpose: allowing a gap anywhere would turn "who re-ran" into "whore".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .reach import Frontier, UnboundedPattern, pattern_reach

DEFAULT_PATH = Path(__file__).with_name("data") / "blocklist.txt"

# Leetspeak stand-ins for each letter; digits and symbols in a listed term are
# read back to the letter they stand for so that "n1gga" and "nigga" are one term.
_LEET = {"a": "4@", "e": "3", "i": "1!", "l": "1", "o": "0", "s": "5$", "t": "7+"}
_UNLEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "+": "t"}

_SEP = r"(?:[^\w\r\n]|_)"
_WORD_GAP = _SEP + "{0,3}"   # between the words of a multi-word term
_LETTER_GAP = _SEP + "{1,3}"  # between the letters of a spelled-out term
_START = r"(?<![^\W_])"
_END = r"(?![^\W_])"
_FLAGS = re.IGNORECASE


def _letter_class(ch: str) -> str:
    # explicit case variants instead of IGNORECASE: the engine then skips
    # non-matching trie branches with a cheap character-set test
    chars = ch + (ch.upper() if ch.upper() != ch and len(ch.upper()) == 1 else "") + _LEET.get(ch, "")
    return f"[{re.escape(chars)}]" if len(chars) > 1 else re.escape(ch)


def _canonical(term: str) -> str:
    # lowercase, de-leeted, words separated by single spaces
    words = re.split(r"[^\w@$!+]+|_", term.lower())
    words = ["".join(_UNLEET.get(ch, ch) for ch in w) for w in words]
    return " ".join(w for w in words if w)


class _Trie:
    def __init__(self):
        self.children: dict[str, _Trie] = {}
        self.terminal = False

    def add(self, symbols: str) -> None:
        node = self
        for sym in symbols:
            node = node.children.setdefault(sym, _Trie())
        node.terminal = True

    def rest(self, letter_gap: str) -> str:
        """Pattern for what may follow this node's symbol ("" when a term ends here)."""
        if not self.children:
            return ""
        return f"(?:{letter_gap}{self.regex(letter_gap)}){'?' if self.terminal else ''}"

    def regex(self, letter_gap: str) -> str:
        alts = [_symbol(sym) + child.rest(letter_gap) for sym, child in sorted(self.children.items())]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _symbol(sym: str) -> str:
    return _WORD_GAP if sym == " " else _letter_class(sym)


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern
    reach: int
    behind: int
    line: int  # 0 for the combined term rule
    frontier: Frontier


class Blocklist:
    """A compiled block list: literal terms plus raw `re:` patterns ((line number, regex) pairs)."""

    def __init__(self, terms=(), patterns=(), source: str = "<memory>"):
        self.source = source
        self.terms = tuple(sorted({_canonical(t) for t in terms} - {""}))
        self.patterns = tuple(pat for _line, pat in patterns)
        rules = []
        if self.terms:
            rules.append(_term_rule(self.terms))
        for line, pat in patterns:
            rules.append(_pattern_rule(pat, line, source))
        self._rules = tuple(rules)
        self.reach = max((r.reach for r in rules), default=0)
        self.behind = max((r.behind for r in rules), default=0)

    @classmethod
    def from_text(cls, text: str, source: str = "<memory>") -> Blocklist:
        """Parse block-list file content: one term per line, `#` comments, `re:` patterns."""
        terms, patterns = [], []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("re:"):
                body = line[3:].strip()
                if not body:
                    raise ValueError(f"{source}:{number}: empty re: pattern")
                patterns.append((number, body))
                continue
            # a term may carry a trailing comment; patterns may not, "#" is a valid regex character
            term = line.split("#", 1)[0].strip()
            if not _canonical(term):
                raise ValueError(f"{source}:{number}: term {line!r} has no letters or digits")
            terms.append(term)
        return cls(terms, patterns, source)

    def __len__(self) -> int:
        return len(self.terms) + sum(1 for r in self._rules if r.line)

    def count(self, text: str) -> int:
        """Number of blocked hits in a complete text."""
        return sum(sum(1 for _ in r.regex.finditer(text)) for r in self._rules)

    def find(self, text: str) -> list:
        """(start, end) of every blocked hit in a complete text, in order."""
        return sorted(m.span() for r in self._rules for m in r.regex.finditer(text))

    def scan(self, s: str, pos: int, final: bool) -> tuple[int, int]:
        """(hits, safe): hits decided in s[pos:], else how far s is known to be clean."""
        n = len(s)
        safe = n
        for rule in self._rules:
            m = rule.regex.search(s, pos)
            if m is not None and (final or m.start() + rule.reach <= n):
                hits = sum(1 for h in rule.regex.finditer(s, pos) if final or h.start() + rule.reach <= n)
                return hits, pos
            if not final:
                safe = min(safe, rule.frontier(s, pos))
        return 0, safe


def _term_rule(terms) -> _Rule:
    whole, spelled = _Trie(), _Trie()
    for term in terms:
        whole.add(term)
        spelled.add(term.replace(" ", ""))
    # one branch per first letter, holding both the plain and the spelled-out continuations
    alts = []
    for sym in sorted(whole.children):
        rests = (whole.children[sym].rest(""), spelled.children[sym].rest(_LETTER_GAP))
        alts.append(f"{_symbol(sym)}(?:{'|'.join(rests)})")
    body = f"{_START}(?:{'|'.join(alts)}){_END}"
    reach = pattern_reach(body)
    return _Rule(re.compile(body), reach.ahead, reach.behind, 0, Frontier(body, reach.ahead))


def _pattern_rule(pattern: str, line: int, source: str) -> _Rule:
    where = f"{source}:{line}"
    try:
        compiled = re.compile(pattern, _FLAGS)
    except re.error as exc:
        raise ValueError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None
    try:
        reach = pattern_reach(pattern, _FLAGS)
    except UnboundedPattern as exc:
        raise ValueError(f"{where}: {exc} in {pattern!r} (streamed replies need a bounded match length)") from None
    if reach.shortest == 0:
        raise ValueError(f"{where}: pattern {pattern!r} can match empty text")
    return _Rule(compiled, reach.ahead, reach.behind, line, Frontier(pattern, reach.ahead, _FLAGS))


def load_blocklist(path: str | None = None) -> Blocklist:
    """Load a block-list file (None = the shipped default); raises ValueError on a bad file."""
    if path is None:
        return _default()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _default() -> Blocklist:
    return _load(DEFAULT_PATH)


def _load(path: Path) -> Blocklist:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read block list {str(path)!r}: {exc}") from None
    return Blocklist.from_text(text, source=str(path))
