"""How far a compiled pattern can look from the position where a match attempt starts.

The streaming filter decides that a match attempt is final once every
character it could examine has arrived; these bounds make that decision exact
instead of heuristic.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# The stdlib parser is the only source of the pattern structure; it is private
# but has been stable for years and is pinned by the interpreter version.
try:  # pragma: no cover - depends on the interpreter version
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as _c
    import sre_parse as _p


class UnboundedPattern(ValueError):
    """The pattern can examine an unbounded amount of text."""


@dataclass(frozen=True)
class Reach:
    """Characters a match attempt may examine: `ahead` from its start, `behind` before it."""

    ahead: int
    behind: int
    shortest: int = 0


_ONE_CHAR = {_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN}
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", _c.MAX_REPEAT)}


def pattern_reach(pattern: str, flags: int = 0) -> Reach:
    """Bound the text a match attempt of `pattern` can examine; raises UnboundedPattern."""
    tree = _p.parse(pattern, flags)
    walker = _Walker(tree.state.groupwidths)
    _advance, ahead = walker.seq(tree)
    return Reach(ahead=ahead, behind=walker.behind, shortest=tree.getwidth()[0])


class _Walker:
    def __init__(self, groupwidths):
        self.groupwidths = groupwidths
        self.behind = 0

    def seq(self, items) -> tuple[int, int]:
        # (max characters consumed, max offset examined + 1) for a sequence
        advance = reach = 0
        for op, av in items:
            adv, rch = self.node(op, av)
            reach = max(reach, advance + rch)
            advance += adv
        return advance, reach

    def node(self, op, av) -> tuple[int, int]:
        if op in _ONE_CHAR:
            return 1, 1
        if op is _c.AT:
            # boundaries peek one character back; `$` may peek at a final newline
            self.behind = max(self.behind, 1)
            return 0, 2
        if op is _c.SUBPATTERN:
            return self.seq(av[-1])
        if op is _c.ATOMIC_GROUP:
            return self.seq(av)
        if op is _c.BRANCH:
            widths = [self.seq(alt) for alt in av[1]]
            return max(w[0] for w in widths), max(w[1] for w in widths)
        if op in _REPEATS:
            _low, high, item = av
            if high == _c.MAXREPEAT:
                raise UnboundedPattern("unbounded repetition (*, +, {n,}) is not supported; use {m,n}")
            adv, rch = self.seq(item)
            if high == 0:
                return 0, 0
            return high * adv, (high - 1) * adv + rch
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            direction, sub = av
            adv, rch = self.seq(sub)
            if direction < 0:
                self.behind = max(self.behind, adv + 1)
                return 0, 0
            return 0, rch
        if op is _c.GROUPREF:
            # the group itself was walked first, so its width is already known to be bounded
            width = self.groupwidths[av][1]
            return width, width
        if op is _c.GROUPREF_EXISTS:
            _group, yes, no = av
            a = self.seq(yes)
            b = self.seq(no) if no is not None else (0, 0)
            return max(a[0], b[0]), max(a[1], b[1])
        raise UnboundedPattern(f"unsupported pattern construct {op}")  # pragma: no cover


# Wider alphabets than this are treated as "any character": folding them into one class buys nothing.
_MAX_ALPHABET = 4096


@dataclass(frozen=True)
class Alphabet:
    """The characters a match attempt can consume, and how far past its last consumed character it can peek.

    Look-behinds are left out: they read text before a position the attempt
    has already reached. Look-aheads are counted by their reach (`peek`), not
    their characters, so `(?!\\w)` does not make the alphabet every word character.
    """

    chars: frozenset[str] | None  # None: the pattern can consume an open-ended set of characters
    peek: int
    first: frozenset[str] | None = None  # the characters a match can start with (None: not known)


def pattern_alphabet(pattern: str, flags: int = 0) -> Alphabet:
    """The consumable characters of `pattern` and the reach of its look-aheads."""
    collector = _Alphabet()
    tree = _p.parse(pattern, flags)
    ok = collector.seq(tree)
    chars = collector.chars
    if not ok or len(chars) > _MAX_ALPHABET:
        return Alphabet(None, collector.peek)
    first: set[str] | None = set()
    try:
        if not _first(tree, first):  # type: ignore[arg-type]
            first = None  # the pattern can match empty: any position can start a match
    except _OpenEnded:
        first = None
    if flags & re.IGNORECASE:
        # case-insensitive matching folds more than upper and lower case (the Kelvin sign matches k)
        return Alphabet(None, collector.peek)
    return Alphabet(frozenset(chars), collector.peek, None if first is None else frozenset(first))


class _OpenEnded(Exception):
    """A construct whose first character is not a known finite set."""


def _first(items, out: set[str]) -> bool:
    # adds what the sequence's first consumed character can be; True when it must consume one
    for op, av in items:
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue  # zero-width: the first consumed character comes later
        if op in (_c.LITERAL, _c.IN):
            one = _Alphabet()
            if not one.node(op, av):
                raise _OpenEnded
            out.update(one.chars)
            return True
        if op is _c.SUBPATTERN:
            done = _first(av[-1], out)
        elif op is _c.ATOMIC_GROUP:
            done = _first(av, out)
        elif op is _c.BRANCH:
            done = all([_first(alt, out) for alt in av[1]])  # a list: every branch adds its characters
        elif op in _REPEATS:
            done = _first(av[2], out) and av[0] > 0
        else:
            raise _OpenEnded
        if done:
            return True
    return False


class _Alphabet:
    def __init__(self):
        self.chars: set[str] = set()
        self.peek = 1  # a foreign character itself must have arrived

    def seq(self, items) -> bool:
        # False as soon as a construct can consume an open-ended set of characters
        return all([self.node(op, av) for op, av in items])

    def node(self, op, av) -> bool:
        if op is _c.LITERAL:
            self.chars.add(chr(av))
            return True
        if op is _c.IN:
            for kind, value in av:
                if kind is _c.LITERAL:
                    self.chars.add(chr(value))
                elif kind is _c.RANGE and value[1] - value[0] < _MAX_ALPHABET:
                    self.chars.update(chr(c) for c in range(value[0], value[1] + 1))
                else:
                    return False  # negated classes, categories (\w, \d, \s), huge ranges
            return True
        if op is _c.AT:
            self.peek = max(self.peek, 2)  # `$` also matches before a newline that ends the text
            return True
        if op is _c.SUBPATTERN:
            return self.seq(av[-1])
        if op is _c.ATOMIC_GROUP:
            return self.seq(av)
        if op is _c.BRANCH:
            return all([self.seq(alt) for alt in av[1]])
        if op in _REPEATS:
            return self.seq(av[2])
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            if av[0] >= 0:
                self.peek = max(self.peek, _Walker({}).seq(av[1])[1])
            return True
        return False  # any character, back-references, anything not known here


class Frontier:
    """Where, in a text that may still grow, the first match attempt whose outcome is not yet known can start.

    An attempt is decided once every character it could examine has arrived
    (`reach`), or once a character the pattern can never consume has arrived
    after its start, with the look-aheads' `peek` beyond it: no path of the
    attempt gets past that character, whatever follows. Prose therefore
    settles up to about its last word instead of the pattern's full reach.
    """

    __slots__ = ("_last_foreign", "_next_first", "_peek", "reach")

    def __init__(self, pattern: str, reach: int, flags: int = 0):
        self.reach = reach
        alphabet = pattern_alphabet(pattern, flags)
        self._peek = alphabet.peek
        # greedy `.*` then one foreign character: the match ends just past the last foreign character
        self._last_foreign = None if alphabet.chars is None else re.compile(
            "(?s).*[^" + _class(alphabet.chars) + "]").match
        # and among the undecided positions only those holding a possible first character count
        self._next_first = None if alphabet.first is None else re.compile("[" + _class(alphabet.first) + "]").search

    def __call__(self, s: str, pos: int) -> int:
        """The first position at or after `pos` where an undecided attempt can start (len(s) if none)."""
        n = len(s)
        lo = max(pos, n - self.reach + 1)
        if self._last_foreign is not None:
            # a foreign character at q settles the attempts before it once q + peek characters are here
            m = self._last_foreign(s, lo, n - self._peek + 1)
            if m is not None:
                lo = m.end()
        if self._next_first is not None:
            m = self._next_first(s, lo)
            return n if m is None else m.start()
        return lo


def _class(chars: frozenset[str]) -> str:
    return "".join(re.escape(c) for c in sorted(chars))
